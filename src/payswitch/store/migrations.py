"""Schema migrations: numbered .sql files applied once each, in order, and recorded in the database.

The files ship inside the package (store/migrations/NNN_name.sql) and are read through
importlib.resources, so an installed wheel migrates its own database. Finding, ordering and checking
migrations is backend-neutral; only `migrate_sqlite` knows SQLite, and a PostgreSQL backend needs just
its own equivalent of it (and its own folder of files).

An applied migration is recorded with a checksum of its text: a file edited after it reached a
database, or a database migrated by a newer payswitch, is refused rather than guessed at.
"""

import hashlib
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from .base import StoreError

SQLITE_MIGRATIONS: Traversable = files(__package__) / "migrations"

_FILE_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

# Plain SQL that SQLite and PostgreSQL both accept. Created by the runner, not by a migration, because
# the runner must read it before it knows which migrations to apply.
SCHEMA_MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    checksum   TEXT    NOT NULL,
    applied_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""


class MigrationError(StoreError):
    """The migration files or the database's migration history cannot be reconciled."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Traversable = SQLITE_MIGRATIONS) -> list[Migration]:
    """The migrations in `directory`, in order; numbers must run 1, 2, 3... so a lost file is noticed."""
    migrations = []
    for entry in directory.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            if entry.name.endswith(".sql"):
                raise MigrationError(f"migration file {entry.name!r} is not named NNN_lowercase_name.sql")
            continue
        migrations.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    migrations.sort(key=lambda migration: migration.version)
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration {expected:03d} is missing or duplicated before {migration.name}")
    return migrations


def pending(available: Iterable[Migration], applied: Mapping[int, str]) -> list[Migration]:
    """The migrations not yet applied, given the database's {version: checksum}."""
    known = {migration.version: migration for migration in available}
    for version, checksum in applied.items():
        migration = known.get(version)
        if migration is None:
            raise MigrationError(f"the database has migration {version}, which this payswitch does not know "
                                 "(was it migrated by a newer version?)")
        if migration.checksum != checksum:
            raise MigrationError(f"migration {version:03d}_{migration.name} changed after it was applied")
    return [migration for version, migration in sorted(known.items()) if version not in applied]


def migrate_sqlite(connection: sqlite3.Connection, directory: Traversable = SQLITE_MIGRATIONS) -> list[Migration]:
    """Applies each pending migration in its own transaction; returns those this call applied.

    The connection must be in autocommit mode (isolation_level=None). Each migration runs under
    BEGIN IMMEDIATE and re-reads the history first, so processes opening one file together apply each
    migration exactly once.
    """
    available = discover(directory)
    connection.execute(SCHEMA_MIGRATIONS_DDL)
    applied_now = []
    for migration in pending(available, _sqlite_history(connection)):
        connection.execute("BEGIN IMMEDIATE")
        try:
            if migration not in pending(available, _sqlite_history(connection)):  # another process won
                connection.execute("ROLLBACK")
                continue
            for statement in sqlite_statements(migration.sql):
                connection.execute(statement)
            connection.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)",
                               (migration.version, migration.name, migration.checksum))
            connection.execute("COMMIT")
        except BaseException as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise MigrationError(f"migration {migration.version:03d}_{migration.name} failed: {error}") from error
            raise
        applied_now.append(migration)
    return applied_now


def sqlite_statements(script: str) -> list[str]:
    """Splits a script into single statements, using SQLite's own tokenizer to tell where one ends.

    executescript() would commit any open transaction first, so a migration could not share one
    with its schema_migrations row; executing statement by statement keeps both in one.
    """
    statements = []
    start = 0
    for end in (match.end() for match in re.finditer(";", script)):
        candidate = script[start:end]
        if sqlite3.complete_statement(candidate):
            if _has_code(candidate):
                statements.append(candidate.strip())
            start = end
    if _has_code(script[start:]):
        raise MigrationError(f"migration ends with an incomplete statement: {script[start:].strip()[:80]!r}")
    return statements


def _has_code(sql: str) -> bool:
    """True unless `sql` is only whitespace, comments and semicolons."""
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.DOTALL)
    return bool(without_comments.replace(";", "").strip())


def _sqlite_history(connection: sqlite3.Connection) -> dict[int, str]:
    return dict(connection.execute("SELECT version, checksum FROM schema_migrations"))
