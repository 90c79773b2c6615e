"""Validated requests, as the payment service receives them from the edge.

Each command knows its idempotency fingerprint: a SHA-256 over the fields that define the request.
Card numbers and wallet tokens enter it only as their first six and last four characters and the CVV
not at all, so the stored fingerprint cannot be brute-forced back into card data.
"""

import hashlib
from dataclasses import dataclass

from .cards import CardDetails, WalletDetails
from .money import Money


def _fingerprint(*parts) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        encoded = str(part).encode("utf-8")
        digest.update(len(encoded).to_bytes(4, "big"))
        digest.update(encoded)
    return digest.digest()


def _money_parts(money: Money | None) -> tuple:
    return ("-", "-") if money is None else (money.amount_minor, money.currency)


@dataclass(frozen=True, slots=True)
class AuthorizeCommand:
    merchant_id: str
    idempotency_key: str
    merchant_reference: str
    amount: Money
    card: CardDetails | None
    wallet: WalletDetails | None
    description: str

    def fingerprint(self) -> bytes:
        if self.card is not None:
            number = self.card.number.reveal()
            method = ("card", number[:6], number[-4:], len(number), self.card.exp_month, self.card.exp_year,
                      self.card.holder_name)
        else:
            token = self.wallet.token.reveal()
            method = ("wallet", self.wallet.provider, token[:6], token[-4:], len(token))
        return _fingerprint("Authorize", self.merchant_reference, *_money_parts(self.amount), *method,
                            self.description)


@dataclass(frozen=True, slots=True)
class CaptureCommand:
    merchant_id: str
    idempotency_key: str
    payment_id: str
    amount: Money | None

    def fingerprint(self) -> bytes:
        return _fingerprint("Capture", self.payment_id, *_money_parts(self.amount))


@dataclass(frozen=True, slots=True)
class VoidCommand:
    merchant_id: str
    idempotency_key: str
    payment_id: str

    def fingerprint(self) -> bytes:
        return _fingerprint("Void", self.payment_id)


@dataclass(frozen=True, slots=True)
class RefundCommand:
    merchant_id: str
    idempotency_key: str
    payment_id: str
    amount: Money | None
    reason: str

    def fingerprint(self) -> bytes:
        return _fingerprint("Refund", self.payment_id, *_money_parts(self.amount), self.reason)
