"""The routing file: a full example parses into the dataclasses, and every mistake is named by its line."""

import pytest

from payswitch import hotpath
from payswitch.routing.config import (MAX_PROBLEMS, BinRange, Problem, RoutingConfigError, load_routing,
                                      parse_routing)

FULL_EXAMPLE = """\
# Routing for the EU launch.
version = "2026-11-24.1"

[[bins]]
low = "400000"
high = "499999"
scheme = "visa"
country = "US"
card_type = "credit"

[[bins]]
low = "41111111"
high = "41111199"
scheme = "visa"
country = "DE"
card_type = "debit"

[[rules]]
name = "eu-high-value"
merchants = ["m_acme"]
currencies = ["EUR"]
schemes = ["visa", "mastercard"]
countries = ["DE", "FR"]
card_types = ["credit", "debit"]
methods = ["card"]
min_amount_minor = 100000
max_amount_minor = 9999999
split = { acquirer_a = 70, acquirer_b = 30 }
min_success_rate_percent = 80

[[rules]]
name = "wallets"
methods = ["wallet"]
schemes = ["applepay"]
channels = ["acquirer_b", "acquirer_a"]

[[rules]]
name = "everything-else"
channels = ["acquirer_a"]
"""


def problems_of(text, **options):
    with pytest.raises(RoutingConfigError) as caught:
        parse_routing(text, "routing.toml", **options)
    return caught.value.problems


def marked_line(text, marker="# <-"):
    """The 1-based line carrying the marker comment: where the test expects the problem."""
    return next(number for number, line in enumerate(text.splitlines(), 1) if marker in line)


def only_problem(text, **options):
    problems = problems_of(text, **options)
    assert len(problems) == 1, problems
    return problems[0]


def rules_file(rule_body, *, bins=""):
    return f'version = "v1"\n{bins}\n[[rules]]\n{rule_body}\n'


# ---- the full example ----------------------------------------------------------------------------


def test_full_example_parses_into_frozen_dataclasses():
    config = parse_routing(FULL_EXAMPLE, "routing.toml")
    assert config.version == "2026-11-24.1" and config.source == "routing.toml"
    assert config.bins == (BinRange("400000", "499999", "visa", "US", "credit", 4),
                           BinRange("41111111", "41111199", "visa", "DE", "debit", 11))
    high_value, wallets, rest = config.rules
    assert (high_value.name, high_value.line) == ("eu-high-value", 18)
    assert high_value.channels == ("acquirer_a", "acquirer_b") and high_value.weights == (70, 30)
    assert high_value.min_success_rate_percent == 80
    criteria = high_value.criteria
    assert isinstance(criteria, hotpath.routing_table.RuleCriteria)
    assert criteria.merchants == {"m_acme"} and criteria.currencies == {"EUR"}
    assert criteria.schemes == {"visa", "mastercard"} and criteria.countries == {"DE", "FR"}
    assert criteria.card_types == {"credit", "debit"} and criteria.methods == {"card"}
    assert (criteria.min_amount_minor, criteria.max_amount_minor) == (100000, 9999999)
    assert wallets.channels == ("acquirer_b", "acquirer_a") and wallets.weights is None
    assert wallets.min_success_rate_percent is None and wallets.line == 31
    assert rest.criteria == hotpath.routing_table.RuleCriteria() and rest.line == 37
    with pytest.raises(AttributeError):
        config.version = "other"


def test_known_channels_accepts_a_file_naming_only_them(tmp_path):
    path = tmp_path / "routing.toml"
    path.write_text(FULL_EXAMPLE)
    config = load_routing(path, known_channels=["acquirer_a", "acquirer_b", "unused"])
    assert config.source == str(path) and len(config.rules) == 3


def test_a_file_with_no_bins_and_no_rules_is_valid():
    config = parse_routing('version = "empty:1"\n')
    assert config.bins == () and config.rules == ()


# ---- each kind of mistake, on its line -----------------------------------------------------------


def test_unknown_key_names_its_own_line():
    text = rules_file('name = "r"\nchannels = ["a"]\ncolour = "blue"  # <-')
    problem = only_problem(text)
    assert problem == Problem(marked_line(text), "rules[0].colour", "is not a known setting")


def test_unknown_top_level_key_and_missing_version():
    text = 'versio = "v1"  # <-\n'
    problems = problems_of(text)
    assert [(p.line, p.path) for p in problems] == [(1, "versio"), (None, "version")]
    assert problems[1].message == "is required"


def test_missing_name_is_reported_on_the_rule_header():
    text = 'version = "v1"\n\n[[rules]]  # <-\nchannels = ["a"]\n'
    problem = only_problem(text)
    assert (problem.line, problem.path, problem.message) == (marked_line(text), "rules[0].name", "is required")


def test_both_channels_and_split_is_an_error_on_the_channels_line():
    text = rules_file('name = "r"\nchannels = ["a"]  # <-\nsplit = { a = 1 }')
    problem = only_problem(text)
    assert problem.line == marked_line(text) and problem.path == "rules[0].channels"
    assert "exactly one of channels" in problem.message


def test_neither_channels_nor_split_is_an_error_on_the_header():
    text = 'version = "v1"\n[[rules]]\nname = "first"\nchannels = ["a"]\n\n[[rules]]  # <-\nname = "r"\n'
    problem = only_problem(text)
    assert problem.line == marked_line(text) and problem.path == "rules[1].channels"


def test_duplicate_rule_names_point_at_the_second_and_name_the_first():
    text = ('version = "v1"\n[[rules]]\nname = "same"\nchannels = ["a"]\n'
            '[[rules]]\nname = "same"  # <-\nchannels = ["b"]\n')
    problem = only_problem(text)
    assert problem.line == marked_line(text) and problem.path == "rules[1].name"
    assert "line 2" in problem.message


def test_the_reserved_rule_name_is_refused():
    problem = only_problem(rules_file('name = "merchant-default"\nchannels = ["a"]'))
    assert problem.path == "rules[0].name" and "reserved" in problem.message


def test_unknown_channels_are_errors_only_when_the_known_ones_are_given():
    text = ('version = "v1"\n[[rules]]\nname = "list"\nchannels = ["a", "nope"]  # <- list\n'
            '[[rules]]\nname = "split"\nsplit = { a = 1, gone = 2 }  # <- split\n')
    parse_routing(text)
    problems = problems_of(text, known_channels={"a"})
    assert [(p.line, p.path) for p in problems] == [(marked_line(text, "# <- list"), "rules[0].channels"),
                                                    (marked_line(text, "# <- split"), "rules[1].split")]
    assert "nope" in problems[0].message and "gone" in problems[1].message


def test_a_channel_twice_in_one_rule_is_an_error():
    problem = only_problem(rules_file('name = "r"\nchannels = ["a", "b", "a"]'))
    assert problem.path == "rules[0].channels" and "'a' twice" in problem.message


def test_unknown_currency_is_an_error_on_its_line():
    text = rules_file('name = "r"\ncurrencies = ["EUR", "XYZ"]  # <-\nchannels = ["a"]')
    problem = only_problem(text)
    assert problem.line == marked_line(text) and problem.path == "rules[0].currencies" and "'XYZ'" in problem.message


def test_lowercase_currency_is_refused():
    assert only_problem(rules_file('name = "r"\ncurrencies = ["eur"]\nchannels = ["a"]')).path == "rules[0].currencies"


def test_float_amount_is_an_error_because_money_is_never_a_float():
    text = rules_file('name = "r"\nmax_amount_minor = 1000.0  # <-\nchannels = ["a"]')
    problem = only_problem(text)
    assert problem.line == marked_line(text) and problem.path == "rules[0].max_amount_minor"
    assert "never a float" in problem.message


@pytest.mark.parametrize("value", ['"100"', "true", "-1"])
def test_amount_bounds_must_be_non_negative_integers(value):
    problem = only_problem(rules_file(f'name = "r"\nmin_amount_minor = {value}\nchannels = ["a"]'))
    assert problem.path == "rules[0].min_amount_minor"


def test_min_above_max_is_reported_by_the_criteria_on_the_min_line():
    text = rules_file('name = "r"\nmin_amount_minor = 500  # <-\nmax_amount_minor = 499\nchannels = ["a"]')
    problem = only_problem(text)
    assert problem.line == marked_line(text) and problem.path == "rules[0].min_amount_minor"
    assert "500" in problem.message and "499" in problem.message


def test_bad_countries_in_rules_and_bins():
    text = ('version = "v1"\n[[bins]]\nlow = "400000"\nhigh = "400000"\nscheme = "visa"\n'
            'country = "Germany"  # <- bin\n[[rules]]\nname = "r"\ncountries = ["de"]  # <- rule\nchannels = ["a"]\n')
    problems = problems_of(text)
    assert [(p.line, p.path) for p in problems] == [(marked_line(text, "# <- bin"), "bins[0].country"),
                                                    (marked_line(text, "# <- rule"), "rules[0].countries")]


def test_empty_criterion_list_is_refused_since_absent_means_any():
    problem = only_problem(rules_file('name = "r"\nmethods = []\nchannels = ["a"]'))
    assert problem.path == "rules[0].methods" and "leave the key out" in problem.message


def test_split_weights_must_be_positive_integers():
    problems = problems_of(rules_file('name = "r"\nsplit = { a = 0, b = 1.5, c = 2 }'))
    assert [p.path for p in problems] == ["rules[0].split", "rules[0].split"]
    assert "weight of a" in problems[0].message and "weight of b" in problems[1].message


def test_success_rate_bound_is_a_percentage():
    problem = only_problem(rules_file('name = "r"\nchannels = ["a"]\nmin_success_rate_percent = 101'))
    assert problem.path == "rules[0].min_success_rate_percent" and "0 to 100" in problem.message


def test_overlapping_bins_of_the_same_length_and_width_are_reported_on_the_later_entry():
    text = ('version = "v1"\n[[bins]]\nlow = "410000"\nhigh = "419999"\nscheme = "visa"\n'
            '[[bins]]\nlow = "420000"\nhigh = "420000"\nscheme = "visa"\n'
            '[[bins]]  # <-\nlow = "415000"\nhigh = "424999"\nscheme = "visa"\n')
    problem = only_problem(text)
    assert problem.line == marked_line(text) and problem.path == "bins[2]"
    assert "bins[0] (line 2, 410000-419999)" in problem.message


def test_every_overlap_is_reported_not_only_the_first():
    entries = "".join(f'[[bins]]\nlow = "{low}"\nhigh = "{low + 9}"\nscheme = "visa"\n'
                      for low in (400000, 400005, 500000, 500005))
    problems = problems_of('version = "v1"\n' + entries)
    assert [p.path for p in problems] == ["bins[1]", "bins[3]"]


def test_bins_with_wrong_digits_are_reported_per_field():
    text = ('version = "v1"\n[[bins]]\nlow = "4000"  # <- low\nhigh = "4999x9"  # <- high\nscheme = "Visa"\n')
    problems = problems_of(text)
    assert [p.path for p in problems] == ["bins[0].low", "bins[0].high", "bins[0].scheme"]
    assert problems[0].line == marked_line(text, "# <- low") and problems[1].line == marked_line(text, "# <- high")


def test_bin_high_below_low_and_different_lengths():
    problems = problems_of('version = "v1"\n[[bins]]\nlow = "500000"\nhigh = "400000"\nscheme = "visa"\n'
                           '[[bins]]\nlow = "500000"\nhigh = "5000001"\nscheme = "visa"\n')
    assert [(p.line, p.path) for p in problems] == [(4, "bins[0].high"), (8, "bins[1].high")]


def test_toml_syntax_error_reports_tomllib_line():
    text = 'version = "v1"\n\n[[rules]]\nname = "r"\nchannels = ["a",  # <-\n'
    problem = only_problem(text)
    assert problem.path == "" and problem.message.startswith("not valid TOML")
    assert problem.line is not None and problem.line >= marked_line(text)


def test_toml_syntax_error_in_the_middle_names_that_line():
    text = 'version = "v1"\nbroken = = 3  # <-\n[[rules]]\nname = "r"\nchannels = ["a"]\n'
    assert only_problem(text).line == marked_line(text)


def test_several_problems_at_once_in_file_order_and_formatted_one_per_line():
    text = ('version = "has spaces"  # <- version\n'
            '[[rules]]\nname = "a"\ncurrencies = ["EUR"]\nmin_amount_minor = 1.5  # <- amount\nchannels = ["x"]\n'
            '[[rules]]\nname = "b"  # <- name\n'
            '[[rules]]\nname = "a"  # <- duplicate\nchannels = ["y"]\n')
    with pytest.raises(RoutingConfigError) as caught:
        parse_routing(text, "routing.toml")
    error = caught.value
    expected = [(marked_line(text, "# <- version"), "version"), (marked_line(text, "# <- amount"),
                "rules[0].min_amount_minor"), (marked_line(text, "# <- name") - 1, "rules[1].channels"),
                (marked_line(text, "# <- duplicate"), "rules[2].name")]
    assert [(p.line, p.path) for p in error.problems] == expected
    assert str(error).splitlines() == [f"routing.toml:{p.line}: {p.path}: {p.message}" for p in error.problems]
    assert isinstance(error, ValueError) and error.source == "routing.toml"


def test_problems_are_capped():
    rules = "".join(f'[[rules]]\nname = "r{n}"\ncolour = 1\nchannels = ["a"]\n' for n in range(MAX_PROBLEMS + 20))
    problems = problems_of('version = "v1"\n' + rules)
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == Problem(None, "", "20 more problems not shown")


def test_inline_arrays_of_tables_parse_and_their_problems_have_no_line():
    text = 'version = "v1"\nrules = [{ name = "ok", channels = ["a"] }, { name = "bad", colour = 1, channels = ["a"] }]\n'
    problems = problems_of(text)
    assert problems == [Problem(None, "rules[1].colour", "is not a known setting")]
    assert str(RoutingConfigError("f.toml", problems)) == "f.toml: rules[1].colour: is not a known setting"
    assert parse_routing('version = "v1"\nrules = [{ name = "ok", channels = ["a"] }]\n').rules[0].line is None


def test_rules_that_are_not_tables_are_refused():
    problem = only_problem('version = "v1"\nrules = ["a"]  # <-\n')
    assert problem.path == "rules" and problem.line == 2


def test_unreadable_files_are_routing_config_errors(tmp_path):
    with pytest.raises(RoutingConfigError) as caught:
        load_routing(tmp_path / "absent.toml")
    assert str(caught.value).startswith(f"{tmp_path / 'absent.toml'}: ")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'version = "\xff"\n')
    with pytest.raises(RoutingConfigError, match="UTF-8"):
        load_routing(binary)
