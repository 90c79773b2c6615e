"""The one table from domain errors to gRPC statuses, with machine-readable details.

Every refusal carries a google.rpc.Status in the `grpc-status-details-bin` trailer: an ErrorInfo
whose `reason` a program can switch on, and for bad fields a BadRequest naming each one.
"""

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..payments import errors

DOMAIN = "payswitch.v1"

STATUS_BY_ERROR: dict[type[errors.PaymentError], grpc.StatusCode] = {
    errors.InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    errors.PaymentNotFound: grpc.StatusCode.NOT_FOUND,
    errors.IllegalTransition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.OperationPending: grpc.StatusCode.FAILED_PRECONDITION,
    errors.CurrencyMismatch: grpc.StatusCode.FAILED_PRECONDITION,
    errors.AmountExceeded: grpc.StatusCode.OUT_OF_RANGE,
    errors.NoRoute: grpc.StatusCode.FAILED_PRECONDITION,
    errors.TokenNotFound: grpc.StatusCode.NOT_FOUND,
    errors.VaultNotConfigured: grpc.StatusCode.FAILED_PRECONDITION,
    errors.DeadlineTooShort: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.IdempotencyKeyReused: grpc.StatusCode.ALREADY_EXISTS,
    errors.RequestInProgress: grpc.StatusCode.ABORTED,
    errors.StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.ChannelBusy: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.ShuttingDown: grpc.StatusCode.UNAVAILABLE,
}


def _packed(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def build_status(code: grpc.StatusCode, message: str, reason: str, metadata: dict[str, str] | None = None,
                 violations: dict[str, str] | None = None) -> grpc.Status:
    details = [_packed(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {}))]
    if violations:
        details.append(_packed(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in violations.items()])))
    return rpc_status.to_status(status_pb2.Status(code=code.value[0], message=message, details=details))


def status_for_payment_error(error: errors.PaymentError) -> grpc.Status:
    code = STATUS_BY_ERROR[type(error)]
    return build_status(code, str(error), error.reason, error.metadata,
                        getattr(error, "violations", None))


def status_for_signing_failure(reason: str) -> grpc.Status:
    return build_status(grpc.StatusCode.UNAUTHENTICATED, f"request signature rejected: {reason}", reason)


INTERNAL = build_status(grpc.StatusCode.INTERNAL, "internal error", "internal")

assert code_pb2.UNAUTHENTICATED == grpc.StatusCode.UNAUTHENTICATED.value[0]
