"""Reading the switch's machine-readable error details out of a failed call."""

from dataclasses import dataclass, field

from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class ErrorDetails:
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    # field path -> description, for INVALID_ARGUMENT
    field_violations: dict[str, str] = field(default_factory=dict)


def error_details(rpc_error) -> ErrorDetails:
    """The ErrorInfo reason and BadRequest fields of a grpc error (sync or aio)."""
    for key, value in rpc_error.trailing_metadata() or ():
        if key != _DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        reason, metadata, violations = "", {}, {}
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations = {v.field: v.description for v in bad_request.field_violations}
        return ErrorDetails(reason, metadata, violations)
    return ErrorDetails()
