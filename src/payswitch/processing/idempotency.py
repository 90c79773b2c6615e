"""Idempotent execution by merchant + key, in Stripe's model.

A repeat of a finished request returns the stored response bytes without acting again; concurrent
duplicates in this process wait for the first and share its answer; a key reused with a different
request is refused. The store's unique key makes the same true across processes: a request that
another process is still running gets RequestInProgress, and the caller retries with the same key.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from ..payments.errors import IdempotencyKeyReused, RequestInProgress, ShuttingDown
from ..store.base import IdempotencyConflict, IdempotencyRecord, IdempotencyState, PaymentStore
from .store_errors import checked

#: For a batch: (key, fingerprint) of each claimed request -> one outcome each, bytes or an exception.
BatchAction = Callable[[list[tuple[str, bytes]]], Awaitable[list]]


class IdempotencyGate:
    """Runs each (merchant, key) at most once at a time and replays finished ones.

    The work runs in its own task that callers only await through a shield: a caller that hangs up
    after the channel was called cannot cancel the commit that records the channel's answer.
    """

    def __init__(self, store: PaymentStore):
        self._store = store
        self._in_flight: dict[tuple[str, str], tuple[bytes, asyncio.Future]] = {}
        self._batches: set[asyncio.Task] = set()

    async def run(self, merchant_id: str, key: str, fingerprint: bytes,
                  action: Callable[[], Awaitable[bytes]]) -> bytes:
        slot = (merchant_id, key)
        running = self._in_flight.get(slot)
        if running is None:
            running = self._claim(slot, fingerprint,
                                  asyncio.ensure_future(self._execute(merchant_id, key, fingerprint, action)))
        elif running[0] != fingerprint:
            raise IdempotencyKeyReused()
        return await asyncio.shield(running[1])

    def run_many(self, merchant_id: str, requests: Sequence[tuple[str, bytes]],
                 action: BatchAction) -> list[asyncio.Future]:
        """The batch form of run(): claims every free key, runs `action` once for all claimed requests
        in its own task, and returns one future per request (await them through a shield). A key seen
        twice shares the first one's outcome, exactly as two concurrent calls would."""
        loop = asyncio.get_running_loop()
        outcomes, claimed = [], []
        for key, fingerprint in requests:
            slot = (merchant_id, key)
            running = self._in_flight.get(slot)
            if running is None:
                running = self._claim(slot, fingerprint, loop.create_future())
                claimed.append((key, fingerprint, running[1]))
            elif running[0] != fingerprint:
                refused = loop.create_future()
                refused.set_exception(IdempotencyKeyReused())
                running = (fingerprint, refused)
            outcomes.append(running[1])
        if claimed:
            task = loop.create_task(self._execute_many(merchant_id, claimed, action))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)
        return outcomes

    async def drain(self) -> None:
        """Waits for every request already started (graceful shutdown)."""
        while self._in_flight or self._batches:
            await asyncio.gather(*(future for _, future in list(self._in_flight.values())), *self._batches,
                                 return_exceptions=True)

    def _claim(self, slot, fingerprint: bytes, future: asyncio.Future) -> tuple[bytes, asyncio.Future]:
        running = self._in_flight[slot] = (fingerprint, future)
        future.add_done_callback(lambda done: self._finished(slot, done))
        return running

    def _finished(self, slot, future: asyncio.Future) -> None:
        self._in_flight.pop(slot, None)
        if not future.cancelled():
            future.exception()  # retrieved, so a result nobody waited for logs nothing

    async def _execute(self, merchant_id, key, fingerprint, action) -> bytes:
        record = await checked(self._store.get_idempotency(merchant_id, key))
        if record is not None:
            return self._replay(record, fingerprint)
        try:
            return await action()
        except IdempotencyConflict:
            return self._replay(await checked(self._store.get_idempotency(merchant_id, key)), fingerprint)

    async def _execute_many(self, merchant_id: str, claimed: list, action: BatchAction) -> None:
        try:
            records = await checked(self._store.get_idempotency_many(merchant_id, [key for key, _, _ in claimed]))
            fresh = []
            for key, fingerprint, future in claimed:
                if key in records:
                    _settle(future, lambda: self._replay(records[key], fingerprint))
                else:
                    fresh.append((key, fingerprint, future))
            if not fresh:
                return
            outcomes = await action([(key, fingerprint) for key, fingerprint, _ in fresh])
            for (key, fingerprint, future), outcome in zip(fresh, outcomes, strict=True):
                if isinstance(outcome, IdempotencyConflict):
                    outcome = await self._replay_stored(merchant_id, key, fingerprint)
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        except BaseException as error:
            failure = error if isinstance(error, Exception) else ShuttingDown()
            for _, _, future in claimed:
                if not future.done():
                    future.set_exception(failure)
            raise

    async def _replay_stored(self, merchant_id: str, key: str, fingerprint: bytes):
        try:
            return self._replay(await checked(self._store.get_idempotency(merchant_id, key)), fingerprint)
        except Exception as error:  # noqa: BLE001 - handed to that item's caller, not to the whole batch
            return error

    @staticmethod
    def _replay(record: IdempotencyRecord | None, fingerprint: bytes) -> bytes:
        if record is None:
            raise RequestInProgress()
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if record.state is not IdempotencyState.DONE or record.response is None:
            raise RequestInProgress()
        return record.response


def _settle(future: asyncio.Future, outcome: Callable[[], bytes]) -> None:
    try:
        future.set_result(outcome())
    except Exception as error:  # noqa: BLE001 - the refusal is that request's answer
        future.set_exception(error)
