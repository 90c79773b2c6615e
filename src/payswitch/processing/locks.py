"""Per-payment mutual exclusion within one process."""

import asyncio
import contextlib


class KeyedLocks:
    """One asyncio.Lock per key, created on demand and dropped when nobody holds or waits for it.

    Operations on one payment are serialized through it, so two concurrent refunds are checked one
    after the other against what is left; the store's version guard covers other processes.
    """

    def __init__(self):
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: str):
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
