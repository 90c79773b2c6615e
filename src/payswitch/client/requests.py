"""Request messages for PaymentSwitch operations, with an idempotency key filled in when none is given."""

import secrets

from ..v1 import switch_pb2, types_pb2


def new_idempotency_key() -> str:
    return "idem_" + secrets.token_hex(16)


def _money(amount_minor: int | None, currency: str | None) -> types_pb2.Money | None:
    return None if amount_minor is None else types_pb2.Money(amount_minor=amount_minor, currency=currency)


def authorize_request(amount_minor: int, currency: str, *, card: types_pb2.Card | None = None,
                      wallet: types_pb2.Wallet | None = None, card_token: switch_pb2.CardToken | None = None,
                      merchant_reference: str, description: str = "", idempotency_key: str | None = None,
                      allow_partial_authorization: bool = False) -> switch_pb2.AuthorizeRequest:
    """Exactly one of `card`, `wallet` or `card_token` (a token from Tokenize, with this payment's CVV).
    With `allow_partial_authorization` the payment may be authorized for less than asked."""
    return switch_pb2.AuthorizeRequest(
        idempotency_key=idempotency_key or new_idempotency_key(), merchant_reference=merchant_reference,
        amount=_money(amount_minor, currency), card=card, wallet=wallet, card_token=card_token,
        description=description, allow_partial_authorization=allow_partial_authorization)


def capture_request(payment_id: str, amount_minor: int | None = None, currency: str | None = None, *,
                    idempotency_key: str | None = None) -> switch_pb2.CaptureRequest:
    return switch_pb2.CaptureRequest(idempotency_key=idempotency_key or new_idempotency_key(),
                                     payment_id=payment_id, amount=_money(amount_minor, currency))


def void_request(payment_id: str, *, idempotency_key: str | None = None) -> switch_pb2.VoidRequest:
    return switch_pb2.VoidRequest(idempotency_key=idempotency_key or new_idempotency_key(), payment_id=payment_id)


def refund_request(payment_id: str, amount_minor: int | None = None, currency: str | None = None, *,
                   reason: str = "", idempotency_key: str | None = None) -> switch_pb2.RefundRequest:
    return switch_pb2.RefundRequest(idempotency_key=idempotency_key or new_idempotency_key(), payment_id=payment_id,
                                    amount=_money(amount_minor, currency), reason=reason)
