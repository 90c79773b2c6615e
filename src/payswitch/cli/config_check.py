"""`payswitch config check FILE`: what `serve` would refuse in a configuration, found without starting
anything. It reports the file's own problems, the routing and risk files it names (checked against its
channels and merchants), its certificate files and its database folder. The merchants' secrets need
not be in the environment: an unset secret_env or token_env variable is a note, not a problem.

Exit 0 with "ok", or 2 with every problem on stderr, one a line, each naming its file, line and field.
"""

import argparse
import sys

from ..config import SwitchConfig, check_config
from ..toml_lines import Problem
from . import preflight


def register(subparsers) -> None:
    parser = subparsers.add_parser("config", help="check a switch configuration without starting the switch",
                                   description="Validate switch configuration files (src/payswitch/config.py "
                                   "lists every key; examples/switch.toml is one that starts as it is).")
    commands = parser.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    check = commands.add_parser(
        "check", help="report every problem serve would refuse, without starting anything",
        description="Reports every problem `payswitch serve --config FILE` would refuse: the file's own, the "
        "routing and risk files it names, its certificate files and its database folder. Variables named by "
        "secret_env or token_env need not be set here (an unset one is a note). Exit 0 and ok, or 2 with every "
        "problem, one a line.")
    check.add_argument("file", metavar="FILE", help="the switch's TOML configuration")
    check.set_defaults(handler=run_check)


def configuration_for_names(path: str) -> SwitchConfig | None:
    """The switch configuration whose channel and merchant names `routes` and `risk` check their files
    against (its secrets need not be set); None, after printing its problems, when it has any."""
    report = check_config(path)
    if report.problems:
        for problem in report.problems:
            print(problem.format(report.source), file=sys.stderr)
        return None
    return report.config


def _rule_files(config: SwitchConfig) -> tuple[list[str], list[str]]:
    """Problems (formatted) of the routing and risk files, and a summary of each one that is good."""
    from ..risk.config import load_risk
    from ..routing.config import load_routing
    from ..toml_lines import ConfigError

    problems, summaries = [], []
    loaders = (("routing", config.routing, lambda path: load_routing(path, config.channel_names(),
                                                                     config.merchant_ids())),
               ("risk", config.risk, lambda path: load_risk(path, config.merchant_ids())))
    for what, path, load in loaders:
        if path is None:
            summaries.append(f"no {what} file")
            continue
        try:
            rules = load(path)
        except ConfigError as error:
            problems.extend(problem.format(error.source) for problem in error.problems)
        else:
            summaries.append(f"{what} {path} (version {rules.version})")
    return problems, summaries


def run_check(args: argparse.Namespace) -> int:
    report = check_config(args.file)
    problems = [problem.format(report.source) for problem in report.problems]
    notes = list(report.notes)
    config = report.config
    summaries: list[str] = []
    if config is not None:
        database = preflight.database_problem(config.database)
        if database is not None:
            problems.append(Problem(None, "switch.database", database).format(report.source))
        rule_problems, summaries = _rule_files(config)
        problems.extend(rule_problems)
        notes.extend(f"{report.source}: {unresolved}" for unresolved in preflight.unresolved_channels(config.channels))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 2
    print(f"{report.source}: ok: {len(config.channels)} channels, {len(config.merchants)} merchants, "
          + ", ".join(summaries)
          + f", {'TLS' if config.tls else 'no TLS'}, {'an' if config.admin else 'no'} admin service")
    return 0
