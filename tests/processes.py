"""`payswitch` commands in processes of their own, as an operator (or a channel team) runs them."""

import json
import os
import select
import signal
import subprocess
import sys
import time

READY_WITHIN_S = 20


class CommandProcess:
    """A running `payswitch ARGS` that prints "... listening on HOST:PORT" once ready; `address` is
    that HOST:PORT. Stop it with `stop`, or use it as a context manager, which kills it on the way out
    if it still runs."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen([sys.executable, "-m", "payswitch", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.stderr = ""
        ready, _, _ = select.select([self.process.stdout], [], [], READY_WITHIN_S)
        line = self.process.stdout.readline() if ready else ""
        if " listening on " not in line:
            self.process.kill()
            _, stderr = self.process.communicate()
            raise AssertionError(f"{' '.join(args[:1])} printed no ready line: {line!r}\n{stderr}")
        self.address = line.split()[-1]

    def stop(self, signum=signal.SIGTERM) -> tuple[int, str]:
        """Exit status and stdout; what it logged is kept in `stderr`."""
        self.process.send_signal(signum)
        try:
            output, self.stderr = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return self.process.returncode, output

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is flushed, nothing drains."""
        self.process.kill()
        self.process.wait()

    def __enter__(self) -> "CommandProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process.poll() is None:
            self.kill()
        self.process.stdout.close()
        self.process.stderr.close()


def channel_sim(*flags: str) -> CommandProcess:
    """`payswitch channel-sim` on a free loopback port, with `flags`."""
    return CommandProcess("channel-sim", "--listen", "127.0.0.1:0", *flags)


def logged(stderr: str) -> list[dict]:
    """The JSON log lines of a command's stderr."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def write_config(folder, secret: bytes, channel_target: str, *, timeout_ms: int = 2000, database=None,
                 switch: str = "", extra: str = ""):
    """A switch.toml in `folder`: its database `database` (folder/switch.db by default) and `switch`
    lines in [switch], one channel "sim" at `channel_target`, one merchant "m_shop" with key "k1" of
    `secret`, and `extra` TOML after them."""
    path = folder / "switch.toml"
    path.write_text(f"""[switch]
listen = "127.0.0.1:0"
database = "{database or folder / 'switch.db'}"
grace_seconds = 3
{switch}
[[channels]]
name = "sim"
target = "{channel_target}"
timeout_ms = {timeout_ms}

[[merchants]]
id = "m_shop"
channel = "sim"
[[merchants.keys]]
id = "k1"
secret_hex = "{secret.hex()}"
{extra}""")
    return path
