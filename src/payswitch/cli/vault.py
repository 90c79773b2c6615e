"""`payswitch vault rotate`: a new data key for the card vault of a running switch (docs/vault.md)."""

import argparse

from ..v1 import admin_pb2
from . import admin_calls


def register(subparsers) -> None:
    parser = subparsers.add_parser("vault", help="the card vault of a running switch: rotate its data key")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    rotate = actions.add_parser("rotate", help="a new data key; every card re-sealed under it while serving",
                                description="Makes a new primary data key, re-seals every stored card number "
                                "under it while the switch keeps serving, then deletes the old keys.")
    admin_calls.add_connection_arguments(rotate)
    rotate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    response = admin_calls.call(args, "vault rotate", "RotateVaultKey", admin_pb2.RotateVaultKeyRequest())
    if response is None:
        return args.exit_status
    admin_calls.print_answer(response)
    return 0
