"""Stored rows in memory or in a temporary file, and the memory budget of 'auto'."""

import os

import ml_dtypes
import numpy as np
import pytest

from skconvnet.training import storage
from skconvnet.training.storage import Storage, available_memory, memory_budget

pytestmark = pytest.mark.no_backend


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16])
def test_rows_read_back_in_any_order_as_written_from_memory_or_disk(tmp_path, dtype):
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(50, 3, 4, 2)).astype(dtype)
    wanted = rng.permutation(50)[:17]
    with Storage(str(tmp_path)) as store:
        read = {}
        for on_disk in (False, True):
            stored = store.rows(50, (3, 4, 2), dtype, on_disk=on_disk)
            for start in range(0, 50, 20):  # a batch at a time, as the frozen pass writes
                stored.write(start, rows[start:start + 20])
            read[on_disk] = stored.read(wanted)
        assert read[True].dtype == np.float32
        np.testing.assert_array_equal(read[True], rows[wanted].astype(np.float32))
        np.testing.assert_array_equal(read[False], read[True])
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="reads Linux's /proc/meminfo")
def test_the_available_memory_is_some_of_the_machines():
    with open("/proc/meminfo") as meminfo:
        total = next(int(line.split()[1]) * 1024 for line in meminfo
                     if line.startswith("MemTotal:"))
    assert 0 < available_memory() <= total


def test_auto_is_half_the_available_memory_and_an_int_is_the_budget(monkeypatch):
    monkeypatch.setattr(storage, "available_memory", lambda: 10_000_001)
    assert memory_budget("auto") == 5_000_000
    monkeypatch.setattr(storage, "available_memory", lambda: None)  # the system does not say
    assert memory_budget("auto") == 2**31
    assert memory_budget(12345) == 12345 and memory_budget(0) == 0
