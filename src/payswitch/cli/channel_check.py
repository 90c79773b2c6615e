"""`payswitch channel-check`: run the PaymentChannel conformance suite against a channel team's service.

Exit status: 0 when no check failed, 1 when one did, 2 when the target could not be reached at all, is
not a PaymentChannel (or the arguments were wrong), so a CI job can tell "the channel breaks the
contract" from "no channel there".
"""

import argparse
import sys

from ..channels import conformance
from . import arguments, runtime


def _card_number(text: str) -> str:
    if not (text.isascii() and text.isdigit() and 12 <= len(text) <= 19):
        # Never echo the value: it may be a real card number.
        raise argparse.ArgumentTypeError("must be 12 to 19 digits")
    return text


def _optional_card_number(text: str) -> str:
    return text if text == "" else _card_number(text)


def register(subparsers) -> None:
    defaults = conformance.CheckOptions()
    parser = subparsers.add_parser(
        "channel-check",
        help="check that a PaymentChannel service keeps the contract",
        description="Run the PaymentChannel conformance checks against HOST:PORT (gRPC; TLS with --tls-ca) and print "
        "one row per check. Exit 0 when none failed, 1 when one did, 2 when the target cannot be reached or is "
        "not a PaymentChannel. "
        "See docs/channel-development.md.",
    )
    parser.add_argument("--target", required=True, help="the channel's address, HOST:PORT")
    parser.add_argument("--timeout", type=arguments.positive_float, default=defaults.timeout,
                        help="deadline of every call, in seconds (default %(default)s)")
    parser.add_argument("--approve-card", type=_card_number, default=defaults.approve_card,
                        help="a test card the channel approves (default: the simulator's 4242...4242)")
    parser.add_argument("--decline-card", type=_optional_card_number, default=defaults.decline_card,
                        help="a test card the channel declines; '' skips the decline checks "
                        "(default: the simulator's 400000...0002)")
    parser.add_argument("--only", nargs="+", action="extend", default=[], metavar="NAME",
                        choices=conformance.check_names(),
                        help="run only these checks: " + ", ".join(conformance.check_names()))
    arguments.add_tls_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    options = conformance.CheckOptions(timeout=args.timeout, approve_card=args.approve_card,
                                       decline_card=args.decline_card, only=tuple(args.only))
    decline = conformance.mask_card(options.decline_card) if options.decline_card else "none"
    print(f"channel-check {args.target}: approve card {conformance.mask_card(options.approve_card)}, "
          f"decline card {decline}, deadline {options.timeout:g} s", flush=True)
    try:
        results = runtime.run(conformance.run_checks(args.target, options, arguments.client_tls(args)))
    except (conformance.TargetUnreachable, conformance.NotAPaymentChannel) as no_channel:
        print(f"channel-check: {no_channel}", file=sys.stderr)
        return 2
    print(conformance.render_table(results))
    failed = [result for result in results if result.passed is False]
    if failed:
        clauses = {registered.name: registered.clause for registered in conformance.CHECKS}
        print("\nclauses broken:")
        for result in failed:
            print(f"  {result.name}: {clauses[result.name]}")
    print(conformance.summary(results))
    return 1 if failed else 0
