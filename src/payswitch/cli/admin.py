"""`payswitch admin`: call a running switch's SwitchAdmin service (docs/operations.md)."""

import argparse

from ..v1 import admin_pb2
from . import admin_calls

_CALLS = {
    "reload": ("ReloadRouting", admin_pb2.ReloadRoutingRequest),
    "routing": ("GetRouting", admin_pb2.GetRoutingRequest),
    "health": ("ListChannelHealth", admin_pb2.ListChannelHealthRequest),
    "pending": ("ListPendingOperations", admin_pb2.ListPendingOperationsRequest),
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "admin", help="operate a running switch: reload routing and risk, channel health, pending operations",
        description="Calls SwitchAdmin on a running switch (one with an [admin] section, docs/operations.md) and "
        "prints the answer as JSON, field names in snake_case.")
    parser.add_argument("action", choices=sorted(_CALLS),
                        help="reload: re-read the routing file and the risk rules (both, or neither when one is "
                        "refused); routing: the table and risk rules in use; health: each channel's breaker and "
                        "recent statistics; pending: operations of unknown outcome")
    parser.add_argument("--older-than", type=int, default=0, metavar="SECONDS",
                        help="pending: only operations pending at least this long")
    admin_calls.add_connection_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    method, request_type = _CALLS[args.action]
    request = request_type(older_than_seconds=args.older_than) if args.action == "pending" else request_type()
    response = admin_calls.call(args, f"admin {args.action}", method, request)
    if response is None:
        return args.exit_status
    admin_calls.print_answer(response)
    return 0
