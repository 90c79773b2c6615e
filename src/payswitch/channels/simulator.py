"""A deterministic fake bank that keeps the PaymentChannel contract, for tests, demos and load runs.

`ChannelSimulator` implements the five PaymentChannel methods as plain async methods over the
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
    any other number  APPROVED
    ================  ==========================================================================

Wallet tokens: "tok_decline" DECLINED "do_not_honor", "tok_insufficient" DECLINED
"insufficient_funds", "tok_error" INTERNAL, "tok_timeout" like the timeout card, any other APPROVED.

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
reference is never failed, since that would deny the first answer. `calls` counts calls per PaymentChannel method name
("Authorize", "Capture", "Void", "Refund", "Inquire"), `acted` the operations decided (approved or
declined) per method name; repeats and rejections are not in `acted`.
"""

import asyncio
import hashlib
import itertools
import random as random_module
from collections import Counter
from dataclasses import dataclass, field

from ..payments.money import InvalidMoney, Money
from ..v1 import channel_pb2, types_pb2
from .status_mapping import REJECTION_CODES


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


APPROVE = AuthorizationBehaviour("approve")
TIMEOUT = AuthorizationBehaviour("timeout")
ERROR = AuthorizationBehaviour("error")
DO_NOT_HONOR = AuthorizationBehaviour("decline", "do_not_honor", "the issuer declined the authorization")
INSUFFICIENT_FUNDS = AuthorizationBehaviour("decline", "insufficient_funds", "insufficient funds")
EXPIRED_CARD = AuthorizationBehaviour("decline", "expired_card", "the card has expired")

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
}

#: Authorization outcome by wallet token; any token not listed is approved.
TEST_WALLET_TOKENS: dict[str, AuthorizationBehaviour] = {
    "tok_decline": DO_NOT_HONOR,
    "tok_insufficient": INSUFFICIENT_FUNDS,
    "tok_error": ERROR,
    "tok_timeout": TIMEOUT,
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
        self._random = random if random is not None else random_module.Random(seed)
        self._reference_numbers = itertools.count(1)
        self._operations: dict[str, _Operation] = {}
        self._authorizations: dict[str, _Authorization] = {}
        #: Calls received per PaymentChannel method name ("Authorize", "Capture", "Void", "Refund", "Inquire").
        self.calls: Counter[str] = Counter()
        #: Operations decided (approved or declined) per method name; a repeat is not counted again.
        self.acted: Counter[str] = Counter()

    @property
    def acted_total(self) -> int:
        return sum(self.acted.values())

    # -- the five PaymentChannel methods ------------------------------------------------------------

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

    # -- the idempotent frame around every acting method ----------------------------------------------

    async def _operate(self, method, request, decide) -> channel_pb2.ChannelResult:
        self.calls[method] += 1
        reference = request.reference
        if not reference:
            await self._wait_latency()
            raise ChannelRejected("INVALID_ARGUMENT", "reference is required")
        fingerprint = hashlib.sha256(method.encode() + b"\0" + request.SerializeToString(deterministic=True)).digest()
        while (operation := self._operations.get(reference)) is not None:
            if operation.fingerprint is not None and operation.fingerprint != fingerprint:
                await self._wait_latency()
                raise ChannelRejected("FAILED_PRECONDITION", "reference already used for a different operation")
            if operation.settled.is_set():
                # A decided or refused reference: the first answer again, never a second act.
                await self._wait_latency()
                if operation.result is not None:
                    return _copy(operation.result)
                raise ChannelRejected(*operation.rejection)
            # The same operation is being decided by a concurrent call: wait for its answer. If that
            # call is cancelled before deciding, its entry is gone and this call decides instead.
            await operation.settled.wait()

        operation = _Operation(fingerprint=fingerprint)
        self._operations[reference] = operation
        try:
            await self._wait_latency()
            self._roll_failure()
            # From here to the end of decide() nothing awaits: check and act are one step.
            result, hold_reply = decide(request)
        except ChannelRejected as rejected:
            operation.rejection = (rejected.code, rejected.message)
            operation.settled.set()
            raise
        except BaseException:
            # Cancelled (or broken) before deciding: nothing was done, the reference stays free.
            del self._operations[reference]
            operation.settled.set()
            raise
        operation.result = result
        operation.settled.set()
        self.acted[method] += 1
        if hold_reply:
            await asyncio.sleep(self.timeout_delay_s)
        return _copy(result)

    async def _wait_latency(self) -> None:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)

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


def _copy(result: channel_pb2.ChannelResult) -> channel_pb2.ChannelResult:
    """A copy, so no caller can change what the simulator answers to the next repeat or Inquire."""
    copied = channel_pb2.ChannelResult()
    copied.CopyFrom(result)
    return copied
