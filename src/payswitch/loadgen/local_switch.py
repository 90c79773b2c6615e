"""A switch of its own for the benchmark: `payswitch serve` in a subprocess with the built-in simulator
channel and a SQLite store in a temporary folder, durable as in production (WAL, synchronous=FULL)."""

import json
import secrets
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .server_process import ServerProcess


@dataclass(frozen=True)
class Credentials:
    """One merchant key the load generator signs with."""

    merchant_id: str
    key_id: str
    secret: bytes = field(repr=False)


def switch_config(database: str, merchants: list[Credentials], *, grace_seconds: float = 10) -> str:
    lines = ["[switch]", 'listen = "127.0.0.1:0"', f'database = "{database}"', f"grace_seconds = {grace_seconds}", "",
             "[[channels]]", 'name = "sim"', 'target = "in-process"', "timeout_ms = 3000", ""]
    for merchant in merchants:
        lines += ["[[merchants]]", f'id = "{merchant.merchant_id}"', 'channel = "sim"', "[[merchants.keys]]",
                  f'id = "{merchant.key_id}"', f'secret_hex = "{merchant.secret.hex()}"', ""]
    return "\n".join(lines)


class LocalSwitch:
    """Starts on entry, stops with SIGTERM (a graceful drain) on exit and removes its folder."""

    def __init__(self, merchant_count: int = 1):
        self.merchants = [Credentials(f"m_bench_{i + 1}", "k1", secrets.token_bytes(32)) for i in range(merchant_count)]
        self._folder = tempfile.TemporaryDirectory(prefix="payswitch-bench-")
        folder = Path(self._folder.name)
        self.database = str(folder / "bench.db")
        self.config_path = folder / "switch.toml"
        self.config_path.write_text(switch_config(self.database, self.merchants))
        self.process: ServerProcess | None = None

    def __enter__(self) -> "LocalSwitch":
        try:
            command = [sys.executable, "-m", "payswitch", "serve", "--config", str(self.config_path),
                       "--log-level", "WARNING"]
            self.process = ServerProcess(command, name="payswitch serve")
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc_info):
        self.stop()
        self.cleanup()

    @property
    def address(self) -> str:
        return self.process.address

    def stop(self) -> int | None:
        """SIGTERM and wait for the drain; returns the exit status (None if it never started)."""
        return None if self.process is None else self.process.stop()

    def cleanup(self) -> None:
        """Removes the folder, database included."""
        if self.process is not None:
            self.process.close()
        self._folder.cleanup()

    def stored_payments(self) -> int:
        """Payments in the store; read after stop(), when the switch has checkpointed and let go of it."""
        connection = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
        try:
            return connection.execute("SELECT count(*) FROM payments").fetchone()[0]
        finally:
            connection.close()


def switch_info() -> dict:
    """`payswitch info` as the switch subprocess sees it (same interpreter and environment)."""
    result = subprocess.run([sys.executable, "-m", "payswitch", "info"], capture_output=True, text=True, timeout=60)
    return json.loads(result.stdout)
