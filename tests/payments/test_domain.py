"""Money, cards and the lifecycle rules, without any I/O."""

import pytest

from payswitch.payments import lifecycle
from payswitch.payments.cards import CardDetails, Sensitive, card_scheme, luhn_valid
from payswitch.payments.commands import AuthorizeCommand
from payswitch.payments.errors import AmountExceeded, CurrencyMismatch, IllegalTransition, OperationPending
from payswitch.payments.ids import IdSource
from payswitch.payments.lifecycle import PaymentStatus
from payswitch.payments.money import CURRENCY_EXPONENTS, InvalidMoney, Money


def test_money_is_integer_minor_units_of_a_known_currency():
    assert str(Money(123456, "USD")) == "1234.56 USD"
    assert str(Money(1500, "JPY")) == "1500 JPY"
    assert str(Money(1, "BHD")) == "0.001 BHD"
    with pytest.raises(InvalidMoney) as caught:
        Money(1.5, "USD")
    assert caught.value.field == "amount_minor"
    with pytest.raises(InvalidMoney) as caught:
        Money(100, "ABC")
    assert caught.value.field == "currency"
    with pytest.raises(InvalidMoney):
        Money.positive(0, "USD")
    with pytest.raises(InvalidMoney):
        Money.positive(10**15 + 1, "USD")


def test_currency_table_exponents():
    assert (CURRENCY_EXPONENTS["USD"], CURRENCY_EXPONENTS["JPY"], CURRENCY_EXPONENTS["KWD"]) == (2, 0, 3)
    assert all(len(code) == 3 and code.isupper() for code in CURRENCY_EXPONENTS)


@pytest.mark.parametrize("number, valid", [
    ("4242424242424242", True), ("4242424242424241", False), ("378282246310005", True), ("79927398713", True),
])
def test_luhn(number, valid):
    assert luhn_valid(number) is valid


@pytest.mark.parametrize("number, scheme", [
    ("4242424242424242", "visa"), ("5555555555554444", "mastercard"), ("2223003122003222", "mastercard"),
    ("378282246310005", "amex"), ("6011111111111117", "discover"), ("3566002020360505", "unknown"),
])
def test_card_scheme(number, scheme):
    assert card_scheme(number) == scheme


def test_sensitive_values_never_print():
    card = CardDetails(Sensitive("4242424242424242"), 12, 2030, Sensitive("123"), "A B")
    command = AuthorizeCommand("m", "k", "r", Money(1, "USD"), card, None, "")
    for text in (repr(card), str(card), repr(command), f"{command}"):
        assert "4242424242424242" not in text and "123" not in text.replace("Money", "")
    assert card.bin == "424242" and card.last4 == "4242"


def test_fingerprint_covers_the_request_but_not_the_cvv():
    def command(amount=100, cvv="123", number="4242424242424242"):
        card = CardDetails(Sensitive(number), 12, 2030, Sensitive(cvv), "A B")
        return AuthorizeCommand("m", "k", "r", Money(amount, "USD"), card, None, "")
    assert command().fingerprint() == command(cvv="999").fingerprint()
    assert command().fingerprint() != command(amount=101).fingerprint()
    assert command().fingerprint() != command(number="5555555555554444").fingerprint()


def test_capture_rules():
    assert lifecycle.check_capture(PaymentStatus.AUTHORIZED, "USD", 100, None, None) == 100
    assert lifecycle.check_capture(PaymentStatus.AUTHORIZED, "USD", 100, None, Money(40, "USD")) == 40
    with pytest.raises(AmountExceeded):
        lifecycle.check_capture(PaymentStatus.AUTHORIZED, "USD", 100, None, Money(101, "USD"))
    with pytest.raises(CurrencyMismatch):
        lifecycle.check_capture(PaymentStatus.AUTHORIZED, "USD", 100, None, Money(10, "EUR"))
    with pytest.raises(OperationPending):
        lifecycle.check_capture(PaymentStatus.AUTHORIZED, "USD", 100, "op_1", None)
    for status in set(PaymentStatus) - {PaymentStatus.AUTHORIZED}:
        with pytest.raises(IllegalTransition) as caught:
            lifecycle.check_capture(status, "USD", 100, None, None)
        assert caught.value.metadata["status"] == status.value


def test_refund_rules():
    assert lifecycle.check_refund(PaymentStatus.CAPTURED, "USD", 100, 0, None, None) == 100
    assert lifecycle.check_refund(PaymentStatus.PARTIALLY_REFUNDED, "USD", 100, 60, None, None) == 40
    with pytest.raises(AmountExceeded) as caught:
        lifecycle.check_refund(PaymentStatus.PARTIALLY_REFUNDED, "USD", 100, 60, None, Money(41, "USD"))
    assert caught.value.reason == "amount_exceeds_refundable"
    with pytest.raises(IllegalTransition):
        lifecycle.check_refund(PaymentStatus.REFUNDED, "USD", 100, 100, None, None)
    assert lifecycle.status_after_refund(100, 100) is PaymentStatus.REFUNDED
    assert lifecycle.status_after_refund(100, 99) is PaymentStatus.PARTIALLY_REFUNDED


def test_ids_sort_by_time_and_do_not_repeat():
    clock = iter(range(1_000, 2_000))
    ids = IdSource(clock_ms=lambda: next(clock))
    made = [ids.payment_id() for _ in range(100)]
    assert made == sorted(made) and len(set(made)) == 100
    assert all(len(i) == 30 and i.startswith("pay_") for i in made)
