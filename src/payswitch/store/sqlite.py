"""The SQLite backend: one writer thread group-commits Changes, one reader thread serves queries.

Every Change must be on disk (WAL, synchronous=FULL) before its caller hears back, and one fsync costs
the same for one Change as for five hundred. So the writer commits whatever queued up while the last
transaction was syncing as one transaction, each Change inside its own savepoint so that a refused
Change (StaleWrite, IdempotencyConflict) does not take the others with it.

sqlite3 connections must not be shared between threads, and disk I/O must not block the event loop:
the writer connection lives only in the writer thread, the read connection only in a one-thread
executor. Both threads release the GIL inside SQLite, so the loop keeps serving meanwhile.
"""

import asyncio
import collections
import concurrent.futures
import enum
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..payments.lifecycle import OperationKind, OperationStatus, PaymentStatus
from . import sqlite_vault
from .base import (AccountBalance, Change, IdempotencyConflict, IdempotencyRecord, IdempotencyState,
                   LedgerImbalance, LedgerTotals, MethodSummary, OperationRecord, PaymentRecord, PaymentStore,
                   RiskAdmission, StaleWrite, StoreClosed, StoreError, VaultEntry, VaultKeyRecord)
from .migrations import migrate_sqlite

_SYNCHRONOUS_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """The writer connection's durability settings as SQLite reports them back, not as requested."""

    journal_mode: str
    synchronous: str
    foreign_keys: bool
    busy_timeout_ms: int


class SqliteStore(PaymentStore):
    """A PaymentStore in one SQLite file. Single use: open() once, close() once; reopen with a new one.

    Several processes may open the same file: SQLite's write lock serializes their transactions and
    the version guard on payments makes a Change computed from stale data fail instead of overwrite.
    """

    def __init__(self, path: str, *, max_batch: int = 512, busy_timeout_ms: int = 5000):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._path = path
        self._max_batch = max_batch
        self._busy_timeout_ms = busy_timeout_ms
        self._writer = _GroupCommitWriter(path, max_batch, busy_timeout_ms)
        self._reader = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                             thread_name_prefix="payswitch-sqlite-reader")
        self._read_connection: sqlite3.Connection | None = None
        self._lifecycle = _Lifecycle.NEW
        self.connection_settings: ConnectionSettings | None = None

    @property
    def commit_count(self) -> int:
        """Transactions committed by this store's writer; fewer than Changes when batching works."""
        return self._writer.commit_count

    async def open(self) -> None:
        if self._lifecycle is not _Lifecycle.NEW:
            raise StoreError("a SqliteStore opens only once; create a new one to reopen the file")
        self._lifecycle = _Lifecycle.OPENING
        loop = asyncio.get_running_loop()
        try:
            self.connection_settings = await asyncio.wrap_future(self._writer.start())
            self._read_connection = await loop.run_in_executor(
                self._reader, _connect_reader, self._path, self._busy_timeout_ms)
            if self._lifecycle is not _Lifecycle.OPENING:
                raise StoreClosed("the store was closed while it was opening")
        except BaseException:
            self._lifecycle = _Lifecycle.CLOSED
            await asyncio.wrap_future(self._writer.stop())
            if self._read_connection is not None:
                await loop.run_in_executor(self._reader, self._read_connection.close)
            self._reader.shutdown(wait=False)
            raise
        self._lifecycle = _Lifecycle.OPEN

    async def close(self) -> None:
        previous, self._lifecycle = self._lifecycle, _Lifecycle.CLOSED
        if previous is _Lifecycle.CLOSED:
            return
        await asyncio.wrap_future(self._writer.stop())
        if previous is _Lifecycle.OPENING:
            return  # open() notices and releases the read side itself
        if previous is _Lifecycle.OPEN:
            # Queued behind any read already running, so no read loses its connection midway.
            await asyncio.get_running_loop().run_in_executor(self._reader, self._read_connection.close)
        self._reader.shutdown(wait=False)

    async def apply(self, change: Change) -> None:
        [result] = await self.apply_many([change])
        if result is not None:
            raise result

    async def apply_many(self, changes: Sequence[Change]) -> list[StoreError | None]:
        self._require_open()
        changes = tuple(changes)
        if not changes:
            return []
        loop = asyncio.get_running_loop()
        jobs = [_ChangesJob(loop, changes[start:start + self._max_batch])
                for start in range(0, len(changes), self._max_batch)]
        self._writer.submit(jobs)
        results: list[StoreError | None] = []
        for job in jobs:
            results.extend(await job.future)
        return results

    async def risk_admissions(self, after_us: int) -> list[RiskAdmission]:
        return await self._read(_select_risk_admissions, after_us)

    async def purge_idempotency(self, created_before_us: int) -> int:
        self._require_open()
        job = _PurgeJob(asyncio.get_running_loop(), created_before_us)
        self._writer.submit([job])
        return await job.future

    async def get_payment(self, merchant_id: str, payment_id: str) -> PaymentRecord | None:
        return await self._read(_select_payment, merchant_id, payment_id)

    async def get_operations(self, payment_id: str) -> list[OperationRecord]:
        return await self._read(_select_operations, payment_id)

    async def get_idempotency(self, merchant_id: str, key: str) -> IdempotencyRecord | None:
        return await self._read(_select_idempotency, merchant_id, key)

    async def get_idempotency_many(self, merchant_id: str, keys: Sequence[str]) -> dict[str, IdempotencyRecord]:
        return await self._read(_select_idempotency_many, merchant_id, tuple(keys)) if keys else {}

    async def list_payments(self, merchant_id: str, created_from_us: int | None, created_to_us: int | None,
                            limit: int, before: tuple[int, str] | None) -> list[PaymentRecord]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        return await self._read(_select_payment_page, merchant_id, created_from_us, created_to_us, limit, before)

    async def pending_operations(self, updated_before_us: int,
                                 limit: int) -> list[tuple[PaymentRecord, OperationRecord]]:
        return await self._read(_select_pending_operations, updated_before_us, limit)

    async def get_vault_entries(self, entry_ids: Sequence[str]) -> dict[str, VaultEntry]:
        return await self._read(sqlite_vault.select_entries, tuple(entry_ids)) if entry_ids else {}

    async def find_vault_token(self, merchant_id: str, fingerprint: bytes) -> VaultEntry | None:
        return await self._read(sqlite_vault.select_token, merchant_id, fingerprint)

    async def update_vault_expiry(self, entry_id: str, exp_month: int, exp_year: int) -> None:
        await self._write(sqlite_vault.update_expiry, entry_id, exp_month, exp_year)

    async def vault_keys(self) -> list[VaultKeyRecord]:
        return await self._read(sqlite_vault.select_keys)

    async def vault_entries_sealed_with(self, key_ids: Sequence[str], limit: int) -> list[VaultEntry]:
        return await self._read(sqlite_vault.select_sealed_with, tuple(key_ids), limit)

    async def add_vault_keys(self, records: Sequence[VaultKeyRecord], retire_data_keys: bool) -> None:
        await self._write(sqlite_vault.insert_keys, tuple(records), retire_data_keys)

    async def reseal_vault_entries(self, resealed: Sequence[tuple[VaultEntry, str, bytes]]) -> None:
        await self._write(sqlite_vault.reseal, tuple(resealed))

    async def delete_unused_vault_keys(self, key_ids: Sequence[str]) -> list[str]:
        return await self._write(sqlite_vault.delete_unused_keys, tuple(key_ids))

    async def _write(self, statement: Callable[..., Any], *args: Any) -> Any:
        """Runs `statement(connection, *args)` on the writer as a transaction of its own."""
        self._require_open()
        job = _StatementJob(asyncio.get_running_loop(), statement, args)
        self._writer.submit([job])
        return await job.future

    async def ledger_imbalances(self) -> list[LedgerImbalance]:
        return await self._read(_select_imbalances)

    async def ledger_balances(self) -> list[AccountBalance]:
        return await self._read(_select_balances)

    async def ledger_totals(self) -> LedgerTotals:
        return await self._read(_select_totals)

    async def all_payments(self) -> list[PaymentRecord]:
        return await self._read(_select_all_payments)

    async def _read(self, query: Callable[..., Any], *args: Any) -> Any:
        self._require_open()
        return await asyncio.get_running_loop().run_in_executor(self._reader, query, self._read_connection, *args)

    def _require_open(self) -> None:
        if self._lifecycle is not _Lifecycle.OPEN:
            raise StoreClosed(f"the store is {self._lifecycle.value}")


class _Lifecycle(enum.Enum):
    NEW = "not open yet"
    OPENING = "still opening"
    OPEN = "open"
    CLOSED = "closed"


# --- the writer -----------------------------------------------------------------------------------

class _GroupCommitWriter:
    """Owns the only write connection and turns everything queued into one transaction at a time."""

    def __init__(self, path: str, max_batch: int, busy_timeout_ms: int):
        self._path = path
        self._max_batch = max_batch
        self._busy_timeout_ms = busy_timeout_ms
        self._jobs: collections.deque[_Job] = collections.deque()
        self._wakeup = threading.Condition()
        self._closing = False
        self._ready: concurrent.futures.Future[ConnectionSettings] = _uncancellable_future()
        self._stopped: concurrent.futures.Future[None] = _uncancellable_future()
        # Daemon: a process exiting without close() must not hang; its queued Changes were never
        # acknowledged, so dropping them breaks no promise.
        self._thread = threading.Thread(target=self._run, name="payswitch-sqlite-writer", daemon=True)
        self.commit_count = 0

    def start(self) -> concurrent.futures.Future[ConnectionSettings]:
        """Connects, migrates the schema and starts serving; the future fails if any of that does."""
        self._thread.start()
        return self._ready

    def submit(self, jobs: Sequence["_Job"]) -> None:
        """Queues the jobs together, so the Changes of one apply_many are not split by a close."""
        with self._wakeup:
            if self._closing:
                raise StoreClosed("the store is closed")
            self._jobs.extend(jobs)
            self._wakeup.notify()

    def stop(self) -> concurrent.futures.Future[None]:
        """Refuses new jobs, commits those already queued, then closes the connection."""
        with self._wakeup:
            self._closing = True
            self._wakeup.notify()
        if not self._thread.is_alive() and not self._stopped.done():
            self._stopped.set_result(None)  # never started
        return self._stopped

    def _run(self) -> None:
        try:
            connection, settings = _connect_writer(self._path, self._busy_timeout_ms)
        except BaseException as error:
            self._refuse_new_jobs()
            self._ready.set_exception(error if isinstance(error, StoreError)
                                      else _with_cause(StoreError(f"cannot open {self._path}: {error}"), error))
            self._stopped.set_result(None)
            return
        self._ready.set_result(settings)
        try:
            while batch := self._next_batch():
                self._commit(connection, batch)
        finally:
            # Empty unless the loop above died of a bug; nobody may be left waiting forever.
            for job in self._refuse_new_jobs():
                job.fail(StoreError("the store writer stopped unexpectedly; nothing was written"))
            connection.close()
            self._stopped.set_result(None)

    def _next_batch(self) -> list["_Job"]:
        """Waits for work, then takes all that fits in max_batch; empty once closing and drained."""
        with self._wakeup:
            while not self._jobs and not self._closing:
                self._wakeup.wait()
            batch: list[_Job] = []
            size = 0
            while self._jobs and (not batch or size + self._jobs[0].size <= self._max_batch):
                job = self._jobs.popleft()
                batch.append(job)
                size += job.size
            return batch

    def _commit(self, connection: sqlite3.Connection, batch: list["_Job"]) -> None:
        """One transaction for the batch; no caller hears back before COMMIT has returned."""
        try:
            connection.execute("BEGIN IMMEDIATE")
            results = _run_jobs(connection, batch)
            connection.execute("COMMIT")
        except Exception as error:
            if connection.in_transaction:
                try:
                    connection.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the next BEGIN fails and reports it; the callers here learn of `error`
            for job in batch:
                job.fail(_with_cause(StoreError(f"the transaction was not committed: {error}"), error))
            return
        self.commit_count += 1
        for job, result in zip(batch, results):
            job.succeed(result)

    def _refuse_new_jobs(self) -> list["_Job"]:
        with self._wakeup:
            self._closing = True
            left = list(self._jobs)
            self._jobs.clear()
            return left


class _Job:
    """Work for the writer and the caller's future, resolved on the caller's own event loop."""

    size = 1  # Changes it counts for against max_batch

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self.future: asyncio.Future = loop.create_future()

    def run(self, connection: sqlite3.Connection) -> Any:
        raise NotImplementedError

    def succeed(self, result: Any) -> None:
        self._deliver(lambda: self.future.set_result(result))

    def fail(self, error: StoreError) -> None:
        self._deliver(lambda: self.future.set_exception(error))

    def _deliver(self, settle: Callable[[], None]) -> None:
        def settle_unless_abandoned() -> None:
            if not self.future.done():  # a cancelled caller does not undo a committed write
                settle()
        try:
            self._loop.call_soon_threadsafe(settle_unless_abandoned)
        except RuntimeError:
            pass  # the caller's loop is closed: nobody is left to tell


class _ChangesJob(_Job):
    """Changes from one apply()/apply_many() call; its result is one entry per Change."""

    def __init__(self, loop: asyncio.AbstractEventLoop, changes: Sequence[Change]):
        super().__init__(loop)
        self.changes = changes
        self.size = len(changes)

    def run(self, connection: sqlite3.Connection) -> list[StoreError | None]:
        return [_apply_in_savepoint(connection, change) for change in self.changes]

    def fail(self, error: StoreError) -> None:
        # apply_many reports per Change, and none of these was written.
        self.succeed([error] * len(self.changes))


class _StatementJob(_Job):
    """Any other write, committed with the group in a savepoint of its own: its failure is its
    caller's alone and leaves the other jobs of the transaction alone."""

    def __init__(self, loop: asyncio.AbstractEventLoop, statement: Callable[..., Any], args: tuple):
        super().__init__(loop)
        self.statement = statement
        self.args = args

    def run(self, connection: sqlite3.Connection) -> Any:
        connection.execute("SAVEPOINT statement")
        try:
            result = self.statement(connection, *self.args)
        except Exception as error:
            connection.execute("ROLLBACK TO statement")
            connection.execute("RELEASE statement")
            return error if isinstance(error, StoreError) else _with_cause(StoreError(f"refused: {error}"), error)
        connection.execute("RELEASE statement")
        return result

    def succeed(self, result: Any) -> None:
        if isinstance(result, StoreError):
            super().fail(result)
        else:
            super().succeed(result)


class _PurgeJob(_Job):
    """A purge is a write, so it goes through the one write connection like any Change."""

    def __init__(self, loop: asyncio.AbstractEventLoop, created_before_us: int):
        super().__init__(loop)
        self.created_before_us = created_before_us

    def run(self, connection: sqlite3.Connection) -> int:
        return connection.execute("DELETE FROM idempotency WHERE state = ? AND created_at_us < ?",
                                  (IdempotencyState.DONE.value, self.created_before_us)).rowcount


def _run_jobs(connection: sqlite3.Connection, batch: list["_Job"]) -> list:
    """Each job's result. The Changes of all jobs in the transaction (concurrent single calls, each its
    own job) first try the fast path together; the jobs run one by one only if that refuses."""
    changes = [change for job in batch if isinstance(job, _ChangesJob) for change in job.changes]
    together = len(changes) > 1 and _apply_together(connection, changes)
    return [[None] * len(job.changes) if together and isinstance(job, _ChangesJob) else job.run(connection)
            for job in batch]


class _NotAllApplied(Exception):
    """A version guard matched fewer rows than there were updates."""


def _apply_together(connection: sqlite3.Connection, changes: Sequence[Change]) -> bool:
    """The fast path: every Change at once, one executemany per statement, which costs a fraction of
    a statement per Change. All or nothing: False (with nothing written) when any Change would be
    refused, and the caller then applies them one by one to learn which.

    Grouping by statement reorders writes across Changes, which is harmless only when no two Changes
    touch the same payment or idempotency key; otherwise this path is not taken.
    """
    if len(changes) < 2:
        return False
    payments = [change.payment for change in changes if change.payment is not None]
    records = [change.idempotency for change in changes if change.idempotency is not None]
    keys = [(r.merchant_id, r.key) for r in records] + [c.released_key for c in changes if c.released_key]
    if len({p.payment_id for p in payments}) != len(payments) or len(set(keys)) != len(keys):
        return False
    connection.execute("SAVEPOINT changes")
    try:
        connection.executemany(_INSERT_PAYMENT, [
            _payment_values(change.payment) for change in changes
            if change.payment is not None and change.expected_version is None])
        updates = [(*_payment_values(change.payment)[1:], change.payment.payment_id, change.expected_version)
                   for change in changes if change.payment is not None and change.expected_version is not None]
        if updates and connection.executemany(_UPDATE_PAYMENT, updates).rowcount != len(updates):
            raise _NotAllApplied()
        connection.executemany(sqlite_vault.INSERT_ENTRY, [
            sqlite_vault.entry_values(change.vault_entry) for change in changes if change.vault_entry is not None])
        connection.executemany(_UPSERT_OPERATION, [
            _operation_values(operation) for change in changes
            for operation in (change.operation, change.next_operation) if operation is not None])
        connection.executemany(_INSERT_POSTING, [
            (p.transaction_id, p.payment_id, p.account, p.currency, p.amount_minor, p.created_at_us)
            for change in changes for p in change.postings])
        connection.executemany(_INSERT_IDEMPOTENCY, [
            _idempotency_values(r) for r in records if r.state is IdempotencyState.IN_PROGRESS])
        connection.executemany(_UPSERT_IDEMPOTENCY, [
            _idempotency_values(r) for r in records if r.state is not IdempotencyState.IN_PROGRESS])
        connection.executemany(_DELETE_IDEMPOTENCY, [change.released_key for change in changes if change.released_key])
    except (sqlite3.IntegrityError, _NotAllApplied):
        connection.execute("ROLLBACK TO changes")
        connection.execute("RELEASE changes")
        return False
    connection.execute("RELEASE changes")
    return True


def _apply_in_savepoint(connection: sqlite3.Connection, change: Change) -> StoreError | None:
    """Applies one Change, or none of it: the error is returned so the batch goes on.

    Should the rollback to the savepoint itself fail, the transaction is unusable, and the exception
    escapes so that the whole batch fails rather than commits half a Change.
    """
    connection.execute("SAVEPOINT change")
    try:
        _write_change(connection, change)
    except Exception as error:
        connection.execute("ROLLBACK TO change")
        connection.execute("RELEASE change")
        if isinstance(error, StoreError):
            return error
        return _with_cause(StoreError(f"the change was refused: {error}"), error)
    connection.execute("RELEASE change")
    return None


def _write_change(connection: sqlite3.Connection, change: Change) -> None:
    if change.payment is not None:
        payment = change.payment
        if change.expected_version is None:
            try:
                connection.execute(_INSERT_PAYMENT, _payment_values(payment))
            except sqlite3.IntegrityError as error:
                if error.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY":
                    raise StaleWrite(f"payment {payment.payment_id} already exists") from None
                raise
        else:
            updated = connection.execute(
                _UPDATE_PAYMENT, (*_payment_values(payment)[1:], payment.payment_id, change.expected_version))
            if updated.rowcount == 0:
                raise StaleWrite(f"payment {payment.payment_id} is no longer at version {change.expected_version}")
    if change.vault_entry is not None:
        sqlite_vault.insert_entry(connection, change.vault_entry)
    for operation in (change.operation, change.next_operation):
        if operation is not None:
            connection.execute(_UPSERT_OPERATION, _operation_values(operation))
    if change.postings:
        connection.executemany(_INSERT_POSTING, [
            (p.transaction_id, p.payment_id, p.account, p.currency, p.amount_minor, p.created_at_us)
            for p in change.postings])
    if change.idempotency is not None:
        record = change.idempotency
        if record.state is IdempotencyState.IN_PROGRESS:
            try:
                connection.execute(_INSERT_IDEMPOTENCY, _idempotency_values(record))
            except sqlite3.IntegrityError as error:
                if error.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY":
                    raise IdempotencyConflict(f"idempotency key {record.key!r} is already in use") from None
                raise
        else:
            connection.execute(_UPSERT_IDEMPOTENCY, _idempotency_values(record))
    if change.released_key is not None:
        connection.execute(_DELETE_IDEMPOTENCY, change.released_key)


# --- connections ----------------------------------------------------------------------------------

def _connect_writer(path: str, busy_timeout_ms: int) -> tuple[sqlite3.Connection, ConnectionSettings]:
    """The write connection, configured for durability and with the schema migrated."""
    connection = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
    try:
        _switch_to_wal(connection, busy_timeout_ms)
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
        settings = _durability_settings(connection)
        # Refuse to run with less durability than apply() promises (a filesystem without WAL support).
        if settings.journal_mode != "wal" or settings.synchronous != "FULL" or not settings.foreign_keys:
            raise StoreError(f"{path} cannot be opened with WAL, synchronous=FULL and foreign keys: {settings}")
        migrate_sqlite(connection)
    except BaseException:
        connection.close()
        raise
    return connection, settings


def _switch_to_wal(connection: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Switches a new file to WAL (a lasting property of the file), waiting out other openers.

    Changing the journal mode answers SQLITE_BUSY at once, without the busy handler, while another
    connection is opening the same fresh file, as two server processes starting together do.
    """
    for _ in range(max(1, busy_timeout_ms // 10)):
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return  # the mode actually reached is checked by the caller
        except sqlite3.OperationalError as error:
            if error.sqlite_errorname != "SQLITE_BUSY":
                raise
        time.sleep(0.01)
    connection.execute("PRAGMA journal_mode = WAL")  # one last try, raising if still busy


def _connect_reader(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """The read connection: autocommit, so each query sees everything committed before it started."""
    connection = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
    connection.execute("PRAGMA query_only = ON")
    return connection


def _durability_settings(connection: sqlite3.Connection) -> ConnectionSettings:
    """What SQLite says it is doing about durability on this connection."""
    def pragma(name: str) -> Any:
        return connection.execute(f"PRAGMA {name}").fetchone()[0]
    synchronous = pragma("synchronous")
    return ConnectionSettings(journal_mode=pragma("journal_mode"),
                              synchronous=_SYNCHRONOUS_NAMES.get(synchronous, str(synchronous)),
                              foreign_keys=bool(pragma("foreign_keys")),
                              busy_timeout_ms=pragma("busy_timeout"))


def _uncancellable_future() -> concurrent.futures.Future:
    """A future only the writer thread settles. A caller cancelled while awaiting it (through
    asyncio.wrap_future) must not cancel it too: the thread would then fail to report and never stop."""
    future: concurrent.futures.Future = concurrent.futures.Future()
    future.set_running_or_notify_cancel()
    return future


def _with_cause(error: StoreError, cause: BaseException) -> StoreError:
    error.__cause__ = cause
    return error


# --- rows -----------------------------------------------------------------------------------------

_PAYMENT_COLUMNS = (
    "payment_id", "merchant_id", "merchant_reference", "status", "currency", "amount_minor",
    "captured_minor", "refunded_minor", "channel", "method_kind", "method_card_bin", "method_card_last4",
    "method_exp_month", "method_exp_year", "method_scheme", "method_wallet_provider", "authorization_id",
    "decline_code", "decline_message", "pending_operation_id", "version", "created_at_us", "updated_at_us",
    "routing_version", "routing_rule", "method_card_token", "risk_version", "risk_rule", "requested_minor",
    "partial_authorization", "risk_card_key",
)
_OPERATION_COLUMNS = (
    "operation_id", "payment_id", "kind", "status", "amount_minor", "currency", "channel_reference",
    "decline_code", "decline_message", "idempotency_key", "created_at_us", "updated_at_us",
)
_IDEMPOTENCY_COLUMNS = (
    "merchant_id", "key", "method", "fingerprint", "state", "response", "payment_id", "created_at_us",
)


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _upsert(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    """Insert or overwrite every column; unlike INSERT OR REPLACE it never deletes, and PostgreSQL
    speaks it too."""
    assignments = ", ".join(f"{column} = excluded.{column}" for column in columns if column not in key)
    return f"{_insert(table, columns)} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {assignments}"


_INSERT_PAYMENT = _insert("payments", _PAYMENT_COLUMNS)
_UPDATE_PAYMENT = (f"UPDATE payments SET {', '.join(f'{column} = ?' for column in _PAYMENT_COLUMNS[1:])} "
                   "WHERE payment_id = ? AND version = ?")
_SELECT_PAYMENTS = f"SELECT {', '.join(_PAYMENT_COLUMNS)} FROM payments"
_UPSERT_OPERATION = _upsert("operations", _OPERATION_COLUMNS, key=("operation_id",))
_INSERT_POSTING = _insert("postings", ("transaction_id", "payment_id", "account", "currency", "amount_minor",
                                       "created_at_us"))
_INSERT_IDEMPOTENCY = _insert("idempotency", _IDEMPOTENCY_COLUMNS)
_UPSERT_IDEMPOTENCY = _upsert("idempotency", _IDEMPOTENCY_COLUMNS, key=("merchant_id", "key"))
_DELETE_IDEMPOTENCY = "DELETE FROM idempotency WHERE merchant_id = ? AND key = ?"


def _payment_values(payment: PaymentRecord) -> tuple:
    method = payment.method
    return (payment.payment_id, payment.merchant_id, payment.merchant_reference, payment.status.value,
            payment.currency, payment.amount_minor, payment.captured_minor, payment.refunded_minor,
            payment.channel, method.kind, method.card_bin, method.card_last4, method.exp_month, method.exp_year,
            method.scheme, method.wallet_provider, payment.authorization_id, payment.decline_code,
            payment.decline_message, payment.pending_operation_id, payment.version, payment.created_at_us,
            payment.updated_at_us, payment.routing_version, payment.routing_rule, method.card_token,
            payment.risk_version, payment.risk_rule, payment.requested_minor, int(payment.partial_authorization),
            payment.risk_card_key)


def _payment_from_row(row: tuple) -> PaymentRecord:
    (payment_id, merchant_id, merchant_reference, status, currency, amount_minor, captured_minor, refunded_minor,
     channel, method_kind, card_bin, card_last4, exp_month, exp_year, scheme, wallet_provider, authorization_id,
     decline_code, decline_message, pending_operation_id, version, created_at_us, updated_at_us, routing_version,
     routing_rule, card_token, risk_version, risk_rule, requested_minor, partial_authorization, risk_card_key) = row
    return PaymentRecord(
        payment_id=payment_id, merchant_id=merchant_id, merchant_reference=merchant_reference,
        status=PaymentStatus(status), currency=currency, amount_minor=amount_minor,
        captured_minor=captured_minor, refunded_minor=refunded_minor, channel=channel,
        method=MethodSummary(kind=method_kind, card_bin=card_bin, card_last4=card_last4, exp_month=exp_month,
                             exp_year=exp_year, scheme=scheme, wallet_provider=wallet_provider,
                             card_token=card_token),
        authorization_id=authorization_id, decline_code=decline_code, decline_message=decline_message,
        pending_operation_id=pending_operation_id, version=version, created_at_us=created_at_us,
        updated_at_us=updated_at_us, routing_version=routing_version, routing_rule=routing_rule,
        risk_version=risk_version, risk_rule=risk_rule, requested_minor=requested_minor,
        partial_authorization=bool(partial_authorization), risk_card_key=risk_card_key)


def _operation_values(operation: OperationRecord) -> tuple:
    return (operation.operation_id, operation.payment_id, operation.kind.value, operation.status.value,
            operation.amount_minor, operation.currency, operation.channel_reference, operation.decline_code,
            operation.decline_message, operation.idempotency_key, operation.created_at_us,
            operation.updated_at_us)


def _operation_from_row(row: tuple) -> OperationRecord:
    (operation_id, payment_id, kind, status, amount_minor, currency, channel_reference, decline_code,
     decline_message, idempotency_key, created_at_us, updated_at_us) = row
    return OperationRecord(
        operation_id=operation_id, payment_id=payment_id, kind=OperationKind(kind), status=OperationStatus(status),
        amount_minor=amount_minor, currency=currency, channel_reference=channel_reference,
        decline_code=decline_code, decline_message=decline_message, idempotency_key=idempotency_key,
        created_at_us=created_at_us, updated_at_us=updated_at_us)


def _idempotency_values(record: IdempotencyRecord) -> tuple:
    return (record.merchant_id, record.key, record.method, record.fingerprint, record.state.value,
            record.response, record.payment_id, record.created_at_us)


# --- reads (each runs on the reader thread with the read connection) --------------------------------

def _select_payment(connection: sqlite3.Connection, merchant_id: str, payment_id: str) -> PaymentRecord | None:
    row = connection.execute(f"{_SELECT_PAYMENTS} WHERE payment_id = ? AND merchant_id = ?",
                             (payment_id, merchant_id)).fetchone()
    return None if row is None else _payment_from_row(row)


def _select_payment_page(connection: sqlite3.Connection, merchant_id: str, created_from_us: int | None,
                         created_to_us: int | None, limit: int,
                         before: tuple[int, str] | None) -> list[PaymentRecord]:
    # Only fixed condition strings are joined; every value is a bound parameter.
    conditions = ["merchant_id = ?"]
    parameters: list[Any] = [merchant_id]
    if created_from_us is not None:
        conditions.append("created_at_us >= ?")
        parameters.append(created_from_us)
    if created_to_us is not None:
        conditions.append("created_at_us < ?")
        parameters.append(created_to_us)
    if before is not None:
        conditions.append("(created_at_us, payment_id) < (?, ?)")
        parameters.extend(before)
    rows = connection.execute(
        f"{_SELECT_PAYMENTS} WHERE {' AND '.join(conditions)} "
        "ORDER BY created_at_us DESC, payment_id DESC LIMIT ?", (*parameters, limit))
    return [_payment_from_row(row) for row in rows]


def _select_risk_admissions(connection: sqlite3.Connection, after_us: int) -> list[RiskAdmission]:
    # The conditions repeat the partial index payments_passed_risk's, so SQLite reads only the window.
    rows = connection.execute(
        "SELECT payment_id, merchant_id, currency, requested_minor, risk_card_key, created_at_us FROM payments "
        "WHERE risk_version <> '' AND risk_rule = '' AND created_at_us > ? ORDER BY created_at_us, payment_id",
        (after_us,))
    return [RiskAdmission(*row) for row in rows]


def _select_all_payments(connection: sqlite3.Connection) -> list[PaymentRecord]:
    rows = connection.execute(f"{_SELECT_PAYMENTS} ORDER BY created_at_us, payment_id")
    return [_payment_from_row(row) for row in rows]


def _select_operations(connection: sqlite3.Connection, payment_id: str) -> list[OperationRecord]:
    rows = connection.execute(f"SELECT {', '.join(_OPERATION_COLUMNS)} FROM operations WHERE payment_id = ? "
                              "ORDER BY created_at_us, operation_id", (payment_id,))
    return [_operation_from_row(row) for row in rows]


def _select_pending_operations(connection: sqlite3.Connection, updated_before_us: int,
                               limit: int) -> list[tuple[PaymentRecord, OperationRecord]]:
    payment_columns = ", ".join(f"p.{column}" for column in _PAYMENT_COLUMNS)
    operation_columns = ", ".join(f"o.{column}" for column in _OPERATION_COLUMNS)
    rows = connection.execute(
        f"SELECT {payment_columns}, {operation_columns} FROM payments p "
        "JOIN operations o ON o.operation_id = p.pending_operation_id "
        "WHERE p.pending_operation_id IS NOT NULL AND o.updated_at_us < ? "
        "ORDER BY o.updated_at_us, o.operation_id LIMIT ?", (updated_before_us, limit))
    split = len(_PAYMENT_COLUMNS)
    return [(_payment_from_row(row[:split]), _operation_from_row(row[split:])) for row in rows]


def _select_idempotency(connection: sqlite3.Connection, merchant_id: str, key: str) -> IdempotencyRecord | None:
    row = connection.execute(f"SELECT {', '.join(_IDEMPOTENCY_COLUMNS)} FROM idempotency "
                             "WHERE merchant_id = ? AND key = ?", (merchant_id, key)).fetchone()
    return None if row is None else _idempotency_from_row(row)


_KEYS_PER_QUERY = 500  # well under SQLite's default limit of 32766 bound parameters


def _select_idempotency_many(connection: sqlite3.Connection, merchant_id: str,
                             keys: tuple[str, ...]) -> dict[str, IdempotencyRecord]:
    found = {}
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start:start + _KEYS_PER_QUERY]
        rows = connection.execute(f"SELECT {', '.join(_IDEMPOTENCY_COLUMNS)} FROM idempotency WHERE merchant_id = ? "
                                  f"AND key IN ({', '.join('?' * len(chunk))})", (merchant_id, *chunk))
        for row in rows:
            record = _idempotency_from_row(row)
            found[record.key] = record
    return found


def _idempotency_from_row(row: tuple) -> IdempotencyRecord:
    merchant_id, key, method, fingerprint, state, response, payment_id, created_at_us = row
    return IdempotencyRecord(merchant_id=merchant_id, key=key, method=method, fingerprint=fingerprint,
                             state=IdempotencyState(state), response=response, payment_id=payment_id,
                             created_at_us=created_at_us)


def _select_imbalances(connection: sqlite3.Connection) -> list[LedgerImbalance]:
    rows = connection.execute(
        "SELECT transaction_id, currency, SUM(amount_minor) FROM postings GROUP BY transaction_id, currency "
        "HAVING SUM(amount_minor) <> 0 ORDER BY transaction_id, currency")
    return [LedgerImbalance(transaction_id, currency, sum_minor) for transaction_id, currency, sum_minor in rows]


def _select_balances(connection: sqlite3.Connection) -> list[AccountBalance]:
    rows = connection.execute(
        "SELECT payment_id, account, currency, SUM(amount_minor) FROM postings "
        "GROUP BY payment_id, account, currency ORDER BY payment_id, account, currency")
    return [AccountBalance(payment_id, account, currency, balance) for payment_id, account, currency, balance in rows]


def _select_totals(connection: sqlite3.Connection) -> LedgerTotals:
    # GROUP BY walks the transaction index in order; COUNT(DISTINCT) would build a temporary B-tree.
    transactions, postings = connection.execute(
        "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM postings GROUP BY transaction_id)), "
        "(SELECT COUNT(*) FROM postings)").fetchone()
    return LedgerTotals(transactions=transactions, postings=postings)
