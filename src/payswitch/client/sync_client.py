"""A blocking wrapper of SwitchClient for callers without an event loop.

It owns a private event loop on a daemon thread; each method blocks until its call finishes.
"""

import asyncio
import threading

from .switch_client import SwitchClient


class SyncSwitchClient:
    def __init__(self, *args, **kwargs):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="payswitch-client", daemon=True)
        self._thread.start()
        try:
            self._client = self._run(self._make(args, kwargs))
        except BaseException:  # a refused argument (a bad secret, say) leaves no loop thread behind
            self._stop_loop()
            raise

    @staticmethod
    async def _make(args, kwargs) -> SwitchClient:
        return SwitchClient(*args, **kwargs)

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._run(self._client.close())
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __getattr__(self, name):
        method = getattr(self._client, name)
        if not asyncio.iscoroutinefunction(method):
            return method
        return lambda *args, **kwargs: self._run(method(*args, **kwargs))
