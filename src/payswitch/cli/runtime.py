"""Running a command's coroutine: on uvloop when it is installed, stopping cleanly on SIGINT/SIGTERM."""

import asyncio
import contextlib
import logging
import signal


def run(coroutine) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


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


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
