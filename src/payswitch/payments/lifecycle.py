"""The payment state machine: which operation each status allows, and how much is left.

Every check here runs again inside the store transaction's version guard, so two operations on one
payment can never both spend the same amount.
"""

import enum

from .errors import AmountExceeded, CurrencyMismatch, IllegalTransition, OperationPending


class PaymentStatus(enum.Enum):
    PENDING = "PENDING"
    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    CAPTURED = "CAPTURED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    VOIDED = "VOIDED"
    FAILED = "FAILED"


class OperationKind(enum.Enum):
    AUTHORIZATION = "AUTHORIZATION"
    CAPTURE = "CAPTURE"
    VOID = "VOID"
    REFUND = "REFUND"
    # The switch's own void of a partial approval the caller did not accept.
    REVERSAL = "REVERSAL"


class OperationStatus(enum.Enum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"
    FAILED = "FAILED"


REFUNDABLE = (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED)


def _require(status: PaymentStatus, allowed: tuple[PaymentStatus, ...], operation: OperationKind,
             pending_operation_id: str | None) -> None:
    if status not in allowed:
        raise IllegalTransition(operation.value, status.value)
    if pending_operation_id:
        raise OperationPending(pending_operation_id)


def check_capture(status, currency, authorized_minor, pending_operation_id, amount) -> int:
    """The amount to capture (all of it when `amount` is None)."""
    _require(status, (PaymentStatus.AUTHORIZED,), OperationKind.CAPTURE, pending_operation_id)
    return _requested(amount, currency, authorized_minor, "amount_exceeds_authorized")


def check_void(status, pending_operation_id) -> None:
    _require(status, (PaymentStatus.AUTHORIZED,), OperationKind.VOID, pending_operation_id)


def check_refund(status, currency, captured_minor, refunded_minor, pending_operation_id, amount) -> int:
    """The amount to refund (all that is left when `amount` is None)."""
    _require(status, REFUNDABLE, OperationKind.REFUND, pending_operation_id)
    return _requested(amount, currency, captured_minor - refunded_minor, "amount_exceeds_refundable")


def _requested(amount, currency, available_minor, reason) -> int:
    """The amount asked for, all that is available when none was given, never more than that."""
    if amount is None:
        return available_minor
    if amount.currency != currency:
        raise CurrencyMismatch(currency, amount.currency)
    if amount.amount_minor > available_minor:
        raise AmountExceeded(reason, available_minor)
    return amount.amount_minor


def status_after_refund(captured_minor: int, refunded_minor: int) -> PaymentStatus:
    return PaymentStatus.REFUNDED if refunded_minor >= captured_minor else PaymentStatus.PARTIALLY_REFUNDED
