"""The benchmark's figures as a JSON document and as a table for people."""

import os
import platform

from ..processing.render import payment_status_name
from .phase import PhaseResult

# Other processes using more than this share of all cores during a window make its figures suspect.
NOISE_SHARE = 0.10


def _per_operation_us(cpu_s: float | None, operations: int) -> float | None:
    return None if cpu_s is None or not operations else round(cpu_s / operations * 1e6, 2)


def phase_figures(result: PhaseResult) -> dict:
    """Throughput, latency and errors of one phase, and who used the CPU meanwhile."""
    tally, duration = result.tally, result.spec.duration_s
    return {
        "operations": tally.operations,
        "throughput": round(tally.operations / duration, 1),
        "calls": tally.calls,
        "calls_per_second": round(tally.calls / duration, 1),
        "latency_ms": tally.latency_ms(),
        "errors": dict(sorted(tally.errors.items())),
        "payment_statuses": {payment_status_name(status): count
                             for status, count in sorted(tally.payment_statuses.items())},
        "request_bytes": tally.request_bytes,
        "response_bytes": tally.response_bytes,
        "cpu": _cpu_figures(result.cpu, tally.operations),
    }


def _cpu_figures(cpu, operations: int) -> dict | None:
    if cpu is None:
        return None
    figures = {name: None if seconds is None else round(seconds, 3) for name, seconds in vars(cpu).items()}
    figures["server_us_per_operation"] = _per_operation_us(cpu.server_s, operations)
    figures["load_generator_us_per_operation"] = _per_operation_us(cpu.load_generator_s, operations)
    return figures


def machine() -> dict:
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "processor": platform.machine()}


def versions(info: dict) -> dict:
    return {name: info.get(name) for name in ("python", "grpcio", "protobuf", "payswitch")}


def format_table(document: dict) -> str:
    """The summary for a terminal: the switch beside its echo baseline."""
    columns = [("switch", document)]
    if document.get("echo"):
        columns.append(("echo", document["echo"]))
    unit = "items" if document["mode"] != "unary" else "calls"

    def cell(value, digits=1):
        if value is None:
            return "-"
        return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"

    def cpu(figures, name, digits=2):
        return cell(figures["cpu"][name], digits) if figures["cpu"] else "-"

    rows = [
        (f"throughput ({unit}/s)", lambda d: cell(d["throughput"])),
        ("calls/s", lambda d: cell(d["calls_per_second"])),
        ("operations", lambda d: cell(d["operations"])),
        ("latency p50 ms", lambda d: cell(d["latency_ms"]["p50"], 2)),
        ("latency p95 ms", lambda d: cell(d["latency_ms"]["p95"], 2)),
        ("latency p99 ms", lambda d: cell(d["latency_ms"]["p99"], 2)),
        ("latency max ms", lambda d: cell(d["latency_ms"]["max"], 2)),
        ("errors", lambda d: ", ".join(f"{k} {v:,}" for k, v in d["errors"].items()) or "0"),
        ("server CPU us/op", lambda d: cpu(d, "server_us_per_operation", 1)),
        ("load gen CPU us/op", lambda d: cpu(d, "load_generator_us_per_operation", 1)),
        ("CPU s: server", lambda d: cpu(d, "server_s")),
        ("CPU s: load generator", lambda d: cpu(d, "load_generator_s")),
        ("CPU s: kernel threads", lambda d: cpu(d, "kernel_threads_s")),
        ("CPU s: unattributed", lambda d: cpu(d, "unattributed_s")),
        ("CPU s: other processes", lambda d: cpu(d, "other_processes_s")),
        ("request/response bytes", lambda d: f"{d['request_bytes']:,}/{d['response_bytes']:,}"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"payswitch bench: mode {document['mode']}, concurrency {document['concurrency']}, "
             f"batch size {document['batch_size']}, {document['duration_s']:g} s measured after "
             f"{document['warmup_s']:g} s warm-up, {document['processes']} load-generator process(es)",
             f"{'':<{width}}  " + "".join(f"{name:>18}" for name, _ in columns)]
    for label, render in rows:
        lines.append(f"{label:<{width}}  " + "".join(f"{render(d):>18}" for _, d in columns))
    if document.get("ratio_to_echo") is not None:
        lines.append(f"switch / echo throughput: {document['ratio_to_echo']:.3f}")
    for name, figures in columns:
        if not figures["cpu"]:
            continue
        foreign_s = figures["cpu"]["other_processes_s"] + figures["cpu"]["unattributed_s"]
        capacity_s = document["duration_s"] * (document["machine"]["cpu_count"] or 1)
        if foreign_s > NOISE_SHARE * capacity_s:
            lines.append(f"warning: other processes used about {foreign_s / capacity_s:.0%} of the machine's CPU "
                         f"while the {name} was measured; its figures are skewed")
    store = document.get("store")
    if store:
        lines.append(f"store: {store['payments_stored']:,} payments stored, {store['acknowledged']:,} acknowledged "
                     f"({store['durability']})")
    backend = document.get("backend") or {}
    lines.append(f"backend ({backend.get('source', '?')}): {backend.get('extensions')}, protobuf "
                 f"{backend.get('protobuf_backend')}, {backend.get('event_loop')}")
    return "\n".join(lines)
