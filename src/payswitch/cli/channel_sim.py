"""`payswitch channel-sim`: serve the channel simulator over gRPC until SIGINT or SIGTERM."""

import argparse
import asyncio
import sys

from ..channels.simulator import ChannelSimulator
from ..channels.simulator_service import start_simulator_server
from . import arguments, runtime


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "channel-sim",
        help="serve the deterministic channel simulator (a fake bank) over gRPC",
        description="Serve the PaymentChannel simulator: test cards decide the outcome "
        "(see docs/channel-simulator.md). Prints 'channel-sim listening on HOST:PORT' when ready.",
    )
    parser.add_argument("--listen", default="127.0.0.1:50061",
                        help="address to bind, HOST:PORT; port 0 picks a free one (default %(default)s)")
    parser.add_argument("--latency-ms", type=arguments.non_negative_float, default=0.0,
                        help="delay added to every call, in milliseconds (default %(default)s)")
    parser.add_argument("--failure-rate", type=arguments.probability, default=0.0,
                        help="probability 0.0-1.0 of a simulated INTERNAL error before acting (default %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random source for --failure-rate")
    parser.add_argument("--timeout-delay", type=arguments.non_negative_float, default=30.0,
                        help="seconds the timeout test card holds its reply (default %(default)s)")
    parser.add_argument("--no-batch", dest="batch", action="store_false",
                        help="answer Batch with UNIMPLEMENTED, like a channel without it, so the switch "
                        "falls back to single calls")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--grace", type=arguments.non_negative_float, default=5.0,
                        help="seconds in-flight calls get to finish on shutdown (default %(default)s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    runtime.configure_logging(args.log_level)
    simulator = ChannelSimulator(
        latency_ms=args.latency_ms,
        failure_rate=args.failure_rate,
        seed=args.seed,
        timeout_delay_s=args.timeout_delay,
        batch_enabled=args.batch,
    )
    return runtime.run(_serve(simulator, args.listen, args.grace))


async def _serve(simulator: ChannelSimulator, listen: str, grace: float) -> int:
    stop = asyncio.Event()
    server, port = await start_simulator_server(simulator, listen)
    host = listen.rpartition(":")[0]
    print(f"channel-sim listening on {host}:{port}", flush=True)
    try:
        with runtime.stop_on_signals(stop):
            await stop.wait()
    finally:
        await server.stop(grace)
    print("channel-sim stopped", file=sys.stderr, flush=True)
    return 0


