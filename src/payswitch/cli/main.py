"""Entry point of the `payswitch` console script: builds the parser from the command modules."""

import argparse
import importlib
import sys

# Each module defines register(subparsers), which adds its parser and sets `handler`.
COMMAND_MODULES = ("serve", "config_check", "channel_sim", "demo", "ledger", "info", "bench", "routes",
                   "channel_check", "admin", "keys", "vault", "risk")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payswitch", description="A high-throughput payment switch.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"payswitch.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
