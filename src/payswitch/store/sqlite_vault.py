"""The card vault's tables in SQLite: the statements SqliteStore runs for the vault, on its reader or
its one writer connection (writes inside the writer's transaction, each in a savepoint of its own).
Only sealed card numbers pass through here."""

import sqlite3
from collections.abc import Sequence

from .base import StoreError, VaultEntry, VaultKeyRecord

_ENTRY_COLUMNS = ("entry_id", "merchant_id", "fingerprint", "key_id", "sealed_number", "card_bin", "card_last4",
                  "exp_month", "exp_year", "scheme", "created_at_us")
_SELECT_ENTRIES = f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM vault_cards"
INSERT_ENTRY = f"INSERT INTO vault_cards ({', '.join(_ENTRY_COLUMNS)}) VALUES ({', '.join('?' * len(_ENTRY_COLUMNS))})"
_IDS_PER_QUERY = 500


def entry_values(entry: VaultEntry) -> tuple:
    return (entry.entry_id, entry.merchant_id, entry.fingerprint, entry.key_id, entry.sealed_number, entry.card_bin,
            entry.card_last4, entry.exp_month, entry.exp_year, entry.scheme, entry.created_at_us)


def insert_entry(connection: sqlite3.Connection, entry: VaultEntry) -> None:
    try:
        connection.execute(INSERT_ENTRY, entry_values(entry))
    except sqlite3.IntegrityError as error:
        raise StoreError(f"vault entry {entry.entry_id} refused: {error.sqlite_errorname}") from None


def _entry(row: tuple) -> VaultEntry:
    return VaultEntry(*row)


def select_entries(connection: sqlite3.Connection, entry_ids: tuple[str, ...]) -> dict[str, VaultEntry]:
    found = {}
    for start in range(0, len(entry_ids), _IDS_PER_QUERY):
        chunk = entry_ids[start:start + _IDS_PER_QUERY]
        for row in connection.execute(f"{_SELECT_ENTRIES} WHERE entry_id IN ({', '.join('?' * len(chunk))})",
                                      chunk):
            entry = _entry(row)
            found[entry.entry_id] = entry
    return found


def select_token(connection: sqlite3.Connection, merchant_id: str, fingerprint: bytes) -> VaultEntry | None:
    row = connection.execute(f"{_SELECT_ENTRIES} WHERE merchant_id = ? AND fingerprint = ? "
                             "AND entry_id LIKE 'tok\\_%' ESCAPE '\\'", (merchant_id, fingerprint)).fetchone()
    return None if row is None else _entry(row)


def update_expiry(connection: sqlite3.Connection, entry_id: str, exp_month: int, exp_year: int) -> None:
    connection.execute("UPDATE vault_cards SET exp_month = ?, exp_year = ? WHERE entry_id = ?",
                       (exp_month, exp_year, entry_id))


def select_keys(connection: sqlite3.Connection) -> list[VaultKeyRecord]:
    rows = connection.execute("SELECT key_id, purpose, status, sealed_key, created_at_us FROM vault_keys "
                              "ORDER BY created_at_us, key_id")
    return [VaultKeyRecord(*row) for row in rows]


def insert_keys(connection: sqlite3.Connection, records: Sequence[VaultKeyRecord], retire_data_keys: bool) -> None:
    if retire_data_keys:
        connection.execute("UPDATE vault_keys SET status = 'retired' WHERE purpose = 'data'")
    connection.executemany(
        "INSERT INTO vault_keys (key_id, purpose, status, sealed_key, created_at_us) VALUES (?, ?, ?, ?, ?)",
        [(r.key_id, r.purpose, r.status, r.sealed_key, r.created_at_us) for r in records])


def select_sealed_with(connection: sqlite3.Connection, key_ids: tuple[str, ...], limit: int) -> list[VaultEntry]:
    if not key_ids:
        return []
    rows = connection.execute(f"{_SELECT_ENTRIES} WHERE key_id IN ({', '.join('?' * len(key_ids))}) "
                              "ORDER BY entry_id LIMIT ?", (*key_ids, limit))
    return [_entry(row) for row in rows]


def reseal(connection: sqlite3.Connection, resealed: Sequence[tuple[VaultEntry, str, bytes]]) -> None:
    connection.executemany(
        "UPDATE vault_cards SET key_id = ?, sealed_number = ? WHERE entry_id = ? AND key_id = ?",
        [(key_id, blob, entry.entry_id, entry.key_id) for entry, key_id, blob in resealed])


def delete_unused_keys(connection: sqlite3.Connection, key_ids: tuple[str, ...]) -> list[str]:
    deleted = []
    for key_id in key_ids:
        if connection.execute("SELECT 1 FROM vault_cards WHERE key_id = ? LIMIT 1", (key_id,)).fetchone():
            continue
        if connection.execute("DELETE FROM vault_keys WHERE key_id = ? AND purpose = 'data' AND status = 'retired'",
                              (key_id,)).rowcount:
            deleted.append(key_id)
    return deleted
