"""The key ring: keeps the Verifier's key table equal to the set of keys that verify now.

A key verifies while its status is active and not_before <= now < not_after. The Verifier knows
nothing of time windows (its table is a plain mapping, swapped whole by set_keys), so the ring
recomputes the set and swaps it in:

- at each boundary: a timer is set for the earliest future not_before or not_after, so a key starts
  and stops verifying on time without polling;
- right after each write through this ring (create, revoke), so a revocation is immediate here;
- every `resync_seconds`, re-reading the table, so writes made by another switch process on the same
  database (one process per core) reach this one within that bound.

Keys from the configuration file are merged in, read-only and always active, so deployments that
predate managed keys keep working. Secrets are opened (keys/sealing.py) when loaded and kept only in
memory; nothing here logs one: log lines name merchant and key ids only.
"""

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from ..vocabulary import NAME_WANTED, is_name
from .sealing import MasterKeyError, Sealer, SealingError
from .store import (ACTIVE, InvalidKeyRequest, KeyAlreadyExists, KeyInConfiguration, KeyNotFound,
                    MasterKeyNotConfigured, SigningKeyRecord, SigningKeyStore, secret_binding)

log = logging.getLogger(__name__)

SECRET_BYTES = 32
MAX_ACTIVE_KEYS = 2
DEFAULT_RESYNC_SECONDS = 10.0
# The event loop's timers run on the monotonic clock, key windows on the wall clock; waking at least
# this often bounds how far the two can drift apart before a boundary is re-aimed.
MAX_TIMER_SECONDS = 3600.0

CONFIG = "config"
STORE = "store"


KeyTable = dict[tuple[str, str], bytes]


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What may be shown about a key: everything but its secret."""

    merchant_id: str
    key_id: str
    status: str                  # "active" or "revoked"
    source: str                  # "store" (managed) or "config" (the configuration file)
    valid_from_us: int | None    # None for configuration keys: always valid
    valid_until_us: int | None   # None: no expiry
    created_at_us: int | None
    revoked_at_us: int | None
    in_use: bool                 # verifies requests in this process now


@dataclass(slots=True)
class _LoadedKey:
    record: SigningKeyRecord
    secret: bytes

    def __repr__(self) -> str:
        return f"_LoadedKey({self.record!r}, secret=***)"


class KeyRing:
    """Loads the stored keys, publishes the valid set into `verifier`, and manages keys.

    `sealer` may be None when no master key is configured: configuration keys still verify, but no
    key can be created, and start() refuses a database that holds active stored keys (they would not
    verify, so every merchant using one would be locked out without a word).
    `merchants` are the merchants the configuration knows: a key for another is refused, and a stored
    one is left out (None, for tests of the ring alone, accepts any).
    `clock` returns Unix seconds and `random_bytes(n)` n random bytes; both are injected for tests.
    """

    def __init__(self, store: SigningKeyStore, verifier, sealer: Sealer | None, *,
                 config_keys: Mapping[tuple[str, str], bytes] | None = None,
                 merchants: Collection[str] | None = None, clock: Callable[[], float] = time.time,
                 random_bytes: Callable[[int], bytes] = secrets.token_bytes, max_active: int = MAX_ACTIVE_KEYS,
                 resync_seconds: float | None = DEFAULT_RESYNC_SECONDS):
        if max_active < 1:
            raise ValueError("max_active must be at least 1")
        self._store = store
        self._verifier = verifier
        self._sealer = sealer
        self._config: KeyTable = dict(config_keys or {})
        self._merchants = None if merchants is None else frozenset(merchants)
        self._clock = clock
        self._random_bytes = random_bytes
        self._max_active = max_active
        self._resync_seconds = resync_seconds
        self._stored: dict[tuple[str, str], _LoadedKey] = {}
        self._published: KeyTable | None = None
        self._next_boundary_us: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._resync_task: asyncio.Task | None = None
        # A reload reads the table, then applies what it read: a write in between would be undone.
        self._writing = asyncio.Lock()

    @property
    def max_active(self) -> int:
        return self._max_active

    @property
    def next_boundary_us(self) -> int | None:
        """When the valid set next changes by time alone (a not_before or not_after), if ever."""
        return self._next_boundary_us

    def now_us(self) -> int:
        return int(self._clock() * 1_000_000)

    def valid_keys(self) -> frozenset[tuple[str, str]]:
        """The (merchant, key id) pairs published into the Verifier."""
        return frozenset(self._published or ())

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Loads the stored keys (failing if any active one cannot be opened), publishes the valid
        set, and starts the boundary timer and the periodic resync. The store must be open."""
        self._loop = asyncio.get_running_loop()
        async with self._writing:
            self._stored = await self._load(strict=True)
            self.refresh()
        if self._resync_seconds:
            self._resync_task = asyncio.create_task(self._resync_forever(), name="payswitch-key-ring-resync")

    async def stop(self) -> None:
        """Stops the timer and the resync; the Verifier keeps the last published table."""
        self._loop = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._resync_task is not None:
            self._resync_task.cancel()
            try:
                await self._resync_task
            except asyncio.CancelledError:
                pass
            self._resync_task = None

    async def reload(self) -> None:
        """Re-reads the stored keys and publishes the valid set; a row that does not open is logged and
        left out (its key stops verifying) rather than stopping the switch."""
        async with self._writing:
            self._stored = await self._load(strict=False)
            self.refresh()

    def set_config_keys(self, config_keys: Mapping[tuple[str, str], bytes]) -> None:
        """Replaces the configuration's keys (after a configuration reload) and publishes at once."""
        self._config = dict(config_keys)
        self.refresh()

    def refresh(self, now_us: int | None = None) -> int | None:
        """Publishes the keys valid at `now_us` (default: the clock) into the Verifier, and aims the
        timer at the next boundary; returns that boundary (None if there is none)."""
        if now_us is None:
            now_us = self.now_us()
        table: KeyTable = dict(self._config)
        boundary: int | None = None
        for pair, loaded in self._stored.items():
            record = loaded.record
            if pair not in self._config and record.valid_at(now_us):
                table[pair] = loaded.secret
            for moment in (record.not_before_us, record.not_after_us):
                if moment is not None and moment > now_us and (boundary is None or moment < boundary):
                    boundary = moment
        if table != self._published:
            self._verifier.set_keys(table)
            self._log_changes(self._published, table)
            self._published = table
        self._next_boundary_us = boundary
        self._schedule(boundary, now_us)
        return boundary

    # --- management (SwitchAdmin) ------------------------------------------------------------------

    async def create_key(self, merchant_id: str, key_id: str | None = None, *, valid_from_us: int | None = None,
                         valid_until_us: int | None = None) -> tuple[KeyInfo, bytes]:
        """Issues a key: 32 random bytes, sealed and stored, verifying from `valid_from_us` (default now)
        until `valid_until_us` (default never). Returns the key and its secret, which is never
        available again."""
        now_us = self.now_us()
        violations = self._merchant_violation(merchant_id)
        if key_id and not is_name(key_id):
            violations["key_id"] = f"must be {NAME_WANTED} (or empty, to have one generated)"
        valid_from_us = now_us if valid_from_us is None else valid_from_us
        if valid_from_us < 0:
            violations["valid_from"] = "must not be before 1970"
        if valid_until_us is not None:
            if valid_until_us <= valid_from_us:
                violations["valid_until"] = "must be after valid_from"
            elif valid_until_us <= now_us:
                violations["valid_until"] = "is in the past: the key would never verify"
        if violations:
            raise InvalidKeyRequest(violations)
        if self._sealer is None:
            raise MasterKeyNotConfigured()
        key_id = key_id or "k_" + self._random_bytes(8).hex()
        pair = (merchant_id, key_id)
        if pair in self._config:
            raise KeyAlreadyExists(merchant_id, key_id)
        secret = self._random_bytes(SECRET_BYTES)
        record = SigningKeyRecord(merchant_id, key_id, ACTIVE, self._sealer.seal(secret, secret_binding(*pair)),
                                  valid_from_us, valid_until_us, now_us)
        configured = sum(1 for merchant, _ in self._config if merchant == merchant_id)
        async with self._writing:
            await self._store.insert_key(record, max_active=self._max_active, now_us=now_us,
                                         counted_elsewhere=configured)
            self._stored[pair] = _LoadedKey(record, secret)
            self.refresh()
        log.info("signing key %s of merchant %s created, valid from %s until %s", key_id, merchant_id,
                 _iso(valid_from_us), "revoked" if valid_until_us is None else _iso(valid_until_us))
        return self._info(record), secret

    async def list_keys(self, merchant_id: str | None = None) -> list[KeyInfo]:
        """The merchant's keys (every merchant's if None): configured ones first, then stored ones
        oldest first, revoked and expired included. Never a secret."""
        if merchant_id is not None and (violation := self._merchant_violation(merchant_id)):
            raise InvalidKeyRequest(violation)
        published = self._published or {}
        configured = [KeyInfo(merchant, key_id, ACTIVE, CONFIG, None, None, None, None, (merchant, key_id) in published)
                      for merchant, key_id in sorted(self._config) if merchant_id in (None, merchant)]
        stored = [self._info(record) for record in await self._store.list_keys(merchant_id)]
        return configured + stored

    async def revoke_key(self, merchant_id: str, key_id: str) -> KeyInfo:
        """Revokes a stored key: it stops verifying in this process before this returns, and its sealed
        secret is erased. Revoking a revoked key changes nothing."""
        violations = {name: f"must be {NAME_WANTED}" for name, value in
                      (("merchant_id", merchant_id), ("key_id", key_id))
                      if not isinstance(value, str) or not is_name(value)}
        if violations:
            raise InvalidKeyRequest(violations)
        pair = (merchant_id, key_id)
        if pair in self._config:
            raise KeyInConfiguration(merchant_id, key_id)
        async with self._writing:
            record = await self._store.revoke_key(merchant_id, key_id, self.now_us())
            if record is None:
                raise KeyNotFound(merchant_id, key_id)
            self._stored.pop(pair, None)
            self.refresh()
        log.info("signing key %s of merchant %s revoked", key_id, merchant_id)
        return self._info(record)

    # --- internals ---------------------------------------------------------------------------------

    def _merchant_violation(self, merchant_id) -> dict[str, str]:
        """{"merchant_id": what is wrong} for an id that is malformed or names no configured merchant
        (a key for it would make a working merchant of a typo); {} for a good one."""
        if not isinstance(merchant_id, str) or not is_name(merchant_id):
            return {"merchant_id": f"must be {NAME_WANTED}"}
        if self._merchants is not None and merchant_id not in self._merchants:
            return {"merchant_id": f"names no configured merchant ({merchant_id!r}); merchants are added in the "
                                   "configuration file"}
        return {}

    async def _load(self, strict: bool) -> dict[tuple[str, str], _LoadedKey]:
        records = await self._store.active_keys(self.now_us())
        if records and self._sealer is None:
            message = (f"the database holds {len(records)} active signing keys but no master key is configured "
                       "to open them (docs/keys.md)")
            if strict:
                raise MasterKeyError(message)
            log.error("%s; they do not verify", message)
            return {}
        loaded: dict[tuple[str, str], _LoadedKey] = {}
        failures = []
        for record in records:
            pair = (record.merchant_id, record.key_id)
            if self._merchants is not None and record.merchant_id not in self._merchants:
                if strict:
                    log.warning("signing key %s of merchant %s is stored, but the merchant is not in the "
                                "configuration: it does not verify", record.key_id, record.merchant_id)
                continue
            previous = self._stored.get(pair)
            if previous is not None and previous.record.sealed_secret == record.sealed_secret:
                loaded[pair] = _LoadedKey(record, previous.secret)  # already opened; the window may have changed
                continue
            if pair in self._config:
                log.warning("signing key %s of merchant %s is both configured and stored; the configured one "
                            "is used", record.key_id, record.merchant_id)
            try:
                loaded[pair] = _LoadedKey(record, self._sealer.open(record.sealed_secret, secret_binding(*pair)))
            except SealingError as error:
                failures.append(f"{record.merchant_id}/{record.key_id}: {error}")
        if failures:
            if strict:
                raise SealingError("stored signing keys do not open: " + "; ".join(failures))
            for failure in failures:
                log.error("signing key %s; it does not verify", failure)
        return loaded

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self._resync_seconds)
            try:
                await self.reload()
            except Exception:  # the next round tries again; the published table stays meanwhile
                log.exception("re-reading the signing keys failed")

    def _schedule(self, boundary: int | None, now_us: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if boundary is None or self._loop is None:
            return
        # A timer that fires a little early finds the boundary still ahead and aims again.
        delay = min(max(0.0, (boundary - now_us) / 1_000_000), MAX_TIMER_SECONDS)
        self._timer = self._loop.call_later(delay, self._on_boundary)

    def _on_boundary(self) -> None:
        self._timer = None
        self.refresh()

    def _info(self, record: SigningKeyRecord) -> KeyInfo:
        pair = (record.merchant_id, record.key_id)
        in_use = pair not in self._config and pair in (self._published or {})
        return KeyInfo(record.merchant_id, record.key_id, record.status, STORE, record.not_before_us,
                       record.not_after_us, record.created_at_us, record.revoked_at_us, in_use)

    @staticmethod
    def _log_changes(before: KeyTable | None, after: KeyTable) -> None:
        if before is None:
            log.info("signing keys: %d verify now", len(after))
            return
        for merchant, key_id in sorted(after.keys() - before.keys()):
            log.info("signing key %s of merchant %s now verifies", key_id, merchant)
        for merchant, key_id in sorted(before.keys() - after.keys()):
            log.info("signing key %s of merchant %s no longer verifies", key_id, merchant)
        for merchant, key_id in sorted(pair for pair in after.keys() & before.keys() if after[pair] != before[pair]):
            log.info("signing key %s of merchant %s changed secret", key_id, merchant)


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, timezone.utc).isoformat(timespec="seconds")
