"""`payswitch routes check|explain`: validate a routing file before the switch loads it, and show why a
payment would be routed as it is.

check exits 0 for a good file and 1 with every problem on stderr; explain exits 0 when a rule matches,
2 when none does (the switch would use the merchant's default channel) and 1 for a bad file. With
--config, both check the file against the switch's channels and merchants, and explain says what the
merchant's default channel is.
"""

import argparse
import re
import sys

from ..payments.money import CURRENCY_EXPONENTS
from ..routing.config import RoutingConfigError, load_routing
from ..routing.table import RoutingTable
from .config_check import configuration_for_names


def _minor_units(text: str) -> int:
    """Amounts are integers of minor units: '10.50' is refused rather than guessed at."""
    if not re.fullmatch(r"[0-9]{1,19}", text):
        raise argparse.ArgumentTypeError(
            f"must be a whole number of minor units (1050 for 10.50 EUR), got {text!r}")
    return int(text)


def _digits(low: int, high: int, what: str):
    def parse(text: str) -> str:
        if not re.fullmatch(rf"[0-9]{{{low},{high}}}", text):
            raise argparse.ArgumentTypeError(f"must be {what} of {low} to {high} digits")
        return text
    return parse


def _currency(text: str) -> str:
    if text not in CURRENCY_EXPONENTS:
        raise argparse.ArgumentTypeError(f"must be an ISO 4217 code the switch knows (e.g. EUR), got {text!r}")
    return text


def _channel_names(text: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("must name at least one channel")
    return names


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "routes", help="check a routing file, or explain how it routes a payment",
        description="Validate routing files and explain their decisions (see docs/routing.md).")
    commands = parser.add_subparsers(dest="routes_command", required=True, metavar="SUBCOMMAND")

    check = commands.add_parser("check", help="validate a routing file; every problem is reported with its line")
    check.add_argument("file", metavar="FILE", help="the routing TOML file")
    known = check.add_mutually_exclusive_group()
    known.add_argument("--channels", type=_channel_names, metavar="A,B,C",
                       help="the channel names rules may use; without this or --config any name is accepted")
    known.add_argument("--config", metavar="SWITCH_TOML",
                       help="take the channel and merchant names from the switch configuration")
    check.set_defaults(handler=run_check)

    explain = commands.add_parser("explain", help="show, rule by rule, how a payment would be routed")
    explain.add_argument("file", metavar="FILE", help="the routing TOML file")
    explain.add_argument("--config", metavar="SWITCH_TOML", help="the switch configuration: its channels and "
                         "merchants are checked, and the merchant's default channel is shown")
    explain.add_argument("--merchant", required=True, help="merchant id")
    method = explain.add_mutually_exclusive_group(required=True)
    method.add_argument("--bin", type=_digits(6, 11, "a card number prefix"),
                        help="the card's first 6 to 11 digits (prefer this to --card)")
    method.add_argument("--card", type=_digits(12, 19, "a card number"),
                        help="a full card number; only its BIN and last 4 digits are printed")
    method.add_argument("--wallet", metavar="PROVIDER", help="a wallet payment from this provider (e.g. applepay)")
    explain.add_argument("--amount", type=_minor_units, required=True, help="integer minor units: 1050 for 10.50 EUR")
    explain.add_argument("--currency", type=_currency, required=True, help="ISO 4217 code, e.g. EUR")
    explain.set_defaults(handler=run_explain)


def _load(path: str, known_channels=None, known_merchants=None):
    try:
        return load_routing(path, known_channels, known_merchants)
    except RoutingConfigError as error:
        print(error, file=sys.stderr)
        return None


def run_check(args: argparse.Namespace) -> int:
    known_channels, known_merchants = args.channels, None
    if args.config is not None:
        switch = configuration_for_names(args.config)
        if switch is None:
            return 1
        known_channels, known_merchants = switch.channel_names(), switch.merchant_ids()
    config = _load(args.file, known_channels, known_merchants)
    if config is None:
        return 1
    print(f"{args.file}: ok: version {config.version}, {len(config.bins)} bins, {len(config.rules)} rules")
    return 0


def run_explain(args: argparse.Namespace) -> int:
    switch = None
    if args.config is not None:
        switch = configuration_for_names(args.config)
        if switch is None:
            return 1
        if args.merchant not in switch.merchant_ids():
            print(f"--merchant {args.merchant}: {args.config} configures no such merchant (it has "
                  f"{', '.join(sorted(switch.merchant_ids())) or 'none'})", file=sys.stderr)
            return 1
    config = (_load(args.file) if switch is None
              else _load(args.file, switch.channel_names(), switch.merchant_ids()))
    if config is None:
        return 1
    table = RoutingTable(config)
    card_number = args.bin or args.card
    method = "wallet" if args.wallet is not None else "card"
    explanation = table.explain(args.merchant, args.currency, args.amount, method, card_number, args.wallet)
    print(explanation.render())
    if explanation.rule is None and switch is not None:
        default = switch.default_channels().get(args.merchant)
        print(f"{args.config}: merchant {args.merchant}'s default channel is {default}" if default is not None else
              f"{args.config}: merchant {args.merchant} has no default channel: the switch answers "
              "FAILED_PRECONDITION no_route")
    return 0 if explanation.rule is not None else 2
