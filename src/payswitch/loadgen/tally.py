"""What came back during a measurement: operations, errors by status, payment outcomes and latencies.

Latencies are kept as every sample (8 bytes per call; a 10 s unary run is well under a megabyte), so
percentiles are exact rather than bucketed.
"""

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    """Counts for one measurement window; mergeable across load-generator processes.

    `operations` are items answered OK (a unary call is one item, a batch of 100 is 100), so errors
    never inflate throughput. `acknowledged` counts OK items over the whole run, warm-up and drain
    included, to compare with what the store holds afterwards.
    """

    operations: int = 0
    calls: int = 0
    errors: Counter = field(default_factory=Counter)
    payment_statuses: Counter = field(default_factory=Counter)
    latencies_s: array = field(default_factory=lambda: array("d"))
    acknowledged: int = 0
    request_bytes: int = 0
    response_bytes: int = 0

    def merge(self, other: "Tally") -> "Tally":
        self.operations += other.operations
        self.calls += other.calls
        self.errors.update(other.errors)
        self.payment_statuses.update(other.payment_statuses)
        self.latencies_s.extend(other.latencies_s)
        self.acknowledged += other.acknowledged
        self.request_bytes = self.request_bytes or other.request_bytes
        self.response_bytes = self.response_bytes or other.response_bytes
        return self

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def latency_ms(self) -> dict[str, float | None]:
        """Nearest-rank percentiles of the per-call latencies, in milliseconds."""
        samples = sorted(self.latencies_s)
        if not samples:
            return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}

        def rank(quantile: float) -> float:
            return round(samples[max(math.ceil(quantile * len(samples)) - 1, 0)] * 1000, 3)

        return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": round(samples[-1] * 1000, 3),
                "mean": round(sum(samples) / len(samples) * 1000, 3)}
