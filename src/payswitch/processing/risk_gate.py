"""Risk before money moves: an authorization's facts for the risk rules, and the rules in force.

The card key is the vault's fingerprint of the number (HMAC-SHA256 under the vault's index key), so a
card is the same key whether it came as a number or a token, and no hash of a bare card number is ever
kept in memory where a dump could brute-force it. A switch without a vault keys cards under a random
key of its own process. The issuing country comes from the routing file's BIN table.
"""

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence

from ..payments.commands import AuthorizeCommand
from ..risk.engine import RiskDecision, RiskEngine
from ..routing.router import Router


class RiskGate:
    def __init__(self, engine: RiskEngine | None, router: Router, fingerprint: Callable[[str], bytes] | None):
        process_key = secrets.token_bytes(32)
        self._engine = engine
        self._router = router
        self._fingerprint = fingerprint or (
            lambda text: hmac.new(process_key, text.encode("utf-8"), hashlib.sha256).digest())

    @property
    def engine(self) -> RiskEngine | None:
        return self._engine

    def swap(self, engine: RiskEngine) -> None:
        """Takes over the old engine's windows, then replaces it, with no await between (event loop only)."""
        if self._engine is not None:
            engine.carry_state_from(self._engine)
        self._engine = engine

    def judge_many(self, commands: Sequence[AuthorizeCommand]) -> list[RiskDecision] | None:
        """One decision per command (opened card or wallet), in order; None without risk rules."""
        if self._engine is None:
            return None
        return self._engine.evaluate_many([self._facts(command) for command in commands])

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
