"""A deterministic fake bank that keeps the PaymentChannel contract, for tests, demos and load runs.

`ChannelSimulator` implements the PaymentChannel methods as plain async methods over the
channel_pb2 messages: it returns a `ChannelResult` for every decided operation and raises
`ChannelRejected(code, message)` -- `code` a gRPC status name -- when it did not act. The gRPC
service in `simulator_service` and `InProcessChannelClient` both wrap it, so this module has no
grpc import.

Outcomes of Authorize by test card number:

    ================  ==========================================================================
    card number       outcome
    ================  ==========================================================================
    4242424242424242  APPROVED (visa)
    5555555555554444  APPROVED (mastercard)
    378282246310005   APPROVED (amex)
    4000000000000002  DECLINED "do_not_honor"
    4000000000009995  DECLINED "insufficient_funds"
    4000000000000069  DECLINED "expired_card"
    4000000000000119  INTERNAL error: the channel failed before acting
    4000000000000259  APPROVED and recorded (Inquire reports it), then the reply is held for
                      `timeout_delay_s` so the caller's deadline expires: an unknown outcome
    4000000000000325  APPROVED for half the amount, rounded up (a partial approval: the result's
                      `amount` says what was approved, and captures are bounded by it)
    4000000000000333  the partial approval of 4000000000000325, with the timeout card's held reply
    any other number  APPROVED
    ================  ==========================================================================

Wallet tokens: "tok_decline" DECLINED "do_not_honor", "tok_insufficient" DECLINED
"insufficient_funds", "tok_error" INTERNAL, "tok_timeout" like the timeout card, "tok_partial" like the
partial card, any other APPROVED. Every APPROVED result echoes in `amount` what it acted on.

Capture, Void and Refund depend only on the authorization's state: capture at most the authorized
amount (OUT_OF_RANGE over it) and only once; void only before capture; refunds in total at most the
captured amount (OUT_OF_RANGE over it). Anything not allowed is FAILED_PRECONDITION; a malformed
request (no reference, bad amount or currency, no payment method) is INVALID_ARGUMENT.

The contract's promises, as kept here:
- Idempotent by `reference` across all methods: a repeat with the same content gets the first answer
  (result or rejection) without acting again and without the timeout card's hang; a repeat with other
  content is FAILED_PRECONDITION and changes nothing.
- A rejection is final for its reference ("did not act and will not act on that reference"), so a
  repeat of a rejected reference is rejected again, even a simulated INTERNAL.
- Inquire answers the stored result, IN_PROGRESS while a call with that reference is between receipt
  and decision (e.g. during `latency_ms`), NOT_FOUND when nothing was decided. Having said NOT_FOUND,
  the simulator refuses that reference forever (FAILED_PRECONDITION), so a request still in flight
  cannot be acted on after the switch concluded it never arrived.
- A call cancelled before its decision (the caller's deadline, a dropped connection) acts on nothing.

`failure_rate` draws from the injected random source once per new operation (after `latency_ms`,
before deciding) and once per Inquire; a hit is INTERNAL and nothing is done. A repeat of a decided
reference is never failed, since that would deny the first answer. `calls` counts calls per
PaymentChannel method name ("Authorize", "Capture", "Void", "Refund", "Inquire", "Batch"), a batch's
items also under their own names; `acted` the operations decided (approved or declined) per method
name; repeats and rejections are not in `acted`.

Batch (optional in the contract; `batch_enabled=False` answers UNIMPLEMENTED) answers each item as its
single call would, with the same idempotency and state; new items are decided in item order (so a
capture may follow its authorization in the same batch), then repeats get their first answers. What batching changes is time: `latency_ms` is paid once per batch,
with every new item already received (Inquire says IN_PROGRESS) and none decided, so a batch cancelled
during it acts on nothing. The failure roll is per new item, as for single calls. A timeout card or
`tok_timeout` in a batch holds the WHOLE reply for `timeout_delay_s` after every item is decided, as a
bank answering a batch in one message would: the caller's deadline expires, every item is unknown to
it, and Inquire finds each item's decision. A repeat of such a batch answers at once.
"""

import asyncio
import hashlib
import itertools
import random as random_module
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..payments.money import InvalidMoney, Money
from ..v1 import channel_pb2, types_pb2
from .status_mapping import REJECTION_CODES, status_number


class ChannelRejected(Exception):
    """The channel did not act and will not act on the request's reference; `code` is a gRPC status
    name ("OUT_OF_RANGE", ...) that the gRPC service sends and the in-process client classifies."""

    def __init__(self, code: str, message: str):
        if code not in REJECTION_CODES:
            raise ValueError(f"{code!r} is not a status a channel rejects with")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class AuthorizationBehaviour:
    """What the simulator does with an authorization for one test card or wallet token."""

    kind: str  # "approve", "decline", "error" or "timeout"
    decline_code: str = ""
    decline_message: str = ""
    partial: bool = False  # approves half the amount, rounded up


APPROVE = AuthorizationBehaviour("approve")
TIMEOUT = AuthorizationBehaviour("timeout")
ERROR = AuthorizationBehaviour("error")
DO_NOT_HONOR = AuthorizationBehaviour("decline", "do_not_honor", "the issuer declined the authorization")
INSUFFICIENT_FUNDS = AuthorizationBehaviour("decline", "insufficient_funds", "insufficient funds")
EXPIRED_CARD = AuthorizationBehaviour("decline", "expired_card", "the card has expired")
PARTIAL = AuthorizationBehaviour("approve", partial=True)
PARTIAL_TIMEOUT = AuthorizationBehaviour("timeout", partial=True)

#: Authorization outcome by card number; any number not listed is approved.
TEST_CARDS: dict[str, AuthorizationBehaviour] = {
    "4242424242424242": APPROVE,
    "5555555555554444": APPROVE,
    "378282246310005": APPROVE,
    "4000000000000002": DO_NOT_HONOR,
    "4000000000009995": INSUFFICIENT_FUNDS,
    "4000000000000069": EXPIRED_CARD,
    "4000000000000119": ERROR,
    "4000000000000259": TIMEOUT,
    "4000000000000325": PARTIAL,
    "4000000000000333": PARTIAL_TIMEOUT,
}

#: Authorization outcome by wallet token; any token not listed is approved.
TEST_WALLET_TOKENS: dict[str, AuthorizationBehaviour] = {
    "tok_decline": DO_NOT_HONOR,
    "tok_insufficient": INSUFFICIENT_FUNDS,
    "tok_error": ERROR,
    "tok_timeout": TIMEOUT,
    "tok_partial": PARTIAL,
}

_APPROVED = channel_pb2.CHANNEL_OUTCOME_APPROVED
_DECLINED = channel_pb2.CHANNEL_OUTCOME_DECLINED
_IN_PROGRESS = channel_pb2.CHANNEL_OUTCOME_IN_PROGRESS


@dataclass(slots=True)
class _Authorization:
    """An approved authorization; its counters keep capture <= authorized and refunds <= captured."""

    amount: Money
    captured_minor: int = 0
    captured: bool = False
    refunded_minor: int = 0
    voided: bool = False


@dataclass(slots=True)
class _Operation:
    """Everything the simulator remembers of one reference: never the request, only its digest."""

    # sha256 of method and request; None for a reference refused after Inquire said NOT_FOUND.
    fingerprint: bytes | None
    result: channel_pb2.ChannelResult | None = None
    rejection: tuple[str, str] | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class _BatchItem:
    """One item of a Batch between its receipt and its answer."""

    method: str = ""
    request: object = None
    decide: Callable | None = None
    fingerprint: bytes = b""
    # Set when the item is answered without deciding (malformed, or its reference used otherwise).
    rejection: tuple[str, str] | None = None
    # The operation whose answer this item gets: registered by this batch when `decides`, else an
    # earlier one (a repeat) or one still being decided by another call or an earlier item.
    operation: _Operation | None = None
    decides: bool = False


class ChannelSimulator:
    """A fake bank keeping all state in memory; see the module docstring for its rules."""

    def __init__(
        self,
        *,
        latency_ms: float = 0,
        failure_rate: float = 0.0,
        seed: int | None = None,
        timeout_delay_s: float = 30.0,
        random: random_module.Random | None = None,
        batch_enabled: bool = True,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ):
        if latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0.0 and 1.0")
        if timeout_delay_s < 0:
            raise ValueError("timeout_delay_s must be >= 0")
        self.latency_ms = latency_ms
        self.failure_rate = failure_rate
        self.timeout_delay_s = timeout_delay_s
        #: False answers Batch with UNIMPLEMENTED, as a channel that does not offer it would.
        self.batch_enabled = batch_enabled
        # Every latency and hold goes through this, so a test can count or skip them.
        self._sleep = sleep
        self._random = random if random is not None else random_module.Random(seed)
        self._reference_numbers = itertools.count(1)
        self._operations: dict[str, _Operation] = {}
        self._authorizations: dict[str, _Authorization] = {}
        #: Calls received per PaymentChannel method name ("Authorize", "Capture", "Void", "Refund", "Inquire",
        #: "Batch"); a batch's items are also counted under their own names.
        self.calls: Counter[str] = Counter()
        #: Operations decided (approved or declined) per method name; a repeat is not counted again.
        self.acted: Counter[str] = Counter()

    @property
    def acted_total(self) -> int:
        return sum(self.acted.values())

    # -- the PaymentChannel methods ----------------------------------------------------------------

    async def authorize(self, request: channel_pb2.ChannelAuthorizeRequest) -> channel_pb2.ChannelResult:
        return await self._operate("Authorize", request, self._decide_authorize)

    async def capture(self, request: channel_pb2.ChannelCaptureRequest) -> channel_pb2.ChannelResult:
        return await self._operate("Capture", request, self._decide_capture)

    async def void(self, request: channel_pb2.ChannelVoidRequest) -> channel_pb2.ChannelResult:
        return await self._operate("Void", request, self._decide_void)

    async def refund(self, request: channel_pb2.ChannelRefundRequest) -> channel_pb2.ChannelResult:
        return await self._operate("Refund", request, self._decide_refund)

    async def inquire(self, request: channel_pb2.ChannelInquireRequest) -> channel_pb2.ChannelResult:
        self.calls["Inquire"] += 1
        await self._wait_latency()
        reference = request.reference
        if not reference:
            raise ChannelRejected("INVALID_ARGUMENT", "reference is required")
        self._roll_failure()
        operation = self._operations.get(reference)
        if operation is None:
            # Answering NOT_FOUND lets the switch conclude the operation never happened, so the
            # reference is refused from now on: a request still in flight cannot act after that.
            self._operations[reference] = _Operation(
                fingerprint=None, rejection=("FAILED_PRECONDITION", "reference was reported unknown by Inquire")
            )
            self._operations[reference].settled.set()
            raise ChannelRejected("NOT_FOUND", "no operation with this reference")
        if operation.result is not None:
            return _copy(operation.result)
        if operation.rejection is not None:
            raise ChannelRejected("NOT_FOUND", "no operation was performed with this reference")
        return channel_pb2.ChannelResult(reference=reference, outcome=_IN_PROGRESS,
                                         message="the operation is being processed")

    async def batch(self, request: channel_pb2.ChannelBatchRequest) -> channel_pb2.ChannelBatchResponse:
        """Every item answered as its single call would be, deciding in item order after one latency;
        see the module docstring for the timeout card."""
        self.calls["Batch"] += 1
        if not self.batch_enabled:
            raise ChannelRejected("UNIMPLEMENTED", "this channel does not implement Batch")
        items = [self._receive_item(item) for item in request.items]
        try:
            await self._wait_latency()
            hold_reply = False
            # New items are decided first, in item order, so none waits behind another call still
            # deciding a repeated reference (as concurrent single calls would not); repeats follow.
            for item in items:
                if item.decides:
                    hold_reply = self._decide_item(item) or hold_reply
            for item in items:
                if item.rejection is None and not item.decides:
                    hold_reply = await self._await_first_answer(item) or hold_reply
        except BaseException:
            # Cancelled (or broken) midway: what is decided stays decided, the rest was never done.
            for item in items:
                if item.decides and not item.operation.settled.is_set():
                    self._release(item.request.reference, item.operation)
            raise
        response = channel_pb2.ChannelBatchResponse()
        for item in items:
            _answer_item(response.results.add(), item)
        if hold_reply:
            await self._sleep(self.timeout_delay_s)
        return response

    # -- the idempotent frame around every acting method ----------------------------------------------

    async def _operate(self, method, request, decide) -> channel_pb2.ChannelResult:
        self.calls[method] += 1
        reference = request.reference
        if not reference:
            await self._wait_latency()
            raise ChannelRejected("INVALID_ARGUMENT", "reference is required")
        fingerprint = _fingerprint(method, request)
        while (operation := self._operations.get(reference)) is not None:
            if operation.fingerprint is not None and operation.fingerprint != fingerprint:
                await self._wait_latency()
                raise ChannelRejected("FAILED_PRECONDITION", "reference already used for a different operation")
            if operation.settled.is_set():
                # A decided or refused reference: the first answer again, never a second act.
                await self._wait_latency()
                return _first_answer(operation)
            # The same operation is being decided by a concurrent call: wait for its answer. If that
            # call is cancelled before deciding, its entry is gone and this call decides instead.
            await operation.settled.wait()

        operation = self._register(reference, fingerprint)
        try:
            await self._wait_latency()
        except BaseException:
            self._release(reference, operation)
            raise
        result, hold_reply = self._decide(method, operation, request, decide)
        if hold_reply:
            await self._sleep(self.timeout_delay_s)
        return _copy(result)

    def _register(self, reference: str, fingerprint: bytes) -> _Operation:
        """Marks `reference` received and undecided: Inquire says IN_PROGRESS, repeats wait for it."""
        operation = _Operation(fingerprint=fingerprint)
        self._operations[reference] = operation
        return operation

    def _release(self, reference: str, operation: _Operation) -> None:
        """Forgets an operation cancelled before its decision: nothing was done, the reference is free."""
        if self._operations.get(reference) is operation:
            del self._operations[reference]
        operation.settled.set()

    def _decide(self, method: str, operation: _Operation, request, decide):
        """Rolls the failure and decides a registered operation, settling it either way. Nothing here
        awaits, so the check and the act are one step."""
        try:
            self._roll_failure()
            result, hold_reply = decide(request)
        except ChannelRejected as rejected:
            operation.rejection = (rejected.code, rejected.message)
            operation.settled.set()
            raise
        except BaseException:
            self._release(request.reference, operation)
            raise
        operation.result = result
        operation.settled.set()
        self.acted[method] += 1
        return result, hold_reply

    # -- a batch's items: received together, decided one by one ---------------------------------------

    _BATCH_METHODS = {"authorize": "Authorize", "capture": "Capture", "void": "Void", "refund": "Refund"}

    def _receive_item(self, batch_item: channel_pb2.ChannelBatchItem) -> _BatchItem:
        """What the single call would do on arrival, without waiting: answer at once, register the
        operation, or note the one it must wait for."""
        item = _BatchItem()
        kind = batch_item.WhichOneof("operation")
        if kind is None:
            item.rejection = ("INVALID_ARGUMENT", "the batch item carries no operation")
            return item
        item.method = self._BATCH_METHODS[kind]
        item.request = getattr(batch_item, kind)
        item.decide = getattr(self, "_decide_" + kind)
        self.calls[item.method] += 1
        reference = item.request.reference
        if not reference:
            item.rejection = ("INVALID_ARGUMENT", "reference is required")
            return item
        item.fingerprint = _fingerprint(item.method, item.request)
        operation = self._operations.get(reference)
        if operation is None:
            item.operation, item.decides = self._register(reference, item.fingerprint), True
        elif operation.fingerprint is not None and operation.fingerprint != item.fingerprint:
            item.rejection = ("FAILED_PRECONDITION", "reference already used for a different operation")
        else:
            item.operation = operation
        return item

    def _decide_item(self, item: _BatchItem) -> bool:
        """Decides a new item; True when the reply must be held (the timeout card)."""
        try:
            _, hold_reply = self._decide(item.method, item.operation, item.request, item.decide)
        except ChannelRejected:
            return False  # the rejection is on the operation, where the answer is read from
        return hold_reply

    async def _await_first_answer(self, item: _BatchItem) -> bool:
        """A repeat's first answer, once the call (or earlier item) deciding it is done; if that call
        was cancelled before deciding, the reference is free and this item decides it instead."""
        reference = item.request.reference
        while not (item.operation.settled.is_set() and self._operations.get(reference) is item.operation):
            await item.operation.settled.wait()
            operation = self._operations.get(reference)
            if operation is None:
                item.operation, item.decides = self._register(reference, item.fingerprint), True
                return self._decide_item(item)
            if operation.fingerprint is not None and operation.fingerprint != item.fingerprint:
                item.rejection = ("FAILED_PRECONDITION", "reference already used for a different operation")
                return False
            item.operation = operation
        return False

    async def _wait_latency(self) -> None:
        if self.latency_ms:
            await self._sleep(self.latency_ms / 1000)

    def _roll_failure(self) -> None:
        if self.failure_rate and self._random.random() < self.failure_rate:
            raise ChannelRejected("INTERNAL", "simulated channel failure")

    def _channel_reference(self) -> str:
        return f"sim_{next(self._reference_numbers):010d}"

    # -- decisions: synchronous, so each sees and changes state in one step ---------------------------

    def _decide_authorize(self, request: channel_pb2.ChannelAuthorizeRequest):
        amount = _request_amount(request)
        method = request.WhichOneof("method")
        if method == "card":
            number = request.card.number
            if not (number.isdigit() and number.isascii() and 12 <= len(number) <= 19):
                raise ChannelRejected("INVALID_ARGUMENT", "card number must be 12 to 19 digits")
            behaviour = TEST_CARDS.get(number, APPROVE)
        elif method == "wallet":
            if not request.wallet.token:
                raise ChannelRejected("INVALID_ARGUMENT", "wallet token is required")
            behaviour = TEST_WALLET_TOKENS.get(request.wallet.token, APPROVE)
        else:
            raise ChannelRejected("INVALID_ARGUMENT", "a card or a wallet is required")

        if behaviour.kind == "error":
            raise ChannelRejected("INTERNAL", "simulated issuer error")
        result = channel_pb2.ChannelResult(
            reference=request.reference, channel_reference=self._channel_reference(), amount=request.amount
        )
        if behaviour.kind == "decline":
            result.outcome = _DECLINED
            result.decline_code = behaviour.decline_code
            result.message = behaviour.decline_message
            return result, False
        result.outcome = _APPROVED
        result.message = "approved"
        if behaviour.partial:
            amount = Money(amount.amount_minor - amount.amount_minor // 2, amount.currency)
            result.amount.amount_minor = amount.amount_minor
            result.message = "partially approved"
        self._authorizations[request.reference] = _Authorization(amount)
        return result, behaviour.kind == "timeout"

    def _decide_capture(self, request: channel_pb2.ChannelCaptureRequest):
        authorization = self._authorization(request.authorization_reference)
        amount = _request_amount(request)
        _check_currency(authorization, amount)
        if authorization.voided:
            raise ChannelRejected("FAILED_PRECONDITION", "the authorization was voided")
        if authorization.captured:
            raise ChannelRejected("FAILED_PRECONDITION", "the authorization was already captured")
        if amount.amount_minor > authorization.amount.amount_minor:
            raise ChannelRejected(
                "OUT_OF_RANGE",
                f"capture of {amount.amount_minor} exceeds the {authorization.amount.amount_minor} authorized",
            )
        authorization.captured = True
        authorization.captured_minor = amount.amount_minor
        return self._approved(request.reference, request.amount, "captured"), False

    def _decide_void(self, request: channel_pb2.ChannelVoidRequest):
        authorization = self._authorization(request.authorization_reference)
        if authorization.captured:
            raise ChannelRejected("FAILED_PRECONDITION", "the authorization was captured; refund it instead")
        if authorization.voided:
            raise ChannelRejected("FAILED_PRECONDITION", "the authorization was already voided")
        authorization.voided = True
        amount = types_pb2.Money(
            amount_minor=authorization.amount.amount_minor, currency=authorization.amount.currency
        )
        return self._approved(request.reference, amount, "voided"), False

    def _decide_refund(self, request: channel_pb2.ChannelRefundRequest):
        authorization = self._authorization(request.authorization_reference)
        amount = _request_amount(request)
        _check_currency(authorization, amount)
        if not authorization.captured:
            raise ChannelRejected("FAILED_PRECONDITION", "the authorization was not captured")
        available = authorization.captured_minor - authorization.refunded_minor
        if amount.amount_minor > available:
            raise ChannelRejected(
                "OUT_OF_RANGE", f"refund of {amount.amount_minor} exceeds the {available} left to refund"
            )
        authorization.refunded_minor += amount.amount_minor
        return self._approved(request.reference, request.amount, "refunded"), False

    def _authorization(self, reference: str) -> _Authorization:
        if not reference:
            raise ChannelRejected("INVALID_ARGUMENT", "authorization_reference is required")
        authorization = self._authorizations.get(reference)
        if authorization is None:
            raise ChannelRejected("FAILED_PRECONDITION", "no approved authorization with that reference")
        return authorization

    def _approved(self, reference, amount, message) -> channel_pb2.ChannelResult:
        return channel_pb2.ChannelResult(
            reference=reference, outcome=_APPROVED, channel_reference=self._channel_reference(),
            message=message, amount=amount,
        )


def _request_amount(request) -> Money:
    if not request.HasField("amount"):
        raise ChannelRejected("INVALID_ARGUMENT", "amount is required")
    try:
        return Money.positive(request.amount.amount_minor, request.amount.currency)
    except InvalidMoney as invalid:
        raise ChannelRejected("INVALID_ARGUMENT", f"amount.{invalid.field}: {invalid}") from None


def _check_currency(authorization: _Authorization, amount: Money) -> None:
    if amount.currency != authorization.amount.currency:
        raise ChannelRejected(
            "INVALID_ARGUMENT", f"currency {amount.currency} differs from the authorization's "
            f"{authorization.amount.currency}"
        )


def _fingerprint(method: str, request) -> bytes:
    """What tells a repeat from another operation under the same reference, without keeping the request."""
    return hashlib.sha256(method.encode() + b"\0" + request.SerializeToString(deterministic=True)).digest()


def _first_answer(operation: _Operation) -> channel_pb2.ChannelResult:
    """A settled operation's answer again: its result, or its rejection raised."""
    if operation.result is not None:
        return _copy(operation.result)
    raise ChannelRejected(*operation.rejection)


def _answer_item(slot: channel_pb2.ChannelBatchItemResult, item: _BatchItem) -> None:
    """Writes the item's answer: the operation's result, or the status its single call would return."""
    rejection = item.rejection
    if rejection is None:
        if item.operation.result is not None:
            slot.result.CopyFrom(item.operation.result)
            return
        rejection = item.operation.rejection
    slot.error.code = status_number(rejection[0])
    slot.error.message = rejection[1]


def _copy(result: channel_pb2.ChannelResult) -> channel_pb2.ChannelResult:
    """A copy, so no caller can change what the simulator answers to the next repeat or Inquire."""
    copied = channel_pb2.ChannelResult()
    copied.CopyFrom(result)
    return copied
