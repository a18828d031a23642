"""Work kept as it is done, so that a long command resumes where a crash stopped it.

``OUTPUT.partial/``, beside the output, holds ``settings.json`` (what produced the results:
the backbone, layer, weights digest ... or the model's digest) and one ``batch-NNNNNN.npz``
per finished batch: each photo's identity (absolute path, size, modification time) and its
results. Every file there, and the output itself, is written under a temporary name and
renamed: a kill leaves a whole file or none, never a part under its name.
"""

import contextlib
import json
import os
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

_BATCH = re.compile(r"batch-(\d{6})\.npz")


class PartialStore:
    """The finished batches of one command's run towards ``output``.

    Opening it reads what an earlier run left, if made with the same ``settings`` (a dict of
    JSON values); ``restart`` discards it. ``resume`` says what was found. The store deletes
    only files of its own making.
    """

    def __init__(self, output, settings, *, restart=False):
        self.output = Path(output)
        self.folder = Path(f"{output}.partial")
        self.settings = json.loads(json.dumps(settings))  # as read back: lists, not tuples
        self.notes = []
        self._records = {}  # absolute path -> (size, mtime, batch file, row)
        self._identities = {}  # absolute path -> (size, mtime) when ``resume`` looked
        self._batches = 0
        self._kept = 0  # photos whose results are kept and still valid
        if restart and self.folder.exists():
            self.notes.append(f"--restart: the work kept in {self.folder} is discarded.")
            self._clear()
        self._open()

    def _open(self):
        kept = self._read_settings()
        if kept != self.settings:
            if self.folder.exists():
                self._discard(kept)
            self.folder.mkdir(exist_ok=True)
            _write_atomically(self.folder / "settings.json",
                              lambda file: file.write(json.dumps(self.settings).encode()))
        for batch in sorted(self.folder.iterdir()):
            if _ours(batch) and batch.name.endswith(".tmp"):  # a write a kill interrupted
                batch.unlink()
            if not _BATCH.fullmatch(batch.name):
                continue
            self._batches = max(self._batches, int(_BATCH.fullmatch(batch.name)[1]))
            try:
                with zipfile.ZipFile(batch) as archive:  # every member's checksum
                    if archive.testzip() is not None:
                        raise zipfile.BadZipFile
                with np.load(batch) as saved:
                    identities = zip(*(saved[key].tolist() for key in _IDENTITY))
                    for row, (path, size, mtime) in enumerate(identities):
                        self._records[path] = (size, mtime, batch, row)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                self.notes.append(f"{batch} cannot be read: its photos are computed again.")
                batch.unlink()

    def _read_settings(self):
        try:
            return json.loads((self.folder / "settings.json").read_text())
        except (OSError, ValueError):
            return None

    def _discard(self, kept):
        """Clear a folder of other settings' work, refusing one that is not a store."""
        if kept is None and any(not _ours(entry) for entry in self.folder.iterdir()):
            raise ValueError(f"{self.folder} exists and is not work kept by skconvnet (it "
                             "has no settings.json): move it away or name another output.")
        if kept is None and any(self.folder.iterdir()):
            self.notes.append(f"{self.folder} holds work without readable settings: it is "
                              "discarded and everything computed again.")
        elif kept is not None:
            changed = "; ".join(f"{key}: {kept.get(key)!r}, now {value!r}"
                                for key, value in self.settings.items()
                                if kept.get(key) != value)
            self.notes.append(f"{self.folder} holds work done with other settings "
                              f"({changed}): it is discarded and everything computed again.")
        self._clear()

    def _clear(self):
        for entry in self.folder.iterdir():
            if _ours(entry):
                entry.unlink()

    def resume(self, files):
        """A boolean per file of ``files``: whether its results are kept and it has not
        changed since (same size and modification time). Says what the earlier run left."""
        done = np.zeros(len(files), dtype=bool)
        changed = 0
        for index, file in enumerate(files):
            path, size, mtime = _identity(file)
            self._identities[path] = (size, mtime)
            record = self._records.get(path)
            if record is not None:
                done[index] = record[:2] == (size, mtime)
                changed += not done[index]
        if changed:
            self.notes.append("photos changed since their results were kept (size or "
                              f"modification time): {changed}; they are computed again.")
        self._kept = int(done.sum())
        if self._kept:
            self.notes.append(f"{self._kept} of {len(files)} photos already done in "
                              f"{self.folder}: resuming.")
        for note in self.notes:
            print(note)
        return done

    def add(self, files, **results):
        """Keep ``results`` (arrays of one row per file) of a finished batch of ``files``,
        under the files' identities when ``resume`` looked at them (before they were read)."""
        self._batches += 1
        batch = self.folder / f"batch-{self._batches:06d}.npz"
        paths = [_absolute(file) for file in files]
        sizes, mtimes = zip(*(self._identities.get(path) or _identity(path)[1:]
                              for path in paths))
        _write_atomically(batch, lambda file: np.savez(
            file, paths=np.array(paths), sizes=np.array(sizes), mtimes=np.array(mtimes),
            **results))
        for row, path in enumerate(paths):
            self._records[path] = (sizes[row], mtimes[row], batch, row)
        self._kept += len(files)

    def gather(self, files, name):
        """The kept results ``name`` of ``files``, in their order, as one array, read one
        batch at a time."""
        batches = {}  # batch file -> (positions in files, rows in the batch)
        for position, file in enumerate(files):
            batch, row = self._records[_absolute(file)][2:]
            positions, rows = batches.setdefault(batch, ([], []))
            positions.append(position)
            rows.append(row)
        gathered = None
        for batch, (positions, rows) in batches.items():
            with np.load(batch) as saved:
                array = saved[name]
            if gathered is None:
                gathered = np.empty((len(files), *array.shape[1:]), array.dtype)
            gathered = gathered.astype(np.result_type(gathered, array), copy=False)
            gathered[positions] = array[rows]
        return gathered

    @contextlib.contextmanager
    def kept_on_failure(self):
        """Say where the finished work is kept if the run stops on an error or Ctrl-C."""
        try:
            yield
        except BaseException:
            if self._kept and self.folder.exists():
                print(f"The results of {self._kept} photos are kept in {self.folder}: run "
                      "the same command again to resume.", file=sys.stderr)
            raise

    def finish(self, write):
        """Write the output by ``write(file)`` (a binary file), then discard the kept work.

        The output appears whole or not at all: written under a temporary name in the
        store's folder, then renamed. A kill before the rename leaves the kept work, and any
        earlier output, as they were.
        """
        _write_atomically(self.output, write, temporary=self.folder / ".output.tmp",
                          durable=True)
        self._clear()
        with contextlib.suppress(OSError):  # files not of the store's making stay
            self.folder.rmdir()


_IDENTITY = ("paths", "sizes", "mtimes")


def _ours(entry):
    """Whether ``entry`` of the folder is a file the store writes."""
    return entry.is_file() and (entry.name == "settings.json" or _BATCH.fullmatch(entry.name)
                                or (entry.name.startswith(".") and entry.name.endswith(".tmp")))


def _absolute(file):
    return os.path.abspath(os.fspath(file))


def _identity(file):
    status = os.stat(file)
    return _absolute(file), status.st_size, status.st_mtime_ns


def _write_atomically(path, write, *, temporary=None, durable=False):
    """``write(file)`` to ``temporary`` (a hidden name beside ``path`` by default), then
    renamed to ``path``; ``durable``: flushed to the disk first, to survive a power loss.

    A batch is not flushed: the rename alone survives a killed process, and a batch that a
    power loss leaves incomplete fails its zip checksums and is computed again.
    """
    temporary = temporary or path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as file:
        write(file)
        if durable:
            file.flush()
            os.fsync(file.fileno())
    os.replace(temporary, path)
