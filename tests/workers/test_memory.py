"""Workers give memory back between jobs: cycles collected once the process has grown."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from qcheck.memory import CycleCollector, resident_bytes

pytestmark = pytest.mark.skipif(resident_bytes() is None, reason="needs /proc/self/statm")

MB = 1024**2


def _cyclic_garbage(megabytes: int) -> None:
    """Touched arrays reachable only from a reference cycle, as a converter's graphs are."""
    holder: dict[str, object] = {"data": np.ones(megabytes * MB // 8)}
    holder["self"] = holder


def test_cycles_are_collected_after_a_job_that_grew_the_process_and_not_otherwise() -> None:
    gc.disable()  # the test decides when cycles are collected
    try:
        collect = CycleCollector(growth=128 * MB)
        assert not collect(), "nothing grew: no full collection"
        _cyclic_garbage(300)
        grown = resident_bytes()
        assert collect()
        after = resident_bytes()
        assert grown is not None and after is not None and grown - after > 250 * MB
        _cyclic_garbage(16)
        assert not collect(), "16 MB of growth is not worth a collection"
    finally:
        gc.enable()
