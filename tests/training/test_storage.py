"""Stored frozen-layer outputs: in memory up to ``max_stored_bytes``, beyond it in temporary
files in ``temp_folder`` that no fit leaves behind; and the views stored and drawn are the
ones the documentation describes."""

import errno
import gc
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import TESTS, small_classifier
from sklearn.exceptions import EfficiencyWarning

from skconvnet.backbones import specs
from skconvnet.backbones.graph import preprocess
from skconvnet.training import storage
from skconvnet.training.network import Batches


def held_in(folder):
    """Paths of the files this process holds open in ``folder`` (anonymous ones included)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith(f"{folder}/"):
            held.append(target)
    return held


@pytest.fixture
def temp_files(monkeypatch):
    """Every temporary file the storage opens, as ``(thread id, folder, file)``."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to see which files the process holds")
    opened = []
    make = tempfile.TemporaryFile

    def recording(*args, **kwargs):
        file = make(*args, **kwargs)
        opened.append((threading.get_ident(), kwargs.get("dir"), file))
        return file

    monkeypatch.setattr(storage.tempfile, "TemporaryFile", recording)
    return opened


def assert_nothing_left(folder, temp_files):
    assert temp_files and all(file.closed for _, _, file in temp_files)
    assert os.listdir(folder) == [] and held_in(folder) == []


@pytest.mark.parametrize("precision, augmentation",
                         [("float32", True), ("bfloat16", True), ("float32", False)])
def test_a_budget_of_0_stores_all_on_disk_and_fits_exactly_as_in_memory(
    two_looks, tmp_path, temp_files, precision, augmentation
):
    X, y = two_looks
    params = dict(precision=precision, augmentation=augmentation)
    in_memory = small_classifier(**params).fit(X, y)
    assert temp_files == []  # the default budget holds these in memory
    on_disk = small_classifier(**params, max_stored_bytes=0, temp_folder=tmp_path).fit(X, y)
    assert [folder for _, folder, _ in temp_files] == [str(tmp_path)] * 2  # activations, features
    for memory_weights, disk_weights in zip(in_memory.model_.get_weights(),
                                            on_disk.model_.get_weights(), strict=True):
        np.testing.assert_array_equal(memory_weights, disk_weights)
    np.testing.assert_array_equal(in_memory.predict_proba(X), on_disk.predict_proba(X))
    assert in_memory.history_ == on_disk.history_
    assert_nothing_left(tmp_path, temp_files)


def test_the_temporary_files_are_gone_after_a_failed_fit(two_looks, tmp_path, temp_files):
    X, y = two_looks
    # one image of 24 cannot hold out both classes: early stopping fails after storing
    clf = small_classifier(hidden_layer_sizes=(8,), validation_fraction=0.01,
                           max_stored_bytes=0, temp_folder=tmp_path)
    with pytest.raises(ValueError, match="cannot hold out validation_fraction=0.01"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")
    assert_nothing_left(tmp_path, temp_files)


class InterruptOnceStoring(keras.layers.Layer):
    """An augmentation that presses Ctrl-C once a stored-activations file is open in
    ``folder``, recording what was held then.

    The collector stays off until Python has run the signal's handler: a handler that runs
    inside a garbage collector's callback (JAX registers one) has its KeyboardInterrupt
    printed and dropped.
    """

    folder = None
    held = []

    def call(self, inputs):
        if not isinstance(inputs, keras.KerasTensor):
            held = held_in(type(self).folder)
            if held:
                type(self).held = held
                collecting = gc.isenabled()
                gc.disable()
                try:
                    signal.raise_signal(signal.SIGINT)
                    _enter()  # entering a Python function runs pending signal handlers
                finally:
                    if collecting:
                        gc.enable()
        return inputs


def _enter():
    pass


def test_the_temporary_files_are_gone_after_an_interrupted_fit(two_looks, tmp_path, temp_files):
    X, y = two_looks
    InterruptOnceStoring.folder = str(tmp_path)
    clf = small_classifier(augmentation=[InterruptOnceStoring()], augmented_views=1,
                           batch_size=5, max_stored_bytes=0, temp_folder=tmp_path)
    # Python's own Ctrl-C handler, as in a user's process, whatever an earlier test set
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            clf.fit(X, y)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert len(InterruptOnceStoring.held) == 1  # interrupted with the file open
    assert not hasattr(clf, "model_")
    assert_nothing_left(tmp_path, temp_files)


class Rendezvous(keras.layers.Layer):
    """An augmentation that waits, once a stored-activations file of its own fit is open,
    until the other fit has one open too: the two fits then store at the same time."""

    barrier = threading.Barrier(2, timeout=120)
    files = None
    held = []

    def call(self, inputs):
        me = threading.get_ident()
        if not isinstance(inputs, keras.KerasTensor) and not getattr(self, "met", False):
            if any(thread == me for thread, _, _ in type(self).files):
                type(self).barrier.wait()
                type(self).held.append(held_in(type(self).folder))
                self.met = True
        return inputs


def test_two_fits_at_once_in_threads_store_in_files_of_their_own(two_looks, tmp_path, temp_files):
    X, y = two_looks
    Rendezvous.files, Rendezvous.folder, Rendezvous.held = temp_files, str(tmp_path), []
    Rendezvous.barrier.reset()
    data = [(X, y), (X[::-1], y[::-1])]  # different data: a shared file would mix them

    def classifier():
        return small_classifier(augmentation=[Rendezvous()], augmented_views=1, batch_size=5,
                                max_stored_bytes=0, temp_folder=tmp_path)

    fitted, errors = [None, None], []

    def fit(index):
        try:
            fitted[index] = classifier().fit(*data[index])
        except BaseException as error:  # reported below
            errors.append(error)
            Rendezvous.barrier.abort()

    threads = [threading.Thread(target=fit, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(Rendezvous.held[0]) >= 2  # both fits held a file at once
    by_thread = {}
    for thread, _, file in temp_files:
        by_thread.setdefault(thread, []).append(file)
    assert len(by_thread) == 2 and all(len(files) == 2 for files in by_thread.values())
    for index, (X_fit, y_fit) in enumerate(data):  # each as if it had fit alone
        Rendezvous.barrier = threading.Barrier(1)
        alone = classifier().fit(X_fit, y_fit)
        np.testing.assert_array_equal(fitted[index].predict_proba(X), alone.predict_proba(X))
    Rendezvous.barrier = threading.Barrier(2, timeout=120)
    assert_nothing_left(tmp_path, temp_files)


DISK_FILLS = """
import os, resource, signal, sys
from helpers import dark_and_bright, small_classifier

folder = sys.argv[1]
X, y = dark_and_bright(12, shuffle=True)
clf = small_classifier(max_stored_bytes=0, temp_folder=folder)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))  # no file may grow past 200 kB
try:
    clf.fit(X, y)
except OSError as error:
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    print(error.errno)
    print(error)
    print(hasattr(clf, "model_"), os.listdir(folder))
"""


def test_a_disk_that_fills_mid_fit_gives_a_clear_error_and_leaves_nothing(tmp_path):
    folder = tmp_path / "stored"
    folder.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", DISK_FILLS, str(folder)], capture_output=True, text=True,
        cwd=TESTS, env={**os.environ, "PYTHONPATH": str(TESTS)}, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    number, message, state = result.stdout.strip().splitlines()[-3:]
    assert int(number) == errno.EFBIG
    assert message.startswith(
        f"[Errno {errno.EFBIG}] Writing the stored activations to a temporary file in {folder} "
        f"failed after 200000 of {24 * 4 * 16 * 16 * 64 * 4} bytes: File too large. Free space "
        "there, set temp_folder to a directory on a disk with room, or raise max_stored_bytes")
    assert state == "False []"  # unfitted, and no file left


def test_with_no_room_on_disk_the_phases_train_on_pixels_and_say_so(
    two_looks, tmp_path, temp_files, monkeypatch
):
    from skconvnet import _finetuned

    monkeypatch.setattr(_finetuned, "free_bytes", lambda folder: 0)  # a full disk
    X, y = two_looks
    clf = small_classifier(head_epochs=2, max_stored_bytes=0, temp_folder=tmp_path)
    with pytest.warns(EfficiencyWarning) as warned:
        clf.fit(X, y)
    needed = 24 * 4 * (128 + 16 * 16 * 64) * 4  # the head's features, block1_pool's activations
    assert [str(warning.message) for warning in warned
            if warning.category is EfficiencyWarning] == [
        "The head (up to 2 epochs) and fine-tuning (up to 2 epochs) will train on pixels, "
        f"running the frozen layers in every epoch, because their stored outputs ({needed} "
        "bytes) fit neither in memory (max_stored_bytes: 0 bytes) nor on disk (0 bytes free "
        "in temp_folder): up to 4 passes of the frozen layers over the 24 images, where "
        "storing them takes one pass over 4 views of each (about 1x the frozen layers' work)."
    ]
    assert temp_files == [] and clf.predict_proba(X).shape == (24, 2)


def test_temp_folder_must_be_a_directory(two_looks, tmp_path):
    X, y = two_looks
    clf = small_classifier(temp_folder=tmp_path / "missing")
    with pytest.raises(ValueError, match=f"temp_folder='{tmp_path}/missing' is not a "
                                         "directory. Give an existing, writable directory"):
        clf.fit(X, y)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to any directory")
def test_temp_folder_must_be_writable(two_looks, tmp_path):
    X, y = two_looks
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ValueError, match=f"temp_folder='{tmp_path}' is not writable"):
            small_classifier(temp_folder=tmp_path).fit(X, y)
    finally:
        tmp_path.chmod(0o700)


# The views: stored as the seeded augmentation makes them, drawn as seeded in every epoch


@pytest.fixture
def written(monkeypatch):
    """Everything written to stored rows: ``{rows: array of all rows}`` once complete."""
    blocks = {}

    def recording(write):
        def wrapper(self, start, rows):
            blocks.setdefault(self, []).append((start, np.array(rows, dtype=np.float32)))
            return write(self, start, rows)
        return wrapper

    for kind in (storage.InMemory, storage.OnDisk):
        monkeypatch.setattr(kind, "write", recording(kind.write))

    def assembled():
        result = {}
        for rows, parts in blocks.items():
            whole = np.empty((rows.n_rows, *rows.row_shape), np.float32)
            for start, block in parts:
                whole[start:start + len(block)] = block
            result[rows] = whole
        return result

    return assembled


def seeded_augmentation():
    return [keras.layers.RandomFlip("horizontal", seed=1),
            keras.layers.RandomRotation(0.1, fill_mode="nearest", seed=2)]


@pytest.mark.parametrize("max_stored_bytes", ["auto", 0])
def test_stored_views_are_the_seeded_augmentations_of_the_originals(
    two_looks, tmp_path, written, max_stored_bytes
):
    X, y = two_looks
    clf = small_classifier(augmentation=seeded_augmentation(), augmented_views=2, batch_size=8,
                           unfreeze_from="block1_conv1",  # nothing frozen: pixels stored
                           max_stored_bytes=max_stored_bytes, temp_folder=tmp_path)
    clf.fit(X, y)
    (stored,) = [rows for rows in written().values() if rows.shape[1:] == (32, 32, 3)]
    stored = stored.reshape(24, 3, 32, 32, 3)
    originals = preprocess(specs.get("vgg16"), X.astype(np.float32))
    np.testing.assert_array_equal(stored[:, 0], originals)
    layers = seeded_augmentation()  # the same seeds: the same views, batch after batch
    expected = np.empty_like(stored[:, 1:])
    for start in range(0, 24, 8):
        for view in range(2):
            x = originals[start:start + 8]
            for layer in layers:
                x = layer(x, training=True)
            expected[start:start + 8, view] = keras.ops.convert_to_numpy(x)
    np.testing.assert_allclose(stored[:, 1:], expected, atol=1e-4)
    differences = np.abs(stored[:, 1:] - stored[:, :1]).max(axis=(2, 3, 4))
    assert differences.min() > 10  # every augmented view differs from its original


def test_without_augmentation_the_stored_view_is_the_original(two_looks, tmp_path, written):
    X, y = two_looks
    small_classifier(augmentation=False, unfreeze_from="block1_conv1", max_stored_bytes=0,
                     temp_folder=tmp_path).fit(X, y)
    (stored,) = [rows for rows in written().values() if rows.shape[1:] == (32, 32, 3)]
    np.testing.assert_array_equal(stored, preprocess(specs.get("vgg16"), X.astype(np.float32)))


@pytest.mark.parametrize("on_disk", [False, True])
def test_each_epoch_draws_one_view_of_each_image_with_the_seeded_frequencies(tmp_path, on_disk):
    n_images, n_views, epochs = 30, 4, 60
    index = np.arange(n_images * n_views, dtype=np.float32)
    y, weight = np.zeros(n_images, np.float32), np.ones(n_images, np.float32)
    with storage.Storage(str(tmp_path)) as store:
        rows = store.rows(len(index), (2,), np.float32, on_disk=on_disk)
        rows.write(0, np.stack([index, -index], axis=1))  # each row holds its own number
        batches = Batches(rows.read, np.arange(n_images), y, weight, batch_size=7,
                          shuffle_seed=5, n_views=n_views)
        seeded = np.random.default_rng(5)
        counts = np.zeros(n_views, int)
        for _ in range(epochs):
            loaded = np.concatenate([batches[i][0] for i in range(len(batches))])
            order = seeded.permutation(n_images)
            views = seeded.integers(n_views, size=n_images)
            np.testing.assert_array_equal(loaded[:, 0], order * n_views + views)
            np.testing.assert_array_equal(loaded[:, 1], -loaded[:, 0])
            assert sorted(loaded[:, 0] // n_views) == list(range(n_images))  # each image once
            counts += np.bincount(loaded[:, 0].astype(int) % n_views, minlength=n_views)
            batches.on_epoch_end()
    expected = n_images * epochs / n_views  # 450 draws of each view, standard deviation ~19
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected * (1 - 1 / n_views)))


def test_fine_tuning_reads_every_view_alike_from_memory_and_disk(two_looks, tmp_path,
                                                                  monkeypatch):
    reads = []

    def recording(read):
        def wrapper(self, indices):
            if len(self.row_shape) == 3:  # the stored activations, not the pooled features
                reads.append(np.asarray(indices).copy())
            return read(self, indices)
        return wrapper

    for kind in (storage.InMemory, storage.OnDisk):
        monkeypatch.setattr(kind, "read", recording(kind.read))
    X, y = two_looks
    drawn = {}
    for budget in ("auto", 0):
        reads.clear()
        small_classifier(fine_tune_epochs=3, batch_size=8, max_stored_bytes=budget,
                         temp_folder=tmp_path).fit(X, y)
        epochs = np.concatenate(reads[-9:]).reshape(3, 24)  # 3 epochs of 3 batches
        for epoch in epochs:
            assert sorted(epoch // 4) == list(range(24))  # each image once per epoch
        drawn[budget] = epochs
        assert set((epochs % 4).ravel()) == {0, 1, 2, 3}  # all views, not only the original
    np.testing.assert_array_equal(drawn["auto"], drawn[0])
