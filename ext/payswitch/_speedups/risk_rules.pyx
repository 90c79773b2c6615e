# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Risk rules compiled for the hot path, the compiled twin: blocklists, limits, sliding windows, duplicates.

Same names, signatures, exceptions and answers as payswitch/hotpath/risk_rules.py, which stays the
readable reference (its docstrings give the semantics); pick between them only through
payswitch.hotpath. Build validation is the pure twin's own (_plan), so both refuse the same input
with the same messages. What changes is where the data lives:

- blocked BINs are sorted int64 arrays, one per prefix length, searched with the digits read from
  the str's own buffer; blocked countries are a 26 x 26 table of flags;
- a key's state is one object holding C ring buffers (times and amounts, with a running sum) per
  velocity rule, grown by doubling up to the rule's max_count, its duplicate fingerprints and daily
  sums in small C arrays; keys are found through a dict and kept in order of use by a doubly linked
  list through the states themselves, so a touch or an eviction is a few pointer moves;
- a check allocates nothing; an admission allocates only for a key seen for the first time, or when
  one of its rings grows.
"""

cimport cython
from cpython.bytes cimport PyBytes_Check
from cpython.dict cimport PyDict_DelItem, PyDict_GetItemWithError, PyDict_SetItem, PyDict_Size
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_AsSsize_t, PyLong_Check
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.number cimport PyNumber_Index
from cpython.object cimport Py_EQ, PyObject, PyObject_RichCompareBool
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.set cimport PySet_Contains
from libc.stdint cimport int64_t
from libc.stdlib cimport qsort
from libc.string cimport memset

from payswitch.hotpath.risk_rules import (ANY_MERCHANT, BLOCKED_BIN, BLOCKED_CARD, BLOCKED_COUNTRY, DAY_US,
                                          DEFAULT_MAX_TRACKED_CARDS, DEFAULT_MAX_TRACKED_MERCHANTS, DUPLICATE,
                                          FIRST_LIMIT, MAX_BIN_DIGITS, MAX_COUNT, MAX_TRACKED_KEYS,
                                          MAX_WINDOW_SECONDS, MIN_BIN_DIGITS, RECENT_PER_CARD, SECOND_US,
                                          SWEEP_PER_NEW_KEY, LimitSpec, VelocitySpec, _carried_windows, _plan,
                                          _restoring)

__all__ = ["ANY_MERCHANT", "BLOCKED_BIN", "BLOCKED_CARD", "BLOCKED_COUNTRY", "DAY_US", "DEFAULT_MAX_TRACKED_CARDS",
           "DEFAULT_MAX_TRACKED_MERCHANTS", "DUPLICATE", "FIRST_LIMIT", "LimitSpec", "MAX_COUNT", "MAX_TRACKED_KEYS",
           "MAX_WINDOW_SECONDS", "RECENT_PER_CARD", "RiskTable", "SWEEP_PER_NEW_KEY", "VelocitySpec"]

cdef extern from *:
    """
    /* The characters of a str holding only ASCII, read in place; NULL for anything else. */
    static inline const char *risk_ascii_chars(PyObject *text, Py_ssize_t *length) {
        *length = 0;
        if (!PyUnicode_Check(text)) {
            return NULL;
        }
    #if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(text) < 0) {
            PyErr_Clear();
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
    const char *risk_ascii_chars(object text, Py_ssize_t *length)

cdef enum:
    _BLOCKED_BIN = 0
    _BLOCKED_CARD = 1
    _BLOCKED_COUNTRY = 2
    _DUPLICATE = 3
    _FIRST_LIMIT = 4
    _MIN_BIN_DIGITS = 6
    _MAX_BIN_DIGITS = 11
    _RECENT_PER_CARD = 32
    _SWEEP_PER_NEW_KEY = 8

cdef int64_t _DAY_US = 86_400_000_000

if ((BLOCKED_BIN, BLOCKED_CARD, BLOCKED_COUNTRY, DUPLICATE, FIRST_LIMIT, MIN_BIN_DIGITS, MAX_BIN_DIGITS,
        RECENT_PER_CARD, SWEEP_PER_NEW_KEY, DAY_US) != (0, 1, 2, 3, 4, 6, 11, 32, 8, 86_400_000_000)):
    raise ImportError("the compiled twin's constants differ from the pure twin's; rebuild the extension")


cdef int64_t _int64(object value, str name) except? -1:
    """The pure twin's _int64: operator.index, refused below zero or past a signed 64-bit integer."""
    cdef int overflow = 0
    cdef long long number
    if not PyLong_Check(value):
        value = PyNumber_Index(value)
    number = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow > 0:
        raise OverflowError(f"{name} does not fit a signed 64-bit integer")
    if overflow < 0 or number < 0:
        raise ValueError(f"{name} must not be negative")
    return number


cdef inline bint _equal(PyObject *stored, object given) except -1:
    """stored == given, with the identity shortcut taken first (as == on str does)."""
    if stored == <PyObject *>given:
        return True
    return PyObject_RichCompareBool(<object>stored, given, Py_EQ)


cdef void *_allocate(Py_ssize_t count, size_t item_size) except NULL:
    cdef void *memory = PyMem_Malloc(<size_t>(count if count > 0 else 1) * item_size)
    if memory == NULL:
        raise MemoryError()
    return memory


# ---- windows: a ring of (time, amount), oldest at head, with their sum -----------------------------

ctypedef struct _Entry:
    int64_t time
    int64_t amount

ctypedef struct _Window:
    _Entry *entries     # time and amount side by side: an expiry check touches one cache line, not two
    int64_t total
    Py_ssize_t capacity
    Py_ssize_t head
    Py_ssize_t size


cdef inline void _drop_oldest(_Window *window) noexcept nogil:
    window.total -= window.entries[window.head].amount
    window.head += 1
    if window.head == window.capacity:
        window.head = 0
    window.size -= 1


cdef inline void _expire(_Window *window, int64_t cutoff) noexcept nogil:
    """Forget the payments at or before the cutoff: they are outside the window."""
    while window.size > 0 and window.entries[window.head].time <= cutoff:
        _drop_oldest(window)


cdef int _resize(_Window *window, Py_ssize_t capacity) except -1:
    """The same payments, in order from index 0, in an array of `capacity` (at least window.size)."""
    cdef _Entry *entries = <_Entry *>_allocate(capacity, sizeof(_Entry))
    cdef Py_ssize_t position, source
    for position in range(window.size):
        source = window.head + position
        if source >= window.capacity:
            source -= window.capacity
        entries[position] = window.entries[source]
    PyMem_Free(window.entries)
    window.entries = entries
    window.capacity = capacity
    window.head = 0
    return 0


cdef int _push(_Window *window, int64_t now, int64_t amount, Py_ssize_t max_count) except -1:
    cdef Py_ssize_t position
    if window.size > 0:
        position = window.head + window.size - 1
        if position >= window.capacity:
            position -= window.capacity
        if window.entries[position].time > now:
            now = window.entries[position].time  # times never decrease along a window
    if window.size == max_count:
        _drop_oldest(window)
    if window.size == window.capacity:
        _resize(window, min(max(4, 2 * window.capacity), max_count))
    position = window.head + window.size
    if position >= window.capacity:
        position -= window.capacity
    window.entries[position].time = now
    window.entries[position].amount = amount
    window.size += 1
    window.total += amount
    return 0


cdef int _copy_newest(_Window *target, const _Window *source, Py_ssize_t max_count) except -1:
    """target (empty) gets source's newest max_count payments."""
    cdef Py_ssize_t count = min(source.size, max_count)
    cdef Py_ssize_t skip = source.size - count
    cdef Py_ssize_t position, index
    if count == 0:
        return 0
    _resize(target, count)
    for position in range(count):
        index = source.head + skip + position
        if index >= source.capacity:
            index -= source.capacity
        target.entries[position] = source.entries[index]
        target.total += source.entries[index].amount
    target.size = count
    return 0


# ---- per key state -------------------------------------------------------------------------------

ctypedef struct _Recent:
    int64_t time
    int64_t amount
    PyObject *merchant   # owned
    PyObject *currency   # owned

ctypedef struct _Daily:
    PyObject *currency   # owned
    int64_t day
    int64_t total


@cython.final
@cython.no_gc
cdef class _KeyState:
    """What the rules remember of one card key or one merchant (the pure twin's _KeyState)."""

    cdef object key
    # The tracker's order of use: borrowed links, the tracker's dict owns every state.
    cdef PyObject *older
    cdef PyObject *newer
    cdef int64_t last_us
    cdef _Window *windows
    cdef Py_ssize_t window_count
    cdef _Recent *recent       # a ring, oldest at recent_head
    cdef Py_ssize_t recent_capacity
    cdef Py_ssize_t recent_head
    cdef Py_ssize_t recent_size
    cdef _Daily *daily
    cdef Py_ssize_t daily_count
    cdef Py_ssize_t daily_capacity

    def __dealloc__(self):
        cdef Py_ssize_t position
        if self.windows != NULL:
            for position in range(self.window_count):
                PyMem_Free(self.windows[position].entries)
            PyMem_Free(self.windows)
        while self.recent_size > 0:
            self._drop_oldest_recent()
        PyMem_Free(self.recent)
        for position in range(self.daily_count):
            Py_DECREF(<object>self.daily[position].currency)
        PyMem_Free(self.daily)

    cdef inline void _drop_oldest_recent(self) noexcept:
        cdef _Recent *entry = &self.recent[self.recent_head]
        Py_DECREF(<object>entry.merchant)
        Py_DECREF(<object>entry.currency)
        self.recent_head += 1
        if self.recent_head == self.recent_capacity:
            self.recent_head = 0
        self.recent_size -= 1

    cdef inline _Recent *_recent_at(self, Py_ssize_t position) noexcept:
        position += self.recent_head
        if position >= self.recent_capacity:
            position -= self.recent_capacity
        return &self.recent[position]

    cdef int push_recent(self, int64_t now, object merchant, int64_t amount, object currency) except -1:
        cdef Py_ssize_t capacity, position
        cdef _Recent *grown
        if self.recent_size > 0 and self._recent_at(self.recent_size - 1).time > now:
            now = self._recent_at(self.recent_size - 1).time
        if self.recent_size == _RECENT_PER_CARD:
            self._drop_oldest_recent()
        if self.recent_size == self.recent_capacity:
            capacity = min(max(2, 2 * self.recent_capacity), <Py_ssize_t>_RECENT_PER_CARD)
            grown = <_Recent *>_allocate(capacity, sizeof(_Recent))
            for position in range(self.recent_size):
                grown[position] = self._recent_at(position)[0]
            PyMem_Free(self.recent)
            self.recent = grown
            self.recent_capacity = capacity
            self.recent_head = 0
        cdef _Recent *entry = self._recent_at(self.recent_size)
        entry.time = now
        entry.amount = amount
        Py_INCREF(merchant)
        entry.merchant = <PyObject *>merchant
        Py_INCREF(currency)
        entry.currency = <PyObject *>currency
        self.recent_size += 1
        return 0

    cdef Py_ssize_t find_daily(self, object currency) except -2:
        cdef Py_ssize_t position
        for position in range(self.daily_count):
            if _equal(self.daily[position].currency, currency):
                return position
        return -1

    cdef int add_daily(self, object currency, int64_t day, int64_t total) except -1:
        cdef Py_ssize_t capacity, position
        cdef _Daily *grown
        if self.daily_count == self.daily_capacity:
            capacity = max(2, 2 * self.daily_capacity)
            grown = <_Daily *>_allocate(capacity, sizeof(_Daily))
            for position in range(self.daily_count):
                grown[position] = self.daily[position]
            PyMem_Free(self.daily)
            self.daily = grown
            self.daily_capacity = capacity
        Py_INCREF(currency)
        self.daily[self.daily_count].currency = <PyObject *>currency
        self.daily[self.daily_count].day = day
        self.daily[self.daily_count].total = total
        self.daily_count += 1
        return 0


cdef _KeyState _new_state(object key, Py_ssize_t window_count):
    cdef _KeyState state = _KeyState.__new__(_KeyState)
    state.key = key
    if window_count > 0:
        state.windows = <_Window *>_allocate(window_count, sizeof(_Window))
        memset(state.windows, 0, <size_t>window_count * sizeof(_Window))
        state.window_count = window_count
    return state


@cython.final
cdef class _Tracker:
    """Key -> _KeyState in order of last use, at most `capacity` keys (the pure twin's _Tracker)."""

    cdef dict states
    cdef PyObject *oldest
    cdef PyObject *newest
    cdef Py_ssize_t capacity
    cdef int64_t horizon_us
    cdef bint daily
    cdef Py_ssize_t window_count
    cdef bint recent
    cdef Py_ssize_t forgotten

    def __init__(self, Py_ssize_t capacity, int64_t horizon_us, bint daily, Py_ssize_t window_count, bint recent):
        self.states = {}
        self.capacity = capacity
        self.horizon_us = horizon_us
        self.daily = daily
        self.window_count = window_count
        self.recent = recent

    cdef inline bint expired(self, _KeyState state, int64_t now) noexcept:
        return (state.last_us <= now - self.horizon_us
                and (not self.daily or state.last_us // _DAY_US < now // _DAY_US))

    cdef inline _KeyState get(self, object key):
        cdef PyObject *found = PyDict_GetItemWithError(self.states, key)
        return None if found == NULL else <_KeyState>found

    cdef void _unlink(self, _KeyState state) noexcept:
        if state.older != NULL:
            (<_KeyState>state.older).newer = state.newer
        else:
            self.oldest = state.newer
        if state.newer != NULL:
            (<_KeyState>state.newer).older = state.older
        else:
            self.newest = state.older
        state.older = NULL
        state.newer = NULL

    cdef void _append(self, _KeyState state) noexcept:
        state.older = self.newest
        state.newer = NULL
        if self.newest != NULL:
            (<_KeyState>self.newest).newer = <PyObject *>state
        else:
            self.oldest = <PyObject *>state
        self.newest = <PyObject *>state

    cdef int _drop_oldest(self) except -1:
        cdef _KeyState state = <_KeyState>self.oldest  # a reference of our own while the dict lets go
        self._unlink(state)
        PyDict_DelItem(self.states, state.key)
        return 0

    cdef int sweep(self, int64_t now) except -1:
        cdef int count
        for count in range(_SWEEP_PER_NEW_KEY):
            if self.oldest == NULL or not self.expired(<_KeyState>self.oldest, now):
                return 0
            self._drop_oldest()
        return 0

    cdef _KeyState touch(self, object key, _KeyState state, int64_t now):
        """The key's state, made the most recently used (created, evicting at capacity, if new)."""
        if state is None:
            self.sweep(now)
            if PyDict_Size(self.states) >= self.capacity:
                if not self.expired(<_KeyState>self.oldest, now):
                    self.forgotten += 1
                self._drop_oldest()
            state = _new_state(key, self.window_count)
            PyDict_SetItem(self.states, key, state)
            self._append(state)
        elif self.newest != <PyObject *>state:
            self._unlink(state)
            self._append(state)
        if now > state.last_us:
            state.last_us = now
        return state

    cdef int insert_newest(self, _KeyState state) except -1:
        """For adopt_state: a built state, as the most recently used."""
        PyDict_SetItem(self.states, state.key, state)
        self._append(state)
        return 0

    cdef list oldest_first(self):
        cdef list ordered = []
        cdef PyObject *state = self.oldest
        while state != NULL:
            ordered.append(<_KeyState>state)
            state = (<_KeyState>state).newer
        return ordered

    cdef void clear(self):
        self.oldest = NULL
        self.newest = NULL
        self.states = {}


# ---- the table -----------------------------------------------------------------------------------

ctypedef struct _Rule:
    bint per_card
    Py_ssize_t slot
    int64_t window_us
    Py_ssize_t max_count
    int64_t max_sum       # -1: none
    PyObject *currency    # NULL: any; borrowed from RiskTable._plan
    bint restored         # its window was not adopted, so `restore` fills it


cdef int _ascending(const void *left, const void *right) noexcept nogil:
    cdef int64_t a = (<const int64_t *>left)[0]
    cdef int64_t b = (<const int64_t *>right)[0]
    return (a > b) - (a < b)


cdef inline bint _sorted_contains(const int64_t *values, Py_ssize_t count, int64_t value) noexcept nogil:
    cdef Py_ssize_t low = 0, high = count, middle
    while low < high:
        middle = (low + high) >> 1
        if values[middle] < value:
            low = middle + 1
        else:
            high = middle
    return low < count and values[low] == value


@cython.final
cdef class RiskTable:
    """The risk rules of one file and the state they keep; `admit` per payment (see the pure twin)."""

    cdef object _plan
    cdef dict _own_limits
    cdef dict _any_limits
    cdef int64_t *_max_amount   # per limit; -1: none
    cdef int64_t *_max_daily
    cdef _Rule *_rules
    cdef Py_ssize_t _rule_count
    cdef Py_ssize_t _first_velocity
    cdef int64_t *_bins[_MAX_BIN_DIGITS + 1]   # per prefix length, sorted
    cdef Py_ssize_t _bin_counts[_MAX_BIN_DIGITS + 1]
    cdef bint _any_bins
    cdef frozenset _blocked_cards
    cdef bint _any_cards
    cdef unsigned char _countries[26 * 26]
    cdef bint _any_countries
    cdef int64_t _duplicate_us
    cdef _Tracker _cards
    cdef _Tracker _merchants
    cdef object _restoring      # the pure twin's _Restoring: what `restore` fills

    def __cinit__(self, *arguments, **keywords):
        self._release()  # a table whose __init__ never ran, or failed, has no rules and answers -1

    def __init__(self, *, limits=(), velocity=(), blocked_bins=(), blocked_cards=(), blocked_countries=(),
                 duplicate_window_seconds=None, max_tracked_cards=DEFAULT_MAX_TRACKED_CARDS,
                 max_tracked_merchants=DEFAULT_MAX_TRACKED_MERCHANTS):
        plan = _plan(limits, velocity, blocked_bins, blocked_cards, blocked_countries, duplicate_window_seconds,
                     max_tracked_cards, max_tracked_merchants)
        cdef Py_ssize_t position, length, count
        self._release()
        try:
            self._plan = plan
            self._own_limits = plan.own_limits
            self._any_limits = plan.any_limits
            count = len(plan.max_amount)
            self._max_amount = <int64_t *>_allocate(count, sizeof(int64_t))
            self._max_daily = <int64_t *>_allocate(count, sizeof(int64_t))
            for position in range(count):
                bound = plan.max_amount[position]
                self._max_amount[position] = -1 if bound is None else bound
                bound = plan.max_daily[position]
                self._max_daily[position] = -1 if bound is None else bound

            self._rule_count = len(plan.rules)
            self._rules = <_Rule *>_allocate(self._rule_count, sizeof(_Rule))
            for position in range(self._rule_count):
                per_card, slot, window_us, max_count, max_sum, currency = plan.rules[position]
                self._rules[position].per_card = per_card
                self._rules[position].slot = slot
                self._rules[position].window_us = window_us
                self._rules[position].max_count = max_count
                self._rules[position].max_sum = -1 if max_sum is None else max_sum
                self._rules[position].currency = NULL if currency is None else <PyObject *>currency
            self._first_velocity = plan.first_velocity

            for length in range(_MIN_BIN_DIGITS, _MAX_BIN_DIGITS + 1):
                prefixes = [int(prefix) for prefix in plan.blocked_bins if len(prefix) == length]
                self._bin_counts[length] = len(prefixes)
                self._bins[length] = <int64_t *>_allocate(len(prefixes), sizeof(int64_t))
                for position in range(len(prefixes)):
                    self._bins[length][position] = prefixes[position]
                qsort(self._bins[length], <size_t>len(prefixes), sizeof(int64_t), _ascending)
            self._any_bins = len(plan.blocked_bins) > 0
            self._blocked_cards = plan.blocked_cards
            self._any_cards = len(plan.blocked_cards) > 0
            for country in plan.blocked_countries:
                self._countries[(ord(country[0]) - 65) * 26 + ord(country[1]) - 65] = 1
            self._any_countries = len(plan.blocked_countries) > 0
            self._duplicate_us = plan.duplicate_us
            self._cards = None if plan.cards is None else _Tracker(*plan.cards)
            self._merchants = None if plan.merchants is None else _Tracker(*plan.merchants)
            self._set_restoring(_restoring(plan))
        except BaseException:
            self._release()
            raise

    cdef void _free_arrays(self) noexcept:
        cdef int length
        PyMem_Free(self._max_amount)
        PyMem_Free(self._max_daily)
        PyMem_Free(self._rules)
        self._max_amount = NULL
        self._max_daily = NULL
        self._rules = NULL
        self._rule_count = 0
        for length in range(_MAX_BIN_DIGITS + 1):
            PyMem_Free(self._bins[length])
            self._bins[length] = NULL
            self._bin_counts[length] = 0

    cdef void _release(self):
        """Back to a table with no rules, so a failed or repeated __init__ leaves nothing half-built."""
        self._free_arrays()
        self._plan = None
        self._own_limits = {}
        self._any_limits = {}
        self._first_velocity = _FIRST_LIMIT
        self._any_bins = False
        self._blocked_cards = frozenset()
        self._any_cards = False
        memset(self._countries, 0, sizeof(self._countries))
        self._any_countries = False
        self._duplicate_us = 0
        self._cards = None
        self._merchants = None
        self._restoring = None

    cdef int _set_restoring(self, object restoring) except -1:
        cdef Py_ssize_t position
        self._restoring = restoring
        for position in range(self._rule_count):
            self._rules[position].restored = position in restoring.positions
        return 0

    def __dealloc__(self):
        self._free_arrays()

    def check(self, merchant, currency, amount_minor, card_key, bin, country, now_us):
        """The number of the first rule that would decline this payment, or -1; records nothing."""
        return self._evaluate(merchant, currency, amount_minor, card_key, bin, country, now_us, False)

    def admit(self, merchant, currency, amount_minor, card_key, bin, country, now_us):
        """`check`, and when it answers -1, the payment is recorded in every window and sum it counts in."""
        return self._evaluate(merchant, currency, amount_minor, card_key, bin, country, now_us, True)

    cdef Py_ssize_t _limit(self, object merchant, object currency) except -2:
        cdef PyObject *own = PyDict_GetItemWithError(self._own_limits, merchant)
        cdef PyObject *index
        if own != NULL:
            index = PyDict_GetItemWithError(<dict>own, currency)
            if index != NULL:
                return PyLong_AsSsize_t(<object>index)
        index = PyDict_GetItemWithError(self._any_limits, currency)
        if index != NULL:
            return PyLong_AsSsize_t(<object>index)
        return -1

    cdef bint _blocked_bin(self, object bin) noexcept:
        cdef Py_ssize_t length, position
        cdef const char *chars = risk_ascii_chars(bin, &length)
        cdef int64_t value = 0
        if chars == NULL or length == 0:
            return False
        for position in range(length):
            if chars[position] < 48 or chars[position] > 57:
                return False
        for position in range(min(length, <Py_ssize_t>_MAX_BIN_DIGITS)):
            value = value * 10 + (chars[position] - 48)
            if (position + 1 >= _MIN_BIN_DIGITS and self._bin_counts[position + 1] > 0
                    and _sorted_contains(self._bins[position + 1], self._bin_counts[position + 1], value)):
                return True
        return False

    cdef bint _blocked_country(self, object country) noexcept:
        cdef Py_ssize_t length
        cdef const char *chars = risk_ascii_chars(country, &length)
        if chars == NULL or length != 2:
            return False
        if chars[0] < 65 or chars[0] > 90 or chars[1] < 65 or chars[1] > 90:
            return False
        return self._countries[(chars[0] - 65) * 26 + chars[1] - 65] != 0

    cdef Py_ssize_t _evaluate(self, object merchant, object currency, object amount_minor, object card_key,
                              object bin, object country, object now_us, bint record) except -2:
        cdef int64_t amount = _int64(amount_minor, "amount_minor")
        cdef int64_t now = _int64(now_us, "now_us")
        cdef Py_ssize_t limit, position, count, earlier
        cdef int64_t total, bound, spent, cutoff
        cdef int64_t today = now // _DAY_US
        cdef _Rule *rule
        cdef _Window *window
        cdef _Recent *entry
        cdef _KeyState card = None
        cdef _KeyState merchant_state = None
        cdef _KeyState state
        if not PyBytes_Check(card_key):
            raise TypeError(f"card_key must be bytes, not {type(card_key).__name__}")

        if self._any_bins and self._blocked_bin(bin):
            return _BLOCKED_BIN
        if self._any_cards and PySet_Contains(self._blocked_cards, card_key):
            return _BLOCKED_CARD
        if self._any_countries and self._blocked_country(country):
            return _BLOCKED_COUNTRY

        limit = self._limit(merchant, currency)
        if limit >= 0:
            bound = self._max_amount[limit]
            if bound >= 0 and amount > bound:
                return _FIRST_LIMIT + 2 * limit

        if self._cards is not None:
            card = self._cards.get(card_key)
        if card is not None and self._duplicate_us:
            cutoff = now - self._duplicate_us
            while card.recent_size > 0 and card.recent[card.recent_head].time <= cutoff:
                card._drop_oldest_recent()
            for earlier in range(card.recent_size):
                entry = card._recent_at(earlier)
                if entry.amount == amount and _equal(entry.merchant, merchant) and _equal(entry.currency, currency):
                    return _DUPLICATE

        if self._merchants is not None:
            merchant_state = self._merchants.get(merchant)
        for position in range(self._rule_count):
            rule = &self._rules[position]
            if rule.currency != NULL and not _equal(rule.currency, currency):
                continue
            state = card if rule.per_card else merchant_state
            count = 0
            total = 0
            if state is not None:
                window = &state.windows[rule.slot]
                _expire(window, now - rule.window_us)
                count = window.size
                total = window.total
            if count >= rule.max_count or (rule.max_sum >= 0 and amount > rule.max_sum - total):
                return self._first_velocity + position

        bound = -1 if limit < 0 else self._max_daily[limit]
        if bound >= 0:
            spent = 0
            if merchant_state is not None:
                earlier = merchant_state.find_daily(currency)
                if earlier >= 0 and merchant_state.daily[earlier].day >= today:
                    spent = merchant_state.daily[earlier].total
            if amount > bound - spent:
                return _FIRST_LIMIT + 2 * limit + 1

        if record:
            self._record(merchant, currency, amount, card_key, now, card, merchant_state, bound >= 0, today, False)
        return -1

    def restore(self, merchant, currency, amount_minor, card_key, now_us):
        """Count, unchecked, a payment that passed risk earlier into what this table did not adopt (see the pure twin)."""
        cdef int64_t amount = _int64(amount_minor, "amount_minor")
        cdef int64_t now = _int64(now_us, "now_us")
        cdef _KeyState card = None
        cdef _KeyState merchant_state = None
        if not PyBytes_Check(card_key):
            raise TypeError(f"card_key must be bytes, not {type(card_key).__name__}")
        restoring = self._restoring
        if restoring is None:
            return
        if self._cards is not None:
            card = self._cards.get(card_key)
        if self._merchants is not None:
            merchant_state = self._merchants.get(merchant)
        self._record(merchant, currency, amount, card_key if card_key and restoring.cards else None, now, card,
                     merchant_state, restoring.restores_daily(self._plan, merchant, currency), now // _DAY_US, True)

    def restore_since_us(self, now_us, previous=None):
        """The instant after which `restore` wants every payment that passed risk, or None (see the pure twin)."""
        if self._plan is None:
            return None
        if previous is None:
            restoring = self._restoring
        else:
            if type(previous) is not type(self):
                raise TypeError(f"restore_since_us needs a {type(self).__name__} of the same backend, "
                                f"not {type(previous).__name__}")
            if (<RiskTable>previous)._plan is None:
                return None
            restoring = _restoring(self._plan, (<RiskTable>previous)._plan)
        return restoring.since_us(self._plan, _int64(now_us, "now_us"))

    cdef int _record(self, object merchant, object currency, int64_t amount, object card_key, int64_t now,
                     _KeyState card, _KeyState merchant_state, bint daily, int64_t today, bint restoring) except -1:
        """Count an admitted payment in every window and sum; restoring: only in what was not adopted (card_key
        None: nothing per card)."""
        cdef Py_ssize_t position
        cdef _Rule *rule
        cdef _Daily *entry
        if self._cards is not None and card_key is not None:
            card = self._cards.touch(card_key, card, now)
            for position in range(self._rule_count):
                rule = &self._rules[position]
                if (rule.per_card and (not restoring or rule.restored)
                        and (rule.currency == NULL or _equal(rule.currency, currency))):
                    _push(&card.windows[rule.slot], now, amount, rule.max_count)
            if self._duplicate_us and (not restoring or self._restoring.recent):
                card.push_recent(now, merchant, amount, currency)
        if self._merchants is not None and (not restoring or self._restoring.merchants):
            merchant_state = self._merchants.touch(merchant, merchant_state, now)
            for position in range(self._rule_count):
                rule = &self._rules[position]
                if (not rule.per_card and (not restoring or rule.restored)
                        and (rule.currency == NULL or _equal(rule.currency, currency))):
                    _push(&merchant_state.windows[rule.slot], now, amount, rule.max_count)
            if daily:
                position = merchant_state.find_daily(currency)
                if position < 0:
                    merchant_state.add_daily(currency, today, amount)
                else:
                    entry = &merchant_state.daily[position]
                    if entry.day < today:
                        entry.day = today
                        entry.total = amount
                    else:
                        entry.total += amount
        return 0

    # ---- hot reload ------------------------------------------------------------------------------

    def adopt_state(self, previous):
        """Copy the state of the table this one replaces (see the pure twin); `previous` is left as it was."""
        if type(previous) is not type(self):
            raise TypeError(f"adopt_state needs a {type(self).__name__} of the same backend, "
                            f"not {type(previous).__name__}")
        cdef RiskTable old = <RiskTable>previous
        if self._plan is None or old._plan is None:
            return
        carried = _carried_windows(old._plan.velocity_specs, self._plan.velocity_specs)
        self._set_restoring(_restoring(self._plan, old._plan))
        self._adopt_tracker(self._cards, old._cards, carried["card"], False)
        self._adopt_tracker(self._merchants, old._merchants, carried["merchant"], True)

    cdef bint _has_daily_limit(self, object merchant, object currency) except -1:
        cdef Py_ssize_t limit = self._limit(merchant, currency)
        return limit >= 0 and self._max_daily[limit] >= 0

    cdef int _adopt_tracker(self, _Tracker tracker, _Tracker old, list carried, bint merchants) except -1:
        cdef list states
        cdef Py_ssize_t excess, position, new_slot, old_slot, max_count
        cdef _KeyState old_state, state
        cdef _Recent *entry
        if tracker is None or old is None:
            return 0
        states = old.oldest_first()
        excess = max(0, len(states) - tracker.capacity)
        tracker.clear()
        tracker.forgotten = old.forgotten + excess
        for old_state in states[excess:]:
            state = _new_state(old_state.key, tracker.window_count)
            state.last_us = old_state.last_us
            for new_slot, old_slot, max_count in carried:
                _copy_newest(&state.windows[new_slot], &old_state.windows[old_slot], max_count)
            if tracker.recent and old.recent and not self._restoring.recent:
                for position in range(old_state.recent_size):
                    entry = old_state._recent_at(position)
                    state.push_recent(entry.time, <object>entry.merchant, entry.amount, <object>entry.currency)
            if merchants and tracker.daily:
                for position in range(old_state.daily_count):
                    currency = <object>old_state.daily[position].currency
                    if self._has_daily_limit(old_state.key, currency):
                        state.add_daily(currency, old_state.daily[position].day, old_state.daily[position].total)
            tracker.insert_newest(state)
        return 0

    def stats(self):
        """Tracked keys now, and unexpired keys evicted at the caps so far (their history forgotten)."""
        cards, merchants = self._cards, self._merchants
        return {"cards": 0 if cards is None else len(cards.states),
                "merchants": 0 if merchants is None else len(merchants.states),
                "cards_forgotten": 0 if cards is None else cards.forgotten,
                "merchants_forgotten": 0 if merchants is None else merchants.forgotten}
