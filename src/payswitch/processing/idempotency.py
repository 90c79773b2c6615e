"""Idempotent execution by merchant + key, in Stripe's model.

A repeat of a finished request returns the stored response bytes without acting again; concurrent
duplicates in this process wait for the first and share its answer; a key reused with a different
request is refused. The store's unique key makes the same true across processes: a request that
another process is still running gets RequestInProgress, and the caller retries with the same key.
"""

import asyncio
from collections.abc import Awaitable, Callable

from ..payments.errors import IdempotencyKeyReused, RequestInProgress
from ..store.base import IdempotencyConflict, IdempotencyRecord, IdempotencyState, PaymentStore


class IdempotencyGate:
    """Runs each (merchant, key) at most once at a time and replays finished ones.

    The work runs in its own task that callers only await through a shield: a caller that hangs up
    after the channel was called cannot cancel the commit that records the channel's answer.
    """

    def __init__(self, store: PaymentStore):
        self._store = store
        self._in_flight: dict[tuple[str, str], tuple[bytes, asyncio.Task]] = {}

    async def run(self, merchant_id: str, key: str, fingerprint: bytes,
                  action: Callable[[], Awaitable[bytes]]) -> bytes:
        slot = (merchant_id, key)
        running = self._in_flight.get(slot)
        if running is None:
            task = asyncio.ensure_future(self._execute(merchant_id, key, fingerprint, action))
            running = self._in_flight[slot] = (fingerprint, task)
            task.add_done_callback(lambda done: self._finished(slot, done))
        elif running[0] != fingerprint:
            raise IdempotencyKeyReused()
        return await asyncio.shield(running[1])

    async def drain(self) -> None:
        """Waits for every request already started (graceful shutdown)."""
        while self._in_flight:
            await asyncio.gather(*(task for _, task in list(self._in_flight.values())), return_exceptions=True)

    def _finished(self, slot, task: asyncio.Task) -> None:
        self._in_flight.pop(slot, None)
        if not task.cancelled():
            task.exception()  # retrieved, so a result nobody waited for logs nothing

    async def _execute(self, merchant_id, key, fingerprint, action) -> bytes:
        record = await self._store.get_idempotency(merchant_id, key)
        if record is not None:
            return self._replay(record, fingerprint)
        try:
            return await action()
        except IdempotencyConflict:
            return self._replay(await self._store.get_idempotency(merchant_id, key), fingerprint)

    @staticmethod
    def _replay(record: IdempotencyRecord | None, fingerprint: bytes) -> bytes:
        if record is None:
            raise RequestInProgress()
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if record.state is not IdempotencyState.DONE or record.response is None:
            raise RequestInProgress()
        return record.response
