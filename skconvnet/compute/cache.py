"""The activation cache: activations of images already seen, for reuse across fits.

A grid search over the cut-off layer transforms the same images once per candidate, fold and
refit. Keyed by image content, backbone and weights, image size and precision, the cache
returns those activations instead of recomputing them, and a deeper layer resumes from a
cached shallower one. It lives in the process (never in an estimator), so clones and pickles
stay small and every process starts empty.
"""

import threading
from collections import OrderedDict

DEFAULT_BUDGET = 1 << 30  # bytes


class ActivationCache:
    """A thread-safe least-recently-used store of read-only arrays within a byte budget."""

    def __init__(self, budget=DEFAULT_BUDGET):
        self.budget = budget
        self.nbytes = 0
        self._entries = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            array = self._entries.get(key)
            if array is not None:
                self._entries.move_to_end(key)
            return array

    def put(self, key, array):
        if array.nbytes > self.budget:
            return
        array.setflags(write=False)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            self._entries[key] = array
            self.nbytes += array.nbytes
            self._evict()

    def resize(self, budget):
        with self._lock:
            self.budget = budget
            self._evict()

    def _evict(self):
        while self.nbytes > self.budget:
            _, evicted = self._entries.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def admits(self, total_bytes):
        """Whether activations of ``total_bytes`` for one call are worth storing.

        Up to half the budget: LRU over a cyclic scan of more than fits never hits, and the
        other half keeps a shallower layer to resume from.
        """
        return total_bytes <= self.budget // 2

    def clear(self):
        with self._lock:
            self._entries.clear()
            self.nbytes = 0

    def __len__(self):
        return len(self._entries)


activation_cache = ActivationCache()


def set_cache_budget(n_bytes):
    """Set how many bytes of activations skconvnet keeps for reuse in this process.

    The activation cache makes a search over ``layer`` (and over the head's parameters) cost
    about one forward pass: features of images already seen are returned, not recomputed, and
    a deeper layer resumes from a cached shallower one. The default budget is 1 GiB; least
    recently used activations are dropped first. ``0`` turns the cache off for the process
    (``cache=False`` does so for one estimator).

    Parameters
    ----------
    n_bytes : int
        The budget in bytes.

    Examples
    --------
    >>> import skconvnet
    >>> skconvnet.set_cache_budget(4 * 2**30)  # 4 GiB
    >>> skconvnet.set_cache_budget(2**30)  # back to the default
    """
    if isinstance(n_bytes, bool) or not isinstance(n_bytes, int) or n_bytes < 0:
        raise ValueError(f"n_bytes must be a non-negative integer, got {n_bytes!r}.")
    activation_cache.resize(n_bytes)


def clear_cache():
    """Drop every cached activation of this process."""
    activation_cache.clear()
