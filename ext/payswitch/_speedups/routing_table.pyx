# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Routing tables compiled for the hot path, the compiled twin: BIN ranges and ordered rules.

Same names, signatures, exceptions and answers as payswitch/hotpath/routing_table.py, which stays the
readable reference (its docstrings give the semantics); pick between them only through
payswitch.hotpath. The algorithms are the same; what changes is where the data lives:

- BinTable keeps its disjoint intervals in three C arrays (uint64 first and last keys, uint32 index
  of the value among the distinct value objects), plus a radix index on the keys' top bits that
  narrows the binary search to a few neighbouring starts; a lookup reads the digits from the str's
  own buffer, so it allocates nothing and returns the stored value;
- build sorts structs with qsort and sweeps with a heap of C ints instead of lists of Python ints;
- RuleTable's bitsets are uint64 words, one row per interned value, and each merchant's candidates
  are only the non-zero words of its bitset, so a match touches the words that hold rules that
  merchant can use, and returns a preallocated int.

RuleCriteria is the pure twin's own class: rules are built once and given to either backend.
"""

from cpython.dict cimport PyDict_GetItemWithError
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_AsSsize_t, PyLong_Check
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.number cimport PyNumber_Index
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.stdint cimport INT64_MAX, INT64_MIN, int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport qsort
from libc.string cimport memset

from payswitch.hotpath.routing_table import KEY_DIGITS, MIN_DIGITS, RuleCriteria

__all__ = ["BinTable", "RuleCriteria", "RuleTable"]

cdef extern from *:
    """
    /* The characters of a str holding only ASCII, read in place; NULL for anything else. */
    static inline const char *routing_ascii_chars(PyObject *text, Py_ssize_t *length) {
        *length = 0;
        if (!PyUnicode_Check(text)) {
            return NULL;
        }
    #if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(text) < 0) {
            PyErr_Clear();  /* a legacy str that cannot be readied is no card number */
            return NULL;
        }
    #endif
        if (!PyUnicode_IS_ASCII(text)) {
            return NULL;
        }
        *length = PyUnicode_GET_LENGTH(text);
        return (const char *)PyUnicode_DATA(text);
    }
    #define routing_lowest_bit(word) __builtin_ctzll(word)
    """
    const char *routing_ascii_chars(object text, Py_ssize_t *length)
    int routing_lowest_bit(uint64_t word) nogil

if (KEY_DIGITS, MIN_DIGITS) != (11, 6):
    raise ImportError("the compiled twin's key space differs from the pure twin's; rebuild the extension")

cdef enum:
    _KEY_DIGITS = 11
    _MIN_DIGITS = 6
    _KEY_BITS = 37           # every 11-digit key is below 10**11 < 2**37
    _MAX_BUCKET_BITS = 16    # at most 65,537 bucket entries (256 KiB), however large the table

# _KEYS_PER_PREFIX[n]: how many 11-digit keys share one n-digit prefix.
cdef uint64_t _KEYS_PER_PREFIX[_KEY_DIGITS + 1]


cdef void _fill_keys_per_prefix() noexcept:
    cdef int digits
    cdef uint64_t keys = 1
    for digits in range(_KEY_DIGITS, -1, -1):
        _KEYS_PER_PREFIX[digits] = keys
        keys *= 10


_fill_keys_per_prefix()


# ---- BIN ranges ----------------------------------------------------------------------------------

ctypedef struct _Range:
    uint64_t first_key
    uint64_t last_key
    int32_t length
    int32_t index
    uint32_t value_slot   # the value object's place among the distinct ones

ctypedef struct _RangeStart:
    uint64_t first_key
    int32_t rank


cdef int _more_specific_first(const void *left, const void *right) noexcept nogil:
    """qsort order: longer prefix, then fewer keys; start and index only fix the order."""
    cdef const _Range *a = <const _Range *>left
    cdef const _Range *b = <const _Range *>right
    cdef uint64_t a_span = a.last_key - a.first_key
    cdef uint64_t b_span = b.last_key - b.first_key
    if a.length != b.length:
        return -1 if a.length > b.length else 1
    if a_span != b_span:
        return -1 if a_span < b_span else 1
    if a.first_key != b.first_key:
        return -1 if a.first_key < b.first_key else 1
    return (a.index > b.index) - (a.index < b.index)


cdef int _by_first_key(const void *left, const void *right) noexcept nogil:
    cdef const _RangeStart *a = <const _RangeStart *>left
    cdef const _RangeStart *b = <const _RangeStart *>right
    if a.first_key != b.first_key:
        return -1 if a.first_key < b.first_key else 1
    return (a.rank > b.rank) - (a.rank < b.rank)


cdef int _ascending(const void *left, const void *right) noexcept nogil:
    cdef uint64_t a = (<const uint64_t *>left)[0]
    cdef uint64_t b = (<const uint64_t *>right)[0]
    return (a > b) - (a < b)


cdef inline int _digits_value(object text, uint64_t *value, Py_ssize_t *length) noexcept:
    """1 for a str of ASCII digits, its first 11 read into `value`; 0 for anything else."""
    cdef const char *chars = routing_ascii_chars(text, length)
    cdef Py_ssize_t position
    cdef unsigned int digit
    value[0] = 0
    if chars == NULL or length[0] == 0:
        return 0
    for position in range(length[0]):
        digit = <unsigned char>chars[position] - <unsigned int>c'0'
        if digit > 9:
            return 0
        if position < _KEY_DIGITS:
            value[0] = value[0] * 10 + digit
    return 1


cdef object _range_keys(Py_ssize_t index, object entry, _Range *keys):
    """Validates one input range into `keys` and returns its value; the pure twin's checks and words."""
    cdef uint64_t low_value, high_value
    cdef Py_ssize_t low_length, high_length, length
    try:
        low, high, value = entry
    except (TypeError, ValueError):
        raise ValueError(f"ranges[{index}]: expected (low, high, value), got {entry!r}") from None
    if not _digits_value(low, &low_value, &low_length):
        raise ValueError(f"ranges[{index}]: low {low!r} is not a string of digits")
    if not _MIN_DIGITS <= low_length <= _KEY_DIGITS:
        raise ValueError(f"ranges[{index}]: low {low!r} has {low_length} digits; "
                         f"{_MIN_DIGITS} to {_KEY_DIGITS} are allowed")
    if not _digits_value(high, &high_value, &high_length):
        raise ValueError(f"ranges[{index}]: high {high!r} is not a string of digits")
    if not _MIN_DIGITS <= high_length <= _KEY_DIGITS:
        raise ValueError(f"ranges[{index}]: high {high!r} has {high_length} digits; "
                         f"{_MIN_DIGITS} to {_KEY_DIGITS} are allowed")
    if low_length != high_length:
        raise ValueError(f"ranges[{index}]: low {low!r} and high {high!r} differ in length")
    if low_value > high_value:
        raise ValueError(f"ranges[{index}]: low {low!r} is above high {high!r}")
    length = low_length
    keys.first_key = low_value * _KEYS_PER_PREFIX[length]
    keys.last_key = (high_value + 1) * _KEYS_PER_PREFIX[length] - 1
    keys.length = <int32_t>length
    keys.index = <int32_t>index
    return value


cdef str _prefix(uint64_t key, int32_t length):
    """The digits a range was given with, for error messages."""
    return str(key // _KEYS_PER_PREFIX[length]).zfill(length)


cdef inline void _heap_push(int32_t *heap, Py_ssize_t *size, int32_t rank) noexcept nogil:
    cdef Py_ssize_t child = size[0]
    cdef Py_ssize_t parent
    size[0] += 1
    while child > 0:
        parent = (child - 1) >> 1
        if heap[parent] <= rank:
            break
        heap[child] = heap[parent]
        child = parent
    heap[child] = rank


cdef inline void _heap_pop(int32_t *heap, Py_ssize_t *size) noexcept nogil:
    cdef Py_ssize_t count = size[0] - 1
    cdef int32_t moved = heap[count]
    cdef Py_ssize_t parent = 0
    cdef Py_ssize_t child
    size[0] = count
    while True:
        child = 2 * parent + 1
        if child >= count:
            break
        if child + 1 < count and heap[child + 1] < heap[child]:
            child += 1
        if moved <= heap[child]:
            break
        heap[parent] = heap[child]
        parent = child
    if count > 0:
        heap[parent] = moved


cdef void *_allocate(Py_ssize_t count, size_t item_size) except NULL:
    cdef void *memory = PyMem_Malloc(<size_t>(count if count > 0 else 1) * item_size)
    if memory == NULL:
        raise MemoryError()
    return memory


cdef class BinTable:
    """Card number -> the value of the most specific BIN range covering it (see the pure twin).

    The binary search is the pure twin's, narrowed first by a radix index on the key's top bits:
    intervals starting in bucket b are _bucket_first[b] to _bucket_first[b + 1] - 1. A search over
    100,000 ranges then reads a few neighbouring starts instead of one scattered cache line per
    halving, which is most of a lookup's cost; the answer is the same.
    """

    cdef uint64_t *_starts
    cdef uint64_t *_ends
    cdef uint32_t *_value_index
    cdef Py_ssize_t _interval_count
    cdef uint32_t *_bucket_first
    cdef int _bucket_shift
    cdef tuple _values
    cdef Py_ssize_t _range_count

    def __init__(self, ranges):
        cdef list entries = list(ranges)
        cdef Py_ssize_t count = len(entries)
        cdef Py_ssize_t index, position, next_start, boundary_count, covering_count, interval_count
        cdef _Range *by_priority = NULL
        cdef _RangeStart *by_start = NULL
        cdef uint64_t *boundaries = NULL
        cdef int32_t *covering = NULL
        cdef uint64_t *starts = NULL
        cdef uint64_t *ends = NULL
        cdef uint32_t *value_index = NULL
        cdef uint64_t boundary
        cdef _Range *earlier
        cdef _Range *later
        cdef uint32_t winner
        cdef list values = []  # each distinct value object once: intervals name it by slot
        cdef dict slots = {}
        if count > 0x7FFFFFFF:
            raise ValueError("a BinTable holds at most 2**31 - 1 ranges")
        self._release()
        try:
            by_priority = <_Range *>_allocate(count, sizeof(_Range))
            for index in range(count):
                value = _range_keys(index, entries[index], &by_priority[index])
                by_priority[index].value_slot = slots.setdefault(id(value), len(slots))
                if by_priority[index].value_slot == len(values):
                    values.append(value)

            qsort(by_priority, count, sizeof(_Range), _more_specific_first)
            for position in range(count - 1):
                earlier = &by_priority[position]
                later = &by_priority[position + 1]
                if (earlier.length == later.length
                        and earlier.last_key - earlier.first_key == later.last_key - later.first_key
                        and later.first_key <= earlier.last_key):
                    raise ValueError(
                        f"ranges[{earlier.index}] ({_prefix(earlier.first_key, earlier.length)}-"
                        f"{_prefix(earlier.last_key, earlier.length)}) and ranges[{later.index}] "
                        f"({_prefix(later.first_key, later.length)}-{_prefix(later.last_key, later.length)}) "
                        "overlap with the same length and width, so neither is more specific")

            by_start = <_RangeStart *>_allocate(count, sizeof(_RangeStart))
            boundaries = <uint64_t *>_allocate(2 * count, sizeof(uint64_t))
            for position in range(count):
                by_start[position].first_key = by_priority[position].first_key
                by_start[position].rank = <int32_t>position
                boundaries[2 * position] = by_priority[position].first_key
                boundaries[2 * position + 1] = by_priority[position].last_key + 1
            qsort(by_start, count, sizeof(_RangeStart), _by_first_key)
            qsort(boundaries, 2 * count, sizeof(uint64_t), _ascending)
            boundary_count = 0
            for position in range(2 * count):
                if boundary_count == 0 or boundaries[position] != boundaries[boundary_count - 1]:
                    boundaries[boundary_count] = boundaries[position]
                    boundary_count += 1

            # Sweep the key space: between two consecutive boundaries the set of covering ranges is
            # constant, and the heap's top (the lowest rank still covering) is the winner.
            covering = <int32_t *>_allocate(count, sizeof(int32_t))
            starts = <uint64_t *>_allocate(boundary_count, sizeof(uint64_t))
            ends = <uint64_t *>_allocate(boundary_count, sizeof(uint64_t))
            value_index = <uint32_t *>_allocate(boundary_count, sizeof(uint32_t))
            covering_count = 0
            interval_count = 0
            next_start = 0
            for position in range(boundary_count):
                boundary = boundaries[position]
                while next_start < count and by_start[next_start].first_key == boundary:
                    _heap_push(covering, &covering_count, by_start[next_start].rank)
                    next_start += 1
                while covering_count > 0 and by_priority[covering[0]].last_key < boundary:
                    _heap_pop(covering, &covering_count)
                if covering_count == 0:
                    continue
                winner = by_priority[covering[0]].value_slot
                if (interval_count > 0 and ends[interval_count - 1] + 1 == boundary
                        and value_index[interval_count - 1] == winner):
                    ends[interval_count - 1] = boundaries[position + 1] - 1
                else:
                    starts[interval_count] = boundary
                    ends[interval_count] = boundaries[position + 1] - 1  # the last boundary ends every range
                    value_index[interval_count] = winner
                    interval_count += 1

            self._starts = <uint64_t *>_shrink(starts, interval_count, sizeof(uint64_t))
            starts = NULL
            self._ends = <uint64_t *>_shrink(ends, interval_count, sizeof(uint64_t))
            ends = NULL
            self._value_index = <uint32_t *>_shrink(value_index, interval_count, sizeof(uint32_t))
            value_index = NULL
            self._interval_count = interval_count
            self._index_buckets()
            self._values = tuple(values)
            self._range_count = count
        finally:
            PyMem_Free(by_priority)
            PyMem_Free(by_start)
            PyMem_Free(boundaries)
            PyMem_Free(covering)
            PyMem_Free(starts)
            PyMem_Free(ends)
            PyMem_Free(value_index)

    cdef int _index_buckets(self) except -1:
        """Fills the radix index: about one bucket per interval, up to 2**_MAX_BUCKET_BITS."""
        cdef int bucket_bits = 1
        cdef Py_ssize_t bucket, position = 0
        while bucket_bits < _MAX_BUCKET_BITS and (<Py_ssize_t>1 << bucket_bits) < self._interval_count:
            bucket_bits += 1
        self._bucket_shift = _KEY_BITS - bucket_bits
        self._bucket_first = <uint32_t *>_allocate((1 << bucket_bits) + 1, sizeof(uint32_t))
        for bucket in range((1 << bucket_bits) + 1):
            while position < self._interval_count and self._starts[position] < (<uint64_t>bucket << self._bucket_shift):
                position += 1
            self._bucket_first[bucket] = <uint32_t>position
        return 0

    cdef void _free_arrays(self) noexcept:
        PyMem_Free(self._starts)
        PyMem_Free(self._ends)
        PyMem_Free(self._value_index)
        PyMem_Free(self._bucket_first)
        self._starts = NULL
        self._ends = NULL
        self._value_index = NULL
        self._bucket_first = NULL
        self._interval_count = 0

    cdef void _release(self) noexcept:
        """Back to an empty table, so a failed or repeated __init__ leaves nothing half-built."""
        self._free_arrays()
        self._values = ()
        self._range_count = 0

    def __dealloc__(self):
        self._free_arrays()

    def __len__(self):
        return self._range_count

    def lookup(self, card_number):
        """The value of the most specific range covering the number, or None (see the pure twin)."""
        cdef Py_ssize_t digits, after, remaining, half
        cdef uint64_t first_key, last_key, bucket
        cdef const uint64_t *starts = self._starts
        if not _digits_value(card_number, &first_key, &digits) or digits < _MIN_DIGITS:
            return None
        if digits >= _KEY_DIGITS:
            last_key = first_key
        else:
            first_key *= _KEYS_PER_PREFIX[digits]
            last_key = first_key + _KEYS_PER_PREFIX[digits] - 1
        if self._bucket_first == NULL:
            return None  # __init__ failed or never ran
        # `after`: the first interval starting past the key, found among its bucket's intervals.
        bucket = first_key >> self._bucket_shift
        after = self._bucket_first[bucket]
        remaining = self._bucket_first[bucket + 1] - after
        while remaining > 0:
            half = remaining >> 1
            if starts[after + half] <= first_key:
                after += half + 1
                remaining -= half + 1
            else:
                remaining = half
        if after > 0 and self._ends[after - 1] >= last_key:
            return <object>PyTuple_GET_ITEM(self._values, self._value_index[after - 1])
        return None


cdef void *_shrink(void *memory, Py_ssize_t count, size_t item_size) noexcept:
    """The same block cut to `count` items; the original when realloc declines (it is still valid)."""
    cdef void *smaller = PyMem_Realloc(memory, <size_t>(count if count > 0 else 1) * item_size)
    return smaller if smaller != NULL else memory


# ---- ordered rules -------------------------------------------------------------------------------

ctypedef struct _Dimension:
    uint64_t *accepting   # one row of `words` words per interned value, then the row for any other value
    Py_ssize_t unknown_row

cdef enum:
    _CURRENCIES = 0
    _SCHEMES = 1
    _COUNTRIES = 2
    _CARD_TYPES = 3
    _METHODS = 4
    _DIMENSIONS = 5


cdef dict _intern(str name, list rules):
    """Each value some rule names under `name` -> its row number, in sorted order like the pure twin."""
    named = sorted({value for rule in rules for value in (getattr(rule, name) or ())})
    return {value: row for row, value in enumerate(named)}


cdef uint64_t *_accepting_rows(str name, list rules, dict codes, Py_ssize_t words) except NULL:
    """Bit r of row v is set when rule r names value v or accepts any; the last row is the latter only."""
    cdef Py_ssize_t unknown_row = len(codes)
    cdef Py_ssize_t rows = unknown_row + 1
    cdef Py_ssize_t position, row, word
    cdef uint64_t bit
    cdef uint64_t *accepting = <uint64_t *>_allocate(rows * words, sizeof(uint64_t))
    memset(accepting, 0, <size_t>(rows * words if rows * words > 0 else 1) * sizeof(uint64_t))
    for position in range(len(rules)):
        accepted = getattr(rules[position], name)
        word = position >> 6
        bit = (<uint64_t>1) << (position & 63)
        if accepted is None:
            for row in range(rows):
                accepting[row * words + word] |= bit
        else:
            for value in accepted:
                accepting[<Py_ssize_t>codes[value] * words + word] |= bit
    return accepting


cdef inline Py_ssize_t _row(dict codes, object value, Py_ssize_t unknown_row) except -1:
    """The value's interned row, or the row for values no rule names; no allocation."""
    cdef PyObject *code = PyDict_GetItemWithError(codes, value)
    if code == NULL:
        return unknown_row
    return PyLong_AsSsize_t(<object>code)


cdef inline int64_t _amount(object amount_minor) except? -1:
    """The pure twin's operator.index and signed 64-bit check, with its errors; no allocation for an int."""
    cdef int overflow = 0
    cdef long long amount
    if not PyLong_Check(amount_minor):
        amount_minor = PyNumber_Index(amount_minor)
    amount = PyLong_AsLongLongAndOverflow(amount_minor, &overflow)
    if overflow:
        raise OverflowError("amount_minor does not fit a signed 64-bit integer")
    return amount


cdef class RuleTable:
    """Ordered rules; `match` gives the index of the first rule a payment satisfies, or -1 (see the pure twin)."""

    cdef dict _merchant_codes
    # The interned values of each set criterion but merchants -> their row in _dimensions[...].accepting.
    cdef dict _currency_codes
    cdef dict _scheme_codes
    cdef dict _country_codes
    cdef dict _card_type_codes
    cdef dict _method_codes
    cdef _Dimension _dimensions[_DIMENSIONS]
    cdef Py_ssize_t _words
    # Merchant row m's candidates are entries candidate_offsets[m] to candidate_offsets[m + 1] - 1 of
    # (candidate_words, candidate_masks): the non-zero words of its bitset, in rule order.
    cdef Py_ssize_t *_candidate_offsets
    cdef uint32_t *_candidate_words
    cdef uint64_t *_candidate_masks
    cdef int64_t *_min_amount
    cdef int64_t *_max_amount
    cdef tuple _rule_numbers
    cdef Py_ssize_t _rule_count

    def __init__(self, rules):
        cdef list rule_list = list(rules)
        cdef Py_ssize_t count = len(rule_list)
        cdef Py_ssize_t words = (count + 63) >> 6
        cdef Py_ssize_t position, dimension, merchant_rows, row, word, candidate_count
        cdef uint64_t *merchant_rows_bits = NULL
        for position in range(count):
            rule = rule_list[position]
            if not isinstance(rule, RuleCriteria):
                raise ValueError(f"rules[{position}]: expected a RuleCriteria, got {type(rule).__name__}")
        self._release()
        try:
            self._words = words
            self._merchant_codes = _intern("merchants", rule_list)
            merchant_rows = len(self._merchant_codes) + 1
            merchant_rows_bits = _accepting_rows("merchants", rule_list, self._merchant_codes, words)
            candidate_count = 0
            for position in range(merchant_rows * words):
                if merchant_rows_bits[position]:
                    candidate_count += 1
            self._candidate_offsets = <Py_ssize_t *>_allocate(merchant_rows + 1, sizeof(Py_ssize_t))
            self._candidate_words = <uint32_t *>_allocate(candidate_count, sizeof(uint32_t))
            self._candidate_masks = <uint64_t *>_allocate(candidate_count, sizeof(uint64_t))
            candidate_count = 0
            for row in range(merchant_rows):
                self._candidate_offsets[row] = candidate_count
                for word in range(words):
                    if merchant_rows_bits[row * words + word]:
                        self._candidate_words[candidate_count] = <uint32_t>word
                        self._candidate_masks[candidate_count] = merchant_rows_bits[row * words + word]
                        candidate_count += 1
            self._candidate_offsets[merchant_rows] = candidate_count

            self._currency_codes = _intern("currencies", rule_list)
            self._scheme_codes = _intern("schemes", rule_list)
            self._country_codes = _intern("countries", rule_list)
            self._card_type_codes = _intern("card_types", rule_list)
            self._method_codes = _intern("methods", rule_list)
            for dimension, name, codes in ((_CURRENCIES, "currencies", self._currency_codes),
                                           (_SCHEMES, "schemes", self._scheme_codes),
                                           (_COUNTRIES, "countries", self._country_codes),
                                           (_CARD_TYPES, "card_types", self._card_type_codes),
                                           (_METHODS, "methods", self._method_codes)):
                self._dimensions[dimension].unknown_row = len(codes)
                self._dimensions[dimension].accepting = _accepting_rows(name, rule_list, codes, words)

            self._min_amount = <int64_t *>_allocate(count, sizeof(int64_t))
            self._max_amount = <int64_t *>_allocate(count, sizeof(int64_t))
            for position in range(count):
                rule = rule_list[position]
                self._min_amount[position] = INT64_MIN if rule.min_amount_minor is None else rule.min_amount_minor
                self._max_amount[position] = INT64_MAX if rule.max_amount_minor is None else rule.max_amount_minor
            self._rule_numbers = tuple(range(count))
            self._rule_count = count
        except BaseException:
            self._release()
            raise
        finally:
            PyMem_Free(merchant_rows_bits)

    cdef void _free_arrays(self) noexcept:
        cdef int dimension
        PyMem_Free(self._candidate_offsets)
        PyMem_Free(self._candidate_words)
        PyMem_Free(self._candidate_masks)
        PyMem_Free(self._min_amount)
        PyMem_Free(self._max_amount)
        self._candidate_offsets = NULL
        self._candidate_words = NULL
        self._candidate_masks = NULL
        self._min_amount = NULL
        self._max_amount = NULL
        for dimension in range(_DIMENSIONS):
            PyMem_Free(self._dimensions[dimension].accepting)
            self._dimensions[dimension].accepting = NULL
            self._dimensions[dimension].unknown_row = 0

    cdef void _release(self) noexcept:
        """Back to an empty table, so a failed or repeated __init__ leaves nothing half-built."""
        self._free_arrays()
        self._merchant_codes = {}
        self._currency_codes = {}
        self._scheme_codes = {}
        self._country_codes = {}
        self._card_type_codes = {}
        self._method_codes = {}
        self._words = 0
        self._rule_numbers = ()
        self._rule_count = 0

    def __dealloc__(self):
        self._free_arrays()

    def __len__(self):
        return self._rule_count

    def match(self, merchant, currency, amount_minor, scheme, country, card_type, method):
        """The index of the first rule all of whose criteria hold, or -1 (see the pure twin)."""
        cdef Py_ssize_t words = self._words
        cdef Py_ssize_t merchant_row, candidate, rule
        cdef int64_t amount = _amount(amount_minor)
        cdef uint64_t bits
        cdef uint32_t word
        if self._candidate_offsets == NULL:
            return -1  # __init__ failed or never ran: no rules
        merchant_row = _row(self._merchant_codes, merchant, len(self._merchant_codes))
        cdef const uint64_t *currencies = self._dimensions[_CURRENCIES].accepting + words * _row(
            self._currency_codes, currency, self._dimensions[_CURRENCIES].unknown_row)
        cdef const uint64_t *schemes = self._dimensions[_SCHEMES].accepting + words * _row(
            self._scheme_codes, scheme, self._dimensions[_SCHEMES].unknown_row)
        cdef const uint64_t *countries = self._dimensions[_COUNTRIES].accepting + words * _row(
            self._country_codes, country, self._dimensions[_COUNTRIES].unknown_row)
        cdef const uint64_t *card_types = self._dimensions[_CARD_TYPES].accepting + words * _row(
            self._card_type_codes, card_type, self._dimensions[_CARD_TYPES].unknown_row)
        cdef const uint64_t *methods = self._dimensions[_METHODS].accepting + words * _row(
            self._method_codes, method, self._dimensions[_METHODS].unknown_row)
        for candidate in range(self._candidate_offsets[merchant_row], self._candidate_offsets[merchant_row + 1]):
            word = self._candidate_words[candidate]
            bits = (self._candidate_masks[candidate] & currencies[word] & schemes[word] & countries[word]
                    & card_types[word] & methods[word])
            while bits:
                rule = (<Py_ssize_t>word << 6) + routing_lowest_bit(bits)
                if self._min_amount[rule] <= amount <= self._max_amount[rule]:
                    return <object>PyTuple_GET_ITEM(self._rule_numbers, rule)
                bits &= bits - 1
        return -1
