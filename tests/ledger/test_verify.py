"""verify_ledger against a real SQLite store holding payments in every state."""

import asyncio
import dataclasses

from payswitch.ledger import postings
from payswitch.ledger.verify import verify_ledger
from payswitch.payments.lifecycle import PaymentStatus
from payswitch.store.base import Change, LedgerImbalance, MethodSummary, PaymentRecord, Posting
from payswitch.store.sqlite import SqliteStore

MERCHANT = "m-1"
CHANNEL = "sim"


def payment(payment_id, status, amount=1_000, captured=0, refunded=0) -> PaymentRecord:
    return PaymentRecord(
        payment_id=payment_id, merchant_id=MERCHANT, merchant_reference=payment_id, status=status, currency="EUR",
        amount_minor=amount, captured_minor=captured, refunded_minor=refunded, channel=CHANNEL,
        method=MethodSummary(kind="card", card_bin="424242", card_last4="4242"), authorization_id="",
        decline_code="", decline_message="", pending_operation_id=None, version=1, created_at_us=1,
        updated_at_us=1, requested_minor=amount)


def authorized(payment_id, amount=1_000):
    return postings.authorization(f"{payment_id}-auth", payment_id, MERCHANT, CHANNEL, "EUR", amount, 1)


def captured(payment_id, authorized_amount, captured_amount):
    return postings.capture(f"{payment_id}-cap", payment_id, MERCHANT, CHANNEL, "EUR", authorized_amount,
                            captured_amount, 2)


def refunded(payment_id, amount, number=1):
    return postings.refund(f"{payment_id}-ref{number}", payment_id, MERCHANT, CHANNEL, "EUR", amount, 3)


def consistent_book() -> list[Change]:
    """One payment in each state, each with exactly the postings the service would have written."""
    return [
        Change(payment=payment("authorized", PaymentStatus.AUTHORIZED), postings=authorized("authorized")),
        Change(payment=payment("captured", PaymentStatus.CAPTURED, captured=800),
               postings=(*authorized("captured"), *captured("captured", 1_000, 800))),
        Change(payment=payment("part-refunded", PaymentStatus.PARTIALLY_REFUNDED, captured=1_000, refunded=300),
               postings=(*authorized("part-refunded"), *captured("part-refunded", 1_000, 1_000),
                         *refunded("part-refunded", 100, 1), *refunded("part-refunded", 200, 2))),
        Change(payment=payment("refunded", PaymentStatus.REFUNDED, captured=500, refunded=500),
               postings=(*authorized("refunded"), *captured("refunded", 1_000, 500), *refunded("refunded", 500))),
        Change(payment=payment("voided", PaymentStatus.VOIDED),
               postings=(*authorized("voided"),
                         *postings.hold_release("voided-void", "voided", MERCHANT, CHANNEL, "EUR", 1_000, 2))),
        Change(payment=payment("declined", PaymentStatus.DECLINED)),
    ]


def verify(tmp_path, changes, store_class=SqliteStore):
    async def main():
        store = store_class(str(tmp_path / "ledger.db"))
        await store.open()
        try:
            assert await store.apply_many(changes) == [None] * len(changes)
            return await verify_ledger(store)
        finally:
            await store.close()
    return asyncio.run(main())


def test_a_consistent_ledger_passes(tmp_path):
    report = verify(tmp_path, consistent_book())
    assert report.ok, report
    assert report.payments_checked == 6 and report.payments_in_flight == 0
    assert report.summary() == "ok: 12 transactions, 30 postings, 6 payments checked"
    # 5 authorizations, 3 captures, 3 refunds, 1 void; a capture writes four postings.
    assert report.transactions_checked == 12
    assert report.postings_checked == 5 * 2 + 3 * 4 + 3 * 2 + 1 * 2


def test_an_unbalanced_transaction_is_reported(tmp_path):
    lonely = Posting("lonely", "declined", postings.held_account(CHANNEL), "EUR", 5, 9)
    report = verify(tmp_path, [*consistent_book(), Change(postings=(lonely,))])
    assert not report.ok
    assert report.unbalanced_transactions == (LedgerImbalance("lonely", "EUR", 5),)


def test_a_hold_that_differs_from_the_authorized_amount_is_reported(tmp_path):
    book = consistent_book()
    book[0] = Change(payment=payment("authorized", PaymentStatus.AUTHORIZED), postings=authorized("authorized", 900))
    report = verify(tmp_path, book)
    assert not report.ok and not report.unbalanced_transactions and not report.broken_mirrors
    [problem] = report.wrong_holds
    assert (problem.payment_id, problem.account, problem.expected_minor, problem.actual_minor) == (
        "authorized", postings.held_account(CHANNEL), 1_000, 900)
    assert report.summary().splitlines() == [
        "FAILED: 12 transactions, 30 postings, 6 payments checked",
        "  wrong hold on payment authorized: channel:sim:authorized is 900 EUR, expected 1000"]


def test_a_hold_left_after_capture_is_reported(tmp_path):
    book = consistent_book()
    # The capture forgot to release the hold: the payment says CAPTURED, the ledger still holds funds.
    book[1] = Change(payment=payment("captured", PaymentStatus.CAPTURED, captured=800),
                     postings=(*authorized("captured"), *captured("captured", 1_000, 800)[2:]))
    report = verify(tmp_path, book)
    assert [(p.payment_id, p.expected_minor, p.actual_minor) for p in report.wrong_holds] == [("captured", 0, 1_000)]


def test_a_receivable_that_differs_from_captured_less_refunded_is_reported(tmp_path):
    book = consistent_book()
    book[2] = Change(payment=payment("part-refunded", PaymentStatus.PARTIALLY_REFUNDED, captured=1_000, refunded=300),
                     postings=(*authorized("part-refunded"), *captured("part-refunded", 1_000, 1_000),
                               *refunded("part-refunded", 100)))  # the second refund was never booked
    report = verify(tmp_path, book)
    assert not report.ok and not report.wrong_holds
    [problem] = report.wrong_receivables
    assert (problem.payment_id, problem.account, problem.expected_minor, problem.actual_minor) == (
        "part-refunded", postings.receivable_account(CHANNEL), 700, 900)


def test_a_merchant_account_that_does_not_mirror_its_channel_is_reported(tmp_path):
    # Balanced, but credited to another merchant's account: the hold is right, its mirror is not.
    misdirected = postings.authorization("x-auth", "authorized", "m-2", CHANNEL, "EUR", 1_000, 1)
    book = consistent_book()
    book[0] = Change(payment=payment("authorized", PaymentStatus.AUTHORIZED), postings=misdirected)
    report = verify(tmp_path, book)
    assert not report.wrong_holds and not report.unbalanced_transactions
    assert [(p.account, p.expected_minor, p.actual_minor) for p in report.broken_mirrors] == [
        (postings.merchant_hold_account(MERCHANT), -1_000, 0)]
    assert [(b.account, b.balance_minor) for b in report.stray_balances] == [
        (postings.merchant_hold_account("m-2"), -1_000)]


class CapturesWhileVerifying(SqliteStore):
    """Commits a capture between verify_ledger's reads, as a live switch would."""

    async def ledger_balances(self):
        capture = dataclasses.replace(payment("authorized", PaymentStatus.CAPTURED, captured=1_000), version=2)
        await self.apply(Change(payment=capture, expected_version=1, postings=captured("authorized", 1_000, 1_000)))
        return await super().ledger_balances()


def test_a_payment_that_changes_during_the_check_is_not_judged(tmp_path):
    report = verify(tmp_path, consistent_book(), store_class=CapturesWhileVerifying)
    assert report.ok, report
    assert report.payments_checked == 5 and report.payments_in_flight == 1
