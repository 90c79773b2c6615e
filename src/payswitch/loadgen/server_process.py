"""A server under measurement in its own process, so it never shares the load generator's GIL."""

import selectors
import signal
import subprocess
import tempfile
import time

from .cpu_time import process_cpu_seconds

READY_MARK = " listening on "


class ServerStartError(RuntimeError):
    """The server exited or stayed silent instead of printing its ready line."""


class ServerProcess:
    """Starts a command that prints '... listening on HOST:PORT' when ready; `address` is that HOST:PORT."""

    def __init__(self, command: list[str], *, name: str, ready_timeout_s: float = 30.0, env=None):
        self.name = name
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)
        try:
            line = self._ready_line(ready_timeout_s)
        except BaseException:
            self.close()
            raise
        self.address = line.split()[-1]

    def _ready_line(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(max(deadline - time.monotonic(), 0)):
                    line = self.process.stdout.readline()
                    if READY_MARK in line:
                        return line.strip()
                    if not line:
                        break
        raise ServerStartError(f"{self.name} did not start: {self.stderr_tail()}")

    def stderr_tail(self, limit: int = 2000) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-limit:].strip() or "(no output)"

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.process.pid)

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, then wait for the graceful stop; SIGKILL only if it does not come."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        return self.process.returncode

    def close(self) -> None:
        """Stops the process if it still runs and lets go of its captured output."""
        self.stop()
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
