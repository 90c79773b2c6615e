"""The risk file: a full example parses into the dataclasses, and every mistake is named by its line."""

import pytest

from payswitch.hotpath import risk_rules
from payswitch.risk.config import (Blocklist, Limit, RiskConfigError, VelocityRule, load_risk, parse_risk)
from payswitch.toml_lines import Problem

CARD_A = "a1" * 32
CARD_B = "B2" * 32

FULL_EXAMPLE = f"""\
# Risk for the EU launch.
version = "risk-2026-11-24"

[[limits]]
merchant = "m_acme"
currency = "USD"
max_amount_minor = 500000
max_daily_minor = 5000000

[[limits]]
name = "everyone-eur"
merchant = "*"
currency = "EUR"
max_amount_minor = 100000

[[velocity]]
name = "card-burst"
per = "card"
window_seconds = 600
max_count = 5

[[velocity]]
name = "merchant-usd-hour"
per = "merchant"
window_seconds = 3600
max_count = 10000
max_amount_minor = 90000000
currency = "USD"

[blocklist]
bins = [
    "400000",
    "41111111",
]
cards = ["{CARD_A}", "{CARD_B}"]
countries = ["KP", "IR"]

[duplicates]
window_seconds = 300

[memory]
max_tracked_cards = 50000
max_tracked_merchants = 2000
"""


def problems_of(text):
    with pytest.raises(RiskConfigError) as caught:
        parse_risk(text, "risk.toml")
    return caught.value.problems


def marked_line(text, marker="# <-"):
    """The 1-based line carrying the marker comment: where the test expects the problem."""
    return next(number for number, line in enumerate(text.splitlines(), 1) if marker in line)


def only_problem(text):
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


def risk_file(body):
    return f'version = "v1"\n{body}\n'


# ---- the full example ----------------------------------------------------------------------------


def test_full_example_parses_into_frozen_dataclasses():
    config = parse_risk(FULL_EXAMPLE, "risk.toml")
    assert config.version == "risk-2026-11-24" and config.source == "risk.toml"
    assert config.limits == (Limit("limits[0]", "m_acme", "USD", 500000, 5000000, 4),
                             Limit("everyone-eur", "*", "EUR", 100000, None, 10))
    assert config.velocity == (VelocityRule("card-burst", "card", 600, 5, None, None, 16),
                               VelocityRule("merchant-usd-hour", "merchant", 3600, 10000, 90000000, "USD", 22))
    assert config.blocklist == Blocklist(("400000", "41111111"), (bytes.fromhex(CARD_A), bytes.fromhex(CARD_B)),
                                         ("KP", "IR"))
    assert config.duplicate_window_seconds == 300
    assert (config.max_tracked_cards, config.max_tracked_merchants) == (50000, 2000)
    with pytest.raises(AttributeError):
        config.version = "other"


def test_a_file_with_only_a_version_checks_nothing_and_tracks_the_defaults():
    config = parse_risk('version = "v1"\n')
    assert config.limits == () and config.velocity == () and config.blocklist == Blocklist()
    assert config.duplicate_window_seconds is None
    assert config.max_tracked_cards == risk_rules.DEFAULT_MAX_TRACKED_CARDS
    assert config.max_tracked_merchants == risk_rules.DEFAULT_MAX_TRACKED_MERCHANTS


def test_load_risk_reads_a_file_and_names_it(tmp_path):
    path = tmp_path / "risk.toml"
    path.write_text(FULL_EXAMPLE)
    assert load_risk(path).source == str(path)


def test_an_unreadable_file_is_a_risk_config_error(tmp_path):
    with pytest.raises(RiskConfigError) as caught:
        load_risk(tmp_path / "missing.toml")
    assert caught.value.problems[0].line is None
    (tmp_path / "latin1.toml").write_bytes(b'version = "\xe9"\n')
    with pytest.raises(RiskConfigError, match="not UTF-8"):
        load_risk(tmp_path / "latin1.toml")


def test_invalid_toml_is_reported_on_its_line():
    text = 'version = "v1"\n[[limits]]\nmerchant = "m\n'
    problem = only_problem(text)
    assert problem.line == 3 and problem.message.startswith("not valid TOML")


def test_the_repr_does_not_spill_ten_thousand_card_keys():
    config = parse_risk(FULL_EXAMPLE)
    assert CARD_A not in repr(config) and "a1a1" not in repr(config)


# ---- each kind of mistake, on its line -----------------------------------------------------------


def test_missing_version():
    problem = only_problem('[duplicates]\nwindow_seconds = 60\n')
    assert (problem.line, problem.path, problem.message) == (None, "version", "is required")


def test_unknown_keys_at_every_level():
    text = risk_file('colour = "blue"  # <-a\n'
                     '[[limits]]\nmerchant = "m"\ncurrency = "USD"\nmax_amount_minor = 1\nmax_amout = 2  # <-b\n'
                     '[blocklist]\nbin = ["400000"]  # <-c\n'
                     '[duplicates]\nwindow_seconds = 60\nwindow = 1  # <-d\n')
    problems = problems_of(text)
    assert [(p.line, p.path, p.message) for p in problems] == [
        (marked_line(text, "# <-a"), "colour", "is not a known setting"),
        (marked_line(text, "# <-b"), "limits[0].max_amout", "is not a known setting"),
        (marked_line(text, "# <-c"), "blocklist.bin", "is not a known setting"),
        (marked_line(text, "# <-d"), "duplicates.window", "is not a known setting")]


def test_a_float_amount_is_refused_because_money_is_never_a_float():
    text = risk_file('[[limits]]\nmerchant = "m"\ncurrency = "USD"\nmax_amount_minor = 1000.0  # <-')
    problem = only_problem(text)
    assert (problem.line, problem.path) == (marked_line(text), "limits[0].max_amount_minor")
    assert problem.message == ("must be an integer number of minor units, not a float (1000.0): "
                               "money is never a float")


@pytest.mark.parametrize("setting", ["max_amount_minor = 0", "max_daily_minor = -5"])
def test_zero_and_negative_limits_are_refused(setting):
    text = risk_file(f'[[limits]]\nmerchant = "m"\ncurrency = "USD"\n{setting}  # <-')
    problem = only_problem(text)
    assert problem.line == marked_line(text) and "must be 1 to" in problem.message


@pytest.mark.parametrize("setting, key", [("window_seconds = 0", "window_seconds"),
                                          ("max_count = 0", "max_count"),
                                          ("max_count = -1", "max_count"),
                                          ("window_seconds = 604801", "window_seconds"),
                                          ("max_count = 2.5", "max_count")])
def test_zero_negative_and_oversized_velocity_bounds_are_refused(setting, key):
    settings = {"window_seconds": "window_seconds = 60", "max_count": "max_count = 5"}
    settings[key] = f"{setting}  # <-"
    text = risk_file('[[velocity]]\nname = "v"\nper = "card"\n' + "\n".join(settings.values()))
    problem = only_problem(text)
    assert (problem.line, problem.path) == (marked_line(text), f"velocity[0].{key}")


def test_a_limit_needs_a_bound_and_a_known_currency_and_merchant():
    text = risk_file('[[limits]]  # <-a\nmerchant = "m acme"  # <-b\ncurrency = "usd"  # <-c\n')
    problems = problems_of(text)
    assert [(p.line, p.path) for p in problems] == [(marked_line(text, "# <-a"), "limits[0].max_amount_minor"),
                                                    (marked_line(text, "# <-b"), "limits[0].merchant"),
                                                    (marked_line(text, "# <-c"), "limits[0].currency")]
    assert "needs max_amount_minor, max_daily_minor or both" in problems[0].message


def test_two_limits_for_the_same_merchant_and_currency():
    text = risk_file('[[limits]]\nmerchant = "*"\ncurrency = "USD"\nmax_amount_minor = 5\n'
                     '[[limits]]\nmerchant = "*"\ncurrency = "USD"  # <-\nmax_daily_minor = 5\n')
    problem = only_problem(text)
    assert (problem.line, problem.path) == (marked_line(text), "limits[1].currency")
    assert problem.message == "limits[0] (line 2) already bounds * in USD"


def test_bad_per_and_missing_velocity_keys():
    text = risk_file('[[velocity]]  # <-a\nname = "v"\nper = "cards"  # <-b\n')
    problems = problems_of(text)
    assert [(p.line, p.path, p.message) for p in problems] == [
        (marked_line(text, "# <-a"), "velocity[0].window_seconds", "is required"),
        (marked_line(text, "# <-a"), "velocity[0].max_count", "is required"),
        (marked_line(text, "# <-b"), "velocity[0].per", "must be \"card\" or \"merchant\", got 'cards'")]


def test_a_velocity_sum_needs_a_currency():
    text = risk_file('[[velocity]]\nname = "v"\nper = "merchant"\nwindow_seconds = 60\nmax_count = 5\n'
                     'max_amount_minor = 1000  # <-')
    problem = only_problem(text)
    assert (problem.line, problem.path) == (marked_line(text), "velocity[0].max_amount_minor")
    assert "needs a currency" in problem.message


def test_duplicate_velocity_names_and_a_limit_name_clash():
    velocity = 'per = "card"\nwindow_seconds = 60\nmax_count = 5\n'
    text = risk_file('[[limits]]\nname = "burst"\nmerchant = "m"\ncurrency = "USD"\nmax_amount_minor = 5\n'
                     f'[[velocity]]\nname = "burst"  # <-a\n{velocity}'
                     f'[[velocity]]\nname = "other"\n{velocity}'
                     f'[[velocity]]\nname = "other"  # <-b\n{velocity}')
    problems = problems_of(text)
    assert [(p.line, p.path) for p in problems] == [(marked_line(text, "# <-a"), "velocity[0].name"),
                                                    (marked_line(text, "# <-b"), "velocity[2].name")]
    assert problems[0].message == "'burst' is already the name of an earlier rule (line 2)"


def test_reserved_names_are_refused():
    text = risk_file('[[velocity]]\nname = "duplicates"  # <-\nper = "card"\nwindow_seconds = 60\nmax_count = 5\n')
    problem = only_problem(text)
    assert problem.line == marked_line(text) and "reserved" in problem.message


def test_each_bad_blocklist_item_is_named_on_its_own_line():
    text = risk_file('[blocklist]\nbins = [\n  "400000",\n  "40000",  # <-a\n  "4000x0",  # <-b\n]\n'
                     'cards = ["abcd"]  # <-c\ncountries = ["KP", "kp", "KPX"]  # <-d\n')
    problems = problems_of(text)
    assert [(p.line, p.path, p.message) for p in problems] == [
        (marked_line(text, "# <-a"), "blocklist.bins", "'40000' is not a BIN prefix of 6 to 11 digits"),
        (marked_line(text, "# <-b"), "blocklist.bins", "'4000x0' is not a BIN prefix of 6 to 11 digits"),
        (marked_line(text, "# <-c"), "blocklist.cards",
         "'abcd' is not a card key: 64 hex digits (HMAC-SHA256 of a card number or wallet token, never the "
         "number itself)"),
        (marked_line(text, "# <-d"), "blocklist.countries",
         "'kp' is not an ISO 3166-1 alpha-2 country code (two uppercase letters)"),
        (marked_line(text, "# <-d"), "blocklist.countries",
         "'KPX' is not an ISO 3166-1 alpha-2 country code (two uppercase letters)")]


def test_a_card_number_in_the_blocklist_is_refused():
    text = risk_file('[blocklist]\ncards = ["4111111111111111"]  # <-')
    problem = only_problem(text)
    assert problem.line == marked_line(text) and "never the number itself" in problem.message


def test_tables_of_the_wrong_shape():
    text = risk_file('limits = 5  # <-a\n[[blocklist]]  # <-b\nbins = ["400000"]\n')
    problems = problems_of(text)
    assert [(p.line, p.path) for p in problems] == [(marked_line(text, "# <-a"), "limits"),
                                                    (marked_line(text, "# <-b"), "blocklist")]
    assert problems[0].message == "must be an array of tables ([[limits]])"
    assert problems[1].message == "must be a table ([blocklist]), not an array"


def test_duplicates_needs_its_window():
    text = risk_file('[duplicates]  # <-\n')
    problem = only_problem(text)
    assert (problem.line, problem.path, problem.message) == (marked_line(text), "duplicates.window_seconds",
                                                             "is required")


def test_several_mistakes_at_once_are_all_reported_in_line_order():
    text = ('versio = "v1"  # <-a\n'
            '[[limits]]\nmerchant = "m"\ncurrency = "XXX"  # <-b\nmax_amount_minor = 10.5  # <-c\n'
            '[[velocity]]\nname = "v"\nper = "both"  # <-d\nwindow_seconds = 60\nmax_count = 0  # <-e\n'
            '[blocklist]\nbins = ["12345"]  # <-f\n'
            '[memory]\nmax_tracked_cards = 0  # <-g\n')
    problems = problems_of(text)
    marks = [marked_line(text, f"# <-{mark}") for mark in "abcdefg"]
    assert [p.line for p in problems] == marks + [None]
    assert problems[-1] == Problem(None, "version", "is required")
    rendered = str(RiskConfigError("risk.toml", problems)).splitlines()
    assert rendered[0] == "risk.toml:1: versio: is not a known setting"
    assert rendered[-1] == "risk.toml: version: is required"


def test_lines_are_left_out_rather_than_guessed_for_inline_tables():
    text = 'version = "v1"\nlimits = [{ merchant = "m", currency = "USD", max_amount_minor = 0.5 }]\n'
    problem = only_problem(text)
    assert (problem.line, problem.path) == (None, "limits[0].max_amount_minor")
