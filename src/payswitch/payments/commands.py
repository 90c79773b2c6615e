"""Validated requests, as the payment service receives them from the edge.

Each command knows its idempotency fingerprint: a SHA-256 over the fields that define the request.
Card numbers and wallet tokens enter it only as their first six and last four characters and a CVV
not at all, so the stored fingerprint cannot be brute-forced back into card data. A vault card token
enters whole: it is a random reference, not card data, and its ends alone would not tell two cards apart.
"""

import hashlib
from dataclasses import dataclass

from .cards import CardDetails, Sensitive, WalletDetails
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
class TokenReference:
    """A card held in the vault, named by the token Tokenize returned, and the CVV for this one
    authorization (the vault never stores a CVV; empty when the caller sent none)."""

    token: str
    cvv: Sensitive


@dataclass(frozen=True, slots=True)
class AuthorizeCommand:
    """The edge sets exactly one of `card`, `wallet` and `card_token`. The service may then fill `card`
    from the vault for a token payment; the fingerprint names the token either way. `card_token` comes
    last, with a default, so that a command with a card or wallet may still be written positionally."""

    merchant_id: str
    idempotency_key: str
    merchant_reference: str
    amount: Money
    card: CardDetails | None
    wallet: WalletDetails | None
    description: str
    card_token: TokenReference | None = None
    allow_partial_authorization: bool = False

    def fingerprint(self) -> bytes:
        if self.card_token is not None:
            method = ("card_token", self.card_token.token)
        elif self.card is not None:
            number = self.card.number.reveal()
            method = ("card", number[:6], number[-4:], len(number), self.card.exp_month, self.card.exp_year,
                      self.card.holder_name)
        else:
            token = self.wallet.token.reveal()
            method = ("wallet", self.wallet.provider, token[:6], token[-4:], len(token))
        # The flag enters only when set, so the keys stored before it existed keep their fingerprints.
        partial = ("allow_partial_authorization",) if self.allow_partial_authorization else ()
        return _fingerprint("Authorize", self.merchant_reference, *_money_parts(self.amount), *method,
                            self.description, *partial)


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


@dataclass(frozen=True, slots=True)
class TokenizeCommand:
    """A card to store in the vault for the merchant. Its `cvv` is always empty: the edge refuses one.

    No fingerprint: Tokenize takes no idempotency key, as the same number gets the same token."""

    merchant_id: str
    card: CardDetails
