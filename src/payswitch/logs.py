"""Structured logs that cannot carry card data: one JSON object per line with the trace and payment the
line belongs to, and a handler filter that masks card numbers and drops CVVs and secrets whatever code
logged them (ours, a library's, a traceback's).

Redaction rules (the filter applies them to the formatted message, every `extra` value, the context
fields, exception and stack text):

Card numbers: masked to their first 6 and last 4 digits as payments/card_numbers finds them.

CVVs and secrets. Values under a key whose name contains cvv, cvc, card_verification, security_code,
secret, password, passwd, token, authorization, signature, api_key or private_key (any case, with or
without _ - .) become "[dropped]": in `extra` and nested dicts, and in text as key=value, key: value,
"key": "value", 'key': 'value', ('key', 'value') and key='key', value='value' (gRPC metadata). Bearer
credentials become "Bearer [dropped]", PEM private key blocks "[dropped]". `Sensitive` values print
masked already.

Not detectable here: a CVV or card number inside serialized protobuf bytes next to other digits, or
any secret without a telling name; such values must not be logged raw in the first place.
"""

import contextlib
import contextvars
import functools
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType

from .payments.card_numbers import mask_card_numbers
from .payments.cards import Sensitive

DROPPED = "[dropped]"

# ---------------------------------------------------------------------------------------------------
# Context: fields every record logged inside a block carries (contextvars, so they follow asyncio
# tasks, which copy the context they are created in).

class _Fields:
    """One block's fields, with their redacted copy made when a record first needs it: once per block,
    not once per line (so values are read as they were at the first line logged)."""

    __slots__ = ("values", "_redacted")

    def __init__(self, values: dict[str, object]):
        self.values: Mapping[str, object] = MappingProxyType(values)
        self._redacted: dict[str, object] | None = None

    def redacted(self) -> dict[str, object]:
        if self._redacted is None:
            self._redacted = {key: DROPPED if is_sensitive_key(key) else redact_value(value)
                              for key, value in self.values.items()}
        return self._redacted


_NO_FIELDS = _Fields({})
_context: contextvars.ContextVar[_Fields] = contextvars.ContextVar("payswitch_log_context", default=_NO_FIELDS)


@contextlib.contextmanager
def log_context(**fields) -> Iterator[None]:
    """Adds `fields` (trace_id, payment_id, merchant_id, method, ...) to every record logged inside the
    block, including in tasks created there; nested blocks add to the outer one's fields."""
    token = _context.set(_Fields({**_context.get().values, **fields}))
    try:
        yield
    finally:
        try:
            _context.reset(token)
        except ValueError:  # left in another Context (an async generator resumed by another task)
            old = token.old_value
            _context.set(_NO_FIELDS if old is contextvars.Token.MISSING else old)


def bind_log_context(**fields) -> None:
    """Adds `fields` to the current context until the enclosing log_context block ends: for a value
    learnt deep in a call (the payment id) that the caller's later lines should carry too."""
    _context.set(_Fields({**_context.get().values, **fields}))


def current_log_context() -> dict[str, object]:
    return dict(_context.get().values)


def current_trace_id() -> str | None:
    value = _context.get().values.get("trace_id")
    return None if value is None else str(value)


def new_trace_id() -> str:
    """A random W3C trace id (32 lowercase hex digits), never one the redactor would alter, so the
    ids we make always survive into the logs intact."""
    while True:
        trace_id = secrets.token_hex(16)
        if trace_id != "0" * 32 and redact_text(trace_id) == trace_id:
            return trace_id


_TRACEPARENT = re.compile(r"\s*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-|\s*\Z)")


def trace_id_from_traceparent(header: str | bytes | None) -> str | None:
    """The trace id of a W3C `traceparent` header, or None when it is absent or malformed."""
    if isinstance(header, bytes):
        header = header.decode("ascii", "replace")
    if not header:
        return None
    match = _TRACEPARENT.match(header)
    if match is None or match.group(1) == "ff" or match.group(2) == "0" * 32 or match.group(3) == "0" * 16:
        return None
    return match.group(2)


# ---------------------------------------------------------------------------------------------------
# CVVs and secrets.

_SENSITIVE_KEY_PARTS = ("cvv", "cvc", "cardverification", "securitycode", "secret", "password", "passwd",
                        "token", "authorization", "authorisation", "signature", "apikey", "privatekey")
# Bounded name lengths keep a long word that merely contains a keyword from costing quadratic time.
_KEY_NAME = (r"[\w.-]{0,64}?(?:cvv|cvc|card[_.-]?verification|security[_.-]?code|secret|passw(?:or)?d|token"
             r"|authori[sz]ation|signature|api[_.-]?key|private[_.-]?key)[\w-]{0,64}")
_QUOTED = r"""b?"(?:[^"\\]|\\.)*"|b?'(?:[^'\\]|\\.)*'|Sensitive\(\*\*\*\)|\[dropped\]"""
_VALUE = r"(?:bearer|basic|digest|token)[ \t]+[^\s,;'\"}\]]+|" + _QUOTED + r"|[^\s,;&)}\]]+"
# key=value, key: value, "key": "value", 'key': 'value', key => value
_ASSIGNMENT = re.compile(r"(?<![\w.-])(\\?[\"']?" + _KEY_NAME + r"\\?[\"']?\s*(?:=>|[:=])\s*)(" + _VALUE + ")",
                         re.IGNORECASE)
# ('key', 'value') and key='key', value='value'
_PAIR = re.compile(r"([\"'])(" + _KEY_NAME + r")\1(\s*,\s*(?:value\s*=\s*)?)(" + _QUOTED + ")", re.IGNORECASE)
_BEARER = re.compile(r"\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
_PEM_PRIVATE_KEY = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|\Z)",
                              re.DOTALL)
# Cheap test first, on the lowercased text (much faster than an IGNORECASE alternation): most lines
# name no secret, so the four patterns above are skipped for them.
_SECRET_HINT = re.compile(r"cvv|cvc|verification|security|secret|passw|token|authori[sz]ation|signature"
                          r"|api.?key|private|bearer")


def _dropped(value: str) -> str:
    quoted = value[1:] if value[:1] in "bB" and value[1:2] in ("'", '"') else value
    if quoted[:1] in ("'", '"'):
        return quoted[0] + DROPPED + quoted[0]
    return DROPPED


def _drop_assignment(match: re.Match) -> str:
    return match.group(1) + _dropped(match.group(2))


def _drop_pair(match: re.Match) -> str:
    quote = match.group(1)
    return quote + match.group(2) + quote + match.group(3) + _dropped(match.group(4))


def is_sensitive_key(name: object) -> bool:
    """Whether a value stored under this key name is a CVV or a secret, to drop whole."""
    return _is_sensitive_name(name if isinstance(name, str) else _safe_str(name))


@functools.lru_cache(maxsize=4096)  # the same few names come back on every line
def _is_sensitive_name(name: str) -> bool:
    normalized = name.lower().replace("_", "").replace("-", "").replace(".", "").replace(" ", "")
    return any(part in normalized for part in _SENSITIVE_KEY_PARTS)


def redact_text(text: str) -> str:
    """`text` with card numbers masked and CVVs, secrets and credentials dropped."""
    if _SECRET_HINT.search(text.lower()):
        text = _PEM_PRIVATE_KEY.sub(DROPPED, text)
        text = _PAIR.sub(_drop_pair, text)
        text = _ASSIGNMENT.sub(_drop_assignment, text)
        text = _BEARER.sub(r"\1 " + DROPPED, text)
    return mask_card_numbers(text)


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the line
        return f"<unprintable {type(value).__name__}>"


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # noqa: BLE001
        return f"<unrepresentable {type(value).__name__}>"


_MAX_DEPTH = 6
_MAX_ITEMS = 200


def redact_value(value: object, _depth: int = 0):
    """A JSON-safe, redacted copy of `value`: numbers stay numbers unless they read as a card number,
    containers are copied with sensitive keys dropped, anything else becomes its redacted repr."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int):
        try:
            text = str(value)
        except ValueError:  # more digits than int-to-str allows
            return "<int too large>"
        redacted = redact_text(text)
        return value if redacted == text else redacted
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        if not 1e11 <= abs(value) < 1e20:  # only a 12-19 digit integer part could be a card number
            return value
        whole = str(int(value))
        redacted = redact_text(whole)
        return value if redacted == whole else redacted
    if isinstance(value, Sensitive):
        return repr(value)
    if _depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            copied = {}
            for count, (key, item) in enumerate(value.items()):
                if count == _MAX_ITEMS:
                    copied["..."] = f"{len(value) - count} more"
                    break
                name = redact_text(_safe_str(key))
                copied[name] = DROPPED if is_sensitive_key(name) else redact_value(item, _depth + 1)
            return copied
        if isinstance(value, (list, tuple, set, frozenset)):
            items = [redact_value(item, _depth + 1) for _, item in zip(range(_MAX_ITEMS), value)]
            if len(value) > _MAX_ITEMS:
                items.append(f"... {len(value) - _MAX_ITEMS} more")
            return items
    return redact_text(_safe_repr(value))


# ---------------------------------------------------------------------------------------------------
# Logging machinery.

_CONTEXT_ATTRIBUTE = "_payswitch_context"
_REDACTED_ATTRIBUTE = "_payswitch_redacted"
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName", _CONTEXT_ATTRIBUTE, _REDACTED_ATTRIBUTE}
_EXCEPTION_FORMATTER = logging.Formatter()


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - arguments that do not fit the format: keep both rather than nothing
        return f"{_safe_str(record.msg)} [unformatted arguments: {_safe_repr(record.args)}]"


def _extras(record: logging.LogRecord) -> list[str]:
    return [key for key in record.__dict__ if key not in _RECORD_ATTRIBUTES]


class RedactionFilter(logging.Filter):
    """Rewrites each record before any formatter sees it: the message is formatted and redacted (the
    arguments are folded into it), `extra` values, context fields, exception and stack text are
    redacted, and the current log_context is attached. Install it on handlers, so it covers every
    logger, ours and third-party. It never raises and never drops a record: if redaction fails, the
    record keeps only a notice that it was withheld."""

    def filter(self, record: logging.LogRecord) -> bool:
        _ensure_redacted(record)
        return True


def _ensure_redacted(record: logging.LogRecord) -> None:
    if record.__dict__.get(_REDACTED_ATTRIBUTE):
        return  # another handler's filter has already done it
    try:
        _redact_record(record)
    except Exception as error:  # noqa: BLE001 - a logging failure must not break a payment
        _withhold_record(record, error)


def _redact_record(record: logging.LogRecord) -> None:
    record.__dict__[_CONTEXT_ATTRIBUTE] = _context.get().redacted()
    message = _message(record)
    record.msg = redact_text(message)
    record.args = ()
    record.__dict__.pop("message", None)  # a formatter that ran before us may have cached it
    if record.exc_info and not record.exc_text:
        record.exc_text = _EXCEPTION_FORMATTER.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact_text(_safe_str(record.exc_text))
    if record.stack_info:
        record.stack_info = redact_text(_safe_str(record.stack_info))
    for key in _extras(record):
        record.__dict__[key] = DROPPED if is_sensitive_key(key) else redact_value(record.__dict__[key])
    record.__dict__[_REDACTED_ATTRIBUTE] = True


def _withhold_record(record: logging.LogRecord, error: Exception) -> None:
    try:
        for key in _extras(record):
            del record.__dict__[key]
        record.msg = f"log record withheld: redacting it failed ({type(error).__name__})"
        record.args = ()
        record.exc_info = record.exc_text = record.stack_info = None
        record.__dict__[_CONTEXT_ATTRIBUTE] = {}
        record.__dict__[_REDACTED_ATTRIBUTE] = True
    except Exception:  # noqa: BLE001
        pass


_CORE_KEYS = ("ts", "level", "logger", "message", "trace_id", "payment_id")
_RESERVED_KEYS = frozenset(_CORE_KEYS) - {"trace_id", "payment_id"} | {"exc", "stack"}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    """Context fields, then `extra` ones (more specific, so they win); a name that would replace one of
    the line's own keys gets an `extra_` prefix."""
    fields = {}
    for source in (record.__dict__.get(_CONTEXT_ATTRIBUTE) or {},
                   {key: record.__dict__[key] for key in _extras(record)}):
        for key, value in source.items():
            fields["extra_" + key if key in _RESERVED_KEYS else key] = value
    return fields


_last_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    """RFC 3339 in UTC with microseconds; the part up to the second is formatted once per second."""
    global _last_second
    second = int(created)
    cached_second, prefix = _last_second
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second = (second, prefix)
    return f"{prefix}.{int((created - second) * 1_000_000):06d}Z"


def _json_default(value: object) -> object:
    return redact_text(_safe_repr(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (RFC 3339, UTC, microseconds), level, logger, message, trace_id and
    payment_id (null when unknown), the other context and `extra` fields, and exc / stack when the
    record has them. A record that did not pass a RedactionFilter is redacted here."""

    def format(self, record: logging.LogRecord) -> str:
        _ensure_redacted(record)
        try:
            payload = {"ts": _timestamp(record.created), "level": record.levelname, "logger": record.name,
                       "message": _message(record), "trace_id": None, "payment_id": None}
            payload.update(_fields(record))
            if record.exc_text:  # formatted, and redacted, from exc_info
                payload["exc"] = record.exc_text
            if record.stack_info:
                payload["stack"] = self.formatStack(record.stack_info)
            return json.dumps(payload, ensure_ascii=True, separators=(",", ":"), default=_json_default,
                              allow_nan=False)
        except Exception as error:  # noqa: BLE001 - still one valid line rather than a handler error
            return json.dumps({"ts": _timestamp(record.created), "level": record.levelname,
                               "logger": _safe_str(record.name), "trace_id": None, "payment_id": None,
                               "message": f"log record could not be formatted ({type(error).__name__})"})


class TextFormatter(logging.Formatter):
    """The classic `time level logger: message` line, with the context and `extra` fields after it as
    key=value pairs; for people reading a terminal, redacted like the JSON lines."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        _ensure_redacted(record)
        line = super().format(record)
        fields = {key: value for key, value in _fields(record).items() if value is not None}
        if not fields:
            return line
        pairs = " ".join(f"{key}={json.dumps(value, ensure_ascii=True, default=_json_default)}"
                         for key, value in fields.items())
        head, newline, rest = line.partition("\n")  # keep the fields on the first line, above a traceback
        return f"{head} [{pairs}]{newline}{rest}"
