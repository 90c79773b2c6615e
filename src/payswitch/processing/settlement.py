"""The second commit of an operation: how a channel's answer changes the payment, its ledger and the
stored response. Shared by the live call and by the resolver that learns a late outcome via Inquire,
so an outcome is recorded the same way whenever it becomes known."""

import dataclasses

from ..channels.base import ChannelResponse, Outcome
from ..ledger import postings
from ..payments import lifecycle
from ..payments.lifecycle import OperationKind, OperationStatus, PaymentStatus
from ..store.base import Change, IdempotencyRecord, IdempotencyState, OperationRecord, PaymentRecord
from ..v1 import switch_pb2
from . import render

_OPERATION_STATUS = {
    Outcome.APPROVED: OperationStatus.SUCCEEDED,
    Outcome.DECLINED: OperationStatus.DECLINED,
    Outcome.FAILED: OperationStatus.FAILED,
    Outcome.UNKNOWN: OperationStatus.PENDING,
}
RESPONSE_TYPES = {
    OperationKind.AUTHORIZATION: switch_pb2.AuthorizeResponse,
    OperationKind.CAPTURE: switch_pb2.CaptureResponse,
    OperationKind.VOID: switch_pb2.VoidResponse,
    OperationKind.REFUND: switch_pb2.RefundResponse,
}


def settle(payment: PaymentRecord, earlier: list[OperationRecord], operation: OperationRecord,
           response: ChannelResponse, idempotency: IdempotencyRecord | None, now: int) -> tuple[Change, bytes]:
    """The Change recording the channel's answer (with its postings and the finished idempotency record,
    when there is one) and the response bytes a caller gets, now and on every retry of its key."""
    operation = dataclasses.replace(
        operation, status=_OPERATION_STATUS[response.outcome], channel_reference=response.channel_reference,
        decline_code=response.decline_code, decline_message=response.message, updated_at_us=now)
    changes, entries = _apply_outcome(payment, operation, response, now)
    settled = dataclasses.replace(payment, version=payment.version + 1, updated_at_us=now, **changes)
    body = RESPONSE_TYPES[operation.kind](
        payment=render.payment(settled, [*earlier, operation]), operation=render.operation(operation),
    ).SerializeToString()
    done = None if idempotency is None else dataclasses.replace(idempotency, state=IdempotencyState.DONE,
                                                                 response=body)
    return Change(payment=settled, expected_version=payment.version, operation=operation, postings=entries,
                  idempotency=done), body


def _apply_outcome(payment: PaymentRecord, operation: OperationRecord, response: ChannelResponse, now: int):
    """How the channel's answer changes the payment (as field values), and the ledger postings that go
    with it."""
    kind, outcome = operation.kind, response.outcome
    if outcome is Outcome.UNKNOWN:
        return {}, ()
    if kind is OperationKind.AUTHORIZATION:
        if outcome is Outcome.APPROVED:
            return ({"status": PaymentStatus.AUTHORIZED, "pending_operation_id": None},
                    postings.authorization(operation.operation_id, payment.payment_id, payment.merchant_id,
                                           payment.channel, payment.currency, payment.amount_minor, now))
        status = PaymentStatus.DECLINED if outcome is Outcome.DECLINED else PaymentStatus.FAILED
        return ({"status": status, "pending_operation_id": None, "decline_code": response.decline_code,
                 "decline_message": response.message}, ())
    if outcome is not Outcome.APPROVED:
        return {"pending_operation_id": None}, ()
    ids = (operation.operation_id, payment.payment_id, payment.merchant_id, payment.channel, payment.currency)
    if kind is OperationKind.CAPTURE:
        return ({"status": PaymentStatus.CAPTURED, "captured_minor": operation.amount_minor,
                 "pending_operation_id": None},
                postings.capture(*ids, payment.amount_minor, operation.amount_minor, now))
    if kind is OperationKind.VOID:
        return ({"status": PaymentStatus.VOIDED, "pending_operation_id": None},
                postings.hold_release(*ids, payment.amount_minor, now))
    refunded = payment.refunded_minor + operation.amount_minor
    return ({"refunded_minor": refunded, "pending_operation_id": None,
             "status": lifecycle.status_after_refund(payment.captured_minor, refunded)},
            postings.refund(*ids, operation.amount_minor, now))
