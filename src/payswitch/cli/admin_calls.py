"""Calling a running switch's SwitchAdmin from the command line: the options every such command
shares (target, token variable, deadline, TLS), one call that reports a refusal the same way, and one
way of printing answers.

The admin token is read from an environment variable, never from the command line, where `ps` and
shell history would keep it.
"""

import argparse
import json
import os
import sys

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from ..client.errors import error_details
from ..tls import sync_channel
from ..v1 import admin_pb2_grpc
from . import arguments

_64_BIT_INTEGERS = frozenset({FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
                              FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64})


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
            if error.code() is grpc.StatusCode.UNIMPLEMENTED:
                print(f"payswitch {command}: the switch at {args.target} has no admin service configured (it "
                      "needs an [admin] section in its configuration: docs/operations.md)", file=sys.stderr)
                args.exit_status = 1
                return None
            details = error_details(error)
            fields = "".join(f"\n  {name}: {text}" for name, text in details.field_violations.items()
                             if name not in (error.details() or ""))
            print(f"payswitch {command}: {error.code().name} {details.reason}: {error.details()}{fields}",
                  file=sys.stderr)
            args.exit_status = 1
            return None


def as_dict(message) -> dict:
    """An answer as the admin commands print it: field names as the .proto spells them (snake_case),
    every field present, and 64-bit integers as JSON numbers (protobuf's JSON writes them as strings,
    for JavaScript's sake; these answers are read by people and by scripts)."""
    data = json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)
    return _with_numbers(message.DESCRIPTOR, data)


def _with_numbers(descriptor, data: dict) -> dict:
    for field in descriptor.fields:
        if field.name not in data:
            continue
        value = data[field.name]
        if field.type in _64_BIT_INTEGERS:
            data[field.name] = [int(item) for item in value] if isinstance(value, list) else int(value)
        elif field.message_type is not None and not field.message_type.full_name.startswith("google.protobuf."):
            # Well-known types (Timestamp) keep their own JSON form, a string.
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    _with_numbers(field.message_type, item)
    return data


def print_answer(message) -> None:
    print(json.dumps(as_dict(message), indent=2))
