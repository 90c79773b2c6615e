"""One load-generator process: its connections, its share of the in-flight calls, and its tally.

It runs in a process of its own (multiprocessing, spawn) so that several can be started, and so the
parent stays free to print progress and watch the server. Every request is built outside the timed
part of a call, but signed by the client as it is sent, exactly as a real caller's would be.
"""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import grpc

from ..client import BatchRefused, SwitchClient
from ..cli import runtime
from .local_switch import Credentials
from .tally import Tally
from .workload import AuthorizationWorkload

STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
# Counted under this name when a BatchResponse does not hold one result per item sent.
RESULT_COUNT_MISMATCH = "RESULT_COUNT_MISMATCH"
# Each channel gets its own TCP connection instead of sharing grpc's global subchannel pool.
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)


@dataclass(frozen=True)
class LoadPlan:
    """What one load-generator process does; `credentials` has one entry per connection it opens."""

    target: str
    mode: str
    concurrency: int
    batch_size: int
    warmup_s: float
    duration_s: float
    timeout_s: float
    credentials: tuple[Credentials, ...]
    label: str


class WindowRecorder:
    """Records calls that complete inside the measurement window; counts every OK item for the store
    check and publishes running totals on the shared progress board."""

    def __init__(self, tally: Tally, window_start: float, window_end: float, board, slot: int):
        self.tally = tally
        self.window_start = window_start
        self.window_end = window_end
        self._board = board
        self._ok_index, self._error_index = 2 * slot, 2 * slot + 1
        self._ok_total = self._error_total = 0

    def _count(self, ended: float, ok_items: int, error_items: int) -> bool:
        """Adds to the run's totals; True when a call that ended at `ended` falls inside the window."""
        self._ok_total += ok_items
        self._board[self._ok_index] = self._ok_total
        if error_items:
            self._error_total += error_items
            self._board[self._error_index] = self._error_total
        self.tally.acknowledged += ok_items
        return self.window_start <= ended < self.window_end

    def record(self, began: float, ok_items: int, errors: Counter | None, statuses: Counter | None) -> None:
        ended = time.monotonic()
        if not self._count(ended, ok_items, sum(errors.values()) if errors else 0):
            return
        tally = self.tally
        tally.calls += 1
        tally.operations += ok_items
        tally.latencies_s.append(ended - began)
        if errors:
            tally.errors.update(errors)
        if statuses:
            tally.payment_statuses.update(statuses)

    def note_sizes(self, request, response) -> None:
        """Message sizes of the first answered call, to compare the echo's with the switch's."""
        if not self.tally.response_bytes:
            self.tally.request_bytes = request.ByteSize()
            self.tally.response_bytes = response.ByteSize()

    def record_single(self, began: float, status: int) -> None:
        """One OK unary call whose payment has `status`; the common case, kept free of Counters."""
        ended = time.monotonic()
        if not self._count(ended, 1, 0):
            return
        tally = self.tally
        tally.calls += 1
        tally.operations += 1
        tally.latencies_s.append(ended - began)
        tally.payment_statuses[status] += 1


def _error_name(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code().name
    if isinstance(error, BatchRefused):
        return STATUS_NAMES.get(error.error.code, "UNKNOWN")
    return type(error).__name__


def _count_results(response, items_sent: int) -> tuple[int, Counter | None, Counter]:
    """OK items, errors by status name, and payment statuses of a BatchResponse.

    An error result reads as status 0 through the unset `authorize` field, so one cheap pass counts the
    statuses, and only a batch where 0 appears is walked again for its error codes. Results missing
    (or extra) against the items sent are errors too.
    """
    results = response.results
    statuses = Counter([result.authorize.payment.status for result in results])
    if 0 not in statuses and len(results) == items_sent:
        return items_sent, None, statuses
    errors, statuses = Counter(), Counter()
    for result in results:
        if result.HasField("error"):
            errors[STATUS_NAMES.get(result.error.code, "UNKNOWN")] += 1
        else:
            statuses[result.authorize.payment.status] += 1
    if len(results) != items_sent:
        errors[RESULT_COUNT_MISMATCH] += abs(items_sent - len(results))
    return sum(statuses.values()), errors, statuses


class StreamSlot:
    """The open Stream of one connection, shared by that connection's workers; a broken one is
    replaced once, by whichever worker notices first."""

    def __init__(self, client: SwitchClient):
        self._client = client
        self.stream = client.open_stream()
        self.retired = []

    def replace(self, broken) -> None:
        if self.stream is broken:
            self.retired.append(broken)
            self.stream = self._client.open_stream()

    async def close(self) -> None:
        for stream in (*self.retired, self.stream):
            try:
                await stream.close()
            except Exception:  # noqa: BLE001 - a broken stream has nothing left to close
                pass


async def _unary_worker(client: SwitchClient, workload: AuthorizationWorkload, recorder: WindowRecorder,
                        stop_at: float, timeout_s: float) -> None:
    call, record_single, monotonic = client.call, recorder.record_single, time.monotonic
    while monotonic() < stop_at:
        request = workload.authorize_request()
        began = monotonic()
        try:
            response = await call("Authorize", request, timeout_s)
        except Exception as error:  # noqa: BLE001 - every failure is counted by its status
            recorder.record(began, 0, Counter({_error_name(error): 1}), None)
            continue
        record_single(began, response.payment.status)
        recorder.note_sizes(request, response)


async def _batch_worker(client: SwitchClient, workload: AuthorizationWorkload, recorder: WindowRecorder,
                        stop_at: float, timeout_s: float, batch_size: int) -> None:
    record, monotonic = recorder.record, time.monotonic
    while monotonic() < stop_at:
        request = workload.batch_request(batch_size)
        began = monotonic()
        try:
            response = await client.batch(request, timeout_s)
        except Exception as error:  # noqa: BLE001 - the whole batch failed: every item counts as failed
            record(began, 0, Counter({_error_name(error): batch_size}), None)
            continue
        record(began, *_count_results(response, batch_size))
        recorder.note_sizes(request, response)


async def _stream_worker(slot: StreamSlot, workload: AuthorizationWorkload, recorder: WindowRecorder,
                         stop_at: float, timeout_s: float, batch_size: int) -> None:
    record, monotonic = recorder.record, time.monotonic
    while monotonic() < stop_at:
        request = workload.batch_request(batch_size)
        stream = slot.stream
        began = monotonic()
        try:
            response = await asyncio.wait_for(stream.submit(request), timeout_s)
        except Exception as error:  # noqa: BLE001 - counted; a broken stream is replaced
            record(began, 0, Counter({_error_name(error): batch_size}), None)
            if not isinstance(error, BatchRefused):
                slot.replace(stream)
            continue
        record(began, *_count_results(response, batch_size))
        recorder.note_sizes(request, response)


async def drive(plan: LoadPlan, start_at: float, board, slot: int) -> Tally:
    """Runs the plan from `start_at` (time.monotonic, shared by all processes) and returns its tally."""
    tally = Tally()
    window_start = start_at + plan.warmup_s
    window_end = window_start + plan.duration_s
    recorder = WindowRecorder(tally, window_start, window_end, board, slot)
    workload = AuthorizationWorkload(plan.label)
    clients = [SwitchClient(plan.target, c.merchant_id, c.key_id, c.secret, timeout=plan.timeout_s, max_attempts=1,
                            channel_options=OWN_CONNECTION) for c in plan.credentials]
    slots = []
    try:
        await asyncio.sleep(max(start_at - time.monotonic(), 0))
        if plan.mode == "stream":
            slots = [StreamSlot(client) for client in clients]
        workers = []
        for index in range(plan.concurrency):
            if plan.mode == "unary":
                worker = _unary_worker(clients[index % len(clients)], workload, recorder, window_end, plan.timeout_s)
            elif plan.mode == "batch":
                worker = _batch_worker(clients[index % len(clients)], workload, recorder, window_end, plan.timeout_s,
                                       plan.batch_size)
            else:
                worker = _stream_worker(slots[index % len(slots)], workload, recorder, window_end, plan.timeout_s,
                                        plan.batch_size)
            workers.append(worker)
        await asyncio.gather(*workers)
    finally:
        for stream_slot in slots:
            await stream_slot.close()
        for client in clients:
            await client.close()
    return tally


async def _serve_parent(plan: LoadPlan, slot: int, board, connection) -> None:
    loop = asyncio.get_running_loop()
    connection.send("ready")
    start_at = await loop.run_in_executor(None, connection.recv)
    tally = await drive(plan, start_at, board, slot)
    connection.send(tally)


def run_worker(plan: LoadPlan, slot: int, board, connection) -> None:
    """Entry point of a load-generator process: says ready, waits for the start time, sends its tally."""
    try:
        runtime.run(_serve_parent(plan, slot, board, connection))
    except BaseException as error:
        # Exceptions from grpc do not always pickle; the parent needs only the words.
        connection.send(RuntimeError(f"{type(error).__name__}: {error}"))
        raise
    finally:
        connection.close()
