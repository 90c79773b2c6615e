"""`payswitch risk check FILE`: validate a risk rules file before the switch loads it (docs/risk.md);
with --config, its limits may name only the switch's merchants. Exit 0 for a good file, 1 with every
problem on stderr, each named by its line."""

import argparse
import sys

from ..risk.config import RiskConfigError, load_risk
from .config_check import configuration_for_names


def register(subparsers) -> None:
    parser = subparsers.add_parser("risk", help="check a risk rules file",
                                   description="Validate risk rules files (see docs/risk.md).")
    commands = parser.add_subparsers(dest="risk_command", required=True, metavar="SUBCOMMAND")
    check = commands.add_parser("check", help="validate a risk file; every problem is reported with its line")
    check.add_argument("file", metavar="FILE", help="the risk TOML file")
    check.add_argument("--config", metavar="SWITCH_TOML",
                       help="the switch configuration: limits may name only its merchants")
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    known_merchants = None
    if args.config is not None:
        switch = configuration_for_names(args.config)
        if switch is None:
            return 1
        known_merchants = switch.merchant_ids()
    try:
        config = load_risk(args.file, known_merchants)
    except RiskConfigError as error:
        print(error, file=sys.stderr)
        return 1
    window = config.duplicate_window_seconds
    blocked = config.blocklist
    print(f"{args.file}: ok: version {config.version}, {len(config.limits)} limits, {len(config.velocity)} "
          f"velocity rules, blocked: {len(blocked.bins)} BINs, {len(blocked.cards)} cards, "
          f"{len(blocked.countries)} countries; duplicates: {'off' if window is None else f'{window} s'}")
    return 0
