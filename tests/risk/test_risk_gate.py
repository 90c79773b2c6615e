"""The risk gate against a real SQLite file: which stored payments rebuild the windows, and a reload that
reads the store while the engine in force keeps judging."""

import asyncio
import dataclasses
import hashlib
import hmac

from payswitch.payments.cards import Sensitive, WalletDetails
from payswitch.payments.commands import AuthorizeCommand
from payswitch.payments.lifecycle import OperationKind, OperationStatus, PaymentStatus
from payswitch.payments.money import Money
from payswitch.processing.risk_gate import RiskGate
from payswitch.risk.config import parse_risk
from payswitch.risk.engine import RiskEngine
from payswitch.routing.router import Router
from payswitch.store.base import Change, MethodSummary, OperationRecord, PaymentRecord, RiskAdmission
from payswitch.store.sqlite import SqliteStore

S = 1_000_000
NOW = 1_900_000_000 * S
KEY = b"\x07" * 32


def stored_payment(payment_id: str, created_at_us: int, **fields) -> PaymentRecord:
    values = dict(
        payment_id=payment_id, merchant_id="m_alpha", merchant_reference=f"ref-{payment_id}",
        status=PaymentStatus.AUTHORIZED, currency="EUR", amount_minor=1_000, captured_minor=0, refunded_minor=0,
        channel="sim", method=MethodSummary(kind="wallet", wallet_provider="googlepay"), authorization_id=f"o-{payment_id}",
        decline_code="", decline_message="", pending_operation_id=None, version=1, created_at_us=created_at_us,
        updated_at_us=created_at_us, requested_minor=1_000, risk_version="r1", risk_card_key=KEY)
    values.update(fields)
    return PaymentRecord(**values)


def change(payment: PaymentRecord) -> Change:
    return Change(payment=payment, operation=OperationRecord(
        f"o-{payment.payment_id}", payment.payment_id, OperationKind.AUTHORIZATION, OperationStatus.SUCCEEDED,
        payment.amount_minor, payment.currency, "ref", "", "", f"key-{payment.payment_id}", payment.created_at_us,
        payment.created_at_us))


async def with_store(path, scenario, store_class=SqliteStore):
    store = store_class(str(path))
    await store.open()
    try:
        return await scenario(store)
    finally:
        await store.close()


def test_the_store_returns_every_authorization_that_passed_risk_since_the_bound_oldest_first(tmp_path):
    payments = [
        stored_payment("before", NOW - 100 * S),                                     # too old
        stored_payment("channel-declined", NOW - 3 * S, status=PaymentStatus.DECLINED, decline_code="do_not_honor"),
        stored_payment("risk-declined", NOW - 3 * S, status=PaymentStatus.DECLINED, risk_rule="card-burst"),
        stored_payment("no-risk-file", NOW - 3 * S, risk_version=""),
        stored_payment("partial", NOW - 2 * S, amount_minor=400, requested_minor=1_000),
        stored_payment("pending", NOW - S, status=PaymentStatus.PENDING, pending_operation_id="o-pending"),
        stored_payment("failed", NOW - S, status=PaymentStatus.FAILED, risk_card_key=b""),
    ]

    async def scenario(store):
        for payment in payments:
            await store.apply(change(payment))
        return await store.risk_admissions(NOW - 50 * S)

    assert asyncio.run(with_store(tmp_path / "s.db", scenario)) == [
        RiskAdmission("channel-declined", "m_alpha", "EUR", 1_000, KEY, NOW - 3 * S),
        RiskAdmission("partial", "m_alpha", "EUR", 1_000, KEY, NOW - 2 * S),  # what risk counted: the request
        RiskAdmission("failed", "m_alpha", "EUR", 1_000, b"", NOW - S),
        RiskAdmission("pending", "m_alpha", "EUR", 1_000, KEY, NOW - S)]


class ReadHeldStore(SqliteStore):
    """A SQLite store whose risk_admissions waits for the test to let it read."""

    def __init__(self, path):
        super().__init__(path)
        self.reading, self.answer = asyncio.Event(), asyncio.Event()

    async def risk_admissions(self, after_us):
        self.reading.set()
        await self.answer.wait()
        return await super().risk_admissions(after_us)


def wallet_payment(token: str) -> AuthorizeCommand:
    return AuthorizeCommand("m_alpha", f"key-{token}", f"ref-{token}", Money(1_000, "EUR"), None,
                            WalletDetails("googlepay", Sensitive(token)), "")


def test_a_reload_counts_what_the_engine_in_force_let_through_while_the_store_was_read(tmp_path):
    base = 'version = "r1"\n'
    stricter = base.replace("r1", "r2") + '[[velocity]]\nname = "wallet-once"\nper = "card"\nwindow_seconds = 60\nmax_count = 1\n'
    fingerprint = lambda text: hmac.new(b"index-key", text.encode(), hashlib.sha256).digest()  # noqa: E731
    gate = RiskGate(RiskEngine(parse_risk(base)), Router(None, {}), fingerprint)

    def judge(token: str, payment_id: str, at_us: int) -> tuple[str, bytes]:
        [(decision, payment)] = gate.judge_many([wallet_payment(token)], [stored_payment(payment_id, at_us)])
        return decision.reason_code, payment.risk_card_key

    async def scenario(store):
        earlier = judge("tok_stored", "p-stored", NOW - 2 * S)
        await store.apply(change(stored_payment("p-stored", NOW - 2 * S, risk_card_key=earlier[1])))
        swapping = asyncio.ensure_future(gate.swap(RiskEngine(parse_risk(stricter)), store, NOW))
        await store.reading.wait()
        # Judged by r1 while r2 is about to read: one is committed in time for the read, one is not.
        during = [judge(token, f"p-{token}", NOW - S) for token in ("tok_committed", "tok_in_flight")]
        await store.apply(change(stored_payment("p-tok_committed", NOW - S, risk_card_key=during[0][1])))
        store.answer.set()
        restored = await swapping
        return earlier, during, restored, [judge(token, f"p-{token}-again", NOW)
                                           for token in ("tok_stored", "tok_committed", "tok_in_flight", "tok_new")]

    earlier, during, restored, after = asyncio.run(with_store(tmp_path / "s.db", scenario, ReadHeldStore))
    assert earlier == ("", fingerprint("wallet:googlepay:tok_stored"))  # the vault's key is kept
    assert [code for code, _ in during] == ["", ""]
    assert restored == 3  # each once
    assert [code for code, _ in after] == ["risk_velocity", "risk_velocity", "risk_velocity", ""]
    assert gate.engine.version == "r2"


def test_without_a_vault_card_keys_are_not_kept_and_merchant_state_still_rebuilds(tmp_path):
    rules = 'version = "r1"\n[[velocity]]\nname = "merchant-two"\nper = "merchant"\nwindow_seconds = 60\nmax_count = 2\n'

    async def scenario(store):
        first = RiskGate(RiskEngine(parse_risk(rules)), Router(None, {}), None)  # keys of its own process
        [(decision, payment)] = first.judge_many([wallet_payment("tok_a")], [stored_payment("p-1", NOW - S)])
        await store.apply(change(payment))
        restarted = RiskGate(RiskEngine(parse_risk(rules)), Router(None, {}), None)
        read = await restarted.restore(store, NOW)
        answers = [restarted.judge_many([wallet_payment(token)], [stored_payment(f"p-{token}", NOW)])[0][0].reason_code
                   for token in ("tok_b", "tok_c")]
        return decision.allowed, payment.risk_card_key, read, answers

    assert asyncio.run(with_store(tmp_path / "s.db", scenario)) == (True, b"", 1, ["", "risk_velocity"])


def test_restoring_reads_nothing_for_rules_that_keep_no_state(tmp_path):
    gate = RiskGate(RiskEngine(parse_risk('version = "r1"\n[blocklist]\nbins = ["400000"]\n')), Router(None, {}), None)

    async def scenario(store):
        await store.close()  # a read would now raise StoreClosed
        return await gate.restore(store, NOW)

    assert asyncio.run(with_store(tmp_path / "s.db", scenario)) == 0


def test_a_failed_read_at_a_reload_still_swaps_with_what_carried(tmp_path, caplog):
    old = 'version = "r1"\n[[velocity]]\nname = "once"\nper = "card"\nwindow_seconds = 60\nmax_count = 1\n'
    new = old.replace("r1", "r2") + '[duplicates]\nwindow_seconds = 60\n'
    gate = RiskGate(RiskEngine(parse_risk(old)), Router(None, {}), None)
    [(decision, _)] = gate.judge_many([wallet_payment("tok_a")], [stored_payment("p-1", NOW - S)])

    async def scenario(store):
        await store.close()
        return await gate.swap(RiskEngine(parse_risk(new)), store, NOW)

    assert decision.allowed and asyncio.run(with_store(tmp_path / "s.db", scenario)) == 0
    assert "could not be read" in caplog.text
    [(again, _)] = gate.judge_many([wallet_payment("tok_a")], [stored_payment("p-2", NOW)])
    assert (gate.engine.version, again.reason_code) == ("r2", "risk_velocity")  # "once" carried
