"""`payswitch bench`: the request encoding it relies on, its figures, and short real runs of each mode."""

import json
import subprocess
import sys

import pytest

from payswitch.loadgen.cpu_time import CpuSnapshot, ProcessCpu, cpu_use, take_snapshot
from payswitch.loadgen.tally import Tally
from payswitch.loadgen.workload import APPROVING_CARDS, AuthorizationWorkload
from payswitch.v1 import switch_pb2


def test_spliced_requests_are_the_bytes_protobuf_would_write():
    workload = AuthorizationWorkload("t1-s0", exp_year=2031)
    unary = workload.authorize_bytes()
    parsed = switch_pb2.AuthorizeRequest.FromString(unary)
    assert parsed.SerializeToString() == unary
    assert parsed.card.number in APPROVING_CARDS and parsed.card.exp_year == 2031 and parsed.amount.amount_minor > 0
    encoded = workload.batch_bytes(700)
    batch = switch_pb2.BatchRequest.FromString(encoded)
    assert batch.SerializeToString() == encoded
    requests = [parsed] + [item.authorize for item in batch.items]
    assert len({r.idempotency_key for r in requests}) == len({r.merchant_reference for r in requests}) == 701
    assert len({(r.amount.amount_minor, r.amount.currency) for r in requests}) > 100
    assert {r.card.number for r in requests} == set(APPROVING_CARDS)


def test_workloads_with_different_labels_never_share_a_key():
    first, second = AuthorizationWorkload("run-s0"), AuthorizationWorkload("run-s1")
    keys = {item.authorize.idempotency_key for w in (first, second) for item in w.batch_request(50).items}
    assert len(keys) == 100


def test_tally_percentiles_are_nearest_rank_and_merge():
    low, high = Tally(), Tally()
    low.latencies_s.extend(i / 1000 for i in range(1, 51))
    high.latencies_s.extend(i / 1000 for i in range(51, 101))
    latency = low.merge(high).latency_ms()
    assert (latency["p50"], latency["p95"], latency["p99"], latency["max"]) == (50.0, 95.0, 99.0, 100.0)
    assert Tally().latency_ms()["p50"] is None


def test_cpu_use_names_who_spent_the_window():
    before = CpuSnapshot(100.0, {(10, 1): ProcessCpu(5.0, False), (20, 1): ProcessCpu(1.0, False),
                                 (30, 1): ProcessCpu(2.0, True), (40, 1): ProcessCpu(7.0, False)})
    after = CpuSnapshot(110.0, {(10, 1): ProcessCpu(9.0, False), (20, 1): ProcessCpu(3.0, False),
                                (30, 1): ProcessCpu(2.5, True), (40, 2): ProcessCpu(0.5, False),
                                (50, 9): ProcessCpu(1.0, False)})
    use = cpu_use(before, after, server_pid=10, load_generator_pids={20})
    assert (use.machine_busy_s, use.server_s, use.load_generator_s, use.kernel_threads_s) == (10.0, 4.0, 2.0, 0.5)
    # Started in the window: counted whole, pid 40 reused by a new process included.
    assert (use.other_processes_s, use.unattributed_s) == (1.5, 2.0)
    snapshot = take_snapshot()
    assert snapshot is None or snapshot.machine_busy_s > 0


def _bench(tmp_path, *options: str) -> tuple[dict, subprocess.CompletedProcess]:
    path = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "payswitch", "bench", "--duration", "1", "--warmup", "0.5",
                             "--json", str(path), *options], capture_output=True, text=True, timeout=120)
    assert path.exists(), result.stdout + result.stderr
    return json.loads(path.read_text()), result


def _check_figures(figures: dict) -> None:
    assert figures["throughput"] > 0 and figures["operations"] > 0 and figures["calls"] > 0
    assert figures["errors"] == {}
    latency = figures["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["unary", "batch", "stream"])
def test_each_mode_against_a_switch_it_starts(tmp_path, mode):
    document, result = _bench(tmp_path, "--mode", mode, "--concurrency", "2", "--batch-size", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    _check_figures(document)
    _check_figures(document["echo"])
    assert document["ratio_to_echo"] == pytest.approx(document["throughput"] / document["echo"]["throughput"], rel=1e-3)
    assert document["payment_statuses"] == {"AUTHORIZED": document["operations"]}
    assert document["batch_size"] == (1 if mode == "unary" else 20)
    # Every authorization the switch acknowledged is in its store after the graceful stop.
    assert document["store"]["payments_stored"] >= document["store"]["acknowledged"] >= document["operations"]
    assert document["backend"]["extensions"] and document["versions"]["grpcio"] and document["machine"]["cpu_count"]
    assert document["command"].startswith(f"payswitch bench --mode {mode} --concurrency 2 --batch-size 20")
    assert "ops/s" in result.stderr and "switch / echo throughput" in result.stdout
    # No card number reaches the output.
    assert not any(card in result.stdout + result.stderr + json.dumps(document) for card in APPROVING_CARDS)


@pytest.mark.slow
def test_an_external_switch_with_two_processes_and_no_echo(tmp_path, live):
    merchant = live.MERCHANTS[0]
    document, result = _bench(tmp_path, "--target", live.address, "--merchant", merchant, "--key-id", "k1",
                              "--secret-hex", live.secrets[merchant].hex(), "--no-echo", "--processes", "2",
                              "--concurrency", "4")
    assert result.returncode == 0, result.stdout + result.stderr
    _check_figures(document)
    assert document["echo"] is None and document["ratio_to_echo"] is None and document["store"] is None
    assert document["backend"]["source"].startswith("load generator")
    assert live.secrets[merchant].hex() not in document["command"]


@pytest.mark.slow
def test_a_wrong_secret_is_counted_as_unauthenticated(tmp_path, live):
    document, result = _bench(tmp_path, "--target", live.address, "--merchant", live.MERCHANTS[0],
                              "--secret-hex", "00" * 32, "--no-echo", "--concurrency", "1")
    assert result.returncode == 1
    assert document["operations"] == 0 and document["errors"]["UNAUTHENTICATED"] > 0
