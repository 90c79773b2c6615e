"""Calling a running switch's SwitchAdmin from the command line: the options every such command
shares (target, token variable, deadline, TLS) and one call that reports a refusal the same way.

The admin token is read from an environment variable, never from the command line, where `ps` and
shell history would keep it.
"""

import argparse
import os
import sys

import grpc

from ..client.errors import error_details
from ..tls import sync_channel
from ..v1 import admin_pb2_grpc
from . import arguments


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default="127.0.0.1:50051", help="the switch, HOST:PORT (default %(default)s)")
    parser.add_argument("--token-env", default="PAYSWITCH_ADMIN_TOKEN",
                        help="environment variable holding the admin token (default %(default)s)")
    parser.add_argument("--timeout", type=arguments.positive_float, default=10.0,
                        help="seconds (default %(default)s)")
    arguments.add_tls_arguments(parser)


def call(args: argparse.Namespace, command: str, method: str, request):
    """The response, or None after printing why not to stderr (`args.exit_status` says how bad)."""
    token = os.environ.get(args.token_env)
    if not token:
        print(f"payswitch {command}: set {args.token_env} to the admin token", file=sys.stderr)
        args.exit_status = 2
        return None
    with sync_channel(args.target, arguments.client_tls(args)) as channel:
        stub = getattr(admin_pb2_grpc.SwitchAdminStub(channel), method)
        try:
            return stub(request, metadata=(("authorization", f"Bearer {token}"),), timeout=args.timeout)
        except grpc.RpcError as error:
            details = error_details(error)
            fields = "".join(f"\n  {name}: {text}" for name, text in details.field_violations.items()
                             if name not in (error.details() or ""))
            print(f"payswitch {command}: {error.code().name} {details.reason}: {error.details()}{fields}",
                  file=sys.stderr)
            args.exit_status = 1
            return None
