"""A small PaymentChannel written apart from the simulator, with faults to switch on, for the conformance suite.

With no faults it keeps the contract, so the suite is shown to pass a second, independent
implementation and not only the simulator it was written beside. Each fault is one mistake a channel
team could plausibly make, and breaks the clause(s) the suite must then report:

    acts_twice                  a repeat of a reference is decided again (a new channel_reference)
    changed_repeat_approved     a reference repeated with other content is decided as a new operation
    capture_over_authorized     capture over the authorized amount is approved
    refund_over_captured        refund over the captured amount is approved
    unknown_authorization_not_found   capture/void/refund of an unknown authorization is NOT_FOUND
    void_after_capture          void of a captured authorization is approved
    decline_as_error            a decline is the status PERMISSION_DENIED instead of OK DECLINED
    inquire_unknown_internal    Inquire of a reference with no decided operation is INTERNAL
    inquire_unknown_approved    ... is OK APPROVED with a made-up channel_reference
    bad_input_approved          no validation: malformed requests are approved
    wrong_reference             every result echoes another reference
    acts_after_deadline         work that cannot finish before the deadline is finished in the
                                background, unseen by Inquire, even after Inquire said NOT_FOUND
    batch_drops_item            Batch answers one result fewer than the items
    amount_not_echoed           no result says the amount it acted on
    echoes_authorized_amount    Capture and Refund results name the authorized amount, not their own

Every operation waits `latency_s` between receipt and decision (Inquire says IN_PROGRESS meanwhile),
and a call whose deadline passed during that wait acts on nothing -- which is what makes the deadline
check's outcome here deterministic: a 1 ms call is never decided.
"""

import asyncio
import hashlib
import itertools
from dataclasses import dataclass, field

import grpc

from payswitch.payments.money import InvalidMoney, Money
from payswitch.v1 import channel_pb2, channel_pb2_grpc, types_pb2

FAULTS = frozenset({
    "acts_twice", "changed_repeat_approved", "capture_over_authorized", "refund_over_captured",
    "unknown_authorization_not_found", "void_after_capture", "decline_as_error", "inquire_unknown_internal",
    "inquire_unknown_approved", "bad_input_approved", "wrong_reference", "acts_after_deadline", "batch_drops_item",
    "amount_not_echoed", "echoes_authorized_amount",
})

DECLINE_CARD = "4000000000000002"

_APPROVED = channel_pb2.CHANNEL_OUTCOME_APPROVED
_DECLINED = channel_pb2.CHANNEL_OUTCOME_DECLINED
_IN_PROGRESS = channel_pb2.CHANNEL_OUTCOME_IN_PROGRESS


class Refusal(Exception):
    """The channel does not act on the request; `code` is the grpc.StatusCode name it answers."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Entry:
    """One reference: its request digest (None once Inquire said NOT_FOUND for it) and its answer."""

    fingerprint: bytes | None
    result: channel_pb2.ChannelResult | None = None
    refusal: Refusal | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Authorization:
    amount: int
    money: types_pb2.Money  # as the authorization named it, which a void echoes
    captured: int | None = None
    refunded: int = 0
    voided: bool = False


class BrokenChannel(channel_pb2_grpc.PaymentChannelServicer):
    """PaymentChannel in memory with the given faults (see the module docstring); batch=False answers
    Batch UNIMPLEMENTED, as a channel without it does."""

    def __init__(self, *faults: str, batch: bool = True, latency_s: float = 0.03, background_work_s: float = 0.1):
        unknown = set(faults) - FAULTS
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        self.faults = frozenset(faults)
        self.batch_enabled = batch
        self.latency_s = latency_s
        self.background_work_s = background_work_s
        self._entries: dict[str, _Entry] = {}
        self._authorizations: dict[str, _Authorization] = {}
        self._numbers = itertools.count(1)
        self._background: set[asyncio.Task] = set()
        self._operations = {
            "authorize": ("Authorize", self._authorize),
            "capture": ("Capture", self._capture),
            "void": ("Void", self._void),
            "refund": ("Refund", self._refund),
        }

    # -- PaymentChannel ---------------------------------------------------------------------------------

    async def Authorize(self, request, context):
        return await self._serve("authorize", request, context)

    async def Capture(self, request, context):
        return await self._serve("capture", request, context)

    async def Void(self, request, context):
        return await self._serve("void", request, context)

    async def Refund(self, request, context):
        return await self._serve("refund", request, context)

    async def Inquire(self, request, context):
        reference = request.reference
        if not reference:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "reference is required")
        entry = self._entries.get(reference)
        if entry is None or (entry.result is None and entry.refusal is not None):
            if "inquire_unknown_internal" in self.faults:
                await context.abort(grpc.StatusCode.INTERNAL, "lookup failed")
            if "inquire_unknown_approved" in self.faults:
                return self._outgoing(channel_pb2.ChannelResult(
                    reference=reference, outcome=_APPROVED, channel_reference="made_up"), reference)
        if entry is None:
            # NOT_FOUND binds: the reference is refused from now on.
            entry = _Entry(fingerprint=None, refusal=Refusal("FAILED_PRECONDITION", "reported unknown by Inquire"))
            entry.settled.set()
            self._entries[reference] = entry
            await context.abort(grpc.StatusCode.NOT_FOUND, "no operation with this reference")
        if entry.result is not None:
            return self._outgoing(entry.result, reference)
        if entry.refusal is not None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no operation was done with this reference")
        return channel_pb2.ChannelResult(reference=reference, outcome=_IN_PROGRESS)

    async def Batch(self, request, context):
        if not self.batch_enabled:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "no Batch here")
        response = channel_pb2.ChannelBatchResponse()
        for item in request.items:
            slot = response.results.add()
            kind = item.WhichOneof("operation")
            if kind is None:
                slot.error.code, slot.error.message = grpc.StatusCode.INVALID_ARGUMENT.value[0], "empty item"
                continue
            operation = getattr(item, kind)
            try:
                result = await self._act(kind, operation, context)
            except Refusal as refusal:
                slot.error.code, slot.error.message = grpc.StatusCode[refusal.code].value[0], refusal.message
            else:
                slot.result.CopyFrom(self._outgoing(result, operation.reference))
        if "batch_drops_item" in self.faults and response.results:
            del response.results[-1]
        return response

    # -- idempotency and the deadline -------------------------------------------------------------------

    async def _serve(self, kind, request, context):
        try:
            result = await self._act(kind, request, context)
        except Refusal as refusal:
            await context.abort(grpc.StatusCode[refusal.code], refusal.message)
        return self._outgoing(result, request.reference)

    async def _act(self, kind, request, context) -> channel_pb2.ChannelResult:
        method, decide = self._operations[kind]
        reference = request.reference
        if not reference and "bad_input_approved" not in self.faults:
            raise Refusal("INVALID_ARGUMENT", "reference is required")
        fingerprint = hashlib.sha256(method.encode() + request.SerializeToString(deterministic=True)).digest()
        entry = self._entries.get(reference)
        if entry is not None:
            if entry.fingerprint is None:
                raise entry.refusal
            same = entry.fingerprint == fingerprint
            if same and "acts_twice" not in self.faults:
                await entry.settled.wait()
                if entry.result is not None:
                    return entry.result
                raise entry.refusal
            if not same and "changed_repeat_approved" not in self.faults:
                raise Refusal("FAILED_PRECONDITION", "reference already used for another operation")

        remaining = context.time_remaining()
        if "acts_after_deadline" in self.faults and remaining is not None and remaining < self.latency_s:
            # The mistake: hand work that cannot finish in time to the background, where Inquire cannot
            # see it and nothing stops it after Inquire has said NOT_FOUND.
            task = asyncio.create_task(self._decide_later(reference, fingerprint, decide, request))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return await asyncio.shield(task)

        entry = _Entry(fingerprint)
        self._entries[reference] = entry
        try:
            await asyncio.sleep(self.latency_s)
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                raise Refusal("DEADLINE_EXCEEDED", "the deadline passed before the decision")
        except BaseException:
            # Not decided: forget the reference, so Inquire says NOT_FOUND and a repeat may decide it.
            if self._entries.get(reference) is entry:
                del self._entries[reference]
            entry.settled.set()
            raise
        return self._settle(entry, decide, request)

    async def _decide_later(self, reference, fingerprint, decide, request):
        await asyncio.sleep(self.background_work_s)
        entry = _Entry(fingerprint)
        self._entries[reference] = entry
        return self._settle(entry, decide, request)

    @staticmethod
    def _settle(entry: _Entry, decide, request) -> channel_pb2.ChannelResult:
        try:
            entry.result = decide(request)
        except Refusal as refusal:
            entry.refusal = refusal
            raise
        finally:
            entry.settled.set()
        return entry.result

    def _outgoing(self, result: channel_pb2.ChannelResult, reference: str) -> channel_pb2.ChannelResult:
        answer = channel_pb2.ChannelResult()
        answer.CopyFrom(result)
        if "wrong_reference" in self.faults:
            answer.reference = "other_" + reference
        return answer

    # -- decisions --------------------------------------------------------------------------------------

    def _amount(self, request) -> int:
        if "bad_input_approved" in self.faults:
            return request.amount.amount_minor
        if not request.HasField("amount"):
            raise Refusal("INVALID_ARGUMENT", "amount is required")
        try:
            return Money.positive(request.amount.amount_minor, request.amount.currency).amount_minor
        except InvalidMoney as invalid:
            raise Refusal("INVALID_ARGUMENT", str(invalid)) from None

    def _result(self, request, outcome=_APPROVED, **fields) -> channel_pb2.ChannelResult:
        if "amount_not_echoed" in self.faults:
            fields.pop("amount", None)
        return channel_pb2.ChannelResult(reference=request.reference, outcome=outcome,
                                         channel_reference=f"bc_{next(self._numbers)}", **fields)

    def _authorize(self, request):
        amount = self._amount(request)
        if request.WhichOneof("method") != "card" and "bad_input_approved" not in self.faults:
            raise Refusal("INVALID_ARGUMENT", "a card is required")
        if request.card.number == DECLINE_CARD:
            if "decline_as_error" in self.faults:
                raise Refusal("PERMISSION_DENIED", "do_not_honor")
            return self._result(request, _DECLINED, decline_code="do_not_honor")
        self._authorizations[request.reference] = _Authorization(amount, request.amount)
        return self._result(request, amount=request.amount)

    def _authorization(self, reference: str) -> _Authorization:
        authorization = self._authorizations.get(reference)
        if authorization is None:
            code = "NOT_FOUND" if "unknown_authorization_not_found" in self.faults else "FAILED_PRECONDITION"
            raise Refusal(code, "no such authorization")
        return authorization

    def _capture(self, request):
        authorization = self._authorization(request.authorization_reference)
        amount = self._amount(request)
        if authorization.captured is not None or authorization.voided:
            raise Refusal("FAILED_PRECONDITION", "already captured or voided")
        if amount > authorization.amount and "capture_over_authorized" not in self.faults:
            raise Refusal("OUT_OF_RANGE", "capture over the authorized amount")
        authorization.captured = amount
        return self._result(request, amount=self._echo(request, authorization))

    def _void(self, request):
        authorization = self._authorization(request.authorization_reference)
        if authorization.voided or (authorization.captured is not None and "void_after_capture" not in self.faults):
            raise Refusal("FAILED_PRECONDITION", "already captured or voided")
        authorization.voided = True
        return self._result(request, amount=authorization.money)

    def _refund(self, request):
        authorization = self._authorization(request.authorization_reference)
        amount = self._amount(request)
        if authorization.captured is None:
            raise Refusal("FAILED_PRECONDITION", "not captured")
        if amount > authorization.captured - authorization.refunded and "refund_over_captured" not in self.faults:
            raise Refusal("OUT_OF_RANGE", "refund over the captured amount")
        authorization.refunded += amount
        return self._result(request, amount=self._echo(request, authorization))

    def _echo(self, request, authorization: _Authorization) -> types_pb2.Money:
        return authorization.money if "echoes_authorized_amount" in self.faults else request.amount


async def serve_channel(servicer: channel_pb2_grpc.PaymentChannelServicer) -> tuple[grpc.aio.Server, int]:
    """Serves `servicer` on a free loopback port; returns the server and the port."""
    server = grpc.aio.server()
    channel_pb2_grpc.add_PaymentChannelServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port
