"""The activation cache's store (least recently used, within a byte budget) and the plan that
says, per image and requested layer, which cached activation extraction resumes from."""

import numpy as np
import pytest

from skconvnet.backbones import specs
from skconvnet.compute.activations import _plan
from skconvnet.compute.cache import ActivationCache

pytestmark = pytest.mark.no_backend


def test_least_recently_used_entries_are_evicted_first():
    store = ActivationCache(budget=3 * 16)
    for key in "abc":
        store.put(key, np.zeros(2))  # 16 bytes each: the budget is full
    assert store.get("a") is not None  # "a" is now the most recently used
    store.put("d", np.zeros(2))
    assert store.get("b") is None and len(store) == 3  # the least recently used went
    store.put("c", np.ones(2))  # storing again counts as a use
    store.put("e", np.zeros(2))
    assert [store.get(key) is not None for key in "acde"] == [False, True, True, True]
    store.resize(16)
    assert [store.get(key) is not None for key in "cde"] == [False, False, True]
    assert store.nbytes == 16


def test_stored_arrays_are_read_only_and_oversized_ones_are_not_kept():
    store = ActivationCache(budget=64)
    array = np.zeros(4)
    store.put("small", array)
    assert not array.flags.writeable and store.get("small") is array
    store.put("big", np.zeros(9))  # 72 bytes: more than the whole budget
    assert store.get("big") is None and store.nbytes == 32


def test_one_call_is_admitted_up_to_half_the_budget():
    store = ActivationCache(budget=100)
    assert store.admits(50) and not store.admits(51)


def test_the_plan_resumes_each_layer_from_the_deepest_cached_one_at_or_below_it():
    spec = specs.get("vgg16")
    store = ActivationCache()
    keys = [("first image",), ("second image",)]
    cached = {name: np.full(2, index, dtype=np.float32)
              for index, name in enumerate(["block1_conv2", "block1_pool", "block3_conv1"])}
    for name, array in cached.items():
        store.put(("first image", name), array)
    store.put(("second image", "block4_pool"), np.zeros(2))  # deeper than both requests
    plan = _plan(spec, store, keys, ["block2_pool", "block3_pool"], n_samples=2)
    assert plan[0][0] == ("block1_pool", cached["block1_pool"])  # deepest up to block2_pool
    assert plan[0][1] == ("block3_conv1", cached["block3_conv1"])  # after block2_pool
    assert plan[1] == [None, None]  # block4_pool cannot give a shallower activation


def test_without_a_cache_every_image_starts_from_pixels():
    plan = _plan(specs.get("vgg16"), None, None, ["block1_pool", "block5_pool"], n_samples=3)
    assert plan == [[None, None]] * 3
