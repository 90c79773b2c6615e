"""Ledger verification: the postings balance, and they agree with what every payment says it is.

Per payment, in its currency (see postings.py for the accounts):
  channel hold        = amount_minor while AUTHORIZED, else 0
  channel receivable  = captured_minor - refunded_minor
  merchant hold       = -(channel hold)         merchant payable = -(channel receivable)
and no other account carries a balance for it.

The store gives no snapshot across calls, so a live store can commit between reading the balances
and reading the payments. Payments are therefore read before and after the balances, and only those
whose version did not move are judged; every Change that posts for a payment also bumps its version,
so for those the balances and the payment describe the same moment. The others are counted as in
flight; a later run judges them.
"""

from collections import defaultdict
from dataclasses import dataclass

from ..payments.lifecycle import PaymentStatus
from ..store.base import AccountBalance, LedgerImbalance, PaymentRecord, PaymentStore
from .postings import held_account, merchant_hold_account, merchant_payable_account, receivable_account


@dataclass(frozen=True, slots=True)
class BalanceMismatch:
    """An account of a payment whose balance is not what the payment's amounts require."""

    payment_id: str
    account: str
    currency: str
    expected_minor: int
    actual_minor: int


@dataclass(frozen=True, slots=True)
class LedgerReport:
    unbalanced_transactions: tuple[LedgerImbalance, ...]
    wrong_holds: tuple[BalanceMismatch, ...]
    wrong_receivables: tuple[BalanceMismatch, ...]
    # Merchant accounts that are not the exact negation of their channel account.
    broken_mirrors: tuple[BalanceMismatch, ...]
    # Non-zero balances on accounts that are none of the payment's four (another channel, merchant or
    # currency), or on payments the store does not know.
    stray_balances: tuple[AccountBalance, ...]
    transactions_checked: int
    postings_checked: int
    payments_checked: int
    payments_in_flight: int

    @property
    def ok(self) -> bool:
        return not (self.unbalanced_transactions or self.wrong_holds or self.wrong_receivables
                    or self.broken_mirrors or self.stray_balances)

    def summary(self) -> str:
        """For people: "ok: ..." on the first line, or "FAILED: ..." followed by one line per problem."""
        checked = (f"{self.transactions_checked} transactions, {self.postings_checked} postings, "
                   f"{self.payments_checked} payments checked")
        if self.payments_in_flight:
            checked += f" ({self.payments_in_flight} changed during the check, not judged)"
        if self.ok:
            return f"ok: {checked}"
        lines = [f"FAILED: {checked}"]
        lines += [f"  unbalanced transaction {problem.transaction_id}: {problem.currency} postings sum to "
                  f"{problem.sum_minor}" for problem in self.unbalanced_transactions]
        for title, problems in (("wrong hold", self.wrong_holds), ("wrong receivable", self.wrong_receivables),
                                ("broken mirror", self.broken_mirrors)):
            lines += [f"  {title} on payment {problem.payment_id}: {problem.account} is {problem.actual_minor} "
                      f"{problem.currency}, expected {problem.expected_minor}" for problem in problems]
        lines += [f"  stray balance on payment {balance.payment_id}: {balance.account} is {balance.balance_minor} "
                  f"{balance.currency}" for balance in self.stray_balances]
        return "\n".join(lines)


def expected_hold_minor(payment: PaymentRecord) -> int:
    """A hold exists only while a payment is authorized and not yet captured or voided."""
    return payment.amount_minor if payment.status is PaymentStatus.AUTHORIZED else 0


def expected_receivable_minor(payment: PaymentRecord) -> int:
    return payment.captured_minor - payment.refunded_minor


async def verify_ledger(store: PaymentStore) -> LedgerReport:
    """Checks every transaction and every payment that stays still while it runs; see `ok`."""
    payments_before = {payment.payment_id: payment for payment in await store.all_payments()}
    imbalances = await store.ledger_imbalances()
    totals = await store.ledger_totals()
    balances = await store.ledger_balances()
    payments_after = await store.all_payments()

    stable = [payment for payment in payments_after
              if (before := payments_before.get(payment.payment_id)) is not None
              and before.version == payment.version]
    known_ids = payments_before.keys() | {payment.payment_id for payment in payments_after}

    balances_by_payment: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    stray: list[AccountBalance] = []
    for balance in balances:
        if balance.payment_id in known_ids:
            balances_by_payment[balance.payment_id][(balance.account, balance.currency)] = balance.balance_minor
        elif balance.balance_minor != 0:
            stray.append(balance)

    wrong_holds: list[BalanceMismatch] = []
    wrong_receivables: list[BalanceMismatch] = []
    broken_mirrors: list[BalanceMismatch] = []
    for payment in stable:
        actual = balances_by_payment.get(payment.payment_id, {})
        hold, merchant_hold = held_account(payment.channel), merchant_hold_account(payment.merchant_id)
        receivable, payable = receivable_account(payment.channel), merchant_payable_account(payment.merchant_id)
        checks = (
            (wrong_holds, hold, expected_hold_minor(payment)),
            (wrong_receivables, receivable, expected_receivable_minor(payment)),
            (broken_mirrors, merchant_hold, -actual.get((hold, payment.currency), 0)),
            (broken_mirrors, payable, -actual.get((receivable, payment.currency), 0)),
        )
        for problems, account, expected in checks:
            if (problem := _compare(payment, actual, account, expected)) is not None:
                problems.append(problem)

        own_accounts = {(account, payment.currency) for account in (hold, merchant_hold, receivable, payable)}
        stray.extend(AccountBalance(payment.payment_id, account, currency, balance)
                     for (account, currency), balance in sorted(actual.items())
                     if (account, currency) not in own_accounts and balance != 0)

    return LedgerReport(
        unbalanced_transactions=tuple(imbalances),
        wrong_holds=tuple(wrong_holds),
        wrong_receivables=tuple(wrong_receivables),
        broken_mirrors=tuple(broken_mirrors),
        stray_balances=tuple(stray),
        transactions_checked=totals.transactions,
        postings_checked=totals.postings,
        payments_checked=len(stable),
        payments_in_flight=len(known_ids) - len(stable),
    )


def _compare(payment: PaymentRecord, actual: dict[tuple[str, str], int], account: str,
             expected: int) -> BalanceMismatch | None:
    balance = actual.get((account, payment.currency), 0)
    if balance == expected:
        return None
    return BalanceMismatch(payment.payment_id, account, payment.currency, expected, balance)
