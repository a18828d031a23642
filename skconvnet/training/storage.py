"""Where a fit keeps what its frozen layers produced: in memory up to a budget, beyond it in
temporary files on disk, so that the cost of a fit grows linearly with the photos.

A file is written in order, a batch of images at a time, and read back row by row in the
order each epoch draws. It is read with positional reads rather than mapped into memory:
the pages of a mapped file count towards the process's resident memory, so a mapped file
would look, to every memory monitor, like the memory the budget was meant to spare. The
files are anonymous (unlinked on creation where the system allows it) and closed when the
fit ends, however it ends, which frees their space.
"""

import contextlib
import os
import shutil
import tempfile
import threading

import numpy as np

MEMORY_SHARE = 0.5  # of the available memory, for max_stored_bytes="auto"
DISK_MARGIN = 2**30  # free bytes left on temp_folder's disk for everything else


def available_memory():
    """Bytes of memory that new allocations can take without swapping: Linux's
    ``MemAvailable`` (within the control group's limit, where one is set), else the free
    physical pages; None where the system says neither."""
    limits = []
    try:
        with open("/proc/meminfo") as meminfo:
            limits += [int(line.split()[1]) * 1024 for line in meminfo
                       if line.startswith("MemAvailable:")]
    except OSError:
        pass
    for limit, usage, stat, cache in (  # cgroup v2, then v1
            ("memory.max", "memory.current", "memory.stat", "inactive_file"),
            ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes",
             "memory/memory.stat", "total_inactive_file")):
        try:
            with open(f"/sys/fs/cgroup/{limit}") as max_, open(f"/sys/fs/cgroup/{usage}") as now, \
                    open(f"/sys/fs/cgroup/{stat}") as stats:
                # the group's usage counts the page cache, which gives way to new allocations
                reclaimable = next((int(line.split()[1]) for line in stats
                                    if line.startswith(f"{cache} ")), 0)
                limits.append(int(max_.read()) - int(now.read()) + reclaimable)
        except (OSError, ValueError):  # absent, or "max": no limit
            pass
    if not limits:
        try:
            limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return None
    return max(0, min(limits))


def memory_budget(max_stored_bytes):
    """The bytes of stored outputs a fit keeps in memory: ``max_stored_bytes``, or for
    ``"auto"`` half of the memory available now (2 GiB where the system does not say)."""
    if max_stored_bytes != "auto":
        return max_stored_bytes
    available = available_memory()
    return 2**31 if available is None else int(available * MEMORY_SHARE)


def temp_folder(folder):
    """The directory for stored outputs beyond the memory budget: ``folder``, or the
    system's temporary directory for None."""
    folder = tempfile.gettempdir() if folder is None else os.fspath(folder)
    problem = ("is not a directory" if not os.path.isdir(folder)
               else "is not writable" if not os.access(folder, os.W_OK | os.X_OK) else None)
    if problem:
        raise ValueError(
            f"temp_folder={folder!r} {problem}. Give an existing, writable directory for the "
            "temporary files of stored activations, or None for the system's temporary "
            f"directory ({tempfile.gettempdir()})."
        )
    return folder


def free_bytes(folder):
    """Bytes that stored outputs may take on the disk of ``folder``: its free space but a
    margin for everything else."""
    return max(0, shutil.disk_usage(folder).free - DISK_MARGIN)


class InMemory:
    """Stored rows in an array ``(n_rows, *row_shape)``."""

    def __init__(self, array):
        self.array = array
        self.n_rows, self.row_shape = len(array), array.shape[1:]

    def write(self, start, rows):
        self.array[start:start + len(rows)] = rows

    def read(self, indices):
        """Rows ``indices``, in their order, as float32."""
        return self.array[indices].astype(np.float32, copy=False)  # indexing copied

    def close(self):
        self.array = None


class OnDisk:
    """Stored rows in an anonymous temporary file in ``folder``, read by position."""

    def __init__(self, n_rows, row_shape, dtype, folder):
        self.n_rows, self.row_shape = n_rows, tuple(row_shape)
        self.dtype, self.folder = np.dtype(dtype), folder
        self.row_bytes = int(np.prod(self.row_shape)) * self.dtype.itemsize
        self.total_bytes = n_rows * self.row_bytes
        self.file = tempfile.TemporaryFile(dir=folder, prefix="skconvnet-", suffix=".stored",
                                           buffering=0)
        self.lock = threading.Lock()  # a position per file: one read or write at a time

    def write(self, start, rows):
        data = np.ascontiguousarray(rows, self.dtype).reshape(-1).view(np.uint8)
        offset = start * self.row_bytes
        with self.lock:
            self.file.seek(offset)
            written = 0
            try:
                while written < len(data):
                    written += self.file.write(data[written:])
            except OSError as error:
                raise OSError(
                    error.errno,
                    f"Writing the stored activations to a temporary file in {self.folder} "
                    f"failed after {offset + written} of {self.total_bytes} bytes: "
                    f"{error.strerror}. Free space there, set temp_folder to a directory on "
                    "a disk with room, or raise max_stored_bytes to keep more in memory.",
                ) from error

    def read(self, indices):
        """Rows ``indices``, in their order, as float32."""
        rows = np.empty((len(indices), *self.row_shape), self.dtype)
        buffer = rows.reshape(len(indices), -1).view(np.uint8)
        with self.lock:
            for target, index in zip(buffer, indices):
                self.file.seek(int(index) * self.row_bytes)
                if self.file.readinto(target) != self.row_bytes:
                    raise OSError(f"The temporary file of stored activations in {self.folder} "
                                  f"ended before row {index}.")
        return rows.astype(np.float32, copy=False)

    def close(self):
        self.file.close()


class Storage:
    """The stored rows of one fit, in memory or on disk in ``folder``, all closed (their
    files removed) when the ``with`` block ends, however it ends."""

    def __init__(self, folder):
        self.folder = folder
        self.held = []

    def rows(self, n_rows, row_shape, dtype, *, on_disk):
        """Room for ``n_rows`` rows of ``row_shape``, stored as ``dtype``."""
        rows = (OnDisk(n_rows, row_shape, dtype, self.folder) if on_disk
                else InMemory(np.empty((n_rows, *row_shape), dtype)))
        self.held.append(rows)
        return rows

    def holding(self, array):
        """``array`` as stored rows in memory."""
        rows = InMemory(array)
        self.held.append(rows)
        return rows

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        held, self.held = self.held, []
        with contextlib.ExitStack() as closing:  # every one closed, even if one fails
            for rows in held:
                closing.callback(rows.close)
