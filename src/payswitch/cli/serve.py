"""`payswitch serve`: run the switch until SIGINT/SIGTERM, then drain in-flight calls; SIGHUP reloads
what is configured to reload (each file refused is logged and changes nothing).

Whatever keeps the switch from starting (the configuration, a flag, the listen address, the database,
a routing or risk file, the master key) ends the command with exit status 2 and a line naming the file
or flag and the field, never a traceback.
"""

import argparse
import asyncio
import logging
import signal
import sqlite3
import sys

from ..config import ConfigError, listen_address_problem, load_config
from . import preflight, runtime

log = logging.getLogger(__name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_DESCRIPTION = """\
Runs the payment switch that --config describes (examples/switch.toml is one that starts as it is).
It prints "payswitch listening on HOST:PORT" on stdout when it serves; everything else it says is a
log line on stderr.

signals:
  SIGTERM, SIGINT  stop accepting calls, give those in flight grace_seconds, then exit 0
  SIGHUP           re-read the routing and risk files and the listener's certificates, those that are
                   configured; a refused file is logged at ERROR and the ones in use stay

environment:
  PAYSWITCH_MASTER_KEY       64 hex digits sealing stored signing keys and vaulted cards (docs/vault.md);
  PAYSWITCH_MASTER_KEY_FILE  or a file holding them; without either the switch keeps no card numbers
  PAYSWITCH_MASTER_KEY_ID    the master key's id (default mk1)
  secret_env, token_env      the variables the configuration names for merchants' secrets and the admin token
  PAYSWITCH_NO_EXTENSIONS=1  use the pure-Python hot path; PAYSWITCH_REQUIRE_EXTENSIONS=1 refuses to start
                             without the compiled one

log levels: DEBUG, INFO (default: start, reloads, keys, resolved payments), WARNING (channels that do not
resolve, plaintext off loopback, no master key), ERROR (refused reloads, overdue payments), CRITICAL.

exit status: 0 after a clean stop; 2 when something keeps it from starting, named on one line of
stderr (`payswitch config check FILE` finds the same problems without starting anything)."""


def _listen_address(text: str) -> str:
    problem = listen_address_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def _database_path(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("must name a file")
    return text


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="run the payment switch", description=_DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="TOML configuration file")
    parser.add_argument("--db", type=_database_path, help="SQLite database path (overrides [switch] database)")
    parser.add_argument("--listen", type=_listen_address, metavar="HOST:PORT",
                        help="address to listen on (overrides [switch] listen); port 0 takes any free one")
    parser.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default="INFO",
                        help="the least severe records logged (default %(default)s)")
    parser.add_argument("--log-format", choices=("json", "text"), default="json",
                        help="JSON lines (default) or text lines; both redact card data and secrets")
    parser.set_defaults(handler=run)


def _refuse(text: str) -> int:
    """Prints why the switch does not start, each line prefixed with the command; exit status 2."""
    for line in text.splitlines():
        print(f"payswitch serve: {line}", file=sys.stderr)
    return 2


def _named(args, flag: str, value, field: str) -> str:
    """How a refusal names a setting: the flag when it was given, else the file and the field."""
    return f"--{flag} {value}" if value is not None else f"{args.config}: {field}"


async def _serve(config, args) -> int:
    from ..keys.sealing import MasterKeyError, SealingError
    from ..keys.store import SigningKeyError
    from ..server.app import ListenerError, SwitchApp
    from ..store.base import StoreError
    from ..toml_lines import ConfigError as RulesError

    try:
        app = SwitchApp(config, database=args.db, listen=args.listen)
    except RulesError as error:
        return _refuse(str(error))
    except MasterKeyError as error:
        return _refuse(f"master key refused: {error}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task] = set()

    def reload_on_sighup() -> None:
        task = loop.create_task(_reload(app))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    # Always handled: without a handler SIGHUP's default action kills the process, and logrotate or
    # a service manager's reload sends it to switches with nothing to reload as well.
    loop.add_signal_handler(signal.SIGHUP, reload_on_sighup)
    with runtime.stop_on_signals(stop):
        try:
            port = await app.start()
        except (SigningKeyError, SealingError) as error:
            return _refuse(f"stored signing keys cannot be used: {error}")
        except ListenerError as error:
            why = preflight.listen_problem(error.address) or "grpc could not bind it (GRPC_VERBOSITY=debug says why)"
            return _refuse(f"{_named(args, 'listen', args.listen, 'switch.listen')}: cannot listen on "
                           f"{error.address}: {why}")
        except (StoreError, sqlite3.Error) as error:
            return _refuse(f"{_named(args, 'db', args.db, 'switch.database')}: {error}")
        runtime.tune_garbage_collection_for_serving()
        host = app.listen.rsplit(":", 1)[0]
        print(f"payswitch listening on {host}:{port}", flush=True)
        await stop.wait()
        log.info("stopping: finishing in-flight calls (grace %g s)", config.grace_seconds)
        await app.stop()
    log.info("stopped")
    return 0


async def _reload(app) -> None:
    from ..tls import TlsConfigError
    from ..toml_lines import ConfigError as RulesError

    if app.config.routing is None and app.config.risk is None and app.certificates is None:
        log.info("SIGHUP: nothing to reload (no routing, risk or TLS file is configured); serving on")
        return
    if app.config.routing is not None or app.config.risk is not None:
        try:
            await app.reload_rules()
        except RulesError as error:
            logging.getLogger("payswitch.routing").error("routing reload refused, the rules in use stay:\n%s", error)
    if app.certificates is not None:
        try:
            await app.reload_certificates()
        except TlsConfigError as error:
            logging.getLogger("payswitch.tls").error("certificate reload refused, the certificate in use stays: %s",
                                                     error)


def run(args) -> int:
    # Until the event loop handles SIGHUP, its default action would end a switch still starting.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    runtime.configure_logging(args.log_level, json=args.log_format == "json")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        return _refuse(str(error))
    database = args.db if args.db is not None else config.database
    problem = preflight.database_problem(database)
    if problem is not None:
        return _refuse(f"{_named(args, 'db', args.db, 'switch.database')}: {problem}")
    listen = args.listen if args.listen is not None else config.listen
    problem = preflight.listen_problem(listen)
    if problem is not None:
        return _refuse(f"{_named(args, 'listen', args.listen, 'switch.listen')}: cannot listen on {listen}: {problem}")
    for unresolved in preflight.unresolved_channels(config.channels):
        log.warning("%s", unresolved)
    return runtime.run(_serve(config, args))
