"""Running a command's coroutine: on uvloop when it is installed, stopping cleanly on SIGINT/SIGTERM."""

import asyncio
import contextlib
import gc
import logging
import signal
import sys

from ..logs import JsonFormatter, RedactionFilter, TextFormatter

# The name of the handler configure_logging installs, so a later call finds and replaces it.
_HANDLER_NAME = "payswitch"
# A batch of 100 authorizations allocates some 100,000 container objects: at CPython's default (700
# allocations) the cyclic collector ran ~150 times a second and a full collection every second, holding
# the event loop about 40 ms each time. Measured in BENCHMARKS.md.
SERVING_GC_THRESHOLDS = (50_000, 20, 10)


def run(coroutine) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def tune_garbage_collection_for_serving() -> None:
    """Once the server is up: moves what start-up made (modules, descriptors, configuration) out of the
    collector's sight with gc.freeze, and collects young objects less often. Memory is still freed by
    reference counting as soon as it is unused; only reference cycles wait longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLDS)


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event):
    """Sets `stop` on SIGINT or SIGTERM while the block runs."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        yield
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def configure_logging(level: str | int = "INFO", *, json: bool = True, stream=None) -> logging.Handler:
    """Sends every logger's records to one handler on `stream` (stderr by default) that redacts card
    numbers, CVVs and secrets, then writes JSON lines (or classic text lines when json is false).

    Filtering on the root handler rather than on loggers covers third-party libraries too; a call
    replaces the handler an earlier call installed, and leaves other handlers alone."""
    root = logging.getLogger()
    root.setLevel(level.upper() if isinstance(level, str) else level)  # an unknown name raises, changing nothing
    for handler in [handler for handler in root.handlers if handler.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
        handler.close()
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root.addHandler(handler)
    return handler
