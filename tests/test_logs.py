"""Structured logs: JSON lines with the context of the call, and no card number, CVV or secret in any
line, whichever logger wrote it and however the value got there (message, arguments, extra, traceback)."""

import asyncio
import io
import json
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payswitch.cli.runtime import configure_logging
from payswitch.logs import (DROPPED, JsonFormatter, RedactionFilter, TextFormatter, bind_log_context,
                            current_log_context, current_trace_id, log_context, new_trace_id, redact_text,
                            redact_value, trace_id_from_traceparent)
from payswitch.payments.cards import CardDetails, Sensitive, luhn_valid

TEST_PANS = ["4242424242424242", "5555555555554444", "378282246310005", "6011111111111117"]
REQUIRED_KEYS = {"ts", "level", "logger", "message", "trace_id", "payment_id"}
RFC3339_UTC_MICROSECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
log = logging.getLogger("payswitch.tests.logs")


def masked(pan: str) -> str:
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def with_check_digit(partial: str) -> str:
    """`partial` followed by the one digit that makes it pass Luhn."""
    return next(partial + digit for digit in "0123456789" if luhn_valid(partial + digit))


class Captured:
    def __init__(self, stream: io.StringIO):
        self._stream = stream

    @property
    def text(self) -> str:
        return self._stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]

    def ours(self) -> list[dict]:
        """The lines of this module's logger (asyncio logs its selector at DEBUG)."""
        return [line for line in self.lines() if line["logger"] == log.name]

    def last(self) -> dict:
        return self.lines()[-1]


@pytest.fixture
def captured():
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging("DEBUG", stream=stream)
    yield Captured(stream)
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def captured_text():
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging("DEBUG", json=False, stream=stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def assert_card_hidden(text: str, pan: str) -> None:
    assert pan not in text
    assert pan not in re.sub(r"[ -]", "", text)


# --- lines and context ----------------------------------------------------------------------------


def test_every_line_is_one_json_object_with_the_required_keys(captured):
    log.debug("debug line")
    log.info("info line with a\nnewline")
    log.warning("warning %s %d", "text", 3)
    logging.getLogger().error("from the root logger")
    lines = captured.text.splitlines()
    assert len(lines) == 4
    for line in lines:
        record = json.loads(line)
        assert REQUIRED_KEYS <= record.keys()
        assert RFC3339_UTC_MICROSECONDS.match(record["ts"]), record["ts"]
        assert record["trace_id"] is None and record["payment_id"] is None
    first, second, third, fourth = captured.lines()
    assert (first["level"], first["logger"], first["message"]) == ("DEBUG", log.name, "debug line")
    assert second["message"] == "info line with a\nnewline"
    assert (third["level"], third["message"]) == ("WARNING", "warning text 3")
    assert (fourth["logger"], fourth["level"]) == ("root", "ERROR")


def test_context_fields_appear_inside_the_block_and_nested_blocks_merge(captured):
    with log_context(trace_id="a" * 32, merchant_id="m_shop", method="Authorize"):
        log.info("outer")
        with log_context(payment_id="pay_01jd5z8q3xk2m9n4p6r8t0v2wz"):
            log.info("inner")
        log.info("outer again")
    log.info("outside")
    outer, inner, outer_again, outside = captured.lines()
    assert (outer["trace_id"], outer["payment_id"], outer["merchant_id"], outer["method"]) == (
        "a" * 32, None, "m_shop", "Authorize")
    assert (inner["trace_id"], inner["payment_id"], inner["merchant_id"]) == (
        "a" * 32, "pay_01jd5z8q3xk2m9n4p6r8t0v2wz", "m_shop")
    assert outer_again["payment_id"] is None and outer_again["trace_id"] == "a" * 32
    assert outside["trace_id"] is None and "merchant_id" not in outside


def test_an_inner_block_can_override_a_field_and_the_outer_value_comes_back(captured):
    with log_context(method="Batch"):
        with log_context(method="Authorize"):
            log.info("item")
        log.info("batch")
    assert [line["method"] for line in captured.lines()] == ["Authorize", "Batch"]


def test_context_follows_awaits_and_tasks_and_does_not_leak_between_calls(captured):
    async def call(trace_id: str, delay: float) -> None:
        with log_context(trace_id=trace_id):
            await asyncio.sleep(delay)
            log.info("after await %s", trace_id)

            async def child() -> None:
                await asyncio.sleep(0)
                log.info("in task %s", trace_id)

            await asyncio.create_task(child())
        log.info("after block %s", trace_id)

    async def main() -> None:
        await asyncio.gather(call("1a" * 16, 0.02), call("2b" * 16, 0.0), call("3c" * 16, 0.01))

    asyncio.run(main())
    lines = captured.ours()
    assert len(lines) == 9
    for line in lines:
        named = line["message"].rsplit(" ", 1)[1]
        if line["message"].startswith("after block"):
            assert line["trace_id"] is None
        else:
            assert line["trace_id"] == named


def test_bind_adds_a_field_learnt_deep_in_a_call_until_the_block_ends(captured):
    async def service() -> None:
        bind_log_context(payment_id="pay_x")
        await asyncio.sleep(0)

    async def edge() -> None:
        with log_context(trace_id="b" * 32):
            await service()
            log.error("failed after the payment existed")
        log.info("next call")

    asyncio.run(edge())
    failed, following = captured.ours()
    assert (failed["trace_id"], failed["payment_id"]) == ("b" * 32, "pay_x")
    assert following["payment_id"] is None


def test_context_values_are_redacted_and_sensitive_context_keys_dropped(captured):
    with log_context(session_token="tok_live_abc", card=TEST_PANS[0], trace_id="1a" * 16):
        log.info("one")
        log.info("two")
    for line in captured.lines():
        assert line["session_token"] == DROPPED and line["card"] == masked(TEST_PANS[0])
    assert "tok_live_abc" not in captured.text


def test_context_follows_into_worker_threads_started_with_to_thread(captured):
    async def main() -> None:
        with log_context(trace_id="4d" * 16):
            await asyncio.to_thread(log.info, "from a thread")

    asyncio.run(main())
    assert captured.ours()[-1]["trace_id"] == "4d" * 16


def test_current_context_and_trace_id():
    assert current_trace_id() is None
    with log_context(trace_id="c" * 32, merchant_id="m"):
        assert current_trace_id() == "c" * 32
        assert current_log_context() == {"trace_id": "c" * 32, "merchant_id": "m"}
    assert current_log_context() == {}


def test_new_trace_ids_are_w3c_shaped_random_and_survive_redaction():
    ids = {new_trace_id() for _ in range(2000)}
    assert len(ids) == 2000
    for trace_id in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", trace_id) and trace_id != "0" * 32
        assert redact_text(trace_id) == trace_id


def test_trace_id_from_traceparent():
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_from_traceparent(f"00-{trace_id}-00f067aa0ba902b7-01") == trace_id
    assert trace_id_from_traceparent(f"00-{trace_id}-00f067aa0ba902b7-01".encode()) == trace_id
    assert trace_id_from_traceparent(f"01-{trace_id}-00f067aa0ba902b7-01-future") == trace_id
    for bad in (None, "", "garbage", f"ff-{trace_id}-00f067aa0ba902b7-01", f"00-{'0' * 32}-00f067aa0ba902b7-01",
                f"00-{trace_id.upper()}-00f067aa0ba902b7-01", f"00-{trace_id}-{'0' * 16}-01"):
        assert trace_id_from_traceparent(bad) is None


def test_extra_fields_are_included_and_made_json_safe(captured):
    class Opaque:
        def __repr__(self) -> str:
            return "Opaque(4242424242424242)"

    log.info("with extra", extra={"amount_minor": 1999, "ratio": 0.25, "flags": {"a", "b"}, "nested": {"k": [1, 2]},
                                  "obj": Opaque(), "blob": b"\x00\x01", "nan": float("nan"), "message_id": "x",
                                  "level_name": None, "ts_source": True})
    line = captured.last()
    assert line["amount_minor"] == 1999 and line["ratio"] == 0.25
    assert sorted(line["flags"]) == ["a", "b"] and line["nested"] == {"k": [1, 2]}
    assert line["obj"] == "Opaque(424242******4242)"
    assert line["blob"] == repr(b"\x00\x01") and line["nan"] == "nan"
    assert line["level_name"] is None and line["ts_source"] is True


def test_an_extra_named_like_a_line_key_does_not_replace_it(captured):
    log.info("real message", extra={"level": "fake", "logger": "fake", "ts": "fake", "exc": "fake"})
    line = captured.last()
    assert (line["level"], line["logger"], line["message"]) == ("INFO", log.name, "real message")
    assert RFC3339_UTC_MICROSECONDS.match(line["ts"]) and "exc" not in line
    assert (line["extra_level"], line["extra_logger"], line["extra_ts"], line["extra_exc"]) == ("fake",) * 4


def test_an_extra_payment_id_is_more_specific_than_the_context(captured):
    with log_context(payment_id="pay_context", trace_id="d" * 32):
        log.info("about another payment", extra={"payment_id": "pay_extra"})
    assert captured.last()["payment_id"] == "pay_extra" and captured.last()["trace_id"] == "d" * 32


def test_exception_tracebacks_are_included_and_redacted(captured):
    pan = TEST_PANS[1]
    try:
        try:
            raise KeyError(f"no route for {pan}")
        except KeyError as cause:
            raise ValueError(f"card {pan} declined, cvv=123") from cause
    except ValueError:
        log.exception("authorize failed for %s", pan)
    line = captured.last()
    assert line["level"] == "ERROR" and line["message"] == f"authorize failed for {masked(pan)}"
    assert "Traceback (most recent call last)" in line["exc"] and "ValueError: card" in line["exc"]
    assert "KeyError" in line["exc"] and masked(pan) in line["exc"] and "cvv=[dropped]" in line["exc"]
    assert_card_hidden(captured.text, pan)
    assert "123" not in line["exc"].split("ValueError", 1)[1]


def test_exc_info_as_an_exception_object_and_stack_info_are_redacted(captured):
    pan = TEST_PANS[0]
    log.error("batch item failed", exc_info=RuntimeError(f"channel echoed {pan}"))
    log.info("where %s", pan, stack_info=True)
    failed, where = captured.lines()
    assert "RuntimeError: channel echoed " + masked(pan) in failed["exc"]
    assert where["stack"].startswith("Stack (most recent call last)")
    assert_card_hidden(captured.text, pan)


# --- card numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("pan", TEST_PANS)
def test_a_card_number_is_masked_wherever_it_is_logged(captured, pan):
    log.info(f"f-string {pan}")
    log.info("argument %s", pan)
    log.info("integer argument %d", int(pan))
    log.info("dict argument %s", {"number": pan, "holder": "A B"})
    log.info("bytes argument %r", b"\n" + bytes([len(pan)]) + pan.encode() + b"\x10\x0c")
    log.info("extra", extra={"card_number": pan, "as_int": int(pan), "nested": {"deep": [pan, (pan,)]}})
    log.info(ValueError(f"a non-str message {pan}"))
    log.info("glued to words: card%send", pan)
    log.info("amount 100 %s exp 12/29", pan)
    lines = captured.lines()
    assert len(lines) == 9
    assert_card_hidden(captured.text, pan)
    for line in lines:
        assert masked(pan) in json.dumps(line), line
    extra = lines[5]
    assert extra["card_number"] == masked(pan) and extra["as_int"] == masked(pan)
    assert extra["nested"] == {"deep": [masked(pan), [masked(pan)]]}


@pytest.mark.parametrize("pan", TEST_PANS)
def test_a_card_number_printed_in_groups_is_masked_keeping_its_layout(captured, pan):
    four = " ".join(pan[i:i + 4] for i in range(0, len(pan), 4))
    amex_style = f"{pan[:4]} {pan[4:10]} {pan[10:]}"
    for shown in (four, four.replace(" ", "-"), amex_style):
        log.info("card %s.", shown)
        message = captured.last()["message"]
        assert re.sub(r"[^0-9*]", "", message) == masked(pan)
        assert re.sub(r"[0-9*]", "", message) == re.sub(r"[0-9]", "", f"card {shown}.")  # separators kept
    log.info("after a quantity: qty 2 %s, after an amount: 1999 %s", four, four)
    assert_card_hidden(captured.text, pan)


def test_the_switch_own_card_objects_print_masked(captured):
    card = CardDetails(Sensitive(TEST_PANS[0]), 12, 2030, Sensitive("123"), "A B")
    log.info("command %s", card, extra={"card": card, "cvv": card.cvv, "number": card.number})
    log.info("sensitive alone %s", Sensitive(TEST_PANS[0]))
    line = captured.lines()[0]
    assert "Sensitive(***)" in line["message"] and "cvv=[dropped]" in line["message"]
    assert line["cvv"] == DROPPED and line["number"] == "Sensitive(***)" and "Sensitive(***)" in line["card"]
    assert_card_hidden(captured.text, TEST_PANS[0])


def test_protobuf_text_and_serialized_card_messages_are_masked(captured):
    from payswitch.v1 import types_pb2

    card = types_pb2.Card(number=TEST_PANS[0], exp_month=12, exp_year=2030, cvv="987", holder_name="A B")
    log.info("channel request %s", card)
    log.info("channel request bytes %r", card.SerializeToString())
    text_form, serialized = captured.lines()
    assert 'number: "424242******4242"' in text_form["message"] and 'cvv: "[dropped]"' in text_form["message"]
    assert masked(TEST_PANS[0]) in serialized["message"]
    assert_card_hidden(captured.text, TEST_PANS[0])


@pytest.mark.parametrize("text", [
    "epoch ms 1732406400000 and seconds 1732406400",
    "epoch us 1732406400000000 and ns 1732406400000000000",
    f"a Luhn-valid ms timestamp {with_check_digit('173240640000')}",
    f"a Luhn-valid us timestamp {with_check_digit('173240640000000')}",
    "payment 1234567890 for 1999 minor units, 19.99 USD, 10-digit id 4242424242",
    "date 2024-11-24 10:00:00.123456, phone +1 415-555-0100",
    "a float 0.30000000000000004 and 12.5",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 uuid 550e8400-e29b-41d4-a716-446655440000",
    "a 16-digit number not starting 2-6 and failing Luhn: 7242424242424242, 9000000000000002",
    "eleven digits 42424242424 stay",
    "pay_01jd5z8q3x7k2m9n4p6r8t0v2w",
])
def test_numbers_that_are_not_card_numbers_are_left_intact(captured, text):
    assert redact_text(text) == text
    log.info(text)
    assert captured.last()["message"] == text


def test_doubtful_shapes_are_masked_rather_than_left():
    typo = "4242424242424241"  # fails Luhn, but 16 digits starting 2-6: one mistyped digit of a card
    assert not luhn_valid(typo) and redact_text(typo) == masked(typo)
    uatp = with_check_digit("13528000000000")  # 15 digits starting 1: airline cards exist
    assert redact_text(uatp) == masked(uatp)
    twelve = with_check_digit("42424242424")  # Maestro issues 12-digit cards
    assert redact_text(twelve) == masked(twelve)


def test_a_card_number_glued_to_a_length_prefix_or_to_other_fields_is_masked():
    pan, long_pan = TEST_PANS[0], with_check_digit("601111111111111111")
    for text in (f"16{pan}", f"016{pan}", f"{pan}2512101", f"000000100000{pan}12251234567890", f"\\x10{pan}"):
        assert_card_hidden(redact_text(text), pan)
    serialized = repr(b"\n\x13" + long_pan.encode())
    assert "\\x13" + long_pan[:2] in serialized
    assert_card_hidden(redact_text(serialized), long_pan)


def test_huge_digit_runs_are_masked_quickly():
    pan = TEST_PANS[0]
    text = "0" * 100_000 + pan + "1" * 100_000
    redacted = redact_text(text)
    assert len(redacted) == len(text) and pan not in redacted


@settings(max_examples=300, deadline=None)
@given(length=st.integers(13, 19), first=st.sampled_from("23456789"), body=st.text("0123456789", min_size=18,
                                                                                       max_size=18),
       prefix=st.text(max_size=30), suffix=st.text(max_size=30), grouped=st.booleans(),
       separator=st.sampled_from(" -"))
def test_property_no_luhn_valid_card_number_survives_in_any_text(length, first, body, prefix, suffix, grouped,
                                                                 separator):
    pan = with_check_digit(first + body[:length - 2])
    # a card number must stand apart from other digits to be read as one: no digit right beside it
    if prefix[-1:].isdigit():
        prefix += " x"
    if suffix[:1].isdigit():
        suffix = "x " + suffix
    shown = separator.join(pan[i:i + 4] for i in range(0, length, 4)) if grouped else pan
    redacted = redact_text(prefix + shown + suffix)
    assert_card_hidden(redacted, pan)
    if not grouped:
        assert masked(pan) in redacted


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
                    | st.binary(max_size=20),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=8), children, max_size=4),
                    max_leaves=20))
def test_property_redacted_values_are_always_json_serializable(value):
    json.dumps(redact_value(value), allow_nan=False)


# --- CVVs and secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["cvv", "CVC", "cvv2", "card_verification", "securityCode", "secret", "secret_hex",
                                 "password", "token", "wallet_token", "Authorization", "x-payswitch-signature",
                                 "signature", "api_key", "apiKey", "private_key"])
def test_values_under_sensitive_keys_are_dropped_from_extra(captured, key):
    log.info("keyed", extra={key: "s3cr3t-value-987", "nested": {key: "s3cr3t-value-987", "ok": "kept"}})
    line = captured.last()
    assert line[key] == DROPPED and line["nested"] == {key: DROPPED, "ok": "kept"}
    assert "s3cr3t-value-987" not in captured.text


@pytest.mark.parametrize("text, kept", [
    ("cvv=123 then more", "cvv=[dropped] then more"),
    ('{"cvv": "1234", "amount": 5}', '{"cvv": "[dropped]", "amount": 5}'),
    ("{'cvc': '123', 'holder': 'A'}", "{'cvc': '[dropped]', 'holder': 'A'}"),
    ("security_code: 999", "security_code: [dropped]"),
    ('secret_hex = "ab12cd34ef56ab12cd34ef56ab12cd34"', 'secret_hex = "[dropped]"'),
    ("authorization: Bearer abc.def", "authorization: [dropped]"),
    ("sent header Bearer eyJhbGciOi.eyJzdWIi.sig_-x", "sent header Bearer [dropped]"),
    ("https://x.example/cb?token=tok_123&next=1", "https://x.example/cb?token=[dropped]&next=1"),
    ("password => hunter2;", "password => [dropped];"),
    ("X-Payswitch-Signature: 9f86d081884c7d65", "X-Payswitch-Signature: [dropped]"),
    ("metadata [('x-payswitch-signature', 'c2lnbmF0dXJl'), ('x-payswitch-nonce', 'n1')]",
     "metadata [('x-payswitch-signature', '[dropped]'), ('x-payswitch-nonce', 'n1')]"),
    ("(_Metadatum(key='authorization', value='Bearer abc'),)", "(_Metadatum(key='authorization', value='[dropped]'),)"),
    ('escaped {\\"api_key\\": \\"k-123\\"}', 'escaped {\\"api_key\\": [dropped]}'),
    ("key -----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY----- loaded",
     "key [dropped] loaded"),
    ("cut -----BEGIN PRIVATE KEY-----\nMIIEow", "cut [dropped]"),
])
def test_cvvs_and_secrets_in_text_are_dropped(captured, text, kept):
    assert redact_text(text) == kept
    log.warning("%s", text)
    assert captured.last()["message"] == kept


def test_text_without_secrets_is_untouched():
    for text in ("admin call refused: wrong token", "rejected Authorize: bad_signature", "payment authorized",
                 "routes.toml:4: unknown channel", "a security review", "[dropped]", "cvv=[dropped]",
                 'cvv: "[dropped]"'):
        assert redact_text(text) == text


# --- whatever logged it ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["grpc._cython.cygrpc", "asyncio", "urllib3.connectionpool", "aiosqlite"])
def test_third_party_loggers_are_filtered_too(captured, name):
    logging.getLogger(name).warning("peer sent %s with cvv=%s", TEST_PANS[2], "1234",
                                    extra={"authorization": "Bearer x"})
    line = captured.last()
    assert line["logger"] == name and line["authorization"] == DROPPED
    assert line["message"] == f"peer sent {masked(TEST_PANS[2])} with cvv=[dropped]"
    assert_card_hidden(captured.text, TEST_PANS[2])


def test_plain_text_mode_is_redacted_too(captured_text):
    with log_context(trace_id="e" * 32, card=TEST_PANS[0]):
        log.info("card %s cvv=%s", TEST_PANS[0], 123, extra={"secret": "s3cr3t", "amount": 5})
        try:
            raise ValueError(TEST_PANS[3])
        except ValueError:
            log.exception("failed")
    text = captured_text.getvalue()
    first = text.splitlines()[0]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO payswitch\.tests\.logs: "
                    r"card 424242\*{6}4242 cvv=\[dropped\]", first), first
    assert f'trace_id="{"e" * 32}"' in first and f'card="{masked(TEST_PANS[0])}"' in first
    assert 'secret="[dropped]"' in first and "amount=5" in first
    assert f"ValueError: {masked(TEST_PANS[3])}" in text
    for pan in (TEST_PANS[0], TEST_PANS[3]):
        assert_card_hidden(text, pan)
    assert "s3cr3t" not in text


def test_configure_logging_replaces_its_own_handler_and_keeps_others(captured):
    root = logging.getLogger()
    other = logging.NullHandler()
    root.addHandler(other)
    try:
        second = io.StringIO()
        handler = configure_logging("info", stream=second)
        try:
            mine = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
            assert mine == [handler] and other in root.handlers and root.level == logging.INFO
            log.info("to the second stream")
            log.debug("below the level")
            assert captured.text == "" and len(second.getvalue().splitlines()) == 1
        finally:
            root.removeHandler(handler)
    finally:
        root.removeHandler(other)


def test_configure_logging_rejects_an_unknown_level_without_changing_anything(captured):
    with pytest.raises(ValueError):
        configure_logging("LOUD", stream=io.StringIO())
    log.debug("still here")
    assert captured.last()["message"] == "still here"


def test_configure_logging_defaults_to_stderr(capsys):
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("WARNING")
    try:
        log.warning("to stderr %s", TEST_PANS[0])
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    err = capsys.readouterr().err
    assert json.loads(err.splitlines()[-1])["message"] == f"to stderr {masked(TEST_PANS[0])}"


# --- odd records ----------------------------------------------------------------------------------------


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    __repr__ = __str__


@pytest.mark.parametrize("message, args", [
    ("%s %s", (TEST_PANS[0],)),            # too few arguments: logging itself would print them raw
    ("%d", ("not a number " + TEST_PANS[0],)),
    ("no placeholders", (TEST_PANS[0],)),
    (12345, ()),
    (None, ()),
    (Unprintable(), ()),
    ("%s", (Unprintable(),)),
    ({"cvv": "123", "number": TEST_PANS[0]}, ()),
    ("%(card)s", ({"card": TEST_PANS[0]},)),
])
def test_odd_records_never_raise_and_still_leak_nothing(captured, message, args):
    log.info(message, *args)
    line = captured.last()
    assert REQUIRED_KEYS <= line.keys()
    assert_card_hidden(captured.text, TEST_PANS[0])
    assert "'123'" not in captured.text


def test_a_huge_message_is_logged_whole_and_redacted(captured):
    message = ("x" * 100_000 + " token " * 10_000 + TEST_PANS[0] + " ") * 5
    log.info(message)
    assert len(captured.last()["message"]) == len(message)
    assert_card_hidden(captured.text, TEST_PANS[0])


def test_the_filter_withholds_a_record_it_cannot_redact_instead_of_raising():
    class Hostile(dict):
        def items(self):
            raise RuntimeError(TEST_PANS[0])

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "card %s", (TEST_PANS[0],), None)
    record.__dict__["payload"] = Hostile(a=1)
    assert RedactionFilter().filter(record) is True
    assert "withheld" in record.getMessage() and "payload" not in record.__dict__
    line = json.loads(JsonFormatter().format(record))
    assert REQUIRED_KEYS <= line.keys() and TEST_PANS[0] not in json.dumps(line)


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()], ids=["json", "text"])
def test_a_formatter_wired_without_the_filter_still_redacts(formatter):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # as a hand-written dictConfig might set it up
    handler.setFormatter(formatter)
    logger = logging.getLogger("payswitch.tests.logs.unfiltered")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with log_context(trace_id="f" * 32):
            try:
                raise ValueError(TEST_PANS[1])
            except ValueError:
                logger.error("card %s", TEST_PANS[0], exc_info=True, extra={"cvv": "321"})
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    text = stream.getvalue()
    assert masked(TEST_PANS[0]) in text and masked(TEST_PANS[1]) in text and "f" * 32 in text
    assert_card_hidden(text, TEST_PANS[0])
    assert_card_hidden(text, TEST_PANS[1])
    assert 'cvv="[dropped]"' in text if isinstance(formatter, TextFormatter) else json.loads(text)["cvv"] == DROPPED


def test_filtering_twice_changes_nothing(captured):
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "cvv=%s card %s", ("123", TEST_PANS[0]), None)
    assert RedactionFilter().filter(record) and RedactionFilter().filter(record)
    assert record.getMessage() == f"cvv=[dropped] card {masked(TEST_PANS[0])}"
