"""`payswitch` commands in processes of their own, as an operator (or a channel team) runs them."""

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
        raise AssertionError("the command printed no ready line in time")
    return stream.readline()


@contextlib.contextmanager
def payswitch_process(*args: str):
    """A running `payswitch ARGS` that prints "... listening on HOST:PORT" once ready; yields that
    address and the process, and kills the process on the way out if it still runs."""
    process = subprocess.Popen([sys.executable, "-m", "payswitch", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = read_line(process.stdout, time.monotonic() + READY_WITHIN_S)
        assert " listening on " in line, (line, process.poll())
        address = line.split()[-1]
        assert int(address.rpartition(":")[2]) > 0
        yield address, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def channel_sim(*flags: str):
    """`payswitch channel-sim` on a free loopback port, with `flags`."""
    return payswitch_process("channel-sim", "--listen", "127.0.0.1:0", *flags)
