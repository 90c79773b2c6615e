"""The serving process's garbage-collector settings (the throughput and pause figures are in BENCHMARKS.md)."""

import gc
import weakref

from payswitch.cli import runtime


class Node:
    pass


def test_serving_freezes_start_up_objects_and_still_frees_cycles_made_later():
    thresholds = gc.get_threshold()
    try:
        runtime.tune_garbage_collection_for_serving()
        assert gc.get_threshold() == runtime.SERVING_GC_THRESHOLDS
        assert gc.get_freeze_count() > 1000  # this test process's modules, at least

        cycle = Node()
        cycle.me = cycle
        watch = weakref.ref(cycle)
        del cycle
        assert watch() is not None  # no collection yet
        young = [[] for _ in range(runtime.SERVING_GC_THRESHOLDS[0] * 2)]  # enough to trigger one on its own
        assert watch() is None
        del young
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
