"""A `payswitch channel-sim` in a process of its own, as an operator (or a channel team) runs it."""

import contextlib
import os
import select
import subprocess
import sys
import time

READY_WITHIN_S = 20


def read_line(stream, deadline: float) -> str:
    remaining = deadline - time.monotonic()
    ready, _, _ = select.select([stream], [], [], max(remaining, 0))
    if not ready:
        raise AssertionError("channel-sim printed no ready line in time")
    return stream.readline()


@contextlib.contextmanager
def channel_sim(*flags):
    """A running `payswitch channel-sim` with `flags`; yields its address and the process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "payswitch", "channel-sim", "--listen", "127.0.0.1:0", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = read_line(process.stdout, time.monotonic() + READY_WITHIN_S)
        assert line.startswith("channel-sim listening on 127.0.0.1:"), (line, process.poll())
        address = line.split()[-1]
        assert int(address.rpartition(":")[2]) > 0
        yield address, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
