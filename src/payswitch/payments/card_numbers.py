"""Finding card numbers in free text, to mask them (logs) or refuse them (fields that are not card fields).

A candidate is a run of at least 12 digits in which single spaces or dashes may separate
groups; a run must be set apart from other digits. A card number is 12-19 digits that pass Luhn, or 16
digits starting 2-6 that fail it (a card with one digit mistyped is still the card; 16 is the usual
length, and nothing else in our logs has that shape), except 13, 16 or 19 digits starting with 1: those
are epoch timestamps in ms, us or ns, and no scheme issues such numbers (MII 1 is the airlines': UATP
cards have 15 digits, and are masked). A card number keeps its first 6 and last 4 digits; the digits
between become '*', separators stay. Read in a candidate: each digit group whole; each span of whole
groups of at most 8 digits (a card printed in fours after a quantity: "2 4242 4242 4242 4242"); a
number behind an ISO 8583 length prefix ("16" + 16 digits) or a bytes repr's length escape ("\\x10" +
16 digits); in a group longer than 19 digits (glued fields, dumps), every Luhn-valid 12-19 digit
window. A run longer than 512 characters keeps only its first 6 and last 4 digits. Masks found several
ways are combined, so a doubtful reading only masks more. The price: about 1 in 10 other 12-19 digit
numbers (order ids, references; every 16-digit one starting 2-6) loses its middle digits; the first 6
and last 4 are usually enough to find it again. Refusing is narrower: see contains_card_number.
"""

import re

from .cards import luhn_valid


# A run of at least 12 digits; single spaces or dashes may separate its groups. Greedy and leftmost, so
# a match starts and ends beside a non-digit. The first branch (a fast loop in the regex engine) takes a
# long unbroken group alone; groups after it are matched apart, which reads nothing less, since spans
# across groups only join groups of at most 8 digits.
_DIGIT_RUN = re.compile(r"[0-9](?:[0-9]{11,}|(?:[ -]?[0-9]){11,})")
_GROUP_SEPARATOR = re.compile(r"[ -]")
_ANY_DIGIT = re.compile(r"[0-9]")
_MAX_FORMATTED_GROUP = 8  # a card printed in groups has groups of 4-6 digits
_MAX_READ_RUN = 512  # characters; a longer run (a dump, not a sentence) keeps only its first 6 and last 4 digits

# The leading digits (a range of equal-length prefixes) and the lengths of the numbers payment brands issue.
_ISSUED_RANGES = (
    ("4", "4", (13, 16, 19)),                                            # Visa
    ("51", "55", (16,)), ("2221", "2720", (16,)),                        # Mastercard
    ("34", "34", (15,)), ("37", "37", (15,)),                            # American Express
    ("300", "305", range(14, 20)), ("36", "36", range(14, 20)), ("38", "39", range(14, 20)),  # Diners Club
    ("3528", "3589", range(16, 20)),                                     # JCB
    ("6011", "6011", range(16, 20)), ("644", "649", range(16, 20)),     # Discover
    ("2200", "2204", range(16, 20)),                                     # Mir
    ("50", "50", range(12, 20)), ("56", "69", range(12, 20)),           # Maestro, UnionPay, RuPay, Verve, Troy
    ("81", "82", range(16, 20)), ("9792", "9792", (16,)),                # UnionPay, RuPay, Troy
    ("1", "1", (15,)),                                                   # UATP
)


def _is_issued_card_number(digits: str) -> bool:
    length = len(digits)
    return any(low <= digits[:len(low)] <= high and length in lengths for low, high, lengths in _ISSUED_RANGES) \
        and luhn_valid(digits)


def _is_card_number(digits: str) -> bool:
    length = len(digits)
    if not 12 <= length <= 19:
        return False
    first = digits[0]
    if first == "1" and length in (13, 16, 19):
        return False
    return luhn_valid(digits) or (length == 16 and first in "23456")


def _luhn_windows(group: str) -> list[tuple[int, int]]:
    """Every 12-19 digit window of `group` that passes Luhn, in linear time from two prefix sums (one
    per choice of which positions are doubled)."""
    length = len(group)
    even_doubled = [0] * (length + 1)  # positions with an even index doubled
    odd_doubled = [0] * (length + 1)
    for index, char in enumerate(group):
        value = ord(char) - 48
        doubled = value * 2 - 9 if value > 4 else value * 2
        even_doubled[index + 1] = even_doubled[index] + (doubled if index % 2 == 0 else value)
        odd_doubled[index + 1] = odd_doubled[index] + (value if index % 2 == 0 else doubled)
    windows = []
    for start in range(length - 11):
        for end in range(start + 12, min(start + 19, length) + 1):
            # the last digit is never doubled, so the doubled ones have the other parity
            sums = odd_doubled if (end - 1) % 2 == 0 else even_doubled
            if (sums[end] - sums[start]) % 10 == 0 and not (group[start] == "1" and end - start in (13, 16, 19)):
                windows.append((start, end))
    return windows


def _spans_in_group(group: str) -> list[tuple[int, int]]:
    """Card numbers read inside one group that is not one whole: behind a length prefix, or glued to others."""
    length = len(group)
    spans = []
    for width in (2, 3):  # ISO 8583 LLVAR / LLLVAR length prefix glued to the number
        if length >= width + 12:
            size = int(group[:width])
            if 12 <= size <= 19 and width + size <= length and _is_card_number(group[width:width + size]):
                spans.append((width, width + size))
    if length > 19:
        spans.extend(_luhn_windows(group))
    return spans


def _numbers_as_written(groups: list[str]):
    """The (start, end) digit positions of the 12-19 digit numbers as a person would read them: each group
    whole, and each span of whole groups of at most 8 digits (a card printed in fours)."""
    offsets = []
    offset = 0
    for group in groups:
        offsets.append(offset)
        if 12 <= len(group) <= 19:
            yield offset, offset + len(group)
        offset += len(group)
    for first in range(len(groups) - 1):
        total = 0
        for last in range(first, len(groups)):
            size = len(groups[last])
            total += size
            if size > _MAX_FORMATTED_GROUP or total > 19:
                break
            if last > first and total >= 12:
                yield offsets[first], offsets[first] + total


def _card_spans(groups: list[str]) -> list[tuple[int, int]]:
    """The (start, end) digit positions of every card number read in one candidate run."""
    digits = "".join(groups)
    spans = [(start, end) for start, end in _numbers_as_written(groups) if _is_card_number(digits[start:end])]
    offset = 0
    for group in groups:
        if len(group) >= 12 and (offset, offset + len(group)) not in spans:
            spans.extend((offset + start, offset + end) for start, end in _spans_in_group(group))
        offset += len(group)
    return spans


def _keep_ends(run: str) -> str:
    """`run` with every digit but its first 6 and last 4 masked, in linear time."""
    head = tail = 0
    for seen, found in enumerate(_ANY_DIGIT.finditer(run), 1):
        if seen == 6:
            head = found.end()
            break
    digits_from_end = 0
    for index in range(len(run) - 1, -1, -1):
        if run[index] not in " -":
            digits_from_end += 1
            if digits_from_end == 4:
                tail = index
                break
    return run[:head] + _ANY_DIGIT.sub("*", run[head:tail]) + run[tail:]


def _mask_digit_run(match: re.Match) -> str:
    text = match.group()
    if len(text) > _MAX_READ_RUN:
        return _keep_ends(text)
    groups = _GROUP_SEPARATOR.split(text)
    spans = _card_spans(groups)
    run_start = match.start()
    if run_start >= 2 and match.string[run_start - 2:run_start] == "\\x" and len(groups[0]) > 2:
        # in a bytes repr the first two digits may be a length byte's escape (b'\n\x104242...')
        spans.extend((begin + 2, end + 2) for begin, end in _card_spans([groups[0][2:], *groups[1:]]))
    if not spans:
        return text
    hidden = bytearray(sum(map(len, groups)))
    for begin, end in spans:
        hidden[begin + 6:end - 4] = b"\x01" * (end - 4 - begin - 6)
    masked = []
    position = 0
    for char in text:
        if char == " " or char == "-":
            masked.append(char)
        else:
            masked.append("*" if hidden[position] else char)
            position += 1
    return "".join(masked)


def mask_card_numbers(text: str) -> str:
    """`text` with every card number found masked to its first six and last four digits."""
    return _DIGIT_RUN.sub(_mask_digit_run, text)


def contains_card_number(text: str) -> bool:
    """Whether `text` holds, whole or printed in groups, a number a payment brand could have issued.

    Narrower than masking, since a refusal costs the caller where a mask costs nothing: only numbers as
    written are read, and each must pass Luhn with a brand's leading digits and length. A numeric order id
    is refused only when it is such a number (about 1 in 10 of the ids with a brand's shape).
    """
    for match in _DIGIT_RUN.finditer(text):
        groups = _GROUP_SEPARATOR.split(match.group())
        digits = "".join(groups)
        if any(_is_issued_card_number(digits[start:end]) for start, end in _numbers_as_written(groups)):
            return True
    return False
