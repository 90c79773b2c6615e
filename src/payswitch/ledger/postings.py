"""Balanced postings for each state change, per merchant, channel and currency.

Accounts (positive = debit):
  channel:{c}:authorized   funds held at the channel for authorized, uncaptured payments
  merchant:{m}:authorized  the merchant's claim on those holds (mirror, credit side)
  channel:{c}:receivable   captured money the channel owes, less refunds
  merchant:{m}:payable     what the switch owes the merchant for it
So for every payment: the channel hold equals the authorized amount while AUTHORIZED and zero
otherwise, and the receivable equals captured minus refunded. `payswitch ledger verify` checks both.
"""

from ..store.base import Posting


def held_account(channel: str) -> str:
    return f"channel:{channel}:authorized"


def receivable_account(channel: str) -> str:
    return f"channel:{channel}:receivable"


def merchant_hold_account(merchant: str) -> str:
    return f"merchant:{merchant}:authorized"


def merchant_payable_account(merchant: str) -> str:
    return f"merchant:{merchant}:payable"


def _pair(transaction_id, payment_id, debit, credit, currency, amount, now_us) -> tuple[Posting, Posting]:
    return (Posting(transaction_id, payment_id, debit, currency, amount, now_us),
            Posting(transaction_id, payment_id, credit, currency, -amount, now_us))


def authorization(transaction_id, payment_id, merchant, channel, currency, amount, now_us):
    """The hold placed by an approved authorization."""
    return _pair(transaction_id, payment_id, held_account(channel), merchant_hold_account(merchant),
                 currency, amount, now_us)


def hold_release(transaction_id, payment_id, merchant, channel, currency, amount, now_us):
    """The whole hold released, by a void or by the capture that replaces it."""
    return _pair(transaction_id, payment_id, merchant_hold_account(merchant), held_account(channel),
                 currency, amount, now_us)


def capture(transaction_id, payment_id, merchant, channel, currency, authorized, captured, now_us):
    """Release the hold and book the captured amount as owed by the channel to the merchant."""
    return (*hold_release(transaction_id, payment_id, merchant, channel, currency, authorized, now_us),
            *_pair(transaction_id, payment_id, receivable_account(channel), merchant_payable_account(merchant),
                   currency, captured, now_us))


def refund(transaction_id, payment_id, merchant, channel, currency, amount, now_us):
    """Money going back to the cardholder: less owed by the channel, less owed to the merchant."""
    return _pair(transaction_id, payment_id, merchant_payable_account(merchant), receivable_account(channel),
                 currency, amount, now_us)
