"""Stored records as payswitch.v1 messages."""

from google.protobuf.timestamp_pb2 import Timestamp

from ..payments.money import CURRENCY_EXPONENTS
from ..store.base import OperationRecord, PaymentRecord
from ..v1 import types_pb2

_PAYMENT_STATUS_PREFIX = "PAYMENT_STATUS_"


def payment_status(status: str) -> int:
    """The contract's PaymentStatus number for a lifecycle status name ("AUTHORIZED")."""
    return types_pb2.PaymentStatus.Value(_PAYMENT_STATUS_PREFIX + status)


def payment_status_name(number: int) -> str:
    """The short name ("AUTHORIZED") people read for a PaymentStatus number."""
    return types_pb2.PaymentStatus.Name(number).removeprefix(_PAYMENT_STATUS_PREFIX)


def operation_kind(kind: str) -> int:
    return types_pb2.OperationKind.Value("OPERATION_KIND_" + kind)


def operation_status(status: str) -> int:
    return types_pb2.OperationStatus.Value("OPERATION_STATUS_" + status)


def money(amount_minor: int, currency: str) -> types_pb2.Money:
    return types_pb2.Money(amount_minor=amount_minor, currency=currency, exponent=CURRENCY_EXPONENTS[currency])


def timestamp(micros: int) -> Timestamp:
    seconds, remainder = divmod(micros, 1_000_000)
    return Timestamp(seconds=seconds, nanos=remainder * 1000)


def operation(record: OperationRecord) -> types_pb2.Operation:
    return types_pb2.Operation(
        operation_id=record.operation_id,
        kind=operation_kind(record.kind.value),
        status=operation_status(record.status.value),
        amount=money(record.amount_minor, record.currency),
        channel_reference=record.channel_reference,
        decline_code=record.decline_code,
        decline_message=record.decline_message,
        idempotency_key=record.idempotency_key,
        created_at=timestamp(record.created_at_us),
        updated_at=timestamp(record.updated_at_us),
    )


def payment(record: PaymentRecord, operations: list[OperationRecord]) -> types_pb2.Payment:
    method = record.method
    if method.kind == "card":
        summary = types_pb2.PaymentMethodSummary(card=types_pb2.CardSummary(
            bin=method.card_bin, last4=method.card_last4, exp_month=method.exp_month, exp_year=method.exp_year,
            scheme=method.scheme, token=method.card_token))
    else:
        summary = types_pb2.PaymentMethodSummary(wallet=types_pb2.WalletSummary(provider=method.wallet_provider))
    return types_pb2.Payment(
        payment_id=record.payment_id,
        merchant_id=record.merchant_id,
        merchant_reference=record.merchant_reference,
        status=payment_status(record.status.value),
        amount=money(record.amount_minor, record.currency),
        captured_minor=record.captured_minor,
        refunded_minor=record.refunded_minor,
        channel=record.channel,
        method=summary,
        decline_code=record.decline_code,
        decline_message=record.decline_message,
        created_at=timestamp(record.created_at_us),
        updated_at=timestamp(record.updated_at_us),
        operations=[operation(op) for op in operations],
        routing_version=record.routing_version,
        routing_rule=record.routing_rule,
        risk_version=record.risk_version,
        risk_rule=record.risk_rule,
        requested_minor=record.requested_minor,
    )
