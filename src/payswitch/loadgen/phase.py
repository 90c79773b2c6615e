"""One timed measurement against one server: load-generator processes started together, a progress
line once a second, and who used the machine's CPU inside the measurement window."""

import os

import multiprocessing
import sys
import time
from dataclasses import dataclass

from .cpu_time import CpuUse, cpu_use, take_snapshot
from .local_switch import Credentials
from .tally import Tally
from .worker import LoadPlan, run_worker

START_DELAY_S = 0.2
READY_TIMEOUT_S = 60.0


class PhaseError(RuntimeError):
    """A load-generator process failed; the message says how."""


@dataclass(frozen=True)
class PhaseSpec:
    name: str  # "echo" or "switch": labels the progress line and keeps idempotency keys apart
    target: str
    mode: str
    concurrency: int  # in-flight calls across all processes
    batch_size: int
    warmup_s: float
    duration_s: float
    timeout_s: float
    processes: int
    connections: int  # per process
    credentials: tuple[Credentials, ...]
    run_id: str


@dataclass
class PhaseResult:
    spec: PhaseSpec
    tally: Tally
    cpu: CpuUse | None  # None without /proc


def _plans(spec: PhaseSpec) -> list[LoadPlan]:
    """Splits the in-flight calls over the processes as evenly as it goes; connection k of all of them
    signs as merchant k modulo the number of merchants."""
    plans = []
    for process in range(spec.processes):
        share = spec.concurrency // spec.processes + (process < spec.concurrency % spec.processes)
        first = process * spec.connections
        credentials = tuple(spec.credentials[(first + c) % len(spec.credentials)] for c in range(spec.connections))
        plans.append(LoadPlan(spec.target, spec.mode, share, spec.batch_size, spec.warmup_s, spec.duration_s,
                              spec.timeout_s, credentials, f"{spec.run_id}-{spec.name[0]}{process}"))
    return plans


class ProgressLine:
    """'\\r'-updated line on stderr: elapsed time, items per second over the last second, totals."""

    def __init__(self, name: str, stream=sys.stderr):
        self._name = name
        self._stream = stream
        self._last_ok = 0
        self._last_elapsed = 0.0

    def show(self, elapsed: float, ok: int, errors: int, note: str) -> None:
        rate = (ok - self._last_ok) / max(elapsed - self._last_elapsed, 1e-9)
        self._last_ok, self._last_elapsed = ok, elapsed
        self._stream.write(f"\r{self._name:<6} {elapsed:6.1f} s {rate:>10,.0f} ops/s  total {ok:>12,}  "
                           f"errors {errors:>8,}  {note:<8}")
        self._stream.flush()

    def end(self) -> None:
        self._stream.write("\n")
        self._stream.flush()


def _wait_for(connection, process, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not connection.poll(0.2):
        if not process.is_alive():
            raise PhaseError(f"a load-generator process exited ({process.exitcode}) before {what}")
        if time.monotonic() > deadline:
            raise PhaseError(f"a load-generator process did not send {what} within {timeout_s:g} s")
    message = connection.recv()
    if isinstance(message, Exception):
        raise PhaseError(f"a load-generator process failed: {message}")
    return message


def run_phase(spec: PhaseSpec, server=None, progress_stream=sys.stderr) -> PhaseResult:
    """Runs the warm-up and the measured window; `server` (a ServerProcess) is watched for CPU time."""
    context = multiprocessing.get_context("spawn")
    board = context.RawArray("q", 2 * spec.processes)
    workers = []
    try:
        for slot, plan in enumerate(_plans(spec)):
            parent_end, child_end = context.Pipe()
            process = context.Process(target=run_worker, args=(plan, slot, board, child_end),
                                      name=f"bench-{spec.name}-{slot}", daemon=True)
            process.start()
            child_end.close()
            workers.append((process, parent_end))
        for process, connection in workers:
            _wait_for(connection, process, READY_TIMEOUT_S, "its ready message")

        start_at = time.monotonic() + START_DELAY_S
        for _, connection in workers:
            connection.send(start_at)
        load_generator_pids = {os.getpid(), *(process.pid for process, _ in workers)}
        cpu = _watch(spec, start_at, board, ProgressLine(spec.name, progress_stream),
                     server.process.pid if server else None, load_generator_pids)

        tally = Tally()
        for process, connection in workers:
            tally.merge(_wait_for(connection, process, spec.timeout_s + 30, "its tally"))
        return PhaseResult(spec, tally, cpu)
    finally:
        for process, connection in workers:
            connection.close()
            process.join(5)
            if process.is_alive():
                process.terminate()
                process.join()


def _watch(spec: PhaseSpec, start_at: float, board, progress: ProgressLine, server_pid: int | None,
           load_generator_pids: set[int]) -> CpuUse | None:
    """Prints progress each second; returns who used the CPU inside the window."""
    window_start = start_at + spec.warmup_s
    window_end = window_start + spec.duration_s
    ticks = [start_at + second for second in range(1, int(spec.warmup_s + spec.duration_s) + 1)]
    snapshots = {}
    for moment in sorted({*ticks, window_start, window_end}):
        time.sleep(max(moment - time.monotonic(), 0))
        if moment in (window_start, window_end):
            snapshots[moment] = take_snapshot()
        if moment in ticks or moment == window_end:
            ok, errors = sum(board[0::2]), sum(board[1::2])
            progress.show(moment - start_at, ok, errors, "warm-up" if moment <= window_start else "")
    progress.end()
    before, after = snapshots[window_start], snapshots[window_end]
    if before is None or after is None:
        return None
    return cpu_use(before, after, server_pid=server_pid, load_generator_pids=load_generator_pids)
