# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, annotation_typing=False
# cython: auto_pickle=False
"""Request bytes into flat field objects, and the field rules of the edge: the compiled twin.

Same names, field objects, exceptions and verdicts as payswitch/hotpath/wire.py, which stays the
readable reference (and documents the field names); pick between them only through payswitch.hotpath.
Where the pure twin asks protobuf to build message objects, this one reads the wire format in place:

- one pass over the bytes records where each string lies (a pointer and a length, no object) and its
  UTF-8 validity; a field repeated or a oneof case replaced just moves the record. Python objects are
  made once at the end, one str per field that is present, with no intermediate bytes;
- it follows upb (protobuf's parser for Python) where the format leaves a choice, as measured on the
  installed protobuf: varints of at most 10 bytes read modulo 2**64, tags and lengths of at most 5
  bytes, a tag above 2**32 - 1 or of field number 0 refused (but field 0 accepted inside an unknown
  group), nesting of submessages and groups at most 100 deep, a known field with the wrong wire type
  kept as unknown, a submessage repeated merged, a oneof case changed starting afresh;
- the rules check characters with table lookups over the str's own storage, no regular expression;
  the currency table is a 26**3 array indexed by the three letters, built from
  payments.money.CURRENCY_EXPONENTS at import.

Field objects are final classes holding only str and C integers: they cannot take part in a reference
cycle, so they are left out of the cyclic GC, and a small free list recycles them.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_1BYTE_DATA, PyUnicode_DecodeUTF8, PyUnicode_New, PyUnicode_READ
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

# The exception, the field names and the repr are the pure twin's own, so `except wire.WireError` and
# every repr are the same whichever backend payswitch.hotpath exports.
from payswitch.hotpath.wire import FIELD_NAMES, WireError, describe_fields
from payswitch.payments.money import CURRENCY_EXPONENTS, MAX_AMOUNT_MINOR

__all__ = [
    "FIELD_NAMES", "AuthorizeFields", "CaptureFields", "NoOperation", "RefundFields", "TokenizeFields", "VoidFields",
    "WireError", "decode_authorize", "decode_batch", "decode_capture", "decode_refund", "decode_tokenize",
    "decode_void", "validate_authorize", "validate_capture", "validate_refund", "validate_tokenize", "validate_void",
]

cdef extern from *:
    """
    /* A str's storage: its kind (1, 2 or 4 bytes per character), data and length. */
    static inline int payswitch_text_view(PyObject *text, const void **data, Py_ssize_t *length) {
    #if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(text) < 0) {
            return -1;
        }
    #endif
        *data = PyUnicode_DATA(text);
        *length = PyUnicode_GET_LENGTH(text);
        return PyUnicode_KIND(text);
    }
    """
    int payswitch_text_view(object text, const void **data, Py_ssize_t *length) except -1

ctypedef const unsigned char *cursor

cdef enum:
    # upb's limit for Python: submessages and groups, counted from the top message. (A process that
    # calls protobuf's SetAllowOversizeProtos(True) raises protobuf's to 65535, not ours.)
    _MAX_DEPTH = 100
    _VARINT = 0
    _FIXED64 = 1
    _DELIMITED = 2
    _START_GROUP = 3
    _END_GROUP = 4
    _FIXED32 = 5

# What a request is; 1 to 4 are also the field numbers of BatchItem's `operation` oneof.
cdef enum:
    _NO_OPERATION = 0
    _AUTHORIZE = 1
    _CAPTURE = 2
    _VOID = 3
    _REFUND = 4
    _BATCH = 5
    _TOKENIZE = 6

# AuthorizeRequest's `method` oneof: its field numbers (0 while no case is set).
cdef enum:
    _CARD = 4
    _WALLET = 5
    _CARD_TOKEN = 7

cdef inline uint32_t _tag(uint32_t number, uint32_t wire_type) noexcept nogil:
    return (number << 3) | wire_type


cdef inline unsigned int _bit_count(unsigned int bits) noexcept nogil:
    cdef unsigned int count = 0
    while bits:
        bits &= bits - 1
        count += 1
    return count


# ---- the wire format ------------------------------------------------------------------------------

cdef struct _Text:
    cursor data
    Py_ssize_t size
    bint ascii

cdef struct _Amount:
    bint present
    int64_t minor
    _Text currency
    bint has_exponent
    uint32_t exponent

# Every field of the five requests, flattened; a field that is absent stays zero. A TokenizeRequest's
# card fills the card fields, with has_card set.
cdef struct _Request:
    int kind
    _Text idempotency_key
    _Text merchant_reference
    _Text payment_id
    _Amount amount
    int method
    unsigned int method_cases      # a bit per `method` case seen on the wire, 1 << field number
    unsigned int operation_cases   # a BatchItem's: a bit per `operation` case seen
    bint has_card
    _Text card_number
    uint32_t card_exp_month
    uint32_t card_exp_year
    _Text card_cvv
    _Text card_holder_name
    _Text wallet_provider
    _Text wallet_token
    _Text card_token
    _Text card_token_cvv
    _Text description
    bint allow_partial_authorization
    _Text reason


cdef inline cursor _read_varint(cursor p, cursor end, uint64_t *value) noexcept nogil:
    """A varint of at most 10 bytes, modulo 2**64 as upb reads it; NULL if cut off by `end` or longer."""
    cdef uint64_t result = 0, byte
    cdef int shift = 0
    while p < end:
        byte = p[0]
        p += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            value[0] = result
            return p
        shift += 7
        if shift == 70:
            return NULL
    return NULL


cdef inline cursor _read_tag(cursor p, cursor end, uint32_t *tag) noexcept nogil:
    """A tag: at most 5 bytes and at most 2**32 - 1, or NULL."""
    cdef uint64_t value = 0
    cdef cursor start = p
    if p[0] < 0x80:  # callers ensure p < end
        tag[0] = p[0]
        return p + 1
    p = _read_varint(p, end, &value)
    if p == NULL or p - start > 5 or value > 0xFFFFFFFFu:
        return NULL
    tag[0] = <uint32_t>value
    return p


cdef inline cursor _read_size(cursor p, cursor end, Py_ssize_t *size) noexcept nogil:
    """A length prefix: at most 5 bytes and within `end`, or NULL."""
    cdef uint64_t value = 0
    cdef cursor start = p
    p = _read_varint(p, end, &value)
    if p == NULL or p - start > 5 or value >= 0x7FFFFFFFu or <Py_ssize_t>value > end - p:
        return NULL
    size[0] = <Py_ssize_t>value
    return p


cdef int _utf8_kind(cursor text, Py_ssize_t size) noexcept nogil:
    """1 for ASCII, 2 for other well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
    above U+10FFFF; what upb and Python's strict decoder accept), 0 for anything else."""
    cdef Py_ssize_t i = 0
    cdef uint64_t block
    cdef unsigned char lead, second
    while i + 8 <= size:
        memcpy(&block, text + i, 8)
        if block & 0x8080808080808080u:
            break
        i += 8
    while i < size and text[i] < 0x80:
        i += 1
    if i == size:
        return 1
    while i < size:
        lead = text[i]
        if lead < 0x80:
            i += 1
        elif lead < 0xC2:
            return 0
        elif lead < 0xE0:
            if i + 1 >= size or (text[i + 1] & 0xC0) != 0x80:
                return 0
            i += 2
        elif lead < 0xF0:
            if i + 2 >= size:
                return 0
            second = text[i + 1]
            if lead == 0xE0:
                if second < 0xA0 or second > 0xBF:
                    return 0
            elif lead == 0xED:
                if second < 0x80 or second > 0x9F:
                    return 0
            elif (second & 0xC0) != 0x80:
                return 0
            if (text[i + 2] & 0xC0) != 0x80:
                return 0
            i += 3
        elif lead < 0xF5:
            if i + 3 >= size:
                return 0
            second = text[i + 1]
            if lead == 0xF0:
                if second < 0x90 or second > 0xBF:
                    return 0
            elif lead == 0xF4:
                if second < 0x80 or second > 0x8F:
                    return 0
            elif (second & 0xC0) != 0x80:
                return 0
            if (text[i + 2] & 0xC0) != 0x80 or (text[i + 3] & 0xC0) != 0x80:
                return 0
            i += 4
        else:
            return 0
    return 2


cdef inline cursor _read_text(cursor p, cursor end, _Text *text) noexcept nogil:
    """A string field: its place and UTF-8 check, every occurrence (protobuf checks the overwritten too)."""
    cdef Py_ssize_t size
    cdef int kind
    p = _read_size(p, end, &size)
    if p == NULL:
        return NULL
    kind = _utf8_kind(p, size)
    if kind == 0:
        return NULL
    text.data = p
    text.size = size
    text.ascii = kind == 1
    return p + size


cdef cursor _skip_group(cursor p, cursor end, uint32_t number, int depth) noexcept nogil:
    """An unknown group up to its matching end tag. Inside, any field number goes, 0 included (upb
    checks numbers only where a message has fields)."""
    cdef uint32_t tag
    if depth > _MAX_DEPTH:
        return NULL
    while p < end:
        p = _read_tag(p, end, &tag)
        if p == NULL:
            return NULL
        if (tag & 7) == _END_GROUP:
            return p if (tag >> 3) == number else NULL
        p = _skip_value(p, end, tag, depth)
        if p == NULL:
            return NULL
    return NULL


cdef cursor _skip_value(cursor p, cursor end, uint32_t tag, int depth) noexcept nogil:
    cdef uint64_t ignored
    cdef Py_ssize_t size
    cdef uint32_t wire_type = tag & 7
    if wire_type == _VARINT:
        return _read_varint(p, end, &ignored)
    if wire_type == _FIXED64:
        return p + 8 if end - p >= 8 else NULL
    if wire_type == _DELIMITED:
        p = _read_size(p, end, &size)
        return p + size if p != NULL else NULL
    if wire_type == _START_GROUP:
        return _skip_group(p, end, tag >> 3, depth + 1)
    if wire_type == _FIXED32:
        return p + 4 if end - p >= 4 else NULL
    return NULL  # a stray end of group, or wire type 6 or 7


cdef inline cursor _skip_field(cursor p, cursor end, uint32_t tag, int depth) noexcept nogil:
    """A field the message does not know (or knows with another wire type): skipped, as upb keeps it
    among the unknown fields we never read."""
    if (tag >> 3) == 0:
        return NULL
    return _skip_value(p, end, tag, depth)


cdef inline cursor _enter(cursor p, cursor end, int depth, cursor *sub_end) noexcept nogil:
    """The length prefix of a submessage at `depth`; sets where it ends."""
    cdef Py_ssize_t size
    if depth > _MAX_DEPTH:
        return NULL
    p = _read_size(p, end, &size)
    if p != NULL:
        sub_end[0] = p + size
    return p


cdef cursor _parse_money(cursor p, cursor end, _Amount *amount, int depth) noexcept nogil:
    cdef uint32_t tag
    cdef uint64_t value = 0
    amount.present = True
    while p < end:
        p = _read_tag(p, end, &tag)
        if p == NULL:
            return NULL
        if tag == _tag(1, _VARINT):
            p = _read_varint(p, end, &value)
            amount.minor = <int64_t>value
        elif tag == _tag(2, _DELIMITED):
            p = _read_text(p, end, &amount.currency)
        elif tag == _tag(3, _VARINT):
            p = _read_varint(p, end, &value)
            amount.exponent = <uint32_t>value
            amount.has_exponent = True
        else:
            p = _skip_field(p, end, tag, depth)
        if p == NULL:
            return NULL
    return p


cdef cursor _parse_amount(cursor p, cursor end, _Amount *amount, int depth) noexcept nogil:
    cdef cursor sub_end
    p = _enter(p, end, depth, &sub_end)
    if p == NULL:
        return NULL
    return _parse_money(p, sub_end, amount, depth)


cdef cursor _parse_card(cursor p, cursor end, _Request *request, int depth) noexcept nogil:
    cdef uint32_t tag
    cdef uint64_t value = 0
    while p < end:
        p = _read_tag(p, end, &tag)
        if p == NULL:
            return NULL
        if tag == _tag(1, _DELIMITED):
            p = _read_text(p, end, &request.card_number)
        elif tag == _tag(2, _VARINT):
            p = _read_varint(p, end, &value)
            request.card_exp_month = <uint32_t>value
        elif tag == _tag(3, _VARINT):
            p = _read_varint(p, end, &value)
            request.card_exp_year = <uint32_t>value
        elif tag == _tag(4, _DELIMITED):
            p = _read_text(p, end, &request.card_cvv)
        elif tag == _tag(5, _DELIMITED):
            p = _read_text(p, end, &request.card_holder_name)
        else:
            p = _skip_field(p, end, tag, depth)
        if p == NULL:
            return NULL
    return p


cdef cursor _parse_wallet(cursor p, cursor end, _Request *request, int depth) noexcept nogil:
    cdef uint32_t tag
    while p < end:
        p = _read_tag(p, end, &tag)
        if p == NULL:
            return NULL
        if tag == _tag(1, _DELIMITED):
            p = _read_text(p, end, &request.wallet_provider)
        elif tag == _tag(2, _DELIMITED):
            p = _read_text(p, end, &request.wallet_token)
        else:
            p = _skip_field(p, end, tag, depth)
        if p == NULL:
            return NULL
    return p


cdef cursor _parse_card_token(cursor p, cursor end, _Request *request, int depth) noexcept nogil:
    cdef uint32_t tag
    while p < end:
        p = _read_tag(p, end, &tag)
        if p == NULL:
            return NULL
        if tag == _tag(1, _DELIMITED):
            p = _read_text(p, end, &request.card_token)
        elif tag == _tag(2, _DELIMITED):
            p = _read_text(p, end, &request.card_token_cvv)
        else:
            p = _skip_field(p, end, tag, depth)
        if p == NULL:
            return NULL
    return p


cdef cursor _parse_method(cursor p, cursor end, _Request *request, int method, int depth) noexcept nogil:
    """One occurrence of a `method` case: a new case starts from defaults, the same case merges."""
    cdef cursor sub_end
    p = _enter(p, end, depth, &sub_end)
    if p == NULL:
        return NULL
    request.method_cases |= 1u << method
    if request.method != method:
        request.method = method
        if method == _CARD:
            memset(&request.card_number, 0, sizeof(_Text))
            memset(&request.card_cvv, 0, sizeof(_Text))
            memset(&request.card_holder_name, 0, sizeof(_Text))
            request.card_exp_month = 0
            request.card_exp_year = 0
        elif method == _WALLET:
            memset(&request.wallet_provider, 0, sizeof(_Text))
            memset(&request.wallet_token, 0, sizeof(_Text))
        else:
            memset(&request.card_token, 0, sizeof(_Text))
            memset(&request.card_token_cvv, 0, sizeof(_Text))
    if method == _CARD:
        return _parse_card(p, sub_end, request, depth)
    if method == _WALLET:
        return _parse_wallet(p, sub_end, request, depth)
    return _parse_card_token(p, sub_end, request, depth)


cdef cursor _parse_authorize(cursor p, cursor end, _Request *request, int depth) noexcept nogil:
    cdef uint32_t tag
    cdef uint64_t value = 0
    while p < end:
        p = _read_tag(p, end, &tag)
        if p == NULL:
            return NULL
        if tag == _tag(1, _DELIMITED):
            p = _read_text(p, end, &request.idempotency_key)
        elif tag == _tag(2, _DELIMITED):
            p = _read_text(p, end, &request.merchant_reference)
        elif tag == _tag(3, _DELIMITED):
            p = _parse_amount(p, end, &request.amount, depth + 1)
        elif tag == _tag(4, _DELIMITED):
            p = _parse_method(p, end, request, _CARD, depth + 1)
        elif tag == _tag(5, _DELIMITED):
            p = _parse_method(p, end, request, _WALLET, depth + 1)
        elif tag == _tag(7, _DELIMITED):
            p = _parse_method(p, end, request, _CARD_TOKEN, depth + 1)
        elif tag == _tag(6, _DELIMITED):
            p = _read_text(p, end, &request.description)
        elif tag == _tag(8, _VARINT):
            p = _read_varint(p, end, &value)
            request.allow_partial_authorization = value != 0
        else:
            p = _skip_field(p, end, tag, depth)
        if p == NULL:
            return NULL
    return p


cdef cursor _parse_payment_operation(cursor p, cursor end, _Request *request, int kind, int depth) noexcept nogil:
    """CaptureRequest, VoidRequest and RefundRequest: the same first two fields, then what each has."""
    cdef uint32_t tag
    while p < end:
        p = _read_tag(p, end, &tag)
        if p == NULL:
            return NULL
        if tag == _tag(1, _DELIMITED):
            p = _read_text(p, end, &request.idempotency_key)
        elif tag == _tag(2, _DELIMITED):
            p = _read_text(p, end, &request.payment_id)
        elif tag == _tag(3, _DELIMITED) and kind != _VOID:
            p = _parse_amount(p, end, &request.amount, depth + 1)
        elif tag == _tag(4, _DELIMITED) and kind == _REFUND:
            p = _read_text(p, end, &request.reason)
        else:
            p = _skip_field(p, end, tag, depth)
        if p == NULL:
            return NULL
    return p


cdef cursor _parse_tokenize(cursor p, cursor end, _Request *request, int depth) noexcept nogil:
    """A TokenizeRequest: its one card, merged when repeated (it is no oneof)."""
    cdef uint32_t tag
    cdef cursor sub_end
    while p < end:
        p = _read_tag(p, end, &tag)
        if p == NULL:
            return NULL
        if tag == _tag(1, _DELIMITED):
            p = _enter(p, end, depth + 1, &sub_end)
            if p == NULL:
                return NULL
            request.has_card = True
            p = _parse_card(p, sub_end, request, depth + 1)
        else:
            p = _skip_field(p, end, tag, depth)
        if p == NULL:
            return NULL
    return p


cdef inline cursor _parse_request(cursor p, cursor end, _Request *request, int kind, int depth) noexcept nogil:
    request.kind = kind
    if kind == _AUTHORIZE:
        return _parse_authorize(p, end, request, depth)
    if kind == _TOKENIZE:
        return _parse_tokenize(p, end, request, depth)
    return _parse_payment_operation(p, end, request, kind, depth)


cdef cursor _parse_batch_item(cursor p, cursor end, _Request *request, int depth) noexcept nogil:
    """A BatchItem into `request`, whose kind stays _NO_OPERATION when no case is set, and becomes it
    again when more than one case is."""
    cdef uint32_t tag
    cdef int kind
    cdef unsigned int cases = 0
    cdef cursor sub_end
    while p < end:
        p = _read_tag(p, end, &tag)
        if p == NULL:
            return NULL
        kind = <int>(tag >> 3)
        if (tag & 7) == _DELIMITED and _AUTHORIZE <= kind <= _REFUND:
            p = _enter(p, end, depth + 1, &sub_end)
            if p == NULL:
                return NULL
            cases |= 1u << kind
            if request.kind != kind:
                memset(request, 0, sizeof(_Request))
            p = _parse_request(p, sub_end, request, kind, depth + 1)
        else:
            p = _skip_field(p, end, tag, depth)
        if p == NULL:
            return NULL
    request.operation_cases = cases
    if _bit_count(cases) > 1:
        request.kind = _NO_OPERATION
    return p


# ---- field objects --------------------------------------------------------------------------------

cdef str _EMPTY = ""


cdef inline str _text(const _Text *text):
    """The str of a recorded string field; its UTF-8 was checked when it was read."""
    cdef str result
    if text.size == 0:
        return _EMPTY
    if text.ascii:
        result = PyUnicode_New(text.size, 127)
        memcpy(PyUnicode_1BYTE_DATA(result), text.data, text.size)
        return result
    return PyUnicode_DecodeUTF8(<const char *>text.data, text.size, NULL)


# Every field object has the pure twin's repr and refuses pickling (it may hold card data). They share
# no base class: Cython gives free lists only to classes without one.
cdef str _NOT_PICKLABLE = "request fields hold card data and are not picklable"


@cython.final
@cython.no_gc
@cython.freelist(16)
cdef class AuthorizeFields:
    kind = "authorize"
    cdef readonly str idempotency_key
    cdef readonly str merchant_reference
    cdef readonly bint has_amount
    cdef readonly long long amount_minor
    cdef readonly str currency
    cdef readonly bint has_exponent
    cdef readonly unsigned int exponent
    cdef readonly str method
    cdef readonly unsigned int method_cases
    cdef readonly str card_number
    cdef readonly unsigned int card_exp_month
    cdef readonly unsigned int card_exp_year
    cdef readonly str card_cvv
    cdef readonly str card_holder_name
    cdef readonly str wallet_provider
    cdef readonly str wallet_token
    cdef readonly str card_token
    cdef readonly str card_token_cvv
    cdef readonly str description
    cdef readonly bint allow_partial_authorization

    def __init__(self, idempotency_key, merchant_reference, has_amount, amount_minor, currency, has_exponent,
                 exponent, method, method_cases, card_number, card_exp_month, card_exp_year, card_cvv,
                 card_holder_name, wallet_provider, wallet_token, card_token, card_token_cvv, description,
                 allow_partial_authorization):
        self.idempotency_key = idempotency_key
        self.merchant_reference = merchant_reference
        self.has_amount = has_amount
        self.amount_minor = amount_minor
        self.currency = currency
        self.has_exponent = has_exponent
        self.exponent = exponent
        self.method = method
        self.method_cases = method_cases
        self.card_number = card_number
        self.card_exp_month = card_exp_month
        self.card_exp_year = card_exp_year
        self.card_cvv = card_cvv
        self.card_holder_name = card_holder_name
        self.wallet_provider = wallet_provider
        self.wallet_token = wallet_token
        self.card_token = card_token
        self.card_token_cvv = card_token_cvv
        self.description = description
        self.allow_partial_authorization = allow_partial_authorization

    def __repr__(self):
        return describe_fields(self)

    def __reduce__(self):
        raise TypeError(_NOT_PICKLABLE)


@cython.final
@cython.no_gc
@cython.freelist(16)
cdef class CaptureFields:
    kind = "capture"
    cdef readonly str idempotency_key
    cdef readonly str payment_id
    cdef readonly bint has_amount
    cdef readonly long long amount_minor
    cdef readonly str currency
    cdef readonly bint has_exponent
    cdef readonly unsigned int exponent

    def __init__(self, idempotency_key, payment_id, has_amount, amount_minor, currency, has_exponent, exponent):
        self.idempotency_key = idempotency_key
        self.payment_id = payment_id
        self.has_amount = has_amount
        self.amount_minor = amount_minor
        self.currency = currency
        self.has_exponent = has_exponent
        self.exponent = exponent

    def __repr__(self):
        return describe_fields(self)

    def __reduce__(self):
        raise TypeError(_NOT_PICKLABLE)


@cython.final
@cython.no_gc
@cython.freelist(16)
cdef class VoidFields:
    kind = "void"
    cdef readonly str idempotency_key
    cdef readonly str payment_id

    def __init__(self, idempotency_key, payment_id):
        self.idempotency_key = idempotency_key
        self.payment_id = payment_id

    def __repr__(self):
        return describe_fields(self)

    def __reduce__(self):
        raise TypeError(_NOT_PICKLABLE)


@cython.final
@cython.no_gc
@cython.freelist(16)
cdef class RefundFields:
    kind = "refund"
    cdef readonly str idempotency_key
    cdef readonly str payment_id
    cdef readonly bint has_amount
    cdef readonly long long amount_minor
    cdef readonly str currency
    cdef readonly bint has_exponent
    cdef readonly unsigned int exponent
    cdef readonly str reason

    def __init__(self, idempotency_key, payment_id, has_amount, amount_minor, currency, has_exponent, exponent,
                 reason):
        self.idempotency_key = idempotency_key
        self.payment_id = payment_id
        self.has_amount = has_amount
        self.amount_minor = amount_minor
        self.currency = currency
        self.has_exponent = has_exponent
        self.exponent = exponent
        self.reason = reason

    def __repr__(self):
        return describe_fields(self)

    def __reduce__(self):
        raise TypeError(_NOT_PICKLABLE)


@cython.final
@cython.no_gc
@cython.freelist(4)
cdef class TokenizeFields:
    kind = "tokenize"
    cdef readonly bint has_card
    cdef readonly str card_number
    cdef readonly unsigned int card_exp_month
    cdef readonly unsigned int card_exp_year
    cdef readonly str card_cvv
    cdef readonly str card_holder_name

    def __init__(self, has_card, card_number, card_exp_month, card_exp_year, card_cvv, card_holder_name):
        self.has_card = has_card
        self.card_number = card_number
        self.card_exp_month = card_exp_month
        self.card_exp_year = card_exp_year
        self.card_cvv = card_cvv
        self.card_holder_name = card_holder_name

    def __repr__(self):
        return describe_fields(self)

    def __reduce__(self):
        raise TypeError(_NOT_PICKLABLE)


@cython.final
@cython.no_gc
cdef class NoOperation:
    """A batch item whose `operation` oneof is not set, or set to more than one case."""

    kind = None
    cdef readonly unsigned int operation_cases

    def __init__(self, operation_cases=0):
        self.operation_cases = operation_cases

    def __repr__(self):
        return describe_fields(self)

    def __reduce__(self):
        raise TypeError(_NOT_PICKLABLE)


cdef str _METHOD_CARD = "card"
cdef str _METHOD_WALLET = "wallet"
cdef str _METHOD_CARD_TOKEN = "card_token"


cdef AuthorizeFields _authorize_fields(const _Request *request):
    cdef AuthorizeFields fields = AuthorizeFields.__new__(AuthorizeFields)
    fields.idempotency_key = _text(&request.idempotency_key)
    fields.merchant_reference = _text(&request.merchant_reference)
    fields.has_amount = request.amount.present
    fields.amount_minor = request.amount.minor
    fields.currency = _text(&request.amount.currency)
    fields.has_exponent = request.amount.has_exponent
    fields.exponent = request.amount.exponent
    fields.description = _text(&request.description)
    fields.allow_partial_authorization = request.allow_partial_authorization
    fields.method_cases = _bit_count(request.method_cases)
    if request.method == _CARD:
        fields.method = _METHOD_CARD
        fields.card_number = _text(&request.card_number)
        fields.card_exp_month = request.card_exp_month
        fields.card_exp_year = request.card_exp_year
        fields.card_cvv = _text(&request.card_cvv)
        fields.card_holder_name = _text(&request.card_holder_name)
    else:
        fields.card_number = fields.card_cvv = fields.card_holder_name = _EMPTY
    if request.method == _WALLET:
        fields.method = _METHOD_WALLET
        fields.wallet_provider = _text(&request.wallet_provider)
        fields.wallet_token = _text(&request.wallet_token)
    else:
        fields.wallet_provider = fields.wallet_token = _EMPTY
    if request.method == _CARD_TOKEN:
        fields.method = _METHOD_CARD_TOKEN
        fields.card_token = _text(&request.card_token)
        fields.card_token_cvv = _text(&request.card_token_cvv)
    else:
        fields.card_token = fields.card_token_cvv = _EMPTY
    return fields


cdef CaptureFields _capture_fields(const _Request *request):
    cdef CaptureFields fields = CaptureFields.__new__(CaptureFields)
    fields.idempotency_key = _text(&request.idempotency_key)
    fields.payment_id = _text(&request.payment_id)
    fields.has_amount = request.amount.present
    fields.amount_minor = request.amount.minor
    fields.currency = _text(&request.amount.currency)
    fields.has_exponent = request.amount.has_exponent
    fields.exponent = request.amount.exponent
    return fields


cdef VoidFields _void_fields(const _Request *request):
    cdef VoidFields fields = VoidFields.__new__(VoidFields)
    fields.idempotency_key = _text(&request.idempotency_key)
    fields.payment_id = _text(&request.payment_id)
    return fields


cdef RefundFields _refund_fields(const _Request *request):
    cdef RefundFields fields = RefundFields.__new__(RefundFields)
    fields.idempotency_key = _text(&request.idempotency_key)
    fields.payment_id = _text(&request.payment_id)
    fields.has_amount = request.amount.present
    fields.amount_minor = request.amount.minor
    fields.currency = _text(&request.amount.currency)
    fields.has_exponent = request.amount.has_exponent
    fields.exponent = request.amount.exponent
    fields.reason = _text(&request.reason)
    return fields


cdef TokenizeFields _tokenize_fields(const _Request *request):
    cdef TokenizeFields fields = TokenizeFields.__new__(TokenizeFields)
    fields.has_card = request.has_card
    fields.card_number = _text(&request.card_number)
    fields.card_exp_month = request.card_exp_month
    fields.card_exp_year = request.card_exp_year
    fields.card_cvv = _text(&request.card_cvv)
    fields.card_holder_name = _text(&request.card_holder_name)
    return fields


cdef object _fields(const _Request *request):
    if request.kind == _AUTHORIZE:
        return _authorize_fields(request)
    if request.kind == _CAPTURE:
        return _capture_fields(request)
    if request.kind == _VOID:
        return _void_fields(request)
    if request.kind == _REFUND:
        return _refund_fields(request)
    if request.kind == _TOKENIZE:
        return _tokenize_fields(request)
    cdef NoOperation nothing = NoOperation.__new__(NoOperation)
    nothing.operation_cases = _bit_count(request.operation_cases)
    return nothing


# ---- decoding -------------------------------------------------------------------------------------

cdef tuple _MESSAGE_NAMES = (
    None, "payswitch.v1.AuthorizeRequest", "payswitch.v1.CaptureRequest", "payswitch.v1.VoidRequest",
    "payswitch.v1.RefundRequest", "payswitch.v1.BatchRequest", "payswitch.v1.TokenizeRequest",
)


cdef list _decode_batch(cursor p, cursor end):
    cdef list items = []
    cdef _Request request
    cdef uint32_t tag
    cdef cursor item_end
    while p < end:
        p = _read_tag(p, end, &tag)
        if p == NULL:
            break
        if tag == _tag(1, _DELIMITED):
            p = _enter(p, end, 1, &item_end)
            if p == NULL:
                break
            memset(&request, 0, sizeof(_Request))
            p = _parse_batch_item(p, item_end, &request, 1)
            if p == NULL:
                break
            items.append(_fields(&request))
        else:
            p = _skip_field(p, end, tag, 0)
            if p == NULL:
                break
    if p == NULL:
        raise WireError(_MESSAGE_NAMES[_BATCH])
    return items


cdef object _decode_view(cursor data, Py_ssize_t size, int kind):
    cdef _Request request
    if kind == _BATCH:
        return _decode_batch(data, data + size)
    memset(&request, 0, sizeof(_Request))
    if _parse_request(data, data + size, &request, kind, 0) == NULL:
        raise WireError(_MESSAGE_NAMES[kind])
    return _fields(&request)


cdef object _decode(object body, int kind):
    """Reads bytes in place, and any other bytes-like object through the buffer protocol, as protobuf does."""
    cdef Py_buffer view
    if type(body) is bytes:
        return _decode_view(<cursor>PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body), kind)
    if isinstance(body, str):
        raise TypeError("expected bytes, str found")
    PyObject_GetBuffer(body, &view, PyBUF_SIMPLE)
    try:
        return _decode_view(<cursor>view.buf, view.len, kind)
    finally:
        PyBuffer_Release(&view)


def decode_authorize(body) -> AuthorizeFields:
    return _decode(body, _AUTHORIZE)


def decode_capture(body) -> CaptureFields:
    return _decode(body, _CAPTURE)


def decode_void(body) -> VoidFields:
    return _decode(body, _VOID)


def decode_refund(body) -> RefundFields:
    return _decode(body, _REFUND)


def decode_batch(body) -> list:
    """One field object per BatchRequest item, in order; NoOperation for an item with none set."""
    return _decode(body, _BATCH)


def decode_tokenize(body) -> TokenizeFields:
    return _decode(body, _TOKENIZE)


# ---- validation -----------------------------------------------------------------------------------
# The rules of server/validation.py, as the pure twin writes them: within one field the first violation
# found is the one reported, and fields are reported in the order they are checked.

cdef enum:
    _KEY_CHAR = 1          # A-Z a-z 0-9 _ - .
    _PRINTABLE_CHAR = 2    # 0x20-0x7E
    _DIGIT_CHAR = 4        # 0-9
    _PROVIDER_CHAR = 8     # a-z 0-9 _
    _PAYMENT_ID_CHAR = 16  # 0-9 a-z
    _CONTROL_CHAR = 32     # 0x00-0x1F and 0x7F
    _TOKEN_CHAR = 64       # lowercase Crockford base32, payments/ids.py's alphabet: 0-9 a-z but i l o u

cdef unsigned char _CHAR_CLASS[256]
cdef signed char _CURRENCY_EXPONENT[26 * 26 * 26]  # -1 where no currency
cdef long long _MAX_AMOUNT_MINOR = MAX_AMOUNT_MINOR


cdef void _fill_char_classes() noexcept:
    cdef int c
    memset(_CHAR_CLASS, 0, sizeof(_CHAR_CLASS))
    for c in range(128):
        if c < 0x20 or c == 0x7F:
            _CHAR_CLASS[c] |= _CONTROL_CHAR
        else:
            _CHAR_CLASS[c] |= _PRINTABLE_CHAR
        if c'0' <= c <= c'9':
            _CHAR_CLASS[c] |= _DIGIT_CHAR | _KEY_CHAR | _PROVIDER_CHAR | _PAYMENT_ID_CHAR | _TOKEN_CHAR
        elif c'a' <= c <= c'z':
            _CHAR_CLASS[c] |= _KEY_CHAR | _PROVIDER_CHAR | _PAYMENT_ID_CHAR
            if c != c'i' and c != c'l' and c != c'o' and c != c'u':
                _CHAR_CLASS[c] |= _TOKEN_CHAR
        elif c'A' <= c <= c'Z':
            _CHAR_CLASS[c] |= _KEY_CHAR
        elif c == c'_':
            _CHAR_CLASS[c] |= _KEY_CHAR | _PROVIDER_CHAR
        elif c == c'-' or c == c'.':
            _CHAR_CLASS[c] |= _KEY_CHAR


cdef inline int _currency_index(unsigned int first, unsigned int second, unsigned int third) noexcept:
    """Where three uppercase ASCII letters sit in the currency table, else -1."""
    first -= 65  # "A": a code point below it wraps around to a large unsigned value
    second -= 65
    third -= 65
    if first >= 26 or second >= 26 or third >= 26:
        return -1
    return <int>((first * 26 + second) * 26 + third)


cdef void _fill_currencies() except *:
    cdef int index
    memset(_CURRENCY_EXPONENT, -1, sizeof(_CURRENCY_EXPONENT))
    for code, exponent in CURRENCY_EXPONENTS.items():
        index = _currency_index(ord(code[0]), ord(code[1]), ord(code[2])) if len(code) == 3 else -1
        if index < 0 or not 0 <= exponent <= 127:
            raise ImportError(f"currency {code!r} does not fit the compiled currency table; extend wire.pyx")
        _CURRENCY_EXPONENT[index] = exponent


_fill_char_classes()
_fill_currencies()

cdef str _AMOUNT_TOO_LARGE = f"must be at most {MAX_AMOUNT_MINOR}"


cdef inline bint _all_of_class(str text, unsigned char char_class) except -1:
    """Whether every character is ASCII of the class (true for ""). A str of 2 or 4 bytes per character
    holds a character above U+00FF, so it cannot qualify."""
    cdef const void *data
    cdef Py_ssize_t length, i
    cdef const unsigned char *chars
    if payswitch_text_view(text, &data, &length) != 1:
        return False
    chars = <const unsigned char *>data
    for i in range(length):
        if not (_CHAR_CLASS[chars[i]] & char_class):
            return False
    return True


cdef enum:
    _BYTES_PER_WORD = 8

cdef uint64_t _ONES = 0x0101010101010101u    # 0x01 in every byte
cdef uint64_t _HIGHS = 0x8080808080808080u   # 0x80 in every byte


cdef inline uint64_t _bytes_below(uint64_t word, unsigned int bound) noexcept nogil:
    """Non-zero exactly when some byte of `word` is below `bound` (at most 128): eight bytes per test."""
    return (word - _ONES * bound) & ~word & _HIGHS


cdef inline uint64_t _bytes_above(uint64_t word, unsigned int bound) noexcept nogil:
    """Non-zero exactly when some byte of `word` is above `bound` (at most 127)."""
    return ((word + _ONES * (127 - bound)) | word) & _HIGHS


cdef bint _has_control(str text) except -1:
    """Whether any character is 0x00-0x1F or 0x7F; C1 controls (0x80-0x9F) are not, as in the pure twin."""
    cdef const void *data
    cdef Py_ssize_t length, i = 0
    cdef unsigned int c
    cdef int kind = payswitch_text_view(text, &data, &length)
    cdef const unsigned char *chars
    cdef uint64_t word
    if kind == 1:
        chars = <const unsigned char *>data
        while i + _BYTES_PER_WORD <= length:
            memcpy(&word, chars + i, _BYTES_PER_WORD)
            if _bytes_below(word, 0x20) or _bytes_below(word ^ (_ONES * 0x7F), 1):
                return True
            i += _BYTES_PER_WORD
        while i < length:
            if _CHAR_CLASS[chars[i]] & _CONTROL_CHAR:
                return True
            i += 1
        return False
    for i in range(length):
        c = PyUnicode_READ(kind, <void *>data, i)
        if c < 0x20 or c == 0x7F:
            return True
    return False


cdef bint _is_printable_ascii(str text) except -1:
    """Whether every character is 0x20-0x7E (true for "")."""
    cdef const void *data
    cdef Py_ssize_t length, i = 0
    cdef const unsigned char *chars
    cdef uint64_t word
    if payswitch_text_view(text, &data, &length) != 1:
        return False
    chars = <const unsigned char *>data
    while i + _BYTES_PER_WORD <= length:
        memcpy(&word, chars + i, _BYTES_PER_WORD)
        if _bytes_below(word, 0x20) or _bytes_above(word, 0x7E):
            return False
        i += _BYTES_PER_WORD
    while i < length:
        if not (_CHAR_CLASS[chars[i]] & _PRINTABLE_CHAR):
            return False
        i += 1
    return True


cdef bint _luhn_valid(str digits) except -1:
    """Luhn over a str already known to hold ASCII digits only."""
    cdef const void *data
    cdef Py_ssize_t length, i
    cdef const unsigned char *chars
    cdef int total = 0, value
    payswitch_text_view(digits, &data, &length)
    chars = <const unsigned char *>data
    for i in range(length):
        value = chars[length - 1 - i] - c'0'
        if i & 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


cdef int _currency_exponent(str currency) except -2:
    """The ISO 4217 exponent, or -1 for a code not in payments.money.CURRENCY_EXPONENTS."""
    cdef const void *data
    cdef Py_ssize_t length
    cdef int kind = payswitch_text_view(currency, &data, &length)
    cdef int index
    if length != 3:
        return -1
    index = _currency_index(PyUnicode_READ(kind, <void *>data, 0), PyUnicode_READ(kind, <void *>data, 1),
                            PyUnicode_READ(kind, <void *>data, 2))
    return -1 if index < 0 else _CURRENCY_EXPONENT[index]


cdef inline int _add(dict violations, str field, str description) except -1:
    """Records a violation unless the field already has one: the first found is the one reported."""
    if field not in violations:
        violations[field] = description
    return 0


cdef int _check_text(dict violations, str value, str field, Py_ssize_t max_length, str too_long) except -1:
    """An optional free-text field: at most `max_length` characters, no control characters."""
    if not value:
        return 0
    if len(value) > max_length:
        _add(violations, field, too_long)
    elif _has_control(value):
        _add(violations, field, "must not contain control characters")
    return 0


cdef int _check_idempotency_key(dict violations, str key) except -1:
    if not key:
        _add(violations, "idempotency_key", "is required")
    elif len(key) > 64 or not _all_of_class(key, _KEY_CHAR):
        _add(violations, "idempotency_key", "must be 1 to 64 of A-Z a-z 0-9 _ - .")
    return 0


cdef bint _is_prefixed_id(str text, const char *prefix, unsigned char char_class) except -1:
    """A four-character prefix ("pay_", "tok_") and 26 characters of `char_class`."""
    cdef const void *data
    cdef Py_ssize_t length, i
    cdef const unsigned char *chars
    if payswitch_text_view(text, &data, &length) != 1 or length != 30:
        return False
    chars = <const unsigned char *>data
    if memcmp(chars, prefix, 4) != 0:
        return False
    for i in range(4, 30):
        if not (_CHAR_CLASS[chars[i]] & char_class):
            return False
    return True


cdef inline bint _is_payment_id(str text) except -1:
    """pay_ and 26 of 0-9 a-z."""
    return _is_prefixed_id(text, b"pay_", _PAYMENT_ID_CHAR)


cdef int _check_payment_id(dict violations, str payment_id) except -1:
    if not payment_id:
        _add(violations, "payment_id", "is required")
    elif not _is_payment_id(payment_id):
        _add(violations, "payment_id", "is not a payment id (pay_ and 26 characters)")
    return 0


cdef int _check_money(dict violations, str currency, long long amount_minor, bint has_exponent,
                      unsigned int claimed_exponent) except -1:
    cdef int exponent = _currency_exponent(currency)
    cdef bint ok = True
    if exponent < 0:
        _add(violations, "amount.currency", "is not an ISO 4217 currency code" if currency else "is required")
        ok = False
    if amount_minor <= 0:
        _add(violations, "amount.amount_minor", "must be greater than zero")
        ok = False
    if amount_minor > _MAX_AMOUNT_MINOR:
        _add(violations, "amount.amount_minor", _AMOUNT_TOO_LARGE)
        ok = False
    if ok and has_exponent and claimed_exponent != <unsigned int>exponent:
        _add(violations, "amount.exponent", f"{currency} has {exponent} decimal places, not {claimed_exponent}")
    return 0


cdef int _check_cvv(dict violations, str cvv, str field) except -1:
    if cvv and not (3 <= len(cvv) <= 4 and _all_of_class(cvv, _DIGIT_CHAR)):
        _add(violations, field, "must be 3 or 4 digits")
    return 0


cdef int _check_card(dict violations, str number, unsigned int exp_month, unsigned int exp_year, str cvv,
                     str holder_name, long long year, long long month, bint tokenizing) except -1:
    """The card of an authorization, or with `tokenizing` of a Tokenize call, which takes no CVV."""
    cdef bint month_ok = 1 <= exp_month <= 12
    if not number:
        _add(violations, "card.number", "is required")
    elif not (12 <= len(number) <= 19 and _all_of_class(number, _DIGIT_CHAR)):
        _add(violations, "card.number", "must be 12 to 19 digits")
    elif not _luhn_valid(number):
        _add(violations, "card.number", "fails the Luhn check")
    if not month_ok:
        _add(violations, "card.exp_month", "must be 1 to 12")
    if not 2000 <= exp_year <= 2099:
        _add(violations, "card.exp_year", "must be a four-digit year")
    elif month_ok and not (exp_year > year or (exp_year == year and exp_month >= month)):
        _add(violations, "card.exp_year", "the card has expired")
    if tokenizing:
        if cvv:
            _add(violations, "card.cvv", "is never stored; send it with the authorization")
    else:
        _check_cvv(violations, cvv, "card.cvv")
    _check_text(violations, holder_name, "card.holder_name", 128, "must be at most 128 characters")
    return 0


cdef int _check_wallet(dict violations, AuthorizeFields fields) except -1:
    cdef str provider = fields.wallet_provider
    cdef str token = fields.wallet_token
    if not (1 <= len(provider) <= 32 and _all_of_class(provider, _PROVIDER_CHAR)):
        _add(violations, "wallet.provider", "must be 1 to 32 of a-z 0-9 _")
    if not token:
        _add(violations, "wallet.token", "is required")
    elif not (len(token) <= 2048 and _is_printable_ascii(token)):
        _add(violations, "wallet.token", "must be at most 2048 printable ASCII characters")
    return 0


cdef inline bint _is_card_token(str text) except -1:
    """tok_ and 26 of lowercase Crockford base32."""
    return _is_prefixed_id(text, b"tok_", _TOKEN_CHAR)


cdef int _check_card_token(dict violations, AuthorizeFields fields) except -1:
    cdef str token = fields.card_token
    if not token:
        _add(violations, "card_token.token", "is required")
    elif not _is_card_token(token):
        _add(violations, "card_token.token", "is not a card token (tok_ and 26 characters)")
    _check_cvv(violations, fields.card_token_cvv, "card_token.cvv")
    return 0


cdef object _own(object fields, type own_type):
    """This twin's field object for `fields`: itself, or a copy of another object's attributes (a pure
    twin's, say), which must then hold values protobuf could have decoded."""
    if type(fields) is own_type:
        return fields
    return own_type(*[getattr(fields, name) for name in FIELD_NAMES[own_type.kind]])


cdef str _SEVERAL_METHODS = "must be exactly one of card, wallet or card_token; the request sets several"


def validate_authorize(fields, long long year, long long month) -> dict:
    """`year` and `month` are today's, for the card expiry check."""
    cdef AuthorizeFields request = _own(fields, AuthorizeFields)
    cdef dict violations = {}
    cdef str reference = request.merchant_reference
    cdef str method = request.method
    _check_idempotency_key(violations, request.idempotency_key)
    if not reference:
        _add(violations, "merchant_reference", "is required")
    elif not (len(reference) <= 64 and _is_printable_ascii(reference)):
        _add(violations, "merchant_reference", "must be 1 to 64 printable ASCII characters")
    if not request.has_amount:
        _add(violations, "amount", "is required")
    else:
        _check_money(violations, request.currency, request.amount_minor, request.has_exponent, request.exponent)
    if method is None:
        _add(violations, "method", "one of card, wallet or card_token is required")
    elif request.method_cases > 1:
        _add(violations, "method", _SEVERAL_METHODS)
    elif method == _METHOD_CARD:
        _check_card(violations, request.card_number, request.card_exp_month, request.card_exp_year, request.card_cvv,
                    request.card_holder_name, year, month, False)
    elif method == _METHOD_WALLET:
        _check_wallet(violations, request)
    elif method == _METHOD_CARD_TOKEN:
        _check_card_token(violations, request)
    _check_text(violations, request.description, "description", 256, "must be at most 256 characters")
    return violations


def validate_capture(fields) -> dict:
    cdef CaptureFields request = _own(fields, CaptureFields)
    cdef dict violations = {}
    _check_idempotency_key(violations, request.idempotency_key)
    _check_payment_id(violations, request.payment_id)
    if request.has_amount:
        _check_money(violations, request.currency, request.amount_minor, request.has_exponent, request.exponent)
    return violations


def validate_void(fields) -> dict:
    cdef VoidFields request = _own(fields, VoidFields)
    cdef dict violations = {}
    _check_idempotency_key(violations, request.idempotency_key)
    _check_payment_id(violations, request.payment_id)
    return violations


def validate_refund(fields) -> dict:
    cdef RefundFields request = _own(fields, RefundFields)
    cdef dict violations = {}
    _check_idempotency_key(violations, request.idempotency_key)
    _check_payment_id(violations, request.payment_id)
    if request.has_amount:
        _check_money(violations, request.currency, request.amount_minor, request.has_exponent, request.exponent)
    _check_text(violations, request.reason, "reason", 256, "must be at most 256 characters")
    return violations


def validate_tokenize(fields, long long year, long long month) -> dict:
    """`year` and `month` are today's, for the card expiry check."""
    cdef TokenizeFields request = _own(fields, TokenizeFields)
    cdef dict violations = {}
    if not request.has_card:
        _add(violations, "card", "is required")
    else:
        _check_card(violations, request.card_number, request.card_exp_month, request.card_exp_year, request.card_cvv,
                    request.card_holder_name, year, month, True)
    return violations
