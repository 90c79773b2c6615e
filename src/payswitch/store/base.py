"""The store interface the payment service writes through, and the records it stores.

A Change is one payment's state transition with everything that must be durable with it (the
operation, the ledger postings, the idempotency record). A backend commits many Changes in one
transaction (group commit) but each Change succeeds or fails on its own.
"""

import abc
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..payments.lifecycle import OperationKind, OperationStatus, PaymentStatus


@dataclass(frozen=True, slots=True)
class MethodSummary:
    """What is kept of a payment method: never the full card number nor the CVV."""

    kind: str  # "card" or "wallet"
    card_bin: str = ""
    card_last4: str = ""
    exp_month: int = 0
    exp_year: int = 0
    scheme: str = ""
    wallet_provider: str = ""
    card_token: str = ""  # the vault token the payment was made with, if any


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    payment_id: str
    merchant_id: str
    merchant_reference: str
    status: PaymentStatus
    currency: str
    # What the channel authorized (captures are bounded by it); until it answers, and for a payment
    # never authorized, what was asked. Differs from requested_minor only after a partial approval.
    amount_minor: int
    captured_minor: int
    refunded_minor: int
    channel: str
    method: MethodSummary
    authorization_id: str
    decline_code: str
    decline_message: str
    # The operation whose channel outcome is not known yet; blocks further operations.
    pending_operation_id: str | None
    # Incremented by every update; a Change names the version it was computed from.
    version: int
    created_at_us: int
    updated_at_us: int
    # What the Authorize asked for.
    requested_minor: int
    # The routing table version and rule that chose `channel`, kept so a payment can be explained later.
    routing_version: str = ""
    routing_rule: str = ""
    # The risk file's version that judged the authorization, and the rule that declined it (or "").
    risk_version: str = ""
    risk_rule: str = ""
    # The caller accepts an authorization for less than requested (AuthorizeRequest's flag).
    partial_authorization: bool = False
    # The card key risk judged the payment by (RiskGate), b"" when it does not outlive the process.
    risk_card_key: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class OperationRecord:
    operation_id: str
    payment_id: str
    kind: OperationKind
    status: OperationStatus
    amount_minor: int
    currency: str
    channel_reference: str
    decline_code: str
    decline_message: str
    idempotency_key: str
    created_at_us: int
    updated_at_us: int


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a double-entry transaction: positive debits, negative credits."""

    transaction_id: str
    payment_id: str
    account: str
    currency: str
    amount_minor: int
    created_at_us: int


class IdempotencyState(enum.Enum):
    IN_PROGRESS = "in_progress"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    merchant_id: str
    key: str
    method: str
    fingerprint: bytes
    state: IdempotencyState
    # The serialized response first returned, replayed byte for byte; None while in progress.
    response: bytes | None
    payment_id: str
    created_at_us: int


@dataclass(frozen=True, slots=True)
class VaultEntry:
    """A card number sealed in the vault (see store/migrations/004_card_vault.sql)."""

    entry_id: str  # a token, or the id of the payment that brought the number
    merchant_id: str
    fingerprint: bytes
    key_id: str
    sealed_number: bytes = field(repr=False)
    card_bin: str
    card_last4: str
    exp_month: int
    exp_year: int
    scheme: str
    created_at_us: int


@dataclass(frozen=True, slots=True)
class VaultKeyRecord:
    key_id: str
    purpose: str  # "data" or "index"
    status: str  # "primary" or "retired" (data keys); "primary" (the index key)
    sealed_key: bytes = field(repr=False)
    created_at_us: int


@dataclass(frozen=True, slots=True)
class Change:
    """One atomic state transition.

    payment: inserted when expected_version is None, else updated only if the stored version equals
    expected_version (StaleWrite otherwise); the stored version becomes payment.version.
    operation: inserted or replaced; so is next_operation, an operation the transition starts (the
    REVERSAL of a partial approval the caller did not accept). postings: appended. idempotency: IN_PROGRESS is inserted
    (IdempotencyConflict if the merchant+key exists), DONE replaces the existing row. vault_entry:
    inserted (a second token for the same merchant and card is refused). released_key: the (merchant,
    key) whose idempotency record is deleted, for a request refused before its channel was called, so
    that the key is free again.
    """

    payment: PaymentRecord | None = None
    expected_version: int | None = None
    operation: OperationRecord | None = None
    next_operation: OperationRecord | None = None
    postings: tuple[Posting, ...] = ()
    idempotency: IdempotencyRecord | None = None
    vault_entry: VaultEntry | None = None
    released_key: tuple[str, str] | None = None


class StoreError(Exception):
    """Base of store failures."""


class StaleWrite(StoreError):
    """The payment changed since the Change was computed (another process acted on it)."""


class IdempotencyConflict(StoreError):
    """The merchant + idempotency key already has a record."""


class StoreClosed(StoreError):
    """The store was closed; nothing was written."""


@dataclass(frozen=True, slots=True)
class LedgerImbalance:
    transaction_id: str
    currency: str
    sum_minor: int


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    """How much the ledger holds, so a verification can say how much it checked."""

    transactions: int
    postings: int


@dataclass(frozen=True, slots=True)
class RiskAdmission:
    """An authorization that passed risk, as the risk rules counted it: what it asked for, when."""

    payment_id: str
    merchant_id: str
    currency: str
    amount_minor: int       # the amount requested, whatever the channel then approved
    card_key: bytes         # b"" when not kept
    created_at_us: int      # the instant risk judged it at


@dataclass(frozen=True, slots=True)
class AccountBalance:
    payment_id: str
    account: str
    currency: str
    balance_minor: int


class PaymentStore(abc.ABC):
    """What the service needs of durable storage. Every method is safe to call from the event loop."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Creates or migrates the schema and starts the writer."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Commits what was queued, then stops; later calls raise StoreClosed."""

    @abc.abstractmethod
    async def apply(self, change: Change) -> None:
        """Commits one Change durably before returning; raises StaleWrite or IdempotencyConflict."""

    @abc.abstractmethod
    async def apply_many(self, changes: Sequence[Change]) -> list[StoreError | None]:
        """Commits several Changes in one transaction; each gets its own result (None when applied)."""

    @abc.abstractmethod
    async def get_payment(self, merchant_id: str, payment_id: str) -> PaymentRecord | None:
        """The merchant's payment, or None (also when it belongs to another merchant)."""

    @abc.abstractmethod
    async def get_operations(self, payment_id: str) -> list[OperationRecord]:
        """A payment's operations, oldest first."""

    @abc.abstractmethod
    async def get_idempotency(self, merchant_id: str, key: str) -> IdempotencyRecord | None: ...

    @abc.abstractmethod
    async def get_idempotency_many(self, merchant_id: str, keys: Sequence[str]) -> dict[str, IdempotencyRecord]:
        """The records that exist among `keys`, by key: one round trip for a whole batch."""

    @abc.abstractmethod
    async def list_payments(self, merchant_id: str, created_from_us: int | None, created_to_us: int | None,
                            limit: int, before: tuple[int, str] | None) -> list[PaymentRecord]:
        """Newest first: created_from_us <= created_at_us < created_to_us, and strictly before the
        (created_at_us, payment_id) cursor when one is given."""

    @abc.abstractmethod
    async def pending_operations(self, updated_before_us: int, limit: int) -> list[tuple[PaymentRecord, OperationRecord]]:
        """Payments whose pending operation was last written before the bound, with that operation,
        oldest first: the work list of the resolver that asks channels what happened."""

    @abc.abstractmethod
    async def get_vault_entries(self, entry_ids: Sequence[str]) -> dict[str, VaultEntry]:
        """The vault entries that exist among `entry_ids`, by id."""

    @abc.abstractmethod
    async def find_vault_token(self, merchant_id: str, fingerprint: bytes) -> VaultEntry | None:
        """The merchant's token for the card with this fingerprint, if it has one."""

    @abc.abstractmethod
    async def update_vault_expiry(self, entry_id: str, exp_month: int, exp_year: int) -> None:
        """A reissued card keeps its number and token but gets a new expiry."""

    @abc.abstractmethod
    async def vault_keys(self) -> list[VaultKeyRecord]: ...

    @abc.abstractmethod
    async def add_vault_keys(self, records: Sequence[VaultKeyRecord], retire_data_keys: bool) -> None:
        """Inserts keys; with retire_data_keys, every data key already stored becomes retired first
        (one transaction, so there is always exactly one primary data key)."""

    @abc.abstractmethod
    async def vault_entries_sealed_with(self, key_ids: Sequence[str], limit: int) -> list[VaultEntry]:
        """Entries still sealed under any of `key_ids` (the rotation's work list)."""

    @abc.abstractmethod
    async def reseal_vault_entries(self, resealed: Sequence[tuple[VaultEntry, str, bytes]]) -> None:
        """Replaces each entry's (key id, sealed number) in one transaction, only where the entry is
        still sealed as read; (entry, new key id, new blob)."""

    @abc.abstractmethod
    async def delete_unused_vault_keys(self, key_ids: Sequence[str]) -> list[str]:
        """Deletes those retired data keys that no entry uses any more; returns their ids."""

    @abc.abstractmethod
    async def risk_admissions(self, after_us: int) -> list[RiskAdmission]:
        """The authorizations that passed risk (declined by their channel or not) created after the
        bound, oldest first: what rebuilds the risk rules' windows at start."""

    @abc.abstractmethod
    async def purge_idempotency(self, created_before_us: int) -> int:
        """Deletes DONE idempotency records older than the bound; returns how many."""

    @abc.abstractmethod
    async def ledger_imbalances(self) -> list[LedgerImbalance]:
        """Every (transaction, currency) whose postings do not sum to zero."""

    @abc.abstractmethod
    async def ledger_balances(self) -> list[AccountBalance]:
        """The balance of every (payment, account, currency) with postings."""

    @abc.abstractmethod
    async def ledger_totals(self) -> LedgerTotals:
        """The number of distinct transactions and of postings."""

    @abc.abstractmethod
    async def all_payments(self) -> list[PaymentRecord]:
        """Every payment (for ledger verification and reports)."""
