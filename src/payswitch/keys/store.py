"""The `signing_keys` table (migration 003) and the typed refusals of key management.

The table lives in the switch's SQLite file but is written through this store's own connection, not
SqliteStore's group-commit writer: key writes are rare operator actions, and keeping them apart
leaves the payment writer untouched. The connection is made by the same function as SqliteStore's
writer (WAL, synchronous=FULL, foreign keys, schema migrated), so a key write is as durable as a
payment; SQLite's write lock serializes it with the payment writer and with other processes. The
connection lives in one dedicated thread (sqlite3 connections belong to the thread that made them),
so no disk I/O runs on the event loop.

The store holds only sealed secrets (keys/sealing.py) and never reads the clock: callers pass `now`.
"""

import asyncio
import concurrent.futures
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..store.sqlite import _connect_writer

if TYPE_CHECKING:  # the store itself never opens a blob, so it does not need cryptography
    from .sealing import Sealer

ACTIVE = "active"
REVOKED = "revoked"


class SigningKeyError(Exception):
    """Base of every refusal of a key operation; `reason` is machine-readable (the admin edge maps it)."""

    reason = "signing_key_error"


class InvalidKeyRequest(SigningKeyError):
    """Fields are missing or malformed; `violations` maps each field name to what is wrong."""

    reason = "invalid_argument"

    def __init__(self, violations: dict[str, str]):
        self.violations = violations
        super().__init__("; ".join(f"{name}: {text}" for name, text in violations.items()))


class KeyAlreadyExists(SigningKeyError):
    reason = "key_already_exists"

    def __init__(self, merchant_id: str, key_id: str):
        super().__init__(f"merchant {merchant_id!r} already has a key {key_id!r} (key ids are never reused)")


class KeyNotFound(SigningKeyError):
    reason = "key_not_found"

    def __init__(self, merchant_id: str, key_id: str):
        super().__init__(f"merchant {merchant_id!r} has no stored key {key_id!r}")


class TooManyActiveKeys(SigningKeyError):
    reason = "too_many_active_keys"

    def __init__(self, merchant_id: str, limit: int):
        super().__init__(f"merchant {merchant_id!r} already has {limit} active, unexpired keys (configured keys "
                         "count too); revoke one first")


class KeyInConfiguration(SigningKeyError):
    """The key comes from the configuration file, which the admin service cannot change."""

    reason = "key_in_configuration"

    def __init__(self, merchant_id: str, key_id: str):
        super().__init__(f"key {key_id!r} of merchant {merchant_id!r} comes from the configuration file; "
                         "remove it there and restart")


class MasterKeyNotConfigured(SigningKeyError):
    reason = "master_key_not_configured"

    def __init__(self):
        super().__init__("no master key is configured, so no key can be sealed (docs/keys.md)")


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    """One row. Times are microseconds since the epoch; the key verifies in [not_before, not_after)."""

    merchant_id: str
    key_id: str
    status: str
    sealed_secret: bytes = field(repr=False)  # empty once revoked: a revoked secret is erased
    not_before_us: int
    not_after_us: int | None
    created_at_us: int
    revoked_at_us: int | None = None

    def valid_at(self, now_us: int) -> bool:
        return (self.status == ACTIVE and self.not_before_us <= now_us
                and (self.not_after_us is None or now_us < self.not_after_us))

    def expired_at(self, now_us: int) -> bool:
        return self.not_after_us is not None and now_us >= self.not_after_us


def secret_binding(merchant_id: str, key_id: str) -> bytes:
    """The associated data a row's secret is sealed with: a blob opens only on the row it was made for.

    Identifiers cannot hold NUL, so no two (merchant, key id) pairs give the same bytes.
    """
    return b"payswitch signing key\x00" + merchant_id.encode("ascii") + b"\x00" + key_id.encode("ascii")


_COLUMNS = ("merchant_id, key_id, status, sealed_secret, not_before_us, not_after_us, created_at_us, "
            "revoked_at_us")


class SigningKeyStore:
    """The signing-key table of one SQLite file. open() once, close() once."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 5000):
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="payswitch-keys")
        self._connection: sqlite3.Connection | None = None
        self._closed = False

    async def open(self) -> None:
        if self._connection is not None or self._closed:
            raise RuntimeError("a SigningKeyStore opens only once")
        self._connection, _ = await self._run_bare(_connect_writer, self._path, self._busy_timeout_ms)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._connection is not None:
            await self._run_bare(self._connection.close)
            self._connection = None
        self._thread.shutdown(wait=False)

    async def active_keys(self, now_us: int) -> list[SigningKeyRecord]:
        """Keys with status active that have not expired at `now_us` (including those not valid yet)."""
        return await self._run(_select_active, now_us)

    async def list_keys(self, merchant_id: str | None = None) -> list[SigningKeyRecord]:
        """Every stored key of one merchant (or of all), revoked and expired ones included."""
        return await self._run(_select_all, merchant_id)

    async def get_key(self, merchant_id: str, key_id: str) -> SigningKeyRecord | None:
        return await self._run(_select_one, merchant_id, key_id)

    async def insert_key(self, record: SigningKeyRecord, *, max_active: int, now_us: int,
                         counted_elsewhere: int = 0) -> None:
        """Adds a key; KeyAlreadyExists if the id was ever used by the merchant, TooManyActiveKeys if the
        merchant's active keys unexpired at `now_us`, plus `counted_elsewhere` (its configured keys),
        already reach `max_active`. Both checks and the insert are one transaction, so two operators
        (or processes) cannot both slip under the cap."""
        await self._run(_insert, record, max_active, now_us, counted_elsewhere)

    async def revoke_key(self, merchant_id: str, key_id: str, now_us: int) -> SigningKeyRecord | None:
        """Marks the key revoked and erases its sealed secret; None if there is no such key. Revoking a
        revoked key changes nothing and returns it."""
        return await self._run(_revoke, merchant_id, key_id, now_us)

    async def reseal(self, sealer: "Sealer") -> int:
        """Re-seals every stored secret not under the sealer's primary master key; returns how many.
        Afterwards the old master keys can be dropped from the configuration."""
        return await self._run(_reseal, sealer)

    async def _run(self, query: Callable[..., Any], *args: Any) -> Any:
        if self._connection is None:
            raise RuntimeError("the signing-key store is not open")
        return await self._run_bare(query, self._connection, *args)

    async def _run_bare(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)


# --- runs in the store's thread --------------------------------------------------------------------

def _record(row: Sequence[Any]) -> SigningKeyRecord:
    return SigningKeyRecord(row[0], row[1], row[2], bytes(row[3]), row[4], row[5], row[6], row[7])


def _select_active(connection: sqlite3.Connection, now_us: int) -> list[SigningKeyRecord]:
    rows = connection.execute(
        f"SELECT {_COLUMNS} FROM signing_keys WHERE status = ? AND (not_after_us IS NULL OR not_after_us > ?) "
        "ORDER BY merchant_id, key_id", (ACTIVE, now_us)).fetchall()
    return [_record(row) for row in rows]


def _select_all(connection: sqlite3.Connection, merchant_id: str | None) -> list[SigningKeyRecord]:
    if merchant_id is None:
        rows = connection.execute(f"SELECT {_COLUMNS} FROM signing_keys ORDER BY merchant_id, created_at_us, key_id")
    else:
        rows = connection.execute(f"SELECT {_COLUMNS} FROM signing_keys WHERE merchant_id = ? "
                                  "ORDER BY created_at_us, key_id", (merchant_id,))
    return [_record(row) for row in rows.fetchall()]


def _select_one(connection: sqlite3.Connection, merchant_id: str, key_id: str) -> SigningKeyRecord | None:
    row = connection.execute(f"SELECT {_COLUMNS} FROM signing_keys WHERE merchant_id = ? AND key_id = ?",
                             (merchant_id, key_id)).fetchone()
    return None if row is None else _record(row)


def _transaction(connection: sqlite3.Connection, work: Callable[[], Any]) -> Any:
    """Runs `work` under BEGIN IMMEDIATE: the write lock is taken before anything is read."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work()
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


def _insert(connection: sqlite3.Connection, record: SigningKeyRecord, max_active: int, now_us: int,
            counted_elsewhere: int) -> None:
    def work():
        if _select_one(connection, record.merchant_id, record.key_id) is not None:
            raise KeyAlreadyExists(record.merchant_id, record.key_id)
        [active] = connection.execute(
            "SELECT COUNT(*) FROM signing_keys WHERE merchant_id = ? AND status = ? "
            "AND (not_after_us IS NULL OR not_after_us > ?)", (record.merchant_id, ACTIVE, now_us)).fetchone()
        if active + counted_elsewhere >= max_active:
            raise TooManyActiveKeys(record.merchant_id, max_active)
        connection.execute(f"INSERT INTO signing_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (record.merchant_id, record.key_id, record.status, record.sealed_secret,
                            record.not_before_us, record.not_after_us, record.created_at_us, record.revoked_at_us))

    _transaction(connection, work)


def _revoke(connection: sqlite3.Connection, merchant_id: str, key_id: str, now_us: int) -> SigningKeyRecord | None:
    def work():
        connection.execute("UPDATE signing_keys SET status = ?, revoked_at_us = ?, sealed_secret = X'' "
                           "WHERE merchant_id = ? AND key_id = ? AND status = ?",
                           (REVOKED, now_us, merchant_id, key_id, ACTIVE))
        return _select_one(connection, merchant_id, key_id)

    return _transaction(connection, work)


def _reseal(connection: sqlite3.Connection, sealer: "Sealer") -> int:
    def work():
        rows = connection.execute("SELECT merchant_id, key_id, sealed_secret FROM signing_keys "
                                  "WHERE length(sealed_secret) > 0").fetchall()
        count = 0
        for merchant_id, key_id, blob in rows:
            if sealer.needs_reseal(blob):
                resealed = sealer.reseal(blob, secret_binding(merchant_id, key_id))
                connection.execute("UPDATE signing_keys SET sealed_secret = ? WHERE merchant_id = ? AND key_id = ?",
                                   (resealed, merchant_id, key_id))
                count += 1
        return count

    return _transaction(connection, work)
