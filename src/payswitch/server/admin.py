"""SwitchAdmin: the operator's service, authenticated apart from merchants by a bearer token.

The configuration keeps only the token's SHA-256, so the file grants nothing to whoever reads it; the
presented token is hashed and compared in constant time. Merchant signatures are not accepted here.
Like the payment edge, every call arrives as raw bytes and is authenticated before it is parsed, so
an anonymous caller learns nothing from what the parser thinks of its bytes.
"""

import hashlib
import hmac
import logging

import grpc
from google.protobuf import message_factory
from google.protobuf.message import DecodeError

from ..keys.store import (InvalidKeyRequest, KeyAlreadyExists, KeyInConfiguration, KeyNotFound,
                          MasterKeyNotConfigured, SigningKeyError, TooManyActiveKeys)
from ..payments.errors import VaultNotConfigured
from ..processing import render
from ..tls import IdentityBinding, peer_identities
from ..v1 import admin_pb2
from .errors import build_status, status_for_payment_error

log = logging.getLogger(__name__)

MAX_PENDING_LISTED = 1000


class AdminService:
    """`switch` is the running SwitchApp: its router, risk, channels, resolver, vault and keys, and
    reload_rules()."""

    def __init__(self, token_sha256: bytes, switch, binding: IdentityBinding | None = None):
        """With a client-certificate `binding`, a caller also needs a certificate marked admin."""
        self._token_sha256 = token_sha256
        self._switch = switch
        self._binding = binding

    def handler(self) -> grpc.GenericRpcHandler:
        """Every SwitchAdmin method of the contract, each served by the method of the same name."""
        service = admin_pb2.DESCRIPTOR.services_by_name["SwitchAdmin"]
        handlers = {method.name: grpc.unary_unary_rpc_method_handler(
                        self._authenticated(getattr(self, method.name),
                                            message_factory.GetMessageClass(method.input_type)),
                        response_serializer=lambda response: response.SerializeToString())
                    for method in service.methods}
        return grpc.method_handlers_generic_handler(service.full_name, handlers)

    def _authenticated(self, implementation, request_type):
        async def handle(body: bytes, context):
            await self._authenticate(context)
            try:
                request = request_type.FromString(body)
            except DecodeError:
                await context.abort_with_status(build_status(
                    grpc.StatusCode.INVALID_ARGUMENT, f"the body is not a {request_type.DESCRIPTOR.full_name}",
                    "invalid_argument", violations={"request": "does not parse"}))
            return await implementation(request, context)

        return handle

    async def ReloadRouting(self, request, context):
        """Reloads the routing file and the risk rules together (both, or neither when one is refused)."""
        from ..risk.config import RiskConfigError
        from ..toml_lines import ConfigError

        if self._switch.config.routing is None and self._switch.config.risk is None:
            await context.abort_with_status(build_status(
                grpc.StatusCode.FAILED_PRECONDITION, "the switch has no routing or risk file configured",
                "routing_not_configured"))
        try:
            await self._switch.reload_rules()
        except ConfigError as error:
            reason = "risk_invalid" if isinstance(error, RiskConfigError) else "routing_invalid"
            violations: dict[str, str] = {}
            for problem in error.problems:
                where = f"{error.source}:{problem.line}: {problem.path}" if problem.line else problem.path
                violations[where] = "; ".join(filter(None, (violations.get(where), problem.message)))
            await context.abort_with_status(build_status(
                grpc.StatusCode.INVALID_ARGUMENT, f"{error.source} refused, nothing changed:\n{error}", reason,
                violations=violations))
        return self._routing_status()

    async def GetRouting(self, request, context):
        return self._routing_status()

    async def ListChannelHealth(self, request, context):
        channels = self._switch.channels
        return admin_pb2.ListChannelHealthResponse(channels=[_channel_health(channels.health(name))
                                                             for name in channels.names()])

    async def ListPendingOperations(self, request, context):
        limit = min(request.limit or 100, MAX_PENDING_LISTED)
        views = await self._switch.resolver.pending_report(request.older_than_seconds, limit)
        return admin_pb2.ListPendingOperationsResponse(operations=[
            admin_pb2.PendingOperation(
                payment_id=view.payment.payment_id, merchant_id=view.payment.merchant_id,
                operation_id=view.operation.operation_id,
                kind=render.operation_kind(view.operation.kind.value), channel=view.payment.channel,
                since=render.timestamp(view.operation.updated_at_us), inquiries=view.inquiries,
                last_inquiry=view.last_answer, overdue=view.overdue)
            for view in views])

    def _routing_status(self) -> admin_pb2.RoutingStatus:
        table, engine = self._switch.router.table, self._switch.risk.engine
        status = admin_pb2.RoutingStatus(loaded_at=render.timestamp(self._switch.routing_loaded_at_us),
                                         risk_version=engine.version if engine else "")
        if table is not None:
            status.MergeFrom(admin_pb2.RoutingStatus(version=table.version, source=table.config.source,
                                                     rules=len(table.config.rules),
                                                     bin_ranges=len(table.config.bins)))
        return status

    async def _authenticate(self, context) -> None:
        presented = dict(context.invocation_metadata() or ()).get("authorization", "")
        scheme, _, token = presented.partition(" ")
        if scheme.lower() != "bearer" or not token:
            await context.abort_with_status(build_status(
                grpc.StatusCode.UNAUTHENTICATED, "admin calls need 'authorization: Bearer <token>'",
                "admin_token_missing"))
        if not hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._token_sha256):
            log.warning("admin call refused: wrong token")
            await context.abort_with_status(build_status(
                grpc.StatusCode.UNAUTHENTICATED, "admin token refused", "admin_token_invalid"))
        if self._binding is not None:
            refusal = self._binding.admin_refusal(peer_identities(context))
            if refusal is not None:
                await context.abort_with_status(refusal)

    async def RotateVaultKey(self, request, context):
        vault = self._switch.vault
        if vault is None:
            await context.abort_with_status(status_for_payment_error(VaultNotConfigured()))
        report = await vault.rotate()
        return admin_pb2.RotateVaultKeyResponse(primary_key_id=report.primary_key_id, resealed=report.resealed,
                                                deleted_key_ids=report.deleted_key_ids)

    # --- merchants' signing keys (docs/keys.md); `switch.keys` is the KeyRing ----------------------

    async def CreateKey(self, request, context):
        ring = await self._key_ring(context)
        violations: dict[str, str] = {}
        valid_from = _timestamp_micros(request, "valid_from", violations)
        valid_until = _timestamp_micros(request, "valid_until", violations)
        if violations:
            await self._abort_for_key_error(context, InvalidKeyRequest(violations))
        try:
            info, secret = await ring.create_key(request.merchant_id, request.key_id or None,
                                                 valid_from_us=valid_from, valid_until_us=valid_until)
        except SigningKeyError as error:
            await self._abort_for_key_error(context, error)
        return admin_pb2.CreateKeyResponse(key=_signing_key(info), secret=secret)

    async def ListKeys(self, request, context):
        ring = await self._key_ring(context)
        try:
            keys = await ring.list_keys(request.merchant_id or None)
        except SigningKeyError as error:
            await self._abort_for_key_error(context, error)
        return admin_pb2.ListKeysResponse(keys=[_signing_key(info) for info in keys])

    async def RevokeKey(self, request, context):
        ring = await self._key_ring(context)
        try:
            info = await ring.revoke_key(request.merchant_id, request.key_id)
        except SigningKeyError as error:
            await self._abort_for_key_error(context, error)
        return _signing_key(info)

    async def _key_ring(self, context):
        ring = getattr(self._switch, "keys", None)
        if ring is None:
            await self._abort_for_key_error(context, MasterKeyNotConfigured())
        return ring

    @staticmethod
    async def _abort_for_key_error(context, error: SigningKeyError):
        await context.abort_with_status(build_status(
            KEY_ERROR_STATUS[type(error)], str(error), error.reason, violations=getattr(error, "violations", None)))


def _channel_health(health) -> admin_pb2.ChannelHealth:
    message = admin_pb2.ChannelHealth(
        name=health.name, breaker_state=health.breaker_state.value, in_flight=health.in_flight,
        max_in_flight=health.max_in_flight, calls=health.calls, approved=health.approved,
        declined=health.declined, errors=health.errors, latency_p50_us=health.latency_p50_us or 0,
        latency_p99_us=health.latency_p99_us or 0)
    if health.success_rate_percent is not None:
        message.success_rate_percent = health.success_rate_percent
    return message


#: Each refusal of a key operation (keys/store.py) as the status SwitchAdmin answers.
KEY_ERROR_STATUS: dict[type[SigningKeyError], grpc.StatusCode] = {
    InvalidKeyRequest: grpc.StatusCode.INVALID_ARGUMENT,
    KeyAlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    TooManyActiveKeys: grpc.StatusCode.FAILED_PRECONDITION,
    MasterKeyNotConfigured: grpc.StatusCode.FAILED_PRECONDITION,
    KeyInConfiguration: grpc.StatusCode.FAILED_PRECONDITION,
    KeyNotFound: grpc.StatusCode.NOT_FOUND,
}

# google.protobuf.Timestamp's own range: 0001-01-01 to 9999-12-31; before 1970 is refused as well.
_LAST_TIMESTAMP_SECONDS = 253_402_300_799


def _timestamp_micros(request, name: str, violations: dict[str, str]) -> int | None:
    """A Timestamp field in microseconds; None if absent; a violation if outside 1970..9999."""
    if not request.HasField(name):
        return None
    stamp = getattr(request, name)
    if not 0 <= stamp.seconds <= _LAST_TIMESTAMP_SECONDS or not 0 <= stamp.nanos < 1_000_000_000:
        violations[name] = "must be a time between 1970 and 9999"
        return None
    return stamp.seconds * 1_000_000 + stamp.nanos // 1000


def _signing_key(info) -> admin_pb2.SigningKey:
    """A KeyInfo (keys/ring.py) as the message; it has no secret to leak."""
    message = admin_pb2.SigningKey(merchant_id=info.merchant_id, key_id=info.key_id, status=info.status,
                                   source=info.source, in_use=info.in_use)
    for field, micros in (("valid_from", info.valid_from_us), ("valid_until", info.valid_until_us),
                          ("created_at", info.created_at_us), ("revoked_at", info.revoked_at_us)):
        if micros is not None:
            getattr(message, field).CopyFrom(render.timestamp(micros))
    return message
