# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, annotation_typing=False
"""PAYSWITCH-HMAC-SHA256 v1 request signing (docs/signing.md), the compiled twin.

Same names, signatures, exceptions and verdicts as payswitch/hotpath/signing.py, which stays the
readable reference; pick between them only through payswitch.hotpath. The algorithm is the same; what
changes is the cost of each step:

- each key's HMAC is precomputed when keys are set: the SHA-256 states after absorbing (key XOR ipad)
  and (key XOR opad), so a verification copies two states and hashes only the message and the 32-byte
  inner digest (OpenSSL's libcrypto, the library hashlib uses; no SHA-256 of our own);
- the string to sign is never built: its pieces are fed to the hash state where they lie, and ASCII
  `str` metadata is read in place, never encoded;
- metadata is validated by byte loops over lookup tables, and the signature's hex is decoded and
  compared with the digest in constant time (CRYPTO_memcmp);
- the nonce cache is a set of one-str keys (not tracked by the cyclic GC) plus a C ring buffer in
  insertion order, instead of a dict plus a deque of tuples, with the same bounded-capacity semantics.

Timestamps may have up to 32 digits, and the pure twin compares them with Python's unbounded ints; so
that both twins agree on every such value, seconds are held in 128-bit integers here (GCC and Clang's
__int128). `now` and `window_seconds` must fit a signed 64-bit integer (OverflowError otherwise) and
`now` must be an int: Unix seconds always are.
"""

import time

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF, Py_INCREF
from cpython.unicode cimport Py_UCS1, PyUnicode_1BYTE_DATA, PyUnicode_DecodeASCII, PyUnicode_New
from libc.string cimport memcmp, memcpy, memset

from payswitch._speedups.openssl cimport (
    CRYPTO_memcmp,
    OPENSSL_cleanse,
    SHA256_CTX,
    SHA256_Final,
    SHA256_Init,
    SHA256_Update,
)

# The constants and the exception are the pure twin's own objects, so `except signing.SigningError`
# and the header names work whichever backend payswitch.hotpath exports.
from payswitch.hotpath.signing import (
    DEFAULT_NONCE_CAPACITY,
    KEY_ID_HEADER,
    MERCHANT_HEADER,
    NONCE_HEADER,
    SCHEME,
    SIGNATURE_HEADER,
    SIGNING_HEADERS,
    TIMESTAMP_HEADER,
    WINDOW_SECONDS,
    SigningError,
)

__all__ = [
    "DEFAULT_NONCE_CAPACITY", "KEY_ID_HEADER", "MERCHANT_HEADER", "NONCE_HEADER", "SCHEME",
    "SIGNATURE_HEADER", "SIGNING_HEADERS", "TIMESTAMP_HEADER", "WINDOW_SECONDS", "NonceCache",
    "SigningError", "Verifier", "sign", "string_to_sign",
]

cdef extern from *:
    """
    /* The characters of a str holding only ASCII, read in place; NULL for any other str. */
    static inline const char *payswitch_ascii_data(PyObject *text, Py_ssize_t *length) {
        *length = 0;
    #if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(text) < 0) {
            PyErr_Clear();  /* the caller's fallback, str.encode, reports the failure */
            return NULL;
        }
    #endif
        if (!PyUnicode_IS_ASCII(text)) {
            return NULL;
        }
        *length = PyUnicode_GET_LENGTH(text);
        return (const char *)PyUnicode_DATA(text);
    }
    """
    const char *payswitch_ascii_data(object text, Py_ssize_t *length)
    # Wide enough for any 32-digit timestamp plus a 64-bit window, so no comparison can overflow.
    ctypedef long long seconds_t "__int128"

cdef enum:
    _BLOCK_BYTES = 64     # SHA-256 block: the HMAC key is padded to it
    _DIGEST_BYTES = 32
    _SIGNATURE_BYTES = 67  # "v1=" and 64 hex digits
    _SCHEME_BYTES = 21
    # Hashing a body this large takes tens of microseconds, worth letting other threads run. Below it,
    # giving up the GIL costs more than it frees: ~50 ns uncontended against ~0.5 us of hashing for a
    # typical request of a few hundred bytes, and under contention retaking it can wait a whole
    # switch interval (5 ms) behind another thread.
    _NOGIL_BODY_BYTES = 64 * 1024

cdef enum:
    _IDENTIFIER_CHAR = 1  # A-Z a-z 0-9 _ - .
    _NONCE_CHAR = 2       # A-Z a-z 0-9 _ -
    _DIGIT_CHAR = 4       # 0-9
    _ASCII_CHAR = 8       # 0x00-0x7F

cdef enum:
    _MERCHANT_SLOT = 0
    _KEY_ID_SLOT = 1
    _TIMESTAMP_SLOT = 2
    _NONCE_SLOT = 3
    _SIGNATURE_SLOT = 4
    _ALL_SLOTS = 0x1F

cdef const char *_SCHEME_C = b"PAYSWITCH-HMAC-SHA256"
if SCHEME != _SCHEME_C[:_SCHEME_BYTES]:
    raise ImportError("the compiled twin's scheme differs from the pure twin's; rebuild the extension")

cdef unsigned char _CHAR_CLASS[256]
cdef signed char _HEX_VALUE[256]  # lowercase hex digits only; -1 for every other byte


cdef void _fill_tables() noexcept:
    cdef int c
    memset(_CHAR_CLASS, 0, sizeof(_CHAR_CLASS))
    memset(_HEX_VALUE, -1, sizeof(_HEX_VALUE))
    for c in range(256):
        if c < 128:
            _CHAR_CLASS[c] = _ASCII_CHAR
        if (c'A' <= c <= c'Z') or (c'a' <= c <= c'z') or c == c'_' or c == c'-':
            _CHAR_CLASS[c] |= _IDENTIFIER_CHAR | _NONCE_CHAR
        elif c'0' <= c <= c'9':
            _CHAR_CLASS[c] |= _IDENTIFIER_CHAR | _NONCE_CHAR | _DIGIT_CHAR
            _HEX_VALUE[c] = c - c'0'
        if c'a' <= c <= c'f':
            _HEX_VALUE[c] = c - c'a' + 10
    _CHAR_CLASS[<unsigned char>c'.'] |= _IDENTIFIER_CHAR


_fill_tables()


# ---- metadata: which header, and its bytes -------------------------------------------------------

cdef inline int _header_slot(object key) noexcept:
    """Which signing header `key` names, or -1: the pure twin's `key in SIGNING_HEADERS` for str keys.

    Keys of any other type are never signing headers (gRPC gives str keys; bytes never equal str).
    """
    cdef Py_ssize_t length
    cdef const char *text
    if not isinstance(key, str):
        return -1
    text = payswitch_ascii_data(key, &length)
    if text == NULL or length < 17 or length > 21 or memcmp(text, b"x-payswitch-", 12) != 0:
        return -1
    text += 12
    length -= 12
    if length == 8 and memcmp(text, b"merchant", 8) == 0:
        return _MERCHANT_SLOT
    if length == 6 and memcmp(text, b"key-id", 6) == 0:
        return _KEY_ID_SLOT
    if length == 9 and memcmp(text, b"timestamp", 9) == 0:
        return _TIMESTAMP_SLOT
    if length == 5 and memcmp(text, b"nonce", 5) == 0:
        return _NONCE_SLOT
    if length == 9 and memcmp(text, b"signature", 9) == 0:
        return _SIGNATURE_SLOT
    return -1


cdef object _metadata_value(object value):
    """The header value as the pure twin reads it: bytes as given, text as ASCII with '?' for the rest.

    ASCII text stays a str (read in place later); anything else goes through the same
    `value.encode("ascii", "replace")` call, with the same errors for values of other types.
    """
    cdef Py_ssize_t length
    if isinstance(value, bytes):
        return value
    if isinstance(value, str) and payswitch_ascii_data(value, &length) != NULL:
        return value
    encoded = value.encode("ascii", "replace")
    if not isinstance(encoded, bytes):
        raise TypeError(f"metadata value encoded to {type(encoded).__name__}, not bytes")
    return encoded


cdef object _ascii(object value):
    """The pure twin's `_ascii`: bytes as given, text must be ASCII (UnicodeEncodeError otherwise)."""
    cdef Py_ssize_t length
    if isinstance(value, bytes):
        return value
    if isinstance(value, str) and payswitch_ascii_data(value, &length) != NULL:
        return value
    encoded = value.encode("ascii")
    if not isinstance(encoded, bytes):
        raise TypeError(f"value encoded to {type(encoded).__name__}, not bytes")
    return encoded


cdef inline const char *_view(object value, Py_ssize_t *length) noexcept:
    """The bytes of a value that _ascii or _metadata_value returned (bytes, or a str of ASCII only)."""
    if isinstance(value, bytes):
        length[0] = PyBytes_GET_SIZE(value)
        return PyBytes_AS_STRING(value)
    return payswitch_ascii_data(value, length)


cdef inline str _exact_text(object value, const char *text, Py_ssize_t length):
    """A plain str of validated ASCII: the value itself when it already is one, so nothing is copied."""
    if type(value) is str:
        return <str>value
    return PyUnicode_DecodeASCII(<char *>text, length, NULL)


cdef inline bytes _body_bytes(object body):
    if isinstance(body, bytes):
        return <bytes>body
    return bytes(body)


# ---- metadata validation, in the spec's byte classes ----------------------------------------------

cdef inline bint _all_of_class(const unsigned char *text, Py_ssize_t length, unsigned char char_class) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(length):
        if not (_CHAR_CLASS[text[i]] & char_class):
            return False
    return True


cdef inline bint _is_identifier(const char *text, Py_ssize_t length) noexcept nogil:
    return 1 <= length <= 64 and _all_of_class(<const unsigned char *>text, length, _IDENTIFIER_CHAR)


cdef inline bint _is_nonce(const char *text, Py_ssize_t length) noexcept nogil:
    return 16 <= length <= 64 and _all_of_class(<const unsigned char *>text, length, _NONCE_CHAR)


cdef inline bint _parse_timestamp(const char *text, Py_ssize_t length, seconds_t *seconds) noexcept nogil:
    """1 to 32 decimal digits; leading zeros allowed, as int() allows them. 10**32 < 2**107 fits."""
    cdef Py_ssize_t i
    cdef seconds_t value = 0
    if length < 1 or length > 32 or not _all_of_class(<const unsigned char *>text, length, _DIGIT_CHAR):
        return False
    for i in range(length):
        value = value * 10 + (text[i] - c'0')
    seconds[0] = value
    return True


cdef inline bint _decode_signature(const char *text, Py_ssize_t length, unsigned char *digest) noexcept nogil:
    """"v1=" and exactly 64 lowercase hex digits, decoded into the 32 bytes they claim."""
    cdef Py_ssize_t i
    cdef signed char high, low
    if length != _SIGNATURE_BYTES or memcmp(text, b"v1=", 3) != 0:
        return False
    text += 3
    for i in range(_DIGEST_BYTES):
        high = _HEX_VALUE[<unsigned char>text[2 * i]]
        low = _HEX_VALUE[<unsigned char>text[2 * i + 1]]
        if high < 0 or low < 0:
            return False
        digest[i] = <unsigned char>((high << 4) | low)
    return True


# ---- HMAC-SHA256 over the string to sign, without building it --------------------------------------

cdef struct _Request:
    const char *method
    Py_ssize_t method_length
    const char *merchant
    Py_ssize_t merchant_length
    const char *key_id
    Py_ssize_t key_id_length
    const char *timestamp
    Py_ssize_t timestamp_length
    const char *nonce
    Py_ssize_t nonce_length
    const char *body
    Py_ssize_t body_length


cdef inline void _absorb_request(SHA256_CTX *context, const _Request *request) noexcept nogil:
    """Feeds SCHEME LF method LF merchant LF key-id LF timestamp LF nonce LF body, piece by piece."""
    SHA256_Update(context, _SCHEME_C, _SCHEME_BYTES)
    SHA256_Update(context, b"\n", 1)
    SHA256_Update(context, request.method, request.method_length)
    SHA256_Update(context, b"\n", 1)
    SHA256_Update(context, request.merchant, request.merchant_length)
    SHA256_Update(context, b"\n", 1)
    SHA256_Update(context, request.key_id, request.key_id_length)
    SHA256_Update(context, b"\n", 1)
    SHA256_Update(context, request.timestamp, request.timestamp_length)
    SHA256_Update(context, b"\n", 1)
    SHA256_Update(context, request.nonce, request.nonce_length)
    SHA256_Update(context, b"\n", 1)
    SHA256_Update(context, request.body, request.body_length)


cdef inline void _hmac_request(const SHA256_CTX *inner, const SHA256_CTX *outer, const _Request *request,
                               unsigned char *digest) noexcept nogil:
    """HMAC from precomputed states: H(outer state | H(inner state | message)). SHA256_* cannot fail."""
    cdef SHA256_CTX context = inner[0]
    _absorb_request(&context, request)
    SHA256_Final(digest, &context)
    context = outer[0]
    SHA256_Update(&context, digest, _DIGEST_BYTES)
    SHA256_Final(digest, &context)


cdef void _derive_key_states(const unsigned char *secret, Py_ssize_t length, SHA256_CTX *inner,
                             SHA256_CTX *outer) noexcept nogil:
    """RFC 2104 key schedule: the states after one block of (key XOR ipad) and of (key XOR opad)."""
    cdef unsigned char block[_BLOCK_BYTES]
    cdef SHA256_CTX long_key
    cdef int i
    memset(block, 0, _BLOCK_BYTES)
    if length > _BLOCK_BYTES:
        SHA256_Init(&long_key)
        SHA256_Update(&long_key, secret, length)
        SHA256_Final(block, &long_key)
        OPENSSL_cleanse(&long_key, sizeof(long_key))
    else:
        memcpy(block, secret, length)
    for i in range(_BLOCK_BYTES):
        block[i] ^= 0x36
    SHA256_Init(inner)
    SHA256_Update(inner, block, _BLOCK_BYTES)
    for i in range(_BLOCK_BYTES):
        block[i] ^= 0x36 ^ 0x5c
    SHA256_Init(outer)
    SHA256_Update(outer, block, _BLOCK_BYTES)
    OPENSSL_cleanse(block, _BLOCK_BYTES)


cdef class _KeyState:
    """One secret as its precomputed HMAC states; as good as the secret, so wiped when freed."""

    cdef SHA256_CTX inner
    cdef SHA256_CTX outer

    def __dealloc__(self):
        OPENSSL_cleanse(&self.inner, sizeof(SHA256_CTX))
        OPENSSL_cleanse(&self.outer, sizeof(SHA256_CTX))

    def __repr__(self):
        return "<_KeyState (masked)>"


cdef _KeyState _key_state(bytes secret):
    cdef _KeyState state = _KeyState.__new__(_KeyState)
    _derive_key_states(<const unsigned char *>PyBytes_AS_STRING(secret), PyBytes_GET_SIZE(secret), &state.inner,
                       &state.outer)
    return state


cdef int _fill_request(_Request *request, object method, object merchant, object key_id, object timestamp,
                       object nonce, bytes body) except -1:
    """Points `request` at the pieces; the caller keeps the objects alive while it is used."""
    request.method = _view(method, &request.method_length)
    request.merchant = _view(merchant, &request.merchant_length)
    request.key_id = _view(key_id, &request.key_id_length)
    request.timestamp = _view(timestamp, &request.timestamp_length)
    request.nonce = _view(nonce, &request.nonce_length)
    request.body = PyBytes_AS_STRING(body)
    request.body_length = PyBytes_GET_SIZE(body)
    return 0


cdef inline char *_write_piece(char *out, const char *piece, Py_ssize_t length) noexcept nogil:
    """Writes LF and the piece; returns where the next piece goes."""
    out[0] = c'\n'
    memcpy(out + 1, piece, length)
    return out + 1 + length


def string_to_sign(method, merchant, key_id, timestamp, nonce, body: bytes) -> bytes:
    """The exact bytes the HMAC covers."""
    cdef _Request request
    cdef Py_ssize_t length
    cdef char *out
    cdef bytes body_bytes
    method, merchant, key_id = _ascii(method), _ascii(merchant), _ascii(key_id)
    timestamp, nonce = _ascii(timestamp), _ascii(nonce)
    body_bytes = _body_bytes(body)
    _fill_request(&request, method, merchant, key_id, timestamp, nonce, body_bytes)
    length = (_SCHEME_BYTES + 6 + request.method_length + request.merchant_length + request.key_id_length
              + request.timestamp_length + request.nonce_length + request.body_length)
    result = PyBytes_FromStringAndSize(NULL, length)
    out = PyBytes_AS_STRING(result)
    memcpy(out, _SCHEME_C, _SCHEME_BYTES)
    out += _SCHEME_BYTES
    out = _write_piece(out, request.method, request.method_length)
    out = _write_piece(out, request.merchant, request.merchant_length)
    out = _write_piece(out, request.key_id, request.key_id_length)
    out = _write_piece(out, request.timestamp, request.timestamp_length)
    out = _write_piece(out, request.nonce, request.nonce_length)
    _write_piece(out, request.body, request.body_length)
    return result


cdef str _signature_text(const unsigned char *digest):
    cdef char text[_SIGNATURE_BYTES]
    cdef const char *hex_digits = b"0123456789abcdef"
    cdef int i
    memcpy(text, b"v1=", 3)
    for i in range(_DIGEST_BYTES):
        text[3 + 2 * i] = hex_digits[digest[i] >> 4]
        text[4 + 2 * i] = hex_digits[digest[i] & 0x0F]
    return PyUnicode_DecodeASCII(text, _SIGNATURE_BYTES, NULL)


def sign(secret: bytes, method, merchant, key_id, timestamp, nonce, body: bytes) -> str:
    """The `x-payswitch-signature` value for one request."""
    cdef _Request request
    cdef Py_buffer key
    cdef SHA256_CTX inner, outer
    cdef unsigned char digest[_DIGEST_BYTES]
    cdef bytes body_bytes
    method, merchant, key_id = _ascii(method), _ascii(merchant), _ascii(key_id)
    timestamp, nonce = _ascii(timestamp), _ascii(nonce)
    body_bytes = _body_bytes(body)
    _fill_request(&request, method, merchant, key_id, timestamp, nonce, body_bytes)
    PyObject_GetBuffer(secret, &key, PyBUF_SIMPLE)  # any bytes-like secret, as hmac.digest takes
    try:
        _derive_key_states(<const unsigned char *>key.buf, key.len, &inner, &outer)
    finally:
        PyBuffer_Release(&key)
    _hmac_request(&inner, &outer, &request, digest)
    OPENSSL_cleanse(&inner, sizeof(inner))
    OPENSSL_cleanse(&outer, sizeof(outer))
    return _signature_text(digest)


# ---- nonce replay ---------------------------------------------------------------------------------

cdef struct _Expiry:
    seconds_t expires_at
    PyObject *key  # owned reference


cdef seconds_t _SECONDS_LIMIT = (<seconds_t>1) << 120


cdef str _nonce_key(const char *merchant, Py_ssize_t merchant_length, const char *nonce,
                    Py_ssize_t nonce_length):
    """One ASCII str for (merchant, nonce): chr(len(merchant)), merchant, nonce.

    The length prefix keeps distinct pairs distinct; a str, unlike a tuple, is not tracked by the
    cyclic GC, so a million remembered nonces add nothing to every collection. Needs ASCII pieces and
    a merchant shorter than 128 bytes (a verified merchant has at most 64).
    """
    cdef str key = PyUnicode_New(1 + merchant_length + nonce_length, 127)
    cdef Py_UCS1 *out = PyUnicode_1BYTE_DATA(key)
    out[0] = <Py_UCS1>merchant_length
    memcpy(out + 1, merchant, merchant_length)
    memcpy(out + 1 + merchant_length, nonce, nonce_length)
    return key


cdef object _any_nonce_key(object merchant, object nonce):
    """The key NonceCache.check_and_add uses: the verifier's own key for ASCII str or bytes, else a tuple."""
    cdef const char *merchant_text
    cdef const char *nonce_text
    cdef Py_ssize_t merchant_length, nonce_length
    if ((isinstance(merchant, bytes) or isinstance(merchant, str))
            and (isinstance(nonce, bytes) or isinstance(nonce, str))):
        merchant_text = _view(merchant, &merchant_length)
        nonce_text = _view(nonce, &nonce_length)
        if (merchant_text != NULL and nonce_text != NULL and merchant_length < 128
                and _all_of_class(<const unsigned char *>merchant_text, merchant_length, _ASCII_CHAR)
                and _all_of_class(<const unsigned char *>nonce_text, nonce_length, _ASCII_CHAR)):
            return _nonce_key(merchant_text, merchant_length, nonce_text, nonce_length)
    return (merchant, nonce)


cdef seconds_t _seconds(object value) except? -1:
    """A Python int as seconds_t, refusing values whose sums with a window could overflow."""
    cdef seconds_t seconds = value
    if seconds > _SECONDS_LIMIT or seconds < -_SECONDS_LIMIT:
        raise OverflowError("seconds beyond 2**120 are not supported by the compiled nonce cache")
    return seconds


cdef class NonceCache:
    """Nonces seen per merchant within the window, bounded in size.

    When full, the oldest entries are evicted and `floor` rises to their expiry: a request whose
    timestamp is not newer than the floor could replay an evicted nonce, so it is refused as a
    replay. The bound therefore costs availability under flood, never safety.

    Same semantics as the pure twin's, entry for entry: `_seen` holds the keys, and a ring buffer in
    insertion order stands for its deque (expiry looks only at the oldest entry, as there). One
    difference in keys: a merchant and nonce given as ASCII str or as bytes are the same pair here
    (the pure twin keys on the objects, and its Verifier always passes bytes).
    """

    cdef seconds_t _window
    cdef Py_ssize_t _capacity
    cdef seconds_t _floor
    cdef set _seen
    cdef _Expiry *_order       # ring buffer of _order_size (a power of two) entries
    cdef Py_ssize_t _order_size
    cdef Py_ssize_t _head
    cdef Py_ssize_t _count

    def __cinit__(self):
        self._order = NULL
        self._order_size = 0
        self._head = 0
        self._count = 0

    def __init__(self, window_seconds: int, capacity: int):
        cdef long long window = window_seconds
        self._window = window
        # The pure twin compares len() with any int; clamping to what len() can reach changes nothing.
        self._capacity = max(-(1 << 62), min(capacity, 1 << 62))
        self._seen = set()
        self._floor = -((<seconds_t>1) << 62)
        self._clear_order()

    def __dealloc__(self):
        self._clear_order()

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, merchant: bytes, nonce: bytes, timestamp: int, now: int) -> bool:
        """Records the nonce; False if it was seen (or may have been seen) within the window."""
        return self._check_and_add(_any_nonce_key(merchant, nonce), _seconds(timestamp), _seconds(now))

    cdef bint _check_and_add(self, object key, seconds_t timestamp, seconds_t now) except -1:
        cdef seconds_t expires_at, evicted_expiry
        self._expire(now)
        if key in self._seen or timestamp <= self._floor:
            return False
        expires_at = (timestamp if timestamp > now else now) + self._window
        if self._count >= self._capacity:
            if self._count == 0:
                raise IndexError("pop from an empty deque")  # the pure twin's deque, capacity <= 0
            evicted = self._pop_oldest(&evicted_expiry)
            self._seen.discard(evicted)
            if evicted_expiry - self._window > self._floor:
                self._floor = evicted_expiry - self._window
        self._push(expires_at, key)  # first: only it can fail half-way (MemoryError on growth)
        self._seen.add(key)
        return True

    cdef int _expire(self, seconds_t now) except -1:
        cdef seconds_t expires_at
        while self._count and self._order[self._head].expires_at < now:
            self._seen.discard(self._pop_oldest(&expires_at))
        return 0

    cdef object _pop_oldest(self, seconds_t *expires_at):
        cdef _Expiry *entry = &self._order[self._head]
        key = <object>entry.key
        Py_XDECREF(entry.key)
        entry.key = NULL
        expires_at[0] = entry.expires_at
        self._head = (self._head + 1) & (self._order_size - 1)
        self._count -= 1
        return key

    cdef int _push(self, seconds_t expires_at, object key) except -1:
        cdef _Expiry *entry
        if self._count == self._order_size:
            self._grow()
        entry = &self._order[(self._head + self._count) & (self._order_size - 1)]
        Py_INCREF(key)
        entry.key = <PyObject *>key
        entry.expires_at = expires_at
        self._count += 1
        return 0

    cdef int _grow(self) except -1:
        cdef Py_ssize_t size = self._order_size * 2 if self._order_size else 64
        cdef Py_ssize_t i
        cdef _Expiry *order = <_Expiry *>PyMem_Malloc(size * sizeof(_Expiry))
        if order == NULL:
            raise MemoryError()
        for i in range(self._count):
            order[i] = self._order[(self._head + i) & (self._order_size - 1)]
        PyMem_Free(self._order)
        self._order = order
        self._order_size = size
        self._head = 0
        return 0

    cdef void _clear_order(self) noexcept:
        cdef Py_ssize_t i
        if self._order != NULL:
            for i in range(self._count):
                Py_XDECREF(self._order[(self._head + i) & (self._order_size - 1)].key)
            PyMem_Free(self._order)
        self._order = NULL
        self._order_size = 0
        self._head = 0
        self._count = 0


# ---- the verifier ---------------------------------------------------------------------------------

cdef class Verifier:
    """Checks signed requests in the order the spec gives and remembers nonces.

    `keys` maps (merchant, key id) to the raw secret. `clock` returns Unix seconds; it is injected so
    the window is testable without sleeping.
    """

    cdef long long _window
    cdef object _clock
    cdef NonceCache _nonces
    cdef dict _keys  # merchant -> {key id -> _KeyState}, as plain str: no tuple to build per request

    def __init__(self, keys, window_seconds: int = WINDOW_SECONDS, clock=time.time,
                 nonce_capacity: int = DEFAULT_NONCE_CAPACITY):
        self._window = window_seconds
        self._clock = clock
        self._nonces = NonceCache(window_seconds, nonce_capacity)
        self._keys = {}
        self.set_keys(keys)

    def set_keys(self, keys) -> None:
        """Replaces the key table at once (rotation, revocation)."""
        cdef dict table = {}
        for (merchant, key_id), secret in keys.items():
            merchant, key_id = _ascii(merchant), _ascii(key_id)
            state = _key_state(bytes(secret))
            try:
                merchant, key_id = _plain_ascii(merchant), _plain_ascii(key_id)
            except UnicodeDecodeError:
                continue  # bytes that are not ASCII can never match a verified identifier
            table.setdefault(merchant, {})[key_id] = state
        self._keys = table

    def verify(self, method, metadata, body: bytes, now: int | None = None) -> str:
        """Returns the merchant id of a well-signed request, or raises SigningError."""
        cdef object merchant = None, key_id = None, timestamp = None, nonce = None, signature = None
        cdef unsigned int present = 0
        cdef int slot
        cdef _Request request
        cdef seconds_t stamp, distance
        cdef long long now_seconds
        cdef unsigned char claimed[_DIGEST_BYTES]
        cdef unsigned char expected[_DIGEST_BYTES]
        cdef _KeyState state
        cdef const char *signature_text
        cdef Py_ssize_t signature_length
        cdef bytes body_bytes
        for key, value in metadata:
            slot = _header_slot(key)
            if slot < 0:
                continue
            if present & (1u << slot):
                raise SigningError("duplicate_metadata")  # which of the two was signed is ambiguous
            present |= 1u << slot
            value = _metadata_value(value)
            if slot == _MERCHANT_SLOT:
                merchant = value
            elif slot == _KEY_ID_SLOT:
                key_id = value
            elif slot == _TIMESTAMP_SLOT:
                timestamp = value
            elif slot == _NONCE_SLOT:
                nonce = value
            else:
                signature = value
        if present != _ALL_SLOTS:
            raise SigningError("missing_metadata")
        request.merchant = _view(merchant, &request.merchant_length)
        request.key_id = _view(key_id, &request.key_id_length)
        request.timestamp = _view(timestamp, &request.timestamp_length)
        request.nonce = _view(nonce, &request.nonce_length)
        signature_text = _view(signature, &signature_length)
        if not _is_identifier(request.merchant, request.merchant_length):
            raise SigningError("malformed_merchant")
        if not _is_identifier(request.key_id, request.key_id_length):
            raise SigningError("malformed_key_id")
        if not _parse_timestamp(request.timestamp, request.timestamp_length, &stamp):
            raise SigningError("malformed_timestamp")
        if not _is_nonce(request.nonce, request.nonce_length):
            raise SigningError("malformed_nonce")
        if not _decode_signature(signature_text, signature_length, claimed):
            raise SigningError("malformed_signature")
        merchant_text = _exact_text(merchant, request.merchant, request.merchant_length)
        found = self._keys.get(merchant_text)
        if found is not None:
            found = (<dict>found).get(_exact_text(key_id, request.key_id, request.key_id_length))
        if found is None:
            raise SigningError("unknown_key")
        state = <_KeyState>found
        if now is None:
            now = int(self._clock())
        now_seconds = now
        distance = now_seconds - stamp
        if distance < 0:
            distance = -distance
        if distance > self._window:
            raise SigningError("timestamp_out_of_window")
        method = _ascii(method)
        request.method = _view(method, &request.method_length)
        body_bytes = _body_bytes(body)
        request.body = PyBytes_AS_STRING(body_bytes)
        request.body_length = PyBytes_GET_SIZE(body_bytes)
        if request.body_length >= _NOGIL_BODY_BYTES:
            with nogil:
                _hmac_request(&state.inner, &state.outer, &request, expected)
        else:
            _hmac_request(&state.inner, &state.outer, &request, expected)
        if CRYPTO_memcmp(expected, claimed, _DIGEST_BYTES) != 0:
            raise SigningError("signature_mismatch")
        nonce_key = _nonce_key(request.merchant, request.merchant_length, request.nonce, request.nonce_length)
        if not self._nonces._check_and_add(nonce_key, stamp, now_seconds):
            raise SigningError("replayed_nonce")
        return merchant_text


cdef str _plain_ascii(object value):
    """A plain str of what _ascii returned; UnicodeDecodeError for bytes that are not ASCII."""
    if type(value) is str:
        return <str>value
    if isinstance(value, str):
        return str.__str__(value)
    return (<bytes>value).decode("ascii")
