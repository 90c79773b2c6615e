"""`payswitch bench`: an end-to-end load generator, measured against a bare gRPC echo server in the same run.

Without --target it starts `payswitch serve` in a subprocess (so the load generator never shares its
GIL) with the built-in simulator channel and a SQLite store in a temporary folder, durable as in
production. Every request is a unique, signed authorization with an approving test card. The echo
baseline runs first with the same mode, concurrency and message sizes; the switch's throughput is
reported as a ratio of it. Exits 1 when any operation failed or none succeeded.
"""

import json
import os
import secrets
import shlex
import sys

from . import arguments

DEFAULT_CONCURRENCY = {"unary": 16, "batch": 4, "stream": 4}
DURABILITY = "SQLite WAL, synchronous=FULL (SqliteStore refuses to open otherwise)"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="measure end-to-end throughput and latency against a bare gRPC echo baseline",
        description="Measure throughput and latency end to end, beside a bare gRPC echo server measured in "
        "the same run. Without --target, starts its own switch (simulator channel, SQLite store). "
        "Exits 1 when any operation failed or none succeeded.")
    target = parser.add_argument_group("an external switch (default: start one)")
    target.add_argument("--target", help="HOST:PORT of a running switch")
    target.add_argument("--merchant", help="merchant id to sign as (with --target)")
    target.add_argument("--key-id", default="k1", help="signing key id (default %(default)s)")
    secret = target.add_mutually_exclusive_group()
    secret.add_argument("--secret-hex", help="the key's secret, as hex (visible to `ps`; prefer --secret-env)")
    secret.add_argument("--secret-env", help="environment variable holding the key's secret, as hex")
    parser.add_argument("--mode", choices=("unary", "batch", "stream"), default="unary",
                        help="unary Authorize calls, Batch calls, or batches over one Stream per connection "
                             "(default %(default)s)")
    parser.add_argument("--concurrency", type=arguments.positive_int,
                        help="calls (or stream messages) in flight; default 16 for unary, 4 otherwise")
    parser.add_argument("--batch-size", type=arguments.int_between(1, 1000), default=100,
                        help="authorizations per Batch call or Stream message (default %(default)s)")
    parser.add_argument("--duration", type=arguments.positive_float, default=10.0,
                        help="seconds measured, per server (default %(default)s)")
    parser.add_argument("--warmup", type=arguments.non_negative_float, default=1.0,
                        help="seconds run before measuring, excluded from the figures (default %(default)s)")
    parser.add_argument("--processes", type=arguments.positive_int, default=1,
                        help="load-generator processes; the in-flight calls are split among them (default 1)")
    parser.add_argument("--connections", type=arguments.positive_int, default=1,
                        help="gRPC connections per load-generator process (default 1)")
    parser.add_argument("--timeout", type=arguments.positive_float, default=30.0,
                        help="deadline of each call, in seconds; calls are never retried (default %(default)s)")
    parser.add_argument("--no-echo", action="store_true", help="skip the echo baseline")
    parser.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE")
    parser.set_defaults(handler=run)


def _external_credentials(args):
    from ..loadgen.local_switch import Credentials

    if not args.merchant:
        raise ValueError("--target needs --merchant")
    text = os.environ.get(args.secret_env) if args.secret_env else args.secret_hex
    if text is None:
        raise ValueError("--target needs --secret-hex or --secret-env (set in the environment)")
    try:
        return (Credentials(args.merchant, args.key_id, bytes.fromhex(text)),)
    except ValueError:
        raise ValueError("the secret must be written as hex") from None


def _spec(args, name: str, target: str, credentials, run_id: str):
    from ..loadgen.phase import PhaseSpec

    return PhaseSpec(name=name, target=target, mode=args.mode, concurrency=args.concurrency,
                     batch_size=1 if args.mode == "unary" else args.batch_size, warmup_s=args.warmup,
                     duration_s=args.duration, timeout_s=args.timeout, processes=args.processes,
                     connections=args.connections, credentials=tuple(credentials), run_id=run_id)


def _run_echo(args, credentials, run_id: str):
    from ..loadgen.phase import run_phase
    from ..loadgen.server_process import ServerProcess

    command = [sys.executable, "-m", "payswitch.loadgen.echo_server", "--listen", "127.0.0.1:0",
               "--batch-size", str(args.batch_size)]
    with ServerProcess(command, name="echo server") as echo:
        return run_phase(_spec(args, "echo", echo.address, credentials, run_id), echo)


def _run_local_switch(args, run_id: str):
    """The echo baseline first, then a switch of our own, its store counted after a graceful stop."""
    from ..loadgen.local_switch import LocalSwitch, switch_info
    from ..loadgen.phase import run_phase

    switch = LocalSwitch(merchant_count=args.processes * args.connections)
    try:
        echo = None if args.no_echo else _run_echo(args, switch.merchants, run_id)
    except BaseException:
        switch.cleanup()
        raise
    with switch:
        info = switch_info()
        result = run_phase(_spec(args, "switch", switch.address, switch.merchants, run_id), switch.process)
        switch.stop()
        store = {"durability": DURABILITY, "payments_stored": switch.stored_payments(),
                 "acknowledged": result.tally.acknowledged}
    return result, echo, info, "switch process (payswitch info)", store


def _run_external(args, run_id: str):
    from ..loadgen.phase import run_phase
    from .info import describe

    credentials = _external_credentials(args)
    echo = None if args.no_echo else _run_echo(args, credentials, run_id)
    result = run_phase(_spec(args, "switch", args.target, credentials, run_id))
    return result, echo, describe(), "load generator (the switch is external)", None


def _document(args, result, echo, info: dict, backend_source: str, store) -> dict:
    from ..loadgen import report

    figures = report.phase_figures(result)
    echo_figures = report.phase_figures(echo) if echo else None
    ratio = None
    if echo_figures and echo_figures["throughput"]:
        ratio = float(f"{figures['throughput'] / echo_figures['throughput']:.4g}")  # 4 significant digits
    return {
        "command": shlex.join(["payswitch", "bench", *_effective_options(args)]),
        "mode": args.mode,
        "target": args.target or "local",
        "concurrency": args.concurrency,
        "batch_size": 1 if args.mode == "unary" else args.batch_size,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "processes": args.processes,
        "connections_per_process": args.connections,
        **figures,
        "echo": echo_figures,
        "ratio_to_echo": ratio,
        "store": store,
        "backend": {"source": backend_source, "extensions": info.get("extensions"),
                    "protobuf_backend": info.get("protobuf_backend"), "event_loop": info.get("event_loop")},
        "versions": report.versions(info),
        "machine": report.machine(),
    }


def _effective_options(args) -> list[str]:
    """Every option with the value it took, defaults included, so the command reproduces the run;
    a secret given as hex is not repeated."""
    words = ["--mode", args.mode, "--concurrency", str(args.concurrency), "--batch-size", str(args.batch_size),
             "--duration", f"{args.duration:g}", "--warmup", f"{args.warmup:g}", "--processes", str(args.processes),
             "--connections", str(args.connections), "--timeout", f"{args.timeout:g}"]
    if args.target:
        words += ["--target", args.target, "--merchant", args.merchant, "--key-id", args.key_id]
        words += ["--secret-env", args.secret_env] if args.secret_env else ["--secret-hex", "HIDDEN"]
    if args.no_echo:
        words.append("--no-echo")
    if args.json:
        words += ["--json", args.json]
    return words


def run(args) -> int:
    from ..loadgen.phase import PhaseError
    from ..loadgen.server_process import ServerStartError

    args.concurrency = args.concurrency or DEFAULT_CONCURRENCY[args.mode]
    if args.concurrency < args.processes:
        print("payswitch bench: --concurrency must be at least --processes", file=sys.stderr)
        return 2
    run_id = secrets.token_hex(4)
    try:
        if args.target:
            outcome = _run_external(args, run_id)
        else:
            outcome = _run_local_switch(args, run_id)
    except ValueError as error:
        print(f"payswitch bench: {error}", file=sys.stderr)
        return 2
    except (PhaseError, ServerStartError) as error:
        print(f"payswitch bench: {error}", file=sys.stderr)
        return 1
    document = _document(args, *outcome)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
    from ..loadgen.report import format_table

    print(format_table(document))
    failed = document["errors"] or not document["operations"]
    return 1 if failed else 0
