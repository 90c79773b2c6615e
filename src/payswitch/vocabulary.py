"""The names and codes operators write (in the configuration, the routing and risk files, admin calls),
each checked one way wherever it appears, with the words an error shows when one is wrong."""

import re

from .payments.money import CURRENCY_EXPONENTS

#: Merchant, key, channel and rule names: the signing spec's identifier.
is_name = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z").match
NAME_WANTED = "1 to 64 of A-Z a-z 0-9 _ - ."
#: The version a routing or risk file declares.
is_version = re.compile(r"[A-Za-z0-9_\-.:]{1,64}\Z").match
VERSION_WANTED = "1 to 64 of A-Z a-z 0-9 _ - . :"
is_country = re.compile(r"[A-Z]{2}\Z").match
COUNTRY_WANTED = "an ISO 3166-1 alpha-2 country code (two uppercase letters)"
is_bin = re.compile(r"[0-9]{6,11}\Z").match
CURRENCY_WANTED = "an ISO 4217 currency code the switch knows (uppercase)"


def is_currency(code: str) -> bool:
    return code in CURRENCY_EXPONENTS


#: A signing secret is written as hex (the configuration's secret_hex or the variable secret_env names,
#: and what a client may be given) of at least this many bytes.
MIN_SECRET_BYTES = 16
SECRET_WANTED = f"hex of at least {MIN_SECRET_BYTES} bytes ({2 * MIN_SECRET_BYTES} or more hex digits)"
_SECRET_HEX = re.compile(rf"(?:[0-9a-fA-F]{{2}}){{{MIN_SECRET_BYTES},}}\Z")


def secret_from_hex(text: str) -> bytes | None:
    """The secret `text` writes, or None when it is not SECRET_WANTED (the text is never quoted back)."""
    return bytes.fromhex(text) if _SECRET_HEX.match(text) else None
