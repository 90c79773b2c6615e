"""`payswitch admin`: call a running switch's SwitchAdmin service (docs/operations.md).

The token is read from an environment variable, never from the command line, where `ps` and shell
history would show it.
"""

import argparse
import os
import sys

import grpc
from google.protobuf import json_format

from ..client.errors import error_details
from ..tls import sync_channel
from ..v1 import admin_pb2, admin_pb2_grpc
from . import arguments

_CALLS = {
    "reload": ("ReloadRouting", admin_pb2.ReloadRoutingRequest),
    "routing": ("GetRouting", admin_pb2.GetRoutingRequest),
    "health": ("ListChannelHealth", admin_pb2.ListChannelHealthRequest),
    "pending": ("ListPendingOperations", admin_pb2.ListPendingOperationsRequest),
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "admin", help="operate a running switch: reload routing, channel health, pending operations",
        description="Calls SwitchAdmin on a running switch and prints the answer as JSON.")
    parser.add_argument("action", choices=sorted(_CALLS),
                        help="reload: re-read the routing file; routing: the table in use; health: each channel's "
                        "breaker and recent statistics; pending: operations of unknown outcome")
    parser.add_argument("--target", default="127.0.0.1:50051", help="the switch, HOST:PORT (default %(default)s)")
    parser.add_argument("--token-env", default="PAYSWITCH_ADMIN_TOKEN",
                        help="environment variable holding the admin token (default %(default)s)")
    parser.add_argument("--older-than", type=int, default=0, metavar="SECONDS",
                        help="pending: only operations pending at least this long")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default %(default)s)")
    arguments.add_tls_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    token = os.environ.get(args.token_env)
    if not token:
        print(f"payswitch admin: set {args.token_env} to the admin token", file=sys.stderr)
        return 2
    method, request_type = _CALLS[args.action]
    request = request_type(older_than_seconds=args.older_than) if args.action == "pending" else request_type()
    with sync_channel(args.target, arguments.client_tls(args)) as channel:
        call = getattr(admin_pb2_grpc.SwitchAdminStub(channel), method)
        try:
            response = call(request, metadata=(("authorization", f"Bearer {token}"),), timeout=args.timeout)
        except grpc.RpcError as error:
            details = error_details(error)
            print(f"payswitch admin {args.action}: {error.code().name} {details.reason}: {error.details()}",
                  file=sys.stderr)
            return 1
    print(json_format.MessageToJson(response, always_print_fields_with_no_presence=True))
    return 0
