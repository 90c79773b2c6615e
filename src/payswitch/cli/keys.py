"""`payswitch keys create|list|revoke`: manage merchants' signing keys on a running switch (docs/keys.md).

`create` prints the new secret once, on stdout, and says on stderr that it will not be shown again;
nothing else ever prints a secret.
"""

import argparse
import json
import sys
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from ..v1 import admin_pb2
from . import admin_calls


def _moment(text: str) -> Timestamp:
    """An ISO 8601 time with its UTC offset (2030-01-31T12:00:00Z), as a Timestamp."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time such as 2030-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, such as Z or +02:00")
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "keys", help="merchants' signing keys on a running switch: create, list, revoke",
        description="Manages merchants' signing keys through SwitchAdmin and prints the answers as JSON.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="issue a key; its secret is printed once",
                                description="Issues a key of 32 random bytes. The secret is printed on stdout "
                                "this once; the switch keeps it only sealed and cannot show it again.")
    create.add_argument("--merchant", required=True, help="the merchant id")
    create.add_argument("--key-id", default="", help="the key id (default: generated, k_ and 16 hex digits)")
    create.add_argument("--valid-from", type=_moment, metavar="ISO", help="verifies from this time (default: now)")
    create.add_argument("--valid-until", type=_moment, metavar="ISO", help="stops verifying at this time "
                        "(default: never)")

    listing = actions.add_parser("list", help="a merchant's keys, never their secrets")
    listing.add_argument("--merchant", default="", help="the merchant id (default: every merchant)")

    revoke = actions.add_parser("revoke", help="revoke a key: it stops verifying at once")
    revoke.add_argument("--merchant", required=True, help="the merchant id")
    revoke.add_argument("--key-id", required=True, help="the key id")

    for action in (create, listing, revoke):
        admin_calls.add_connection_arguments(action)
        action.set_defaults(handler=run)


def _request(args: argparse.Namespace):
    if args.action == "create":
        request = admin_pb2.CreateKeyRequest(merchant_id=args.merchant, key_id=args.key_id)
        if args.valid_from is not None:
            request.valid_from.CopyFrom(args.valid_from)
        if args.valid_until is not None:
            request.valid_until.CopyFrom(args.valid_until)
        return "CreateKey", request
    if args.action == "list":
        return "ListKeys", admin_pb2.ListKeysRequest(merchant_id=args.merchant)
    return "RevokeKey", admin_pb2.RevokeKeyRequest(merchant_id=args.merchant, key_id=args.key_id)


def run(args: argparse.Namespace) -> int:
    method, request = _request(args)
    response = admin_calls.call(args, f"keys {args.action}", method, request)
    if response is None:
        return args.exit_status
    if args.action == "create":
        print("payswitch keys create: the secret below is shown this once; give it to the merchant now. The "
              "switch keeps it only sealed and cannot show it again.", file=sys.stderr)
        print(json.dumps({"key": admin_calls.as_dict(response.key), "secret_hex": response.secret.hex()}, indent=2))
    else:
        admin_calls.print_answer(response)
    return 0
