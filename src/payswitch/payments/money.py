"""Money as integer minor units of an ISO 4217 currency; never a float."""

from dataclasses import dataclass

#: Upper bound on any single amount: 10^15 minor units keeps every sum far inside int64.
MAX_AMOUNT_MINOR = 10**15

#: ISO 4217 active codes with their minor-unit exponents (funds codes and precious metals left out).
CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD "
        "CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD "
        "GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD "
        "MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP "
        "PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS "
        "TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWG".split(), 2),
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    "CLF": 4,
    "UYW": 4,
}


class InvalidMoney(ValueError):
    """An amount or currency that no payment may carry; `field` names the offending part."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def currency_exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise InvalidMoney("currency", f"unknown ISO 4217 currency code {currency[:8]!r}") from None


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self):
        if type(self.amount_minor) is not int:
            raise InvalidMoney("amount_minor", "amount must be an integer number of minor units")
        currency_exponent(self.currency)

    @classmethod
    def positive(cls, amount_minor: int, currency: str) -> "Money":
        """A request amount: strictly positive and within MAX_AMOUNT_MINOR."""
        money = cls(amount_minor, currency)
        if amount_minor <= 0:
            raise InvalidMoney("amount_minor", "amount must be greater than zero")
        if amount_minor > MAX_AMOUNT_MINOR:
            raise InvalidMoney("amount_minor", f"amount must be at most {MAX_AMOUNT_MINOR} minor units")
        return money

    def __str__(self) -> str:
        exponent = CURRENCY_EXPONENTS[self.currency]
        sign = "-" if self.amount_minor < 0 else ""
        whole, fraction = divmod(abs(self.amount_minor), 10**exponent)
        return f"{sign}{whole}.{fraction:0{exponent}d} {self.currency}" if exponent else f"{sign}{whole} {self.currency}"
