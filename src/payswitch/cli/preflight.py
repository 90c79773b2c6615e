"""What `serve` and `config check` find out about this machine before anything starts: whether the
database can be made where the configuration says, whether the listen address can be bound, and which
channel targets do not resolve here. A configuration can be right and this machine still not fit it."""

import ipaddress
import os
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from ..config import ChannelConfig

#: How long all channel targets together may take to resolve before start-up goes on without them.
RESOLVE_WAIT_S = 2.0
_LITERAL_SCHEMES = ("ipv4:", "ipv6:", "unix:", "unix-abstract:")


def database_problem(path: str) -> str | None:
    """Why SQLite could not open `path` read-write with its WAL beside it, or None."""
    if path == ":memory:":
        return None
    database = Path(path)
    folder = database.parent
    if not folder.is_dir():
        return f"the folder {folder} does not exist (create it, or name another database)"
    if database.exists() and not database.is_file():
        return f"{database} is not a file"
    # WAL mode writes -wal and -shm files beside the database, so the folder must be writable too.
    if not os.access(folder, os.W_OK | os.X_OK) or (database.exists() and not os.access(database, os.R_OK | os.W_OK)):
        return f"{database} cannot be written by this user"
    return None


def listen_problem(address: str) -> str | None:
    """Why `address` (HOST:PORT) cannot be bound here, found by binding it as grpc does, or None.
    Asked before grpc is, so the refusal is ours, in one line; a port taken in between still fails
    grpc's own bind. Like grpc, a name is bindable when one of its addresses is."""
    host, _, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        found = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        return f"{host} does not resolve ({error.strerror})"
    failures = []
    for family, kind, protocol, _name, socket_address in found:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc binds
            try:
                probe.bind(socket_address)
            except OSError as error:
                failures.append((error.strerror or str(error)).lower())
            else:
                return None
    return failures[0] if failures else f"{host} resolves to no address"


def _host_to_resolve(target: str) -> str | None:
    """The host name in a channel target that DNS must resolve; None for in-process channels,
    sockets and literal addresses."""
    if not target or target.startswith(_LITERAL_SCHEMES) or target == "in-process":
        return None
    if target.startswith("dns:"):
        target = target.removeprefix("dns:").removeprefix("//")
        target = target.partition("/")[2] if "/" in target else target  # dns://authority/host:port
    host = target.rpartition(":")[0].removeprefix("[").removesuffix("]") or target
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


def unresolved_channels(channels: Iterable[ChannelConfig], wait_s: float = RESOLVE_WAIT_S) -> list[str]:
    """A sentence for each channel whose host does not resolve here. The look-ups run at once, on
    daemon threads, so a resolver that hangs costs start-up at most `wait_s` and never its exit."""
    answers: dict[str, str | None] = {}

    def resolve(host: str) -> None:
        try:
            socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            answers[host] = None
        except OSError as error:
            answers[host] = getattr(error, "strerror", None) or str(error)

    hosts = {channel.name: host for channel in channels if (host := _host_to_resolve(channel.target)) is not None}
    threads = [threading.Thread(target=resolve, args=(host,), daemon=True, name=f"resolve-{host}")
               for host in set(hosts.values())]
    deadline = time.monotonic() + wait_s
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    unresolved = []
    for name, host in hosts.items():
        if host not in answers:
            unresolved.append(f"channel {name}: {host} did not resolve within {wait_s:g} s; calls to it fail until "
                              "it does")
        elif answers[host] is not None:
            unresolved.append(f"channel {name}: {host} does not resolve here ({answers[host]}); calls to it fail "
                              "until it does")
    return unresolved
