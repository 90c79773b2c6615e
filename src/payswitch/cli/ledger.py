"""`payswitch ledger verify`: every transaction balances and balances match payments."""

import os
import sys

from . import runtime


def register(subparsers) -> None:
    parser = subparsers.add_parser("ledger", help="ledger tools")
    commands = parser.add_subparsers(dest="ledger_command", required=True, metavar="COMMAND")
    verify = commands.add_parser("verify", help="check the double-entry ledger against the payments")
    verify.add_argument("--db", required=True, help="SQLite database path")
    verify.set_defaults(handler=run_verify)


async def verify_database(path: str):
    from ..ledger.verify import verify_ledger
    from ..store.sqlite import SqliteStore

    store = SqliteStore(path)
    await store.open()
    try:
        return await verify_ledger(store)
    finally:
        await store.close()


def run_verify(args) -> int:
    if not os.path.exists(args.db):
        print(f"payswitch ledger verify: no database at {args.db}", file=sys.stderr)
        return 2
    report = runtime.run(verify_database(args.db))
    print(report.summary())
    return 0 if report.ok else 1
