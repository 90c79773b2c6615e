"""The PaymentChannel conformance suite: what `payswitch channel-check` runs against a channel team's service.

The switch's money safety rests on every channel keeping the contract in
protos/payswitch/v1/channel.proto: idempotency by `reference`, OK with an outcome for every decided
operation, a non-OK status only when the channel did not act and never will, and an Inquire that can
always say what happened. A channel that breaks one of these clauses does not fail loudly; it loses or
doubles money on the one day the network misbehaves. Each check below drives one clause over a
plain grpc.aio channel -- not through the switch's ChannelClient, whose classification would hide the
raw status code the clause is about -- and reports PASS, FAIL or SKIP with a reason naming what was
expected and what came back.

Every check makes fresh random references ("conf_" + 16 hex digits) and never shares one with another
check, so the suite can run again and again against one live service.

Where the contract leaves room, the suite holds channels to one reading (docs/channel-development.md
states the same rules for channel teams):

- Capture/Void/Refund of an authorization the channel never approved is FAILED_PRECONDITION, the
  contract's own example; NOT_FOUND is reserved for Inquire and fails the check.
- A repeat with the same reference but other content (a changed repeat) is FAILED_PRECONDITION and
  leaves the first operation as it was; answering it OK in any way fails.
- After Inquire answered NOT_FOUND, an operation with that reference must be refused with a non-OK
  status (FAILED_PRECONDITION recommended); an OK answer, even DECLINED, is acting on a reference the
  channel promised never to act on.
- Batch is optional: UNIMPLEMENTED passes.

Card numbers never appear in a reason: requests are never quoted, and channel-supplied text passes
through `status_mapping.safe_message`, which redacts any run of 12 or more digits.
"""

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc

from ..payments.money import CURRENCY_EXPONENTS
from ..tls import ClientTls, aio_channel
from ..v1 import channel_pb2, channel_pb2_grpc, types_pb2
from .status_mapping import connection_not_established, safe_message, status_name

APPROVED = channel_pb2.CHANNEL_OUTCOME_APPROVED
DECLINED = channel_pb2.CHANNEL_OUTCOME_DECLINED
IN_PROGRESS = channel_pb2.CHANNEL_OUTCOME_IN_PROGRESS

# How often the deadline check asks Inquire again while the channel says IN_PROGRESS.
_POLL_INTERVAL_S = 0.05
# Channel text is cut to this in reasons, so one table row stays one readable line.
_DETAIL_CHARS = 80


def _expiry_year() -> int:
    return time.gmtime().tm_year + 3


@dataclass(frozen=True)
class CheckOptions:
    """What the suite sends and how long it waits. Card numbers are kept out of the repr."""

    #: Deadline of every ordinary call, in seconds.
    timeout: float = 5.0
    #: A card the channel approves, and one it declines ("" skips the checks that need a decline).
    approve_card: str = field(default="4242424242424242", repr=False)
    decline_card: str = field(default="4000000000000002", repr=False)
    exp_month: int = 12
    exp_year: int = field(default_factory=_expiry_year)
    merchant_id: str = "m_conformance"
    currency: str = "USD"
    #: The amount every authorization is for, in minor units.
    amount_minor: int = 1000
    #: The deadline of the call the deadline check lets expire, in seconds.
    short_deadline: float = 0.001
    #: How long Inquire may keep answering IN_PROGRESS after that call before the check gives up.
    settle_s: float = 3.0
    #: How long the deadline check waits after a NOT_FOUND before looking for late work.
    late_act_s: float = 0.5
    #: Names of the checks to run; empty runs them all.
    only: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: `passed` is None for a skipped check."""

    name: str
    passed: bool | None
    reason: str
    seconds: float

    @property
    def label(self) -> str:
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]


@dataclass(frozen=True)
class Check:
    """One contract clause, as a name, the clause in one line, and the coroutine that tests it; `run`
    returns the detail of a pass and raises CheckFailed or CheckSkipped otherwise."""

    name: str
    clause: str
    run: Callable[["Probe"], Awaitable[str]]


class CheckFailed(Exception):
    """The channel broke the clause; the message says what was expected and what came back."""


class CheckSkipped(Exception):
    """The check cannot run with these options; the message says why."""


class TargetUnreachable(Exception):
    """No connection could be made to the target, so no check could run."""


class NotAPaymentChannel(Exception):
    """The target answers gRPC but does not serve PaymentChannel (a switch, say), so no check could run."""


#: Every check, in the order they run.
CHECKS: list[Check] = []


def check(name: str, clause: str):
    """Registers the decorated coroutine as the check `name` of `clause`."""
    def register(function):
        CHECKS.append(Check(name, clause, function))
        return function
    return register


def check_names() -> list[str]:
    return [registered.name for registered in CHECKS]


def mask_card(number: str) -> str:
    """A card number fit to print: at most its first six and last four digits."""
    if len(number) < 12:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def _outcome_name(outcome: int) -> str:
    name = channel_pb2.ChannelOutcome.Name(outcome) if outcome in channel_pb2.ChannelOutcome.values() else str(outcome)
    return name.removeprefix("CHANNEL_OUTCOME_")


def _channel_text(text: str) -> str:
    """Channel-supplied text for a reason: no card numbers, one line, short."""
    text = safe_message(" ".join((text or "").split()))
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


@dataclass(frozen=True)
class Answer:
    """What the channel said to one call: "OK" with its result, or a status name with its text."""

    code: str
    result: channel_pb2.ChannelResult | None = None
    details: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    def describe(self) -> str:
        if not self.ok:
            return f"{self.code} ({self.details})" if self.details else self.code
        if self.result is None:
            return "OK with an unreadable reply"
        text = f"OK {_outcome_name(self.result.outcome)}"
        if self.result.decline_code:
            text += f" ({_channel_text(self.result.decline_code)})"
        return text


class Probe:
    """The suite's side of the conversation: builds requests, makes calls, and checks answers.

    Every expectation that does not hold raises CheckFailed naming its `step`, so a check reads as
    the sequence of calls the clause is about."""

    def __init__(self, stub: channel_pb2_grpc.PaymentChannelStub, options: CheckOptions,
                 new_reference: Callable[[], str] | None = None):
        self.stub = stub
        self.options = options
        self._new_reference = new_reference or (lambda: "conf_" + secrets.token_hex(8))

    def reference(self) -> str:
        return self._new_reference()

    # -- calls ------------------------------------------------------------------------------------------

    async def call(self, method: str, request, timeout: float | None = None) -> Answer:
        """One unary call; a non-OK status becomes an Answer, anything else the transport raises
        propagates (and fails the check naming its type). wait_for_ready=False so an unreachable
        channel fails at once instead of queueing until the deadline."""
        started = time.monotonic()
        try:
            result = await getattr(self.stub, method)(
                request, timeout=self.options.timeout if timeout is None else timeout, wait_for_ready=False)
        except grpc.aio.AioRpcError as error:
            return Answer(error.code().name, None, _channel_text(error.details() or ""), time.monotonic() - started)
        return Answer("OK", result, "", time.monotonic() - started)

    def money(self, amount_minor: int | None = None, currency: str | None = None) -> types_pb2.Money:
        """Money as the switch sends it: with the currency's exponent set (left unset for an unknown code)."""
        currency = self.options.currency if currency is None else currency
        money = types_pb2.Money(amount_minor=self.options.amount_minor if amount_minor is None else amount_minor,
                                currency=currency)
        if currency in CURRENCY_EXPONENTS:
            money.exponent = CURRENCY_EXPONENTS[currency]
        return money

    def authorize_request(self, reference: str, *, card: str | None = None, amount_minor: int | None = None,
                          currency: str | None = None) -> channel_pb2.ChannelAuthorizeRequest:
        number = self.options.approve_card if card is None else card
        return channel_pb2.ChannelAuthorizeRequest(
            reference=reference, merchant_id=self.options.merchant_id,
            amount=self.money(amount_minor, currency),
            card=types_pb2.Card(number=number, exp_month=self.options.exp_month, exp_year=self.options.exp_year),
            description="payswitch channel-check")

    async def authorize(self, reference: str, *, card: str | None = None, amount_minor: int | None = None,
                        timeout: float | None = None) -> Answer:
        return await self.call("Authorize", self.authorize_request(reference, card=card, amount_minor=amount_minor),
                               timeout)

    async def capture(self, reference: str, authorization: str, amount_minor: int | None = None) -> Answer:
        return await self.call("Capture", channel_pb2.ChannelCaptureRequest(
            reference=reference, authorization_reference=authorization, amount=self.money(amount_minor)))

    async def void(self, reference: str, authorization: str) -> Answer:
        return await self.call("Void", channel_pb2.ChannelVoidRequest(
            reference=reference, authorization_reference=authorization))

    async def refund(self, reference: str, authorization: str, amount_minor: int | None = None) -> Answer:
        return await self.call("Refund", channel_pb2.ChannelRefundRequest(
            reference=reference, authorization_reference=authorization, amount=self.money(amount_minor)))

    async def inquire(self, reference: str) -> Answer:
        return await self.call("Inquire", channel_pb2.ChannelInquireRequest(reference=reference))

    # -- expectations -----------------------------------------------------------------------------------

    @staticmethod
    def expect_outcome(step: str, answer: Answer, outcome: int, reference: str) -> channel_pb2.ChannelResult:
        """OK with `outcome`, echoing `reference` (the switch rejects an answer for another reference)."""
        expected = f"OK {_outcome_name(outcome)}"
        if not answer.ok or answer.result is None or answer.result.outcome != outcome:
            raise CheckFailed(f"{step}: expected {expected}, got {answer.describe()}")
        if answer.result.reference != reference:
            raise CheckFailed(f"{step}: result.reference {_channel_text(answer.result.reference)!r} does not "
                              f"echo the request's {reference!r}")
        return answer.result

    @staticmethod
    def expect_status(step: str, answer: Answer, code: str, why: str = "") -> None:
        if answer.code != code:
            raise CheckFailed(f"{step}: expected {code}, got {answer.describe()}{why}")

    def expect_amount(self, step: str, result: channel_pb2.ChannelResult, amount_minor: int) -> None:
        """The result names the amount acted on, `amount_minor` of the suite's currency: the switch
        records no amount its channel did not confirm."""
        if not result.HasField("amount"):
            raise CheckFailed(f"{step}: the APPROVED result carries no amount; the switch records only the amount "
                              f"a channel says it acted on")
        acted = (result.amount.amount_minor, result.amount.currency)
        if acted != (amount_minor, self.options.currency):
            raise CheckFailed(f"{step}: result.amount {acted[0]} {_short(acted[1])} differs from the {amount_minor} "
                              f"{self.options.currency} acted on")

    @staticmethod
    def expect_same(step: str, first: channel_pb2.ChannelResult, again: channel_pb2.ChannelResult,
                    meaning: str = "the channel acted twice") -> None:
        """`again` speaks of the same operation as `first`: the same channel_reference (outcomes are
        compared by the expect_outcome that produced both). `meaning` says what a difference shows."""
        if again.channel_reference != first.channel_reference:
            raise CheckFailed(f"{step}: channel_reference {_channel_text(again.channel_reference)!r} differs from "
                              f"the first answer's {_channel_text(first.channel_reference)!r}: {meaning}")

    async def approved_authorization(self) -> tuple[str, channel_pb2.ChannelResult]:
        """Setup step: a fresh authorization of `amount_minor` with the approve card."""
        reference = self.reference()
        result = self.expect_outcome("authorize (setup)", await self.authorize(reference), APPROVED, reference)
        return reference, result

    async def captured_authorization(self, amount_minor: int) -> str:
        """Setup step: a fresh authorization captured for `amount_minor`."""
        authorization, _ = await self.approved_authorization()
        capture = self.reference()
        self.expect_outcome(f"capture {amount_minor} (setup)", await self.capture(capture, authorization, amount_minor),
                            APPROVED, capture)
        return authorization


def _short(text: str) -> str:
    return _channel_text(text) or "''"


# -- the checks, in the order they run ------------------------------------------------------------------

@check("authorize_approved",
       "Authorize with an approving card answers OK APPROVED, echoing reference (and amount when set).")
async def authorize_approved(probe: Probe) -> str:
    reference = probe.reference()
    result = probe.expect_outcome("authorize", await probe.authorize(reference), APPROVED, reference)
    amount = "no amount in the result (see amount_echoed)"
    if result.HasField("amount"):
        probe.expect_amount("authorize", result, probe.options.amount_minor)
        amount = "amount echoed"
    return f"APPROVED {_short(result.channel_reference)}, reference echoed, {amount}"


@check("idempotent_repeat",
       "A repeated reference gets the first answer (same outcome and channel_reference) and is not acted twice.")
async def idempotent_repeat(probe: Probe) -> str:
    reference = probe.reference()
    first = probe.expect_outcome("authorize", await probe.authorize(reference), APPROVED, reference)
    again = probe.expect_outcome("repeated authorize", await probe.authorize(reference), APPROVED, reference)
    probe.expect_same("repeated authorize", first, again)
    capture = probe.reference()
    captured = probe.expect_outcome("capture", await probe.capture(capture, reference), APPROVED, capture)
    recaptured = probe.expect_outcome("repeated capture", await probe.capture(capture, reference), APPROVED, capture)
    probe.expect_same("repeated capture", captured, recaptured)
    return (f"repeated Authorize and Capture got their first answers "
            f"({_short(first.channel_reference)}, {_short(captured.channel_reference)})")


@check("decline_is_ok_status",
       "A decline is a decided operation: OK with outcome DECLINED and a decline_code, not an error status.")
async def decline_is_ok_status(probe: Probe) -> str:
    if not probe.options.decline_card:
        raise CheckSkipped("no decline card given (--decline-card '')")
    reference = probe.reference()
    result = probe.expect_outcome("authorize with the decline card",
                                  await probe.authorize(reference, card=probe.options.decline_card),
                                  DECLINED, reference)
    if not result.decline_code:
        raise CheckFailed("authorize with the decline card: OK DECLINED but decline_code is empty")
    return f"DECLINED {_short(result.decline_code)}"


@check("capture_over_authorized",
       "Capture over the authorized amount is OUT_OF_RANGE and changes nothing: the exact amount still captures.")
async def capture_over_authorized(probe: Probe) -> str:
    authorization, _ = await probe.approved_authorization()
    amount = probe.options.amount_minor
    over = probe.reference()
    probe.expect_status(f"capture {amount + 1} of {amount} authorized",
                        await probe.capture(over, authorization, amount + 1), "OUT_OF_RANGE")
    probe.expect_status("repeat of the refused capture", await probe.capture(over, authorization, amount + 1),
                        "OUT_OF_RANGE", " (a refusal is the first answer too)")
    exact = probe.reference()
    probe.expect_outcome(f"capture {amount} after the refusal", await probe.capture(exact, authorization, amount),
                         APPROVED, exact)
    return f"capture of {amount + 1} refused OUT_OF_RANGE (again on repeat); capture of {amount} then approved"


@check("refund_over_captured",
       "Refund over the captured amount is OUT_OF_RANGE and changes nothing: a refund within it succeeds.")
async def refund_over_captured(probe: Probe) -> str:
    # A partial capture, so refunding more than captured stays within the authorized amount and a
    # channel that compares refunds with the authorization instead is caught.
    captured = max(1, probe.options.amount_minor * 3 // 5)
    authorization = await probe.captured_authorization(captured)
    probe.expect_status(f"refund {captured + 1} of {captured} captured",
                        await probe.refund(probe.reference(), authorization, captured + 1), "OUT_OF_RANGE")
    within = probe.reference()
    probe.expect_outcome(f"refund {captured} after the refusal", await probe.refund(within, authorization, captured),
                         APPROVED, within)
    return f"refund of {captured + 1} over {captured} captured refused OUT_OF_RANGE; refund of {captured} approved"


@check("capture_unknown_authorization",
       "Capture of an authorization the channel never approved is FAILED_PRECONDITION (NOT_FOUND is Inquire's).")
async def capture_unknown_authorization(probe: Probe) -> str:
    answer = await probe.capture(probe.reference(), probe.reference())
    why = " (NOT_FOUND is reserved for Inquire; an operation not allowed is FAILED_PRECONDITION)" \
        if answer.code == "NOT_FOUND" else ""
    probe.expect_status("capture of an unknown authorization", answer, "FAILED_PRECONDITION", why)
    return "refused FAILED_PRECONDITION"


@check("void_after_capture",
       "Void of a captured authorization is FAILED_PRECONDITION and changes nothing: a refund still succeeds.")
async def void_after_capture(probe: Probe) -> str:
    amount = probe.options.amount_minor
    authorization = await probe.captured_authorization(amount)
    probe.expect_status("void after capture", await probe.void(probe.reference(), authorization), "FAILED_PRECONDITION")
    refund = probe.reference()
    probe.expect_outcome(f"refund {amount} after the refused void", await probe.refund(refund, authorization, amount),
                         APPROVED, refund)
    return "void refused FAILED_PRECONDITION; the capture stood and refunded"


@check("inquire_unknown_reference",
       "Inquire of a reference never sent is NOT_FOUND, and binds: that reference is never acted on afterwards.")
async def inquire_unknown_reference(probe: Probe) -> str:
    reference = probe.reference()
    probe.expect_status("inquire of a never-sent reference", await probe.inquire(reference), "NOT_FOUND")
    late = await probe.authorize(reference)
    if late.ok:
        raise CheckFailed(f"authorize after Inquire answered NOT_FOUND: expected a refusal (FAILED_PRECONDITION), "
                          f"got {late.describe()}: the channel acted on a reference it reported unknown")
    probe.expect_status("inquire after the refused authorize", await probe.inquire(reference), "NOT_FOUND")
    return f"NOT_FOUND; a later Authorize with it refused {late.code}; still NOT_FOUND"


@check("inquire_reports_outcome",
       "Inquire of a decided operation answers OK with its outcome and the same channel_reference.")
async def inquire_reports_outcome(probe: Probe) -> str:
    reference, approved = await probe.approved_authorization()
    found = probe.expect_outcome("inquire after an approval", await probe.inquire(reference), APPROVED, reference)
    probe.expect_same("inquire after an approval", approved, found, "Inquire reports another operation")
    if not probe.options.decline_card:
        return "APPROVED reported (no decline card, so declines not inquired)"
    declined_reference = probe.reference()
    declined = probe.expect_outcome("authorize with the decline card",
                                    await probe.authorize(declined_reference, card=probe.options.decline_card),
                                    DECLINED, declined_reference)
    reported = probe.expect_outcome("inquire after a decline", await probe.inquire(declined_reference),
                                    DECLINED, declined_reference)
    probe.expect_same("inquire after a decline", declined, reported, "Inquire reports another operation")
    if reported.decline_code != declined.decline_code:
        raise CheckFailed(f"inquire after a decline: decline_code {_short(reported.decline_code)!r} differs from the "
                          f"{_short(declined.decline_code)!r} first answered")
    return "APPROVED and DECLINED reported with their channel_references"


@check("deadline_honoured",
       "After a call's deadline, Inquire states what was done (APPROVED/DECLINED, or NOT_FOUND and never acted).")
async def deadline_honoured(probe: Probe) -> str:
    options = probe.options
    reference = probe.reference()
    short_ms = f"{options.short_deadline * 1000:g} ms"
    first = await probe.authorize(reference, timeout=options.short_deadline)
    inquiry = await probe.inquire(reference)
    waited_until = time.monotonic() + options.settle_s
    while inquiry.ok and inquiry.result is not None and inquiry.result.outcome == IN_PROGRESS:
        if time.monotonic() >= waited_until:
            raise CheckFailed(f"inquire after a {short_ms} authorize: still IN_PROGRESS after {options.settle_s:g} s")
        await asyncio.sleep(_POLL_INTERVAL_S)
        inquiry = await probe.inquire(reference)

    if inquiry.code == "NOT_FOUND":
        if first.ok:
            raise CheckFailed(f"the {short_ms} authorize answered {first.describe()} in time, but Inquire then "
                              f"answered NOT_FOUND")
        # Work the channel kept doing after the deadline would surface now: as an approval of the
        # repeat, or as Inquire changing its mind.
        await asyncio.sleep(options.late_act_s)
        repeat = await probe.authorize(reference)
        if repeat.ok:
            raise CheckFailed(f"authorize repeated after Inquire answered NOT_FOUND: expected a refusal "
                              f"(FAILED_PRECONDITION), got {repeat.describe()}: the channel acted after the deadline "
                              f"on a reference it reported unknown")
        probe.expect_status("inquire after the refused repeat", await probe.inquire(reference), "NOT_FOUND",
                            " (it answered NOT_FOUND before)")
        what = f"Inquire NOT_FOUND, repeat refused {repeat.code}"
    elif inquiry.ok and inquiry.result is not None and inquiry.result.outcome in (APPROVED, DECLINED):
        found = probe.expect_outcome(f"inquire after a {short_ms} authorize", inquiry, inquiry.result.outcome,
                                     reference)
        if first.ok:
            probe.expect_outcome(f"the {short_ms} authorize (answered in time)", first, found.outcome, reference)
            probe.expect_same("inquire after it", first.result, found, "Inquire reports another operation")
        repeat = probe.expect_outcome("authorize repeated after Inquire", await probe.authorize(reference),
                                      found.outcome, reference)
        probe.expect_same("authorize repeated after Inquire", found, repeat,
                          "the repeat did not get the answer Inquire reported")
        what = f"Inquire {_outcome_name(found.outcome)}, repeat got the same answer"
    else:
        raise CheckFailed(f"inquire after a {short_ms} authorize: expected OK APPROVED/DECLINED or NOT_FOUND, "
                          f"got {inquiry.describe()}: the switch would keep the payment PENDING")

    ordinary = probe.reference()
    answer = await probe.authorize(ordinary)
    if answer.code == "DEADLINE_EXCEEDED":
        raise CheckFailed(f"authorize with a {options.timeout:g} s deadline: no answer within it (DEADLINE_EXCEEDED)")
    probe.expect_outcome(f"authorize with a {options.timeout:g} s deadline", answer, APPROVED, ordinary)
    return (f"{short_ms} call: {'answered in time' if first.ok else first.code}; {what}; a {options.timeout:g} s "
            f"call answered in "
            f"{answer.seconds * 1000:.0f} ms")


def _bad_inputs(probe: Probe) -> list[tuple[str, channel_pb2.ChannelAuthorizeRequest]]:
    """Malformed Authorize requests, each wrong in one field only."""
    no_amount = probe.authorize_request(probe.reference())
    no_amount.ClearField("amount")
    no_method = probe.authorize_request(probe.reference())
    no_method.ClearField("card")
    return [
        ("no reference", probe.authorize_request("")),
        ("amount 0", probe.authorize_request(probe.reference(), amount_minor=0)),
        ("negative amount", probe.authorize_request(probe.reference(), amount_minor=-probe.options.amount_minor)),
        ("no amount", no_amount),
        ("currency XXQ", probe.authorize_request(probe.reference(), currency="XXQ")),
        ("no payment method", no_method),
    ]


@check("bad_input_rejected",
       "A malformed request is INVALID_ARGUMENT and not acted on: Inquire of its reference is NOT_FOUND.")
async def bad_input_rejected(probe: Probe) -> str:
    # Problem text -> the inputs that showed it, so one mistake made for every input reads as one.
    problems: dict[str, list[str]] = {}
    requests = _bad_inputs(probe)
    for label, request in requests:
        answer = await probe.call("Authorize", request)
        if answer.code != "INVALID_ARGUMENT":
            problems.setdefault(f"expected INVALID_ARGUMENT, got {answer.describe()}", []).append(label)
            continue
        if request.reference:
            inquiry = await probe.inquire(request.reference)
            if inquiry.code != "NOT_FOUND":
                problems.setdefault(f"refused, but Inquire answered {inquiry.describe()}, expected NOT_FOUND",
                                    []).append(label)
    if problems:
        raise CheckFailed("; ".join(f"{', '.join(labels)}: {problem}" for problem, labels in problems.items()))
    return f"{len(requests)} malformed requests refused INVALID_ARGUMENT; Inquire NOT_FOUND for each"


def _item_answer(slot: channel_pb2.ChannelBatchItemResult) -> Answer | None:
    kind = slot.WhichOneof("answer")
    if kind == "result":
        return Answer("OK", slot.result)
    if kind == "error":
        return Answer(status_name(slot.error.code), None, _channel_text(slot.error.message))
    return None


@check("batch",
       "Batch (optional) is UNIMPLEMENTED, or answers every item in order as its single call would.")
async def batch(probe: Probe) -> str:
    decline_card = probe.options.decline_card or probe.options.approve_card
    expected = DECLINED if probe.options.decline_card else APPROVED
    requests = [
        probe.authorize_request(probe.reference()),
        probe.authorize_request(probe.reference(), card=decline_card),
        probe.authorize_request(probe.reference(), amount_minor=0),
    ]
    answer = await probe.call("Batch", channel_pb2.ChannelBatchRequest(
        items=[channel_pb2.ChannelBatchItem(authorize=request) for request in requests]))
    if answer.code == "UNIMPLEMENTED":
        return "not implemented: the switch sends single calls"
    if not answer.ok or answer.result is None:
        raise CheckFailed(f"batch of 3: expected OK with 3 results or UNIMPLEMENTED, got {answer.describe()}")
    slots = answer.result.results
    if len(slots) != len(requests):
        raise CheckFailed(f"batch of 3: expected 3 results, got {len(slots)}")
    for position, (slot, request, outcome) in enumerate(zip(slots, requests, (APPROVED, expected, None)), 1):
        step = f"batch item {position}"
        item = _item_answer(slot)
        if item is None:
            raise CheckFailed(f"{step}: carries neither a result nor an error")
        single = await probe.call("Authorize", request)
        if outcome is None:
            probe.expect_status(f"{step} (amount 0)", item, "INVALID_ARGUMENT")
            probe.expect_status(f"{step} repeated as a single call", single, "INVALID_ARGUMENT")
            continue
        result = probe.expect_outcome(step, item, outcome, request.reference)
        repeated = probe.expect_outcome(f"{step} repeated as a single call", single, outcome, request.reference)
        probe.expect_same(f"{step} repeated as a single call", result, repeated)
    return "3 items answered in order, each as its single call (repeats got the same answers)"


@check("changed_repeat_refused",
       "A reference repeated with other content is FAILED_PRECONDITION; the first operation stays as it was.")
async def changed_repeat_refused(probe: Probe) -> str:
    reference, first = await probe.approved_authorization()
    changed_amount = probe.options.amount_minor + 1
    changed = await probe.authorize(reference, amount_minor=changed_amount)
    if changed.ok:
        raise CheckFailed(f"authorize repeated for {changed_amount} instead of {probe.options.amount_minor}: expected "
                          f"FAILED_PRECONDITION, got {changed.describe()}")
    probe.expect_status(f"authorize repeated for {changed_amount}", changed, "FAILED_PRECONDITION")
    found = probe.expect_outcome("inquire after the changed repeat", await probe.inquire(reference), APPROVED,
                                 reference)
    probe.expect_same("inquire after the changed repeat", first, found, "Inquire reports another operation")
    if found.HasField("amount") and found.amount.amount_minor != probe.options.amount_minor:
        raise CheckFailed(f"inquire after the changed repeat: amount {found.amount.amount_minor}, expected the first "
                          f"{probe.options.amount_minor}")
    return "changed repeat refused FAILED_PRECONDITION; Inquire still reports the first authorization"


@check("amount_echoed",
       "Every APPROVED Authorize, Capture, Refund and Void result names the amount it acted on.")
async def amount_echoed(probe: Probe) -> str:
    amount = probe.options.amount_minor
    authorization, approved = await probe.approved_authorization()
    probe.expect_amount("authorize", approved, amount)
    captured = max(1, amount * 3 // 5)
    refunded = max(1, captured // 3)
    capture, refund = probe.reference(), probe.reference()
    probe.expect_amount(f"capture {captured} of {amount}", probe.expect_outcome(
        f"capture {captured} of {amount}", await probe.capture(capture, authorization, captured), APPROVED, capture),
        captured)
    probe.expect_amount(f"refund {refunded}", probe.expect_outcome(
        f"refund {refunded}", await probe.refund(refund, authorization, refunded), APPROVED, refund), refunded)
    voided, _ = await probe.approved_authorization()
    void = probe.reference()
    probe.expect_amount("void", probe.expect_outcome("void", await probe.void(void, voided), APPROVED, void), amount)
    return f"authorize {amount}, capture {captured}, refund {refunded} and void {amount} each echoed"


# -- running --------------------------------------------------------------------------------------------

def select_checks(only: Sequence[str] = ()) -> list[Check]:
    """The checks named in `only` (all when empty), in suite order; an unknown name is a ValueError."""
    unknown = sorted(set(only) - set(check_names()))
    if unknown:
        raise ValueError(f"unknown check(s): {', '.join(unknown)}; known: {', '.join(check_names())}")
    return [registered for registered in CHECKS if not only or registered.name in only]


async def run_check(registered: Check, probe: Probe) -> CheckResult:
    """Runs one check; whatever it raises becomes its verdict, so one broken check never ends the run."""
    started = time.monotonic()
    try:
        passed, reason = True, await registered.run(probe)
    except CheckSkipped as skipped:
        passed, reason = None, str(skipped)
    except CheckFailed as failed:
        passed, reason = False, str(failed)
    except Exception as error:  # noqa: BLE001 - an unexpected error is this check's failure, not the run's
        text = _channel_text(str(error))
        passed, reason = False, f"the check raised {type(error).__name__}" + (f": {text}" if text else "")
    return CheckResult(registered.name, passed, reason, time.monotonic() - started)


async def _ensure_reachable(probe: Probe, target: str) -> None:
    """One Inquire of a fresh reference before any check: a refused connection is one clear error
    instead of every check failing with the same UNAVAILABLE."""
    try:
        await probe.stub.Inquire(channel_pb2.ChannelInquireRequest(reference=probe.reference()),
                                 timeout=probe.options.timeout, wait_for_ready=False)
    except grpc.aio.AioRpcError as error:
        if error.code() is grpc.StatusCode.UNIMPLEMENTED:
            # Inquire is not optional: a service without it is not a PaymentChannel at all, and
            # every check would fail with the same UNIMPLEMENTED.
            raise NotAPaymentChannel(f"{target} is not a PaymentChannel: it answers Inquire with UNIMPLEMENTED "
                                     "(is it a switch? channel-check takes a channel's address)") from None
        evidence = f"{error.details() or ''}\n{error.debug_error_string() or ''}"
        if error.code() is grpc.StatusCode.UNAVAILABLE and connection_not_established(evidence):
            details = safe_message(" ".join((error.details() or "").split()))
            raise TargetUnreachable(f"cannot connect to {target}: {details}") from None


async def run_checks(target: str, options: CheckOptions, tls: ClientTls | None = None) -> list[CheckResult]:
    """Runs the selected checks one after another against the PaymentChannel at `target`
    ("host:port"; TLS when `tls` is given). Raises TargetUnreachable when no connection can be made,
    NotAPaymentChannel when the target serves something else, ValueError for an unknown name in
    `options.only`."""
    selected = select_checks(options.only)
    async with aio_channel(target, tls) as channel:
        probe = Probe(channel_pb2_grpc.PaymentChannelStub(channel), options)
        await _ensure_reachable(probe, target)
        return [await run_check(registered, probe) for registered in selected]


def render_table(results: Sequence[CheckResult]) -> str:
    """An aligned table: check | result | detail, one row per check."""
    rows = [("check", "result", "detail")] + [(result.name, result.label, result.reason) for result in results]
    name_width = max(len(row[0]) for row in rows)
    label_width = max(len(row[1]) for row in rows)
    lines = [f"{name:<{name_width}}  {label:<{label_width}}  {detail}".rstrip() for name, label, detail in rows]
    lines.insert(1, f"{'-' * name_width}  {'-' * label_width}  {'-' * len('detail')}")
    return "\n".join(lines)


def summary(results: Sequence[CheckResult]) -> str:
    """"N passed, M failed, K skipped"."""
    counts = {label: sum(result.label == label for result in results) for label in ("PASS", "FAIL", "SKIP")}
    return f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped"
