"""Who spent the machine's cores during a measurement window, read from /proc: the server, the load
generator, kernel threads (network softirqs, the filesystem journal the store's fsyncs wake), other
processes (whose share makes the figures noisy), and what no process was charged for."""

import os
from dataclasses import dataclass

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_KERNEL_THREAD_FLAG = 0x00200000  # PF_KTHREAD in /proc/PID/stat's flags


@dataclass(frozen=True)
class ProcessCpu:
    cpu_s: float
    kernel_thread: bool


@dataclass(frozen=True)
class CpuSnapshot:
    machine_busy_s: float
    # (pid, start time) -> CPU used so far; the start time tells a reused pid from the original.
    processes: dict[tuple[int, int], ProcessCpu]


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds inside one window, all cores together; approximate to a clock tick per process."""

    machine_busy_s: float
    server_s: float | None
    load_generator_s: float
    kernel_threads_s: float
    other_processes_s: float
    # Interrupts not charged to a task, and processes that exited inside the window. (A parent's
    # reaped-children time would count an exited child's whole life, not its time in the window.)
    unattributed_s: float


def _read_process(pid: int) -> tuple[int, ProcessCpu] | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rpartition(")")[2].split()
    except OSError:
        return None
    # Counting from the state, after the command name: flags 6, utime 11, stime 12, starttime 19.
    cpu_s = (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND
    return int(fields[19]), ProcessCpu(cpu_s, bool(int(fields[6]) & _KERNEL_THREAD_FLAG))


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system time of one process, all its threads; None where /proc has no answer."""
    reading = _read_process(pid)
    return None if reading is None else reading[1].cpu_s


def take_snapshot() -> CpuSnapshot | None:
    """Every process's CPU time and the machine's busy time, or None without /proc."""
    try:
        with open("/proc/stat") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    processes = {}
    for pid in pids:
        reading = _read_process(pid)
        if reading is not None:
            processes[(pid, reading[0])] = reading[1]
    return CpuSnapshot((user + nice + system + irq + softirq + steal) / _TICKS_PER_SECOND, processes)


def cpu_use(before: CpuSnapshot, after: CpuSnapshot, *, server_pid: int | None,
            load_generator_pids: set[int]) -> CpuUse:
    """Splits the machine's busy time between two snapshots; a process that started in between counts whole."""
    spent_by = {"server": 0.0, "load_generator": 0.0, "kernel": 0.0, "other": 0.0}
    for key, now in after.processes.items():
        then = before.processes.get(key, ProcessCpu(0.0, now.kernel_thread))
        pid = key[0]
        if pid == server_pid:
            category = "server"
        elif pid in load_generator_pids:
            category = "load_generator"
        else:
            category = "kernel" if now.kernel_thread else "other"
        spent_by[category] += now.cpu_s - then.cpu_s
    machine_busy_s = after.machine_busy_s - before.machine_busy_s
    return CpuUse(machine_busy_s=machine_busy_s,
                  server_s=None if server_pid is None else spent_by["server"],
                  load_generator_s=spent_by["load_generator"],
                  kernel_threads_s=spent_by["kernel"],
                  other_processes_s=spent_by["other"],
                  unattributed_s=max(machine_busy_s - sum(spent_by.values()), 0.0))
