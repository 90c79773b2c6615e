"""The switch's log output as an operator reads it: the JSON lines of the handler `payswitch serve`
installs (redaction filter and formatter included), captured in memory for the test to search."""

import contextlib
import io
import json
import logging
import time

from payswitch.cli.runtime import configure_logging


class LogLines:
    def __init__(self, stream: io.StringIO):
        self._stream = stream

    @property
    def text(self) -> str:
        return self._stream.getvalue()

    def of(self, logger: str) -> list[dict]:
        return [line for line in map(json.loads, self.text.splitlines()) if line["logger"] == logger]

    def wait_for(self, logger: str, count: int, seconds: float = 10.0) -> list[dict]:
        """The first `count` lines of `logger`, waiting for a line another thread is still writing (a
        live switch logs a call's line as its handler ends, which may be after the caller has the
        answer); fails if they do not come."""
        deadline = time.monotonic() + seconds
        while len(lines := self.of(logger)) < count:
            assert time.monotonic() < deadline, f"{len(lines)} of {count} {logger} lines: {lines}"
            time.sleep(0.01)
        return lines


@contextlib.contextmanager
def captured_logs(level: str = "INFO"):
    root = logging.getLogger()
    previous = root.level
    stream = io.StringIO()
    handler = configure_logging(level, stream=stream)
    try:
        yield LogLines(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
