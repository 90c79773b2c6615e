"""The second commit of an operation: how a channel's answer changes the payment, its ledger and the
stored response. Shared by the live call and by the resolver that learns a late outcome via Inquire,
so an outcome is recorded the same way whenever it becomes known.

The switch records no amount its channel did not confirm. An APPROVED answer names the amount it acted
on (ChannelResult.amount; none means exactly what was asked). Any other amount or currency is not a
success: the operation stays PENDING with "channel_amount_mismatch" for follow-up, except an
authorization approved for less than asked, in the same currency (a partial approval). The payment then
takes the approved amount when its caller accepts partial authorizations; otherwise the switch reverses
the approval at the channel (a REVERSAL, sent as a Void) and the payment ends DECLINED
"partial_approval_not_accepted", or AUTHORIZED for the approved amount should the channel refuse to
reverse it, since the hold then exists.
"""

import dataclasses
from collections.abc import Callable

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
    OperationKind.REVERSAL: switch_pb2.AuthorizeResponse,  # it ends the authorization's call
    OperationKind.CAPTURE: switch_pb2.CaptureResponse,
    OperationKind.VOID: switch_pb2.VoidResponse,
    OperationKind.REFUND: switch_pb2.RefundResponse,
}
AMOUNT_MISMATCH = "channel_amount_mismatch"
PARTIAL_NOT_ACCEPTED = "partial_approval_not_accepted"


@dataclasses.dataclass(frozen=True, slots=True)
class Settlement:
    """What a channel's answer leads to: the Change to commit and the caller's response, or, for a
    partial approval the caller did not accept, no response yet but the `reversal` to send next,
    whose answer is settled in turn (with `operations` as the earlier ones)."""

    change: Change
    body: bytes | None
    operations: list[OperationRecord]
    reversal: OperationRecord | None = None

    @property
    def payment(self) -> PaymentRecord:
        return self.change.payment


def confirmed(operation: OperationRecord, response: ChannelResponse) -> ChannelResponse:
    """The answer, or UNKNOWN "channel_amount_mismatch" when it approved an amount the switch cannot
    record: another currency, more than asked, or anything but what was asked outside an authorization."""
    if response.outcome is not Outcome.APPROVED or response.amount_minor is None:
        return response
    acted, currency = response.amount_minor, response.currency
    if currency == operation.currency and (acted == operation.amount_minor or (
            operation.kind is OperationKind.AUTHORIZATION and 0 < acted < operation.amount_minor)):
        return response
    return ChannelResponse(
        Outcome.UNKNOWN, response.channel_reference, decline_code=AMOUNT_MISMATCH,
        message=f"the channel approved {acted} {currency or '(no currency)'} (minor units) where the switch "
                f"asked for {operation.amount_minor} {operation.currency}; pending until resolved",
        amount_minor=acted, currency=currency)


def settle(payment: PaymentRecord, earlier: list[OperationRecord], operation: OperationRecord,
           response: ChannelResponse, idempotency: IdempotencyRecord | None, now: int,
           new_operation_id: Callable[[], str] | None = None) -> Settlement:
    """The Settlement recording the channel's answer: its Change (with postings and the finished
    idempotency record, when there is one) and the response bytes a caller gets, now and on every retry
    of its key. `new_operation_id` names a reversal, should one be needed."""
    response = confirmed(operation, response)
    acted_minor = operation.amount_minor
    if response.outcome is Outcome.APPROVED and response.amount_minor is not None:
        acted_minor = response.amount_minor
    operation = dataclasses.replace(
        operation, status=_OPERATION_STATUS[response.outcome], channel_reference=response.channel_reference,
        decline_code=response.decline_code, decline_message=response.message, amount_minor=acted_minor,
        updated_at_us=now)
    operations = [*earlier, operation]
    if (operation.kind is OperationKind.AUTHORIZATION and response.outcome is Outcome.APPROVED
            and acted_minor < payment.requested_minor and not payment.partial_authorization):
        if new_operation_id is None:
            raise ValueError("a partial approval the caller did not accept needs an id for its reversal")
        return _reversal(payment, operations, operation, new_operation_id(), now)
    changes, entries = _apply_outcome(payment, operation, response, now)
    settled = dataclasses.replace(payment, version=payment.version + 1, updated_at_us=now, **changes)
    body = RESPONSE_TYPES[operation.kind](
        payment=render.payment(settled, operations), operation=render.operation(operation),
    ).SerializeToString()
    done = None if idempotency is None else dataclasses.replace(idempotency, state=IdempotencyState.DONE,
                                                                 response=body)
    return Settlement(Change(payment=settled, expected_version=payment.version, operation=operation,
                             postings=entries, idempotency=done), body, operations)


def _reversal(payment: PaymentRecord, operations: list[OperationRecord], approval: OperationRecord,
              reversal_id: str, now: int) -> Settlement:
    """The approval recorded, and its reversal started: the payment stays PENDING on the reversal, the
    idempotency key stays in progress, and nothing is posted until the channel answers the reversal."""
    reversal = OperationRecord(reversal_id, payment.payment_id, OperationKind.REVERSAL, OperationStatus.PENDING,
                               approval.amount_minor, approval.currency, "", "", "", approval.idempotency_key,
                               now, now)
    reversing = dataclasses.replace(
        payment, version=payment.version + 1, updated_at_us=now, pending_operation_id=reversal_id,
        decline_code=PARTIAL_NOT_ACCEPTED, decline_message=_partial_approval(payment, approval, "is being reversed"))
    return Settlement(Change(payment=reversing, expected_version=payment.version, operation=approval,
                             next_operation=reversal), None, operations, reversal)


def _apply_outcome(payment: PaymentRecord, operation: OperationRecord, response: ChannelResponse, now: int):
    """How the channel's answer changes the payment (as field values), and the ledger postings that go
    with it."""
    kind, outcome = operation.kind, response.outcome
    if outcome is Outcome.UNKNOWN:
        return {}, ()
    if kind is OperationKind.AUTHORIZATION:
        if outcome is Outcome.APPROVED:
            return _authorized(payment, operation, now)
        status = PaymentStatus.DECLINED if outcome is Outcome.DECLINED else PaymentStatus.FAILED
        return ({"status": status, "pending_operation_id": None, "decline_code": response.decline_code,
                 "decline_message": response.message}, ())
    if kind is OperationKind.REVERSAL:
        if outcome is Outcome.APPROVED:  # nothing stays held: the payment was never authorized
            return ({"status": PaymentStatus.DECLINED, "pending_operation_id": None,
                     "decline_message": _partial_approval(payment, operation, "was reversed")}, ())
        changes, entries = _authorized(payment, operation, now)  # the channel kept the hold
        return {**changes, "decline_code": "", "decline_message": ""}, entries
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


def _authorized(payment: PaymentRecord, operation: OperationRecord, now: int):
    """AUTHORIZED for what the operation acted on, with the hold it placed."""
    return ({"status": PaymentStatus.AUTHORIZED, "amount_minor": operation.amount_minor, "pending_operation_id": None},
            postings.authorization(operation.operation_id, payment.payment_id, payment.merchant_id,
                                   payment.channel, payment.currency, operation.amount_minor, now))


def _partial_approval(payment: PaymentRecord, approval: OperationRecord, what_became_of_it: str) -> str:
    return (f"the channel approved {approval.amount_minor} of {payment.requested_minor} {payment.currency} "
            f"(minor units) and the request did not allow a partial authorization; the approval {what_became_of_it}")
