"""The conformance suite against real channels on loopback: the simulator and a conforming channel written
apart from it pass every check; each fault of the broken channel fails exactly the checks of the clause
it breaks, with a reason that says so; the CLI prints the table and exits 0, 1 or 2.

All channels are served from one event loop on a thread for the whole module, and the suites run
against them concurrently, so the file's time is that of the slowest suite, not the sum.
"""

import asyncio
import contextlib
import dataclasses
import socket
import threading

import pytest
from broken_channel import FAULTS, BrokenChannel, serve_channel

from payswitch.channels import conformance
from payswitch.channels.conformance import Check, CheckOptions, CheckResult
from payswitch.channels.simulator import ChannelSimulator
from payswitch.channels.simulator_service import SimulatorServicer
from payswitch.cli.main import main

APPROVE_CARD = "4242424242424242"
# Quick settling: every channel here decides within milliseconds, so a stuck IN_PROGRESS shows in 1 s.
OPTIONS = CheckOptions(timeout=5, settle_s=1.0, late_act_s=0.3)
# The broken channel takes BROKEN_LATENCY_S over every operation and refuses to decide once the
# deadline has passed, so the deadline check's 20 ms call surely arrives (even with every suite running
# at once) and is surely never decided: NOT_FOUND, deterministically, unless a fault says otherwise.
BROKEN_LATENCY_S = 0.03
BROKEN_OPTIONS = dataclasses.replace(OPTIONS, short_deadline=0.02)

# name -> (the servicer to serve, the suite's options). Broken channels are named after their one fault.
CHANNELS = {
    "simulator": (lambda: SimulatorServicer(ChannelSimulator()), OPTIONS),
    # Latency longer than the deadline check's 1 ms call: the call is cancelled before the decision,
    # so that check takes its NOT_FOUND path (without latency the simulator answers within 1 ms).
    "simulator_with_latency": (lambda: SimulatorServicer(ChannelSimulator(latency_ms=20)), OPTIONS),
    "simulator_without_batch": (lambda: SimulatorServicer(ChannelSimulator(batch_enabled=False)), OPTIONS),
    "conforming": (lambda: BrokenChannel(latency_s=BROKEN_LATENCY_S), BROKEN_OPTIONS),
    "conforming_without_batch": (lambda: BrokenChannel(batch=False, latency_s=BROKEN_LATENCY_S), BROKEN_OPTIONS),
    **{fault: (lambda fault=fault: BrokenChannel(fault, latency_s=BROKEN_LATENCY_S), BROKEN_OPTIONS)
       for fault in sorted(FAULTS)},
}
CONFORMING = ["simulator", "simulator_with_latency", "simulator_without_batch", "conforming",
              "conforming_without_batch"]

# The deadline check alone, pinned to each of its two paths. Without latency the simulator may answer
# a 1 ms call in time or not, so these make the path certain: a latency far beyond the deadline (the
# call is cancelled before the decision), and the simulator's timeout card, decided on arrival and
# answered only after the 50 ms deadline.
TIMEOUT_CARD = "4000000000000259"
DEADLINE_PATHS = {
    "deadline_not_found": (lambda: SimulatorServicer(ChannelSimulator(latency_ms=200)),
                           dataclasses.replace(OPTIONS, only=("deadline_honoured",))),
    "deadline_acted": (lambda: SimulatorServicer(ChannelSimulator(timeout_delay_s=0.2)),
                       dataclasses.replace(OPTIONS, only=("deadline_honoured",), approve_card=TIMEOUT_CARD,
                                           short_deadline=0.05)),
}
CHANNELS.update(DEADLINE_PATHS)

# fault -> {check that must fail: text its reason must contain}; every other check must pass.
EXPECTED_FAILURES = {
    "acts_twice": {
        "idempotent_repeat": "repeated authorize: channel_reference 'bc_3' differs from the first answer's 'bc_2': "
                             "the channel acted twice",
        "batch": "batch item 1 repeated as a single call: channel_reference",
    },
    "changed_repeat_approved": {"changed_repeat_refused": "expected FAILED_PRECONDITION, got OK APPROVED"},
    "capture_over_authorized": {"capture_over_authorized": "capture 1001 of 1000 authorized: expected OUT_OF_RANGE, "
                                                           "got OK APPROVED"},
    "refund_over_captured": {
        "refund_over_captured": "refund 601 of 600 captured: expected OUT_OF_RANGE, got OK APPROVED"},
    "unknown_authorization_not_found": {
        "capture_unknown_authorization": "expected FAILED_PRECONDITION, got NOT_FOUND (no such authorization) "
                                         "(NOT_FOUND is reserved for Inquire"},
    "void_after_capture": {"void_after_capture": "void after capture: expected FAILED_PRECONDITION, got OK APPROVED"},
    "decline_as_error": {
        "decline_is_ok_status": "expected OK DECLINED, got PERMISSION_DENIED (do_not_honor)",
        "inquire_reports_outcome": "authorize with the decline card: expected OK DECLINED, got PERMISSION_DENIED",
        "batch": "batch item 2: expected OK DECLINED, got PERMISSION_DENIED",
    },
    "inquire_unknown_internal": {
        "inquire_unknown_reference": "inquire of a never-sent reference: expected NOT_FOUND, got INTERNAL",
        "bad_input_rejected": "amount 0, negative amount, no amount, currency XXQ, no payment method: refused, but "
                              "Inquire answered INTERNAL (lookup failed), expected NOT_FOUND",
        "deadline_honoured": "expected OK APPROVED/DECLINED or NOT_FOUND, got INTERNAL (lookup failed): the switch "
                             "would keep the payment PENDING",
    },
    "inquire_unknown_approved": {
        "inquire_unknown_reference": "expected NOT_FOUND, got OK APPROVED",
        "bad_input_rejected": "refused, but Inquire answered OK APPROVED, expected NOT_FOUND",
        "deadline_honoured": "differs from the first answer's 'made_up': the repeat did not get the answer "
                             "Inquire reported",
    },
    "bad_input_approved": {
        "bad_input_rejected": "no reference, amount 0, negative amount, no amount, currency XXQ, no payment method: "
                              "expected INVALID_ARGUMENT, got OK APPROVED",
        "batch": "batch item 3 (amount 0): expected INVALID_ARGUMENT, got OK APPROVED",
    },
    "wrong_reference": {
        name: "does not echo the request's 'conf_" for name in (
            "authorize_approved", "idempotent_repeat", "decline_is_ok_status", "capture_over_authorized",
            "refund_over_captured", "void_after_capture", "inquire_reports_outcome", "deadline_honoured", "batch",
            "changed_repeat_refused", "amount_echoed")
    },
    "acts_after_deadline": {
        "deadline_honoured": "authorize repeated after Inquire answered NOT_FOUND: expected a refusal "
                             "(FAILED_PRECONDITION), got OK APPROVED: the channel acted after the deadline",
    },
    "batch_drops_item": {"batch": "batch of 3: expected 3 results, got 2"},
    "amount_not_echoed": {"amount_echoed": "authorize: the APPROVED result carries no amount"},
    "echoes_authorized_amount": {"amount_echoed": "capture 600 of 1000: result.amount 1000 USD differs from the 600 "
                                                  "USD acted on"},
}


class ServedChannels:
    """Every channel of CHANNELS on loopback, served from an event loop on a thread, so that tests may
    run suites (and the CLI, which runs its own loop) from the main thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._servers = []
        self.targets = self._call(self._start())

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    async def _start(self):
        targets = {}
        for name, (make, _) in CHANNELS.items():
            server, port = await serve_channel(make())
            self._servers.append(server)
            targets[name] = f"127.0.0.1:{port}"
        return targets

    async def _stop(self):
        await asyncio.gather(*(server.stop(0) for server in self._servers))

    def close(self):
        self._call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def channels():
    served = ServedChannels()
    yield served.targets
    served.close()


@pytest.fixture(scope="module")
def suites(channels):
    """name -> {check name: CheckResult} of one suite run per channel, all runs concurrent."""
    async def run_all():
        names = list(channels)
        runs = await asyncio.gather(*(conformance.run_checks(channels[name], CHANNELS[name][1]) for name in names))
        return {name: {result.name: result for result in results} for name, results in zip(names, runs)}

    return asyncio.run(run_all())


def failures(results: dict[str, CheckResult]) -> dict[str, str]:
    return {name: result.reason for name, result in results.items() if result.passed is False}


@pytest.mark.parametrize("channel", CONFORMING)
def test_conforming_channels_pass_every_check(suites, channel):
    results = suites[channel]
    assert list(results) == conformance.check_names()
    assert {name: result.label for name, result in results.items()} == dict.fromkeys(results, "PASS"), \
        failures(results)


def test_the_deadline_check_takes_both_paths(suites):
    not_found = suites["deadline_not_found"]["deadline_honoured"]
    assert not_found.passed, not_found.reason
    assert not_found.reason.startswith("1 ms call: DEADLINE_EXCEEDED; Inquire NOT_FOUND, repeat refused "
                                       "FAILED_PRECONDITION; a 5 s call answered in ")
    acted = suites["deadline_acted"]["deadline_honoured"]
    assert acted.passed, acted.reason
    assert acted.reason.startswith("50 ms call: DEADLINE_EXCEEDED; Inquire APPROVED, repeat got the same answer; "
                                   "a 5 s call answered in ")
    assert "Inquire NOT_FOUND" in suites["conforming"]["deadline_honoured"].reason


def test_batch_unimplemented_passes_as_optional(suites):
    for channel in ("simulator_without_batch", "conforming_without_batch"):
        assert suites[channel]["batch"].reason == "not implemented: the switch sends single calls"
    assert suites["simulator"]["batch"].reason.startswith("3 items answered in order")


def test_every_fault_is_covered():
    assert set(EXPECTED_FAILURES) == set(CHANNELS) - set(CONFORMING) - set(DEADLINE_PATHS) == FAULTS


@pytest.mark.parametrize("fault", sorted(EXPECTED_FAILURES))
def test_each_fault_fails_exactly_the_checks_it_breaks(suites, fault):
    failed = failures(suites[fault])
    expected = EXPECTED_FAILURES[fault]
    assert set(failed) == set(expected), failed
    for name, text in expected.items():
        assert text in failed[name], (name, failed[name])
    assert all(result.passed is True for name, result in suites[fault].items() if name not in expected)


def test_no_decline_card_skips_the_decline_check(channels):
    options = CheckOptions(decline_card="", only=("decline_is_ok_status", "inquire_reports_outcome", "batch"))
    results = asyncio.run(conformance.run_checks(channels["simulator"], options))
    assert [(result.name, result.label) for result in results] == [
        ("decline_is_ok_status", "SKIP"), ("inquire_reports_outcome", "PASS"), ("batch", "PASS")]
    assert results[0].reason == "no decline card given (--decline-card '')"
    assert "no decline card" in results[1].reason


def test_a_check_that_raises_is_a_failure_naming_the_exception():
    async def explodes(probe):
        raise KeyError("surprise 4242424242424242")

    result = asyncio.run(conformance.run_check(Check("explodes", "never raises", explodes), probe=None))
    assert result.passed is False
    assert result.reason.startswith("the check raised KeyError")
    assert APPROVE_CARD not in result.reason


def test_unknown_check_names_are_refused():
    with pytest.raises(ValueError, match="unknown check"):
        conformance.select_checks(["authorize_approved", "no_such_check"])


def test_table_is_aligned_and_summarised():
    results = [CheckResult("authorize_approved", True, "APPROVED x", 0.1),
               CheckResult("batch", False, "batch of 3: expected 3 results, got 2", 0.1),
               CheckResult("decline_is_ok_status", None, "no decline card", 0.0)]
    lines = conformance.render_table(results).splitlines()
    assert lines[0].split() == ["check", "result", "detail"]
    assert lines[2] == "authorize_approved    PASS    APPROVED x"
    assert lines[3] == "batch                 FAIL    batch of 3: expected 3 results, got 2"
    assert len({line.index(word) for line, word in zip(lines[2:], ("PASS", "FAIL", "SKIP"))}) == 1
    assert conformance.summary(results) == "1 passed, 1 failed, 1 skipped"


def test_card_numbers_never_print_in_full():
    assert conformance.mask_card(APPROVE_CARD) == "424242******4242"
    assert conformance.mask_card("378282246310005") == "378282*****0005"
    assert APPROVE_CARD not in repr(CheckOptions())


# -- the command ------------------------------------------------------------------------------------------

def test_command_against_the_simulator_exits_0(channels, capsys):
    assert main(["channel-check", "--target", channels["simulator"], "--timeout", "5"]) == 0
    out = capsys.readouterr().out
    assert "approve card 424242******4242, decline card 400000******0002" in out
    assert APPROVE_CARD not in out and "4000000000000002" not in out
    for name in conformance.check_names():
        assert any(line.startswith(name + " ") and " PASS " in line for line in out.splitlines()), name
    assert out.rstrip().endswith(f"{len(conformance.CHECKS)} passed, 0 failed, 0 skipped")


def test_command_against_a_broken_channel_exits_1(channels, capsys):
    assert main(["channel-check", "--target", channels["capture_over_authorized"],
                 "--only", "authorize_approved", "capture_over_authorized"]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("capture_over_authorized "))
    assert " FAIL " in row and "expected OUT_OF_RANGE, got OK APPROVED" in row
    assert "clauses broken:\n  capture_over_authorized: Capture over the authorized amount is OUT_OF_RANGE" in out
    assert out.rstrip().endswith("1 passed, 1 failed, 0 skipped")


def test_command_against_a_closed_port_exits_2_with_one_line(capsys):
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["channel-check", "--target", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"channel-check: cannot connect to 127.0.0.1:{port}: ")
    assert "Connection refused" in err


def test_command_refuses_an_unknown_check_name(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["channel-check", "--target", "127.0.0.1:1", "--only", "no_such_check"])
    assert exit_info.value.code == 2
