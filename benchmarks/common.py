"""Shared helpers for the benchmarks: data, device description, side-by-side timing,
Linux's peak resident memory."""

import ctypes
import gc
import os
import platform
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
CATS_AND_DOGS = SHARED / "data" / "cats_and_dogs"
IMAGENET_WEIGHTS = SHARED / "weights" / "vgg16_imagenet_notop.weights.h5"


def shared_weights():
    """The shared ImageNet-grade weights file, or None (random weights) where it is absent."""
    return IMAGENET_WEIGHTS if IMAGENET_WEIGHTS.is_file() else None


def photo_paths(n, split="train"):
    """``n`` cats/dogs photo paths (half each), or an empty list where the data is absent."""
    paths = []
    for label in ("cats", "dogs"):
        folder = CATS_AND_DOGS / split / label
        if folder.is_dir():
            files = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem.split(".")[1]))
            paths += files[: n // 2]
    return paths


def device():
    """One line naming the machine, the Keras backend and its version."""
    import keras

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    accelerator = ""
    if keras.backend.backend() == "jax":
        import jax

        if jax.default_backend() != "cpu":
            accelerator = f", {jax.devices()[0].device_kind}"
    return (
        f"{cpu}, {os.cpu_count()} cores{accelerator}; Keras {keras.__version__} on "
        f"{keras.backend.backend()}"
    )


def cpu_flags():
    """Which of the instructions that decide the fastest precision the CPU has."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next(line.split(":", 1)[1].split() for line in info
                         if line.startswith("flags"))
    except (OSError, StopIteration):
        return "CPU flags unknown"
    return "flags: " + ", ".join(
        f"{name} {'yes' if flag in flags else 'no'}"
        for name, flag in [("AMX", "amx_bf16"), ("AVX-512 BF16", "avx512_bf16"),
                           ("AVX-512", "avx512f"), ("AVX2", "avx2")])


def rss_mb(field):
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process, in MB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def settled_rss_mb():
    """Resident memory after garbage collection and ``malloc_trim`` (memory the allocator
    holds free is returned first; Linux)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_mb("VmRSS")


def reset_peak_memory():
    """Start ``VmHWM`` again from the current resident memory (Linux)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def timed(function):
    """Wall time of one call."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def best_of(functions, rounds):
    """Best wall time of each function over ``rounds`` interleaved rounds (after a warm-up).

    Interleaving spreads the machine's noise over all contenders alike.
    """
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def random_images(n, size, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *size, 3), dtype=np.uint8)
