"""Idempotent execution by merchant + key, in Stripe's model.

A repeat of a finished request returns the stored response bytes without acting again; concurrent
duplicates in this process wait for the first and share its answer; a key reused with a different
request is refused. The store's unique key makes the same true across processes: a request that
another process is still running gets RequestInProgress, and the caller retries with the same key.

A request is judged against the key's first request, the one whose record the store holds, never
against whichever request happens to hold the key in this process: that one may itself be a different
request about to be refused. So a request that differs from the holder waits for it and is then judged
against the stored record. A repeat that finds its key's record left in progress (the switch stopped
between the two commits) is handed to `resume`, which finishes the operation.
"""

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence

from ..payments.errors import IdempotencyKeyReused, RequestInProgress, ShuttingDown
from ..store.base import IdempotencyConflict, IdempotencyRecord, IdempotencyState, PaymentStore
from .store_errors import checked

#: For a batch: (key, fingerprint) of each claimed request -> one outcome each, bytes or an exception.
BatchAction = Callable[[list[tuple[str, bytes]]], Awaitable[list]]
#: Finishes a request whose key's record is in progress with no request of this process running it.
Resume = Callable[[IdempotencyRecord], Awaitable[bytes]]
#: For a batch: resume by key.
BatchResume = Callable[[str, IdempotencyRecord], Awaitable[bytes]]


class IdempotencyGate:
    """Runs each (merchant, key) at most once at a time and replays finished ones.

    The work runs in its own task that callers only await through a shield: a caller that hangs up
    after the channel was called cannot cancel the commit that records the channel's answer.
    """

    def __init__(self, store: PaymentStore):
        self._store = store
        self._in_flight: dict[tuple[str, str], tuple[bytes, asyncio.Future]] = {}
        self._batches: set[asyncio.Task] = set()

    async def run(self, merchant_id: str, key: str, fingerprint: bytes, action: Callable[[], Awaitable[bytes]],
                  resume: Resume | None = None) -> bytes:
        slot = (merchant_id, key)
        while (running := self._in_flight.get(slot)) is not None and running[0] != fingerprint:
            await asyncio.wait([running[1]])  # then judged against the stored record, not the holder
        if running is None:
            running = self._claim(slot, fingerprint, asyncio.ensure_future(
                self._execute(merchant_id, key, fingerprint, action, resume)))
        return await asyncio.shield(running[1])

    def run_many(self, merchant_id: str, requests: Sequence[tuple[str, bytes]], action: BatchAction,
                 resume: BatchResume | None = None) -> list[asyncio.Future]:
        """The batch form of run(): claims every free key, runs `action` once for all claimed requests
        in its own task, and returns one future per request (await them through a shield). A key seen
        twice shares the first one's outcome, exactly as two concurrent calls would; a key held by a
        different request goes through run() alone once that request is done."""
        loop = asyncio.get_running_loop()
        outcomes, claimed = [], []
        for key, fingerprint in requests:
            slot = (merchant_id, key)
            running = self._in_flight.get(slot)
            if running is None:
                running = self._claim(slot, fingerprint, loop.create_future())
                claimed.append((key, fingerprint, running[1]))
            elif running[0] != fingerprint:
                alone = self._track(self.run(merchant_id, key, fingerprint, _single(action, key, fingerprint),
                                             None if resume is None else functools.partial(resume, key)))
                running = (fingerprint, alone)
            outcomes.append(running[1])
        if claimed:
            self._track(self._execute_many(merchant_id, claimed, action, resume))
        return outcomes

    def _track(self, coroutine) -> asyncio.Task:
        """A task drain() waits for."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)
        return task

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

    async def _execute(self, merchant_id, key, fingerprint, action, resume) -> bytes:
        record = await checked(self._store.get_idempotency(merchant_id, key))
        if record is not None:
            if resume is not None and _interrupted(record, fingerprint):
                return await resume(record)
            return self._replay(record, fingerprint)
        try:
            return await action()
        except IdempotencyConflict:
            return self._replay(await checked(self._store.get_idempotency(merchant_id, key)), fingerprint)

    async def _execute_many(self, merchant_id: str, claimed: list, action: BatchAction, resume) -> None:
        try:
            records = await checked(self._store.get_idempotency_many(merchant_id, [key for key, _, _ in claimed]))
            fresh, resumed = [], []
            for key, fingerprint, future in claimed:
                record = records.get(key)
                if record is None:
                    fresh.append((key, fingerprint, future))
                elif resume is not None and _interrupted(record, fingerprint):
                    resumed.append((future, resume(key, record)))
                else:
                    _settle(future, lambda: self._replay(record, fingerprint))
            if resumed:
                outcomes = await asyncio.gather(*(work for _, work in resumed), return_exceptions=True)
                for (future, _), outcome in zip(resumed, outcomes):
                    _set(future, outcome)
            if not fresh:
                return
            outcomes = await action([(key, fingerprint) for key, fingerprint, _ in fresh])
            for (key, fingerprint, future), outcome in zip(fresh, outcomes, strict=True):
                if isinstance(outcome, IdempotencyConflict):
                    outcome = await self._replay_stored(merchant_id, key, fingerprint)
                _set(future, outcome)
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


def _interrupted(record: IdempotencyRecord, fingerprint: bytes) -> bool:
    """The key's own request, left in progress: no request of this process holds the key (the caller
    holds it now), so the switch stopped before recording the outcome, or another process is on it."""
    return record.state is IdempotencyState.IN_PROGRESS and record.fingerprint == fingerprint


def _single(action: BatchAction, key: str, fingerprint: bytes) -> Callable[[], Awaitable[bytes]]:
    """The batch action for one request, as run() takes it."""
    async def one() -> bytes:
        [outcome] = await action([(key, fingerprint)])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome
    return one


def _set(future: asyncio.Future, outcome) -> None:
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _settle(future: asyncio.Future, outcome: Callable[[], bytes]) -> None:
    try:
        future.set_result(outcome())
    except Exception as error:  # noqa: BLE001 - the refusal is that request's answer
        future.set_exception(error)
