"""switch.proto's comments against the errors the switch raises. Callers in other languages read only
the contract's comments, so a reason or an ErrorInfo metadata key missing there is a broken contract."""

import re
from pathlib import Path

from google.rpc import error_details_pb2, status_pb2

from payswitch.payments import errors
from payswitch.processing.budget import COMMIT_RESERVE_S, MIN_CHANNEL_S
from payswitch.tls import IdentityBinding

ROOT = Path(__file__).parent.parent.parent
SWITCH_PROTO = (ROOT / "protos" / "payswitch" / "v1" / "switch.proto").read_text()
SIGNING_SPEC = (ROOT / "docs" / "signing.md").read_text()

# One refusal of each kind the PaymentSwitch service raises, with its metadata as raised.
PAYMENT_ERRORS = [
    errors.InvalidRequest({"amount": "is required"}),
    errors.PaymentNotFound("pay_x"),
    errors.IllegalTransition("CAPTURE", "VOIDED"),
    errors.OperationPending("op_x"),
    errors.CurrencyMismatch("USD", "EUR"),
    errors.AmountExceeded("amount_exceeds_authorized", 5),
    errors.AmountExceeded("amount_exceeds_refundable", 5),
    errors.TokenNotFound("tok_x"),
    errors.VaultNotConfigured(),
    errors.NoRoute("2026-12-01"),
    errors.DeadlineTooShort(10, 70),
    errors.IdempotencyKeyReused(),
    errors.RequestInProgress(),
    errors.ChannelBusy("sim"),
    errors.StoreUnavailable(),
    errors.ShuttingDown(),
]


def _subclasses(cls) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *_subclasses(direct)}}


def _documented_metadata() -> dict[str, set[str]]:
    """reason -> metadata keys, from the "ErrorInfo.metadata by reason" list in switch.proto."""
    block = SWITCH_PROTO.split("// ErrorInfo.metadata by reason", 1)[1].split("\n//\n", 1)[0]
    entries: dict[str, str] = {}
    reason = None
    for line in block.splitlines()[2:]:
        entry = re.match(r"//   (\w+) +(.*)", line)
        if entry:
            reason = entry[1]
            entries[reason] = entry[2]
        else:
            entries[reason] += " " + line.removeprefix("//").strip()
    return {reason: set(re.findall(r"(\w+): ", text)) for reason, text in entries.items()}


def _certificate_refusal_metadata() -> tuple[str, set[str]]:
    status = IdentityBinding({}).merchant_refusal([], "m_acme")
    details = status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
    info = error_details_pb2.ErrorInfo()
    details.details[0].Unpack(info)
    return info.reason, set(info.metadata)


def test_the_examples_cover_every_payment_error():
    assert {type(error) for error in PAYMENT_ERRORS} == _subclasses(errors.PaymentError)


def test_every_reason_with_metadata_is_listed_with_exactly_its_keys():
    raised = {error.reason: set(error.metadata) for error in PAYMENT_ERRORS}
    reason, keys = _certificate_refusal_metadata()
    raised[reason] = keys
    documented = _documented_metadata()
    assert documented == {reason: keys for reason, keys in raised.items() if keys}
    assert documented["illegal_transition"] == {"operation", "status"}  # the parser reads several keys


def test_the_minimum_deadline_is_the_one_the_switch_enforces():
    reserve_ms, channel_ms = round(COMMIT_RESERVE_S * 1000), round(MIN_CHANNEL_S * 1000)
    paragraph = SWITCH_PROTO.split("// Deadlines:", 1)[1].split("\n//\n", 1)[0]
    deadlines = " ".join(paragraph.replace("\n//", " ").split())
    assert f"keeps {reserve_ms} ms" in deadlines and f"at least {channel_ms} ms" in deadlines
    assert f"less than {reserve_ms + channel_ms} ms" in deadlines
    assert errors.DeadlineTooShort(0, reserve_ms + channel_ms).metadata["needed_ms"] == str(reserve_ms + channel_ms)


def _signing_reasons(path: Path) -> set[str]:
    return set(re.findall(r'SigningError\("(\w+)"\)', path.read_text()))


def test_both_signing_twins_raise_the_same_reasons_and_the_contract_names_each():
    pure = _signing_reasons(ROOT / "src" / "payswitch" / "hotpath" / "signing.py")
    compiled = _signing_reasons(ROOT / "ext" / "payswitch" / "_speedups" / "signing.pyx")
    assert pure == compiled and {"duplicate_metadata", "malformed_merchant", "malformed_key_id"} <= pure
    table = SWITCH_PROTO.split("// | UNAUTHENTICATED", 1)[1].split("// | INVALID_ARGUMENT", 1)[0]
    for reason in pure:
        assert re.search(rf"\b{reason}\b", table), reason
        assert f"`{reason}`" in SIGNING_SPEC, reason
