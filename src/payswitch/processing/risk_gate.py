"""Risk before money moves: an authorization's facts for the risk rules, the rules in force, and their
state rebuilt from the store when they start.

The card key is the vault's fingerprint of the number (HMAC-SHA256 under the vault's index key), so a
card is the same key whether it came as a number or a token, and no hash of a bare card number is ever
kept in memory where a dump could brute-force it. A switch without a vault keys cards under a random
key of its own process. The issuing country comes from the routing file's BIN table.

Each judged payment records its card key when it outlives the process (a vault's), so a new engine,
at start or after a reload, counts again the payments of its windows and day: a restart or a reload
never widens a bound (docs/risk.md).
"""

import dataclasses
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Sequence

from ..payments.commands import AuthorizeCommand
from ..risk.engine import RiskDecision, RiskEngine
from ..routing.router import Router
from ..store.base import PaymentRecord, PaymentStore, RiskAdmission, StoreError

log = logging.getLogger(__name__)


class RiskGate:
    def __init__(self, engine: RiskEngine | None, router: Router, fingerprint: Callable[[str], bytes] | None):
        process_key = secrets.token_bytes(32)
        self._engine = engine
        self._router = router
        self._card_keys_outlive_process = fingerprint is not None
        self._fingerprint = fingerprint or (
            lambda text: hmac.new(process_key, text.encode("utf-8"), hashlib.sha256).digest())
        # While a replacement engine reads the store: what the engine in force lets through meanwhile.
        self._admitted_during_read: list[RiskAdmission] | None = None

    @property
    def engine(self) -> RiskEngine | None:
        return self._engine

    async def restore(self, store: PaymentStore, now_us: int) -> int:
        """At start, before any authorization: the engine counts again the payments of its windows and
        UTC day from the store. Returns how many it read."""
        if self._engine is None:
            return 0
        restored = self._restore(self._engine, await self._admissions(store, self._engine.restore_since_us(now_us)))
        log.info("risk %s: %d authorizations of its windows counted again from the store", self._engine.version,
                 restored)
        return restored

    async def swap(self, engine: RiskEngine, store: PaymentStore, now_us: int) -> int:
        """Replaces the engine: the new one takes over the old one's state, and what did not carry (a
        new or renamed rule, a longer window, a new daily limit) it restores from the store, including
        the payments the old engine let through during the read. Returns how many payments it restored.
        A failed read is logged and the swap goes on with what carried."""
        previous = self._engine
        since = engine.restore_since_us(now_us, previous)
        admissions: list[RiskAdmission] = []
        if since is not None:
            self._admitted_during_read = []
            try:
                admissions = await self._admissions(store, since)
            except StoreError as error:
                log.error("risk reload: the payments to restore could not be read (%s); rules whose history "
                          "did not carry start empty", error)
            finally:
                during, self._admitted_during_read = self._admitted_during_read, None
            read = {admission.payment_id for admission in admissions}
            admissions += [admission for admission in during if admission.payment_id not in read]
            admissions.sort(key=lambda admission: admission.created_at_us)
        # From here to the swap nothing awaits, so no payment is judged between carrying and swapping.
        if previous is not None:
            engine.carry_state_from(previous)
        restored = self._restore(engine, admissions)
        self._engine = engine
        return restored

    @staticmethod
    async def _admissions(store: PaymentStore, since_us: int | None) -> list[RiskAdmission]:
        return [] if since_us is None else await store.risk_admissions(since_us)

    @staticmethod
    def _restore(engine: RiskEngine, admissions: Sequence[RiskAdmission]) -> int:
        engine.restore((admission.merchant_id, admission.currency, admission.amount_minor, admission.card_key,
                        admission.created_at_us) for admission in admissions)
        return len(admissions)

    def judge_many(self, commands: Sequence[AuthorizeCommand],
                   payments: Sequence[PaymentRecord]) -> list[tuple[RiskDecision, PaymentRecord]] | None:
        """One decision per command (opened card or wallet) and its payment, judged at the payment's
        creation instant, with the decision and the card key recorded on the payment; None without risk
        rules."""
        if self._engine is None:
            return None
        facts = [self._facts(command) for command in commands]
        decisions = self._engine.evaluate_many(facts, [payment.created_at_us for payment in payments])
        judged = []
        for decision, (merchant, currency, amount, card_key, *_), payment in zip(decisions, facts, payments,
                                                                                  strict=True):
            judged.append((decision, dataclasses.replace(
                payment, risk_version=decision.version, risk_rule=decision.rule,
                risk_card_key=card_key if self._card_keys_outlive_process else b"")))
            if decision.allowed and self._admitted_during_read is not None:
                self._admitted_during_read.append(RiskAdmission(payment.payment_id, merchant, currency, amount,
                                                                card_key, payment.created_at_us))
        return judged

    def _facts(self, command: AuthorizeCommand) -> tuple:
        amount = command.amount
        if command.card is None:
            wallet = command.wallet
            key = self._fingerprint(f"wallet:{wallet.provider}:{wallet.token.reveal()}")
            return command.merchant_id, amount.currency, amount.amount_minor, key, None, None
        number = command.card.number.reveal()
        table = self._router.table
        country = None if table is None else table.card_facts(number).country
        return (command.merchant_id, amount.currency, amount.amount_minor, self._fingerprint(number),
                number[:11], country)
