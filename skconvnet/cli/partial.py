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

_BATCH = re.compile(r"batch-(\d{6,})\.npz")
_IDENTITY = ("paths", "sizes", "mtimes")  # a batch's arrays naming its photos
_TEMPORARY = re.compile(r"\.(settings\.json|output|batch-\d{6,}\.npz)\.tmp")


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
        kept = self._read_settings()
        if kept is None and self.folder.exists():
            names = [entry.name for entry in self.folder.iterdir()]
            if not all(map(_ours, names)):
                raise ValueError(f"{self.folder} exists and is not work kept by skconvnet "
                                 "(it has no settings.json): move it away or name another "
                                 "output.")
            if names:
                self.notes.append(f"{self.folder} holds work without readable settings: it "
                                  "is discarded and everything computed again.")
        if restart and kept is not None:
            self.notes.append(f"--restart: the work kept in {self.folder} is discarded.")
            kept = None
        elif kept is not None and kept != self.settings:
            changed = "; ".join(f"{key}: {kept.get(key)!r}, now {self.settings.get(key)!r}"
                                for key in sorted(kept.keys() | self.settings.keys())
                                if kept.get(key) != self.settings.get(key))
            self.notes.append(f"{self.folder} holds work done with other settings "
                              f"({changed}): it is discarded and everything computed again.")
        if kept != self.settings:
            self.folder.mkdir(exist_ok=True)
            self._clear()
            _write_atomically(self.folder / "settings.json",
                              lambda file: file.write(json.dumps(self.settings).encode()))
        self._read_batches()

    def _read_settings(self):
        try:
            settings = json.loads((self.folder / "settings.json").read_text())
        except (OSError, ValueError):
            return None
        return settings if isinstance(settings, dict) else None

    def _read_batches(self):
        self._clear(batches=False)  # writes a kill interrupted
        for batch in sorted(self.folder.iterdir(), key=_batch_number):
            if not _BATCH.fullmatch(batch.name):
                continue
            self._batches = _batch_number(batch)
            try:
                with zipfile.ZipFile(batch) as archive:  # every member's checksum
                    if archive.testzip() is not None:
                        raise zipfile.BadZipFile
                with np.load(batch) as saved:
                    identities = zip(*(saved[key].tolist() for key in _IDENTITY))
                    for row, (path, size, mtime) in enumerate(identities):
                        self._records[path] = (size, mtime, batch, row)
            except Exception:  # whatever a damaged file raises: its photos are computed again
                self.notes.append(f"{batch} cannot be read: its photos are computed again.")
                batch.unlink()

    def _clear(self, *, batches=True):
        """Delete the batches (with ``batches``) and unfinished writes, no other file."""
        for entry in self.folder.iterdir():
            if _TEMPORARY.fullmatch(entry.name) or (batches and _BATCH.fullmatch(entry.name)):
                entry.unlink()

    def resume(self, files):
        """The files of ``files`` still to compute: those whose results are not kept, or
        that changed since (other size or modification time). Says what the earlier run
        left."""
        todo, changed = [], 0
        for file in files:
            path, size, mtime = _identity(file)
            self._identities[path] = (size, mtime)
            record = self._records.get(path)
            if record is None or record[:2] != (size, mtime):
                todo.append(file)
                changed += record is not None
        if changed:
            self.notes.append("photos changed since their results were kept (size or "
                              f"modification time): {changed}; they are computed again.")
        self._kept = len(files) - len(todo)
        if self._kept:
            self.notes.append(f"{self._kept} of {len(files)} photos already done in "
                              f"{self.folder}: resuming.")
        for note in self.notes:
            print(note)
        return todo

    def add(self, files, **results):
        """Keep ``results`` (arrays of one row per file) of a finished batch of ``files``,
        under the files' identities when ``resume`` looked at them (before they were read)."""
        self._batches += 1
        batch = self.folder / f"batch-{self._batches:06d}.npz"
        paths = [_absolute(file) for file in files]
        sizes, mtimes = zip(*(self._identities[path] for path in paths))
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
        if [entry.name for entry in self.folder.iterdir()] == ["settings.json"]:
            (self.folder / "settings.json").unlink()  # last: the folder reads as a store
            self.folder.rmdir()
        else:
            print(f"{self.folder} is kept: it holds files skconvnet did not write.")


def _ours(name):
    """Whether a file of this name in the folder is one the store writes."""
    return name == "settings.json" or bool(_BATCH.fullmatch(name) or _TEMPORARY.fullmatch(name))


def _batch_number(path):
    match = _BATCH.fullmatch(path.name)
    return int(match[1]) if match else -1


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
