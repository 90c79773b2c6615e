"""`payswitch serve`: run the switch until SIGINT/SIGTERM, then drain in-flight calls; SIGHUP reloads
the routing and risk files and the listener's certificate files (each one refused is logged and changes
nothing)."""

import asyncio
import logging
import signal
import sys

from ..config import ConfigError, load_config
from . import runtime


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="run the payment switch")
    parser.add_argument("--config", required=True, help="TOML configuration file")
    parser.add_argument("--db", help="SQLite database path (overrides [switch] database)")
    parser.add_argument("--listen", help="address to listen on (overrides [switch] listen)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=("json", "text"), default="json",
                        help="JSON lines (default) or text lines; both redact card data and secrets")
    parser.set_defaults(handler=run)


async def _serve(config, args) -> int:
    from ..server.app import SwitchApp

    from ..keys.sealing import MasterKeyError, SealingError
    from ..keys.store import SigningKeyError
    from ..toml_lines import ConfigError as RulesError

    try:
        app = SwitchApp(config, database=args.db, listen=args.listen)
    except RulesError as error:
        print(f"payswitch serve: {error.source} refused:\n{error}", file=sys.stderr)
        return 2
    except MasterKeyError as error:
        print(f"payswitch serve: master key refused: {error}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task] = set()

    def reload_on_sighup() -> None:
        task = loop.create_task(_reload(app))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    if config.routing is not None or config.risk is not None or config.tls is not None:
        loop.add_signal_handler(signal.SIGHUP, reload_on_sighup)
    with runtime.stop_on_signals(stop):
        try:
            port = await app.start()
        except (SigningKeyError, SealingError) as error:
            print(f"payswitch serve: stored signing keys cannot be used: {error}", file=sys.stderr)
            return 2
        runtime.tune_garbage_collection_for_serving()
        host = (args.listen or config.listen).rsplit(":", 1)[0]
        print(f"payswitch listening on {host}:{port}", flush=True)
        await stop.wait()
        print(f"stopping: finishing in-flight calls (grace {config.grace_seconds:g} s)", flush=True)
        await app.stop()
    print("stopped", flush=True)
    return 0


async def _reload(app) -> None:
    from ..tls import TlsConfigError
    from ..toml_lines import ConfigError

    if app.config.routing is not None or app.config.risk is not None:
        try:
            await app.reload_rules()
        except ConfigError as error:
            logging.getLogger("payswitch.routing").error("routing reload refused, the rules in use stay:\n%s", error)
    if app.certificates is not None:
        try:
            await app.reload_certificates()
        except TlsConfigError as error:
            logging.getLogger("payswitch.tls").error("certificate reload refused, the certificate in use stays: %s",
                                                     error)


def run(args) -> int:
    runtime.configure_logging(args.log_level, json=args.log_format == "json")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"payswitch serve: {error}", file=sys.stderr)
        return 2
    return runtime.run(_serve(config, args))
