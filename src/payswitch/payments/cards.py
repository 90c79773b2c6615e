"""Card and wallet data: validation, scheme detection, and wrappers that never print their contents."""

from dataclasses import dataclass


class Sensitive:
    """A secret string (card number, CVV, wallet token) whose repr and str are masked.

    Logging or formatting a command or an exception can therefore never leak the value; code that
    needs it calls reveal().
    """

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Sensitive(***)"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Sensitive) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self):
        raise TypeError("sensitive values are not picklable")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_scheme(number: str) -> str:
    """The card scheme guessed from the leading digits (display only; routing uses BIN tables)."""
    if number[0] == "4":
        return "visa"
    prefix2, prefix4 = int(number[:2]), int(number[:4])
    if 51 <= prefix2 <= 55 or 2221 <= prefix4 <= 2720:
        return "mastercard"
    if prefix2 in (34, 37):
        return "amex"
    if prefix4 == 6011 or prefix2 == 65 or 644 <= int(number[:3]) <= 649:
        return "discover"
    return "unknown"


@dataclass(frozen=True, slots=True)
class CardDetails:
    number: Sensitive
    exp_month: int
    exp_year: int
    cvv: Sensitive
    holder_name: str

    @property
    def bin(self) -> str:
        return self.number.reveal()[:6]

    @property
    def last4(self) -> str:
        return self.number.reveal()[-4:]

    @property
    def scheme(self) -> str:
        return card_scheme(self.number.reveal())


@dataclass(frozen=True, slots=True)
class WalletDetails:
    provider: str
    token: Sensitive
