"""Long runs that survive: ``extract`` and ``predict`` keep finished batches beside their
output and resume from them when rerun."""

import gc
import os
import signal
import struct
import subprocess
import sys
import time

import joblib
import numpy as np
import pytest
from helpers import error_line, small_extractor, texture_folder
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skconvnet import load_image_folder
from skconvnet.cli.commands import main
from skconvnet.compute import activations

SMALL = ["--weights", "none", "--image-size", "32", "--batch-size", "4"]


def extract(folder, out, *options, layer="block2_pool"):
    return ["extract", str(folder), "--layer", layer, "--out", str(out), *SMALL, *options]


def kept_photos(partial):
    """How many photos' results the batches in ``partial`` hold."""
    return sum(len(np.load(batch)["paths"]) for batch in partial.glob("batch-*.npz"))


def assert_same_npz(file, expected):
    with np.load(file) as saved, np.load(expected) as wanted:
        assert saved.files == wanted.files
        for key in wanted.files:
            np.testing.assert_array_equal(saved[key], wanted[key], err_msg=key)


def interrupted(monkeypatch, command, after):
    """Run ``command`` with a Ctrl-C arriving while the network computes its batch after
    ``after`` batches; returns the exit status."""
    predict = activations.predict_batch
    calls = []

    def pressed(model, batch, **options):
        calls.append(len(batch))
        if len(calls) > after:
            raise KeyboardInterrupt
        return predict(model, batch, **options)

    with monkeypatch.context() as patch:
        patch.setattr(activations, "predict_batch", pressed)
        collecting = gc.isenabled()
        gc.disable()  # a collection triggered as the exception is raised would run JAX's
        try:  # collector callback with it pending, and report it there instead
            return main(command)
        finally:
            if collecting:
                gc.enable()


@pytest.fixture
def folder(tmp_path):
    return texture_folder(tmp_path / "photos", 6)  # 12 photos: 3 batches of 4


def test_ctrl_c_keeps_finished_batches_and_the_rerun_computes_only_the_rest(
        folder, tmp_path, computed, capsys, monkeypatch):
    out, fresh = tmp_path / "features.npz", tmp_path / "fresh.npz"
    assert interrupted(monkeypatch, extract(folder, out), after=2) == 130
    err = capsys.readouterr().err
    partial = tmp_path / "features.npz.partial"
    assert "\nThe results of 8 photos are kept in" in err  # after the progress line
    assert f"kept in {partial}: run the same command again" in err and "interrupted" in err
    assert not out.exists() and kept_photos(partial) == 8
    computed.clear()
    assert main(extract(folder, out)) == 0
    assert computed["block2_pool"] == 4  # the last batch alone
    captured = capsys.readouterr()
    assert f"8 of 12 photos already done in {partial}: resuming" in captured.out
    assert "12/12 images, 8 already done" in captured.err
    assert not partial.exists()
    assert main(extract(folder, fresh)) == 0
    assert_same_npz(out, fresh)


def test_a_file_that_fails_mid_run_keeps_the_work_done_before_it(folder, tmp_path, computed,
                                                                 capsys):
    out = tmp_path / "features.npz"
    last = load_image_folder(folder)[0][-1]  # in the third batch
    whole = last.read_bytes()
    last.write_bytes(whole[:80])  # truncated: its header reads, its pixels do not
    assert main(extract(folder, out)) == 1
    err = capsys.readouterr().err
    assert last.name in err and f"kept in {tmp_path / 'features.npz.partial'}" in err
    last.write_bytes(whole)
    computed.clear()
    assert main(extract(folder, out)) == 0
    assert computed["block2_pool"] == 4
    assert "8 of 12 photos already done" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["truncated", "data changed", "directory changed"])
def test_changed_added_removed_photos_and_damaged_batches(damage, folder, tmp_path, computed,
                                                          capsys, monkeypatch):
    out, fresh = tmp_path / "features.npz", tmp_path / "fresh.npz"
    assert interrupted(monkeypatch, extract(folder, out), after=2) == 130
    partial = tmp_path / "features.npz.partial"
    first, second = sorted(partial.glob("batch-*.npz"))
    paths = load_image_folder(folder)[0]
    changed, removed = paths[0], paths[1]  # both in the first batch
    assert {str(changed), str(removed)} <= set(np.load(first)["paths"].tolist())
    Image.fromarray(255 - np.asarray(Image.open(changed))).save(changed)
    removed.unlink()
    Image.open(paths[2]).save(folder / "checks" / "added.png")
    content = bytearray(second.read_bytes())
    directory = struct.unpack("<I", content[-6:-2])[0]  # its offset, at the zip's end
    if damage == "truncated":
        del content[100:]
    elif damage == "data changed":  # inside the arrays: the zip's directory still reads
        content[directory // 2:directory // 2 + 16] = bytes(16)
    else:  # a member's compression method
        content[directory + 10] ^= 0xFF
    second.write_bytes(bytes(content))
    capsys.readouterr()
    computed.clear()
    assert main(extract(folder, out)) == 0
    out_text = capsys.readouterr().out
    assert f"{second} cannot be read: its photos are computed again" in out_text
    assert "photos changed since their results were kept (size or modification time): 1" \
        in out_text
    assert "2 of 12 photos already done" in out_text  # the first batch's other two
    assert computed["block2_pool"] == 12 - 2
    assert np.load(out)["paths"].tolist() == [str(path) for path in load_image_folder(folder)[0]]
    assert main(extract(folder, fresh)) == 0
    assert_same_npz(out, fresh)


@pytest.mark.parametrize("options, layer, note", [
    (["--layer", "block3_pool"], "block3_pool", "layer: 'block2_pool', now 'block3_pool'"),
    (["--pooling", "max"], "block2_pool", "pooling: 'avg', now 'max'"),
    (["--image-size", "48"], "block2_pool", "image_size: [32, 32], now [48, 48]"),
    (["--precision", "bfloat16"], "block2_pool", "precision: 'float32', now 'bfloat16'"),
    (["--weights", "{weights_file}"], "block2_pool", "weights: "),
    (["--backbone", "resnet50", "--layer", "pool1_pool"], "pool1_pool",
     "backbone: 'vgg16', now 'resnet50'; layer: 'block2_pool', now 'pool1_pool'"),
    (["--restart"], "block2_pool", "--restart: the work kept in"),
])
def test_other_settings_or_restart_compute_everything(options, layer, note, folder, tmp_path,
                                                      computed, capsys, monkeypatch):
    out, fresh = tmp_path / "features.npz", tmp_path / "fresh.npz"
    assert interrupted(monkeypatch, extract(folder, out), after=2) == 130
    capsys.readouterr()
    if "{weights_file}" in options:  # a weights file of the backbone's Keras model
        import keras

        options = ["--weights", str(tmp_path / "vgg16.weights.h5")]
        keras.applications.VGG16(include_top=False, weights=None).save_weights(options[1])
    computed.clear()
    assert main(extract(folder, out, *options)) == 0
    assert note in capsys.readouterr().out
    assert computed[layer] == 12
    assert main(extract(folder, fresh, *[option for option in options
                                         if option != "--restart"])) == 0
    assert_same_npz(out, fresh)


def test_files_the_store_did_not_write_are_kept_and_do_not_block_a_rerun(folder, tmp_path,
                                                                          capsys, monkeypatch):
    out = tmp_path / "features.npz"
    assert interrupted(monkeypatch, extract(folder, out), after=2) == 130
    notes = tmp_path / "features.npz.partial" / "notes.txt"
    notes.write_text("the user's")
    for _ in range(2):
        out.unlink(missing_ok=True)
        assert main(extract(folder, out)) == 0
        assert "is kept: it holds files skconvnet did not write" in capsys.readouterr().out
        assert notes.read_text() == "the user's" and out.exists()
        assert sorted(path.name for path in notes.parent.iterdir()) == ["notes.txt",
                                                                         "settings.json"]


# ``extract`` whose network takes a second per batch after the second one, so that a kill
# sent once two batches are on disk lands mid-run on any machine.
SLOW_AFTER_TWO_BATCHES = """
import sys, time
from skconvnet.cli.commands import main
from skconvnet.compute import activations

predict, calls = activations.predict_batch, []

def slow(model, batch, **options):
    calls.append(1)
    if len(calls) > 2:
        time.sleep(1)
    return predict(model, batch, **options)

activations.predict_batch = slow
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_extract_resumes_with_the_features_of_an_uninterrupted_run(
        folder, tmp_path, computed, capsys):
    """A real SIGKILL of ``extract`` in a process of its own, once batches are on disk."""
    out, fresh = tmp_path / "features.npz", tmp_path / "fresh.npz"
    partial = tmp_path / "features.npz.partial"
    command = extract(folder, out, "--batch-size", "2")
    run = subprocess.Popen([sys.executable, "-c", SLOW_AFTER_TWO_BATCHES, *command],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(partial.glob("batch-*.npz"))) < 2 and run.poll() is None:
        assert time.monotonic() < deadline, "no batch written in two minutes"
        time.sleep(0.005)
    run.send_signal(signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    kept = kept_photos(partial)
    assert 4 <= kept < 12 and not out.exists()
    computed.clear()
    assert main(command) == 0
    assert computed["block2_pool"] == 12 - kept
    assert f"{kept} of 12 photos already done" in capsys.readouterr().out
    assert main(extract(folder, fresh, "--batch-size", "2")) == 0
    assert_same_npz(out, fresh)


# Killed (SIGKILL) by itself after the first array of the output's temporary file is written.
DIES_WHILE_WRITING = """
import os, signal, sys
import numpy.lib.format
from skconvnet.cli import partial
from skconvnet.cli.commands import main

write_array, finish = numpy.lib.format.write_array, partial.PartialStore.finish

def dying(*args, **kwargs):
    write_array(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

def finishing(store, write):
    numpy.lib.format.write_array = dying
    finish(store, write)

partial.PartialStore.finish = finishing
sys.exit(main(sys.argv[1:]))
"""


def test_a_kill_while_the_output_is_written_leaves_the_earlier_output_and_the_work(
        folder, tmp_path, computed):
    out, fresh = tmp_path / "features.npz", tmp_path / "fresh.npz"
    out.write_bytes(b"the output of an earlier run")
    run = subprocess.run([sys.executable, "-c", DIES_WHILE_WRITING, *extract(folder, out)],
                         capture_output=True, text=True)
    assert run.returncode == -signal.SIGKILL, run.stderr
    partial = tmp_path / "features.npz.partial"
    assert (partial / ".output.tmp").stat().st_size > 0  # killed while writing it
    assert out.read_bytes() == b"the output of an earlier run"
    assert kept_photos(partial) == 12
    computed.clear()
    assert main(extract(folder, out)) == 0
    assert computed == {}  # everything read back
    assert not partial.exists()
    assert main(extract(folder, fresh)) == 0
    assert_same_npz(out, fresh)


# predict


@pytest.fixture
def model(folder, tmp_path):
    """A pipeline saved with joblib, its activation cache off, so that a rerun in this
    process computes what it needs."""
    paths, labels = load_image_folder(folder)
    pipeline = make_pipeline(small_extractor(cache=False), LogisticRegression(max_iter=1000))
    path = tmp_path / "model.joblib"
    joblib.dump(pipeline.fit(paths, labels), path)
    return path


def test_predict_resumes_and_writes_the_csv_of_an_uninterrupted_run(
        folder, model, tmp_path, computed, capsys, monkeypatch):
    output, fresh = tmp_path / "predictions.csv", tmp_path / "fresh.csv"
    command = ["predict", str(model), str(folder), "--batch-size", "4", "--output", str(output)]
    assert interrupted(monkeypatch, command, after=1) == 130
    partial = tmp_path / "predictions.csv.partial"
    assert not output.exists() and kept_photos(partial) == 4
    capsys.readouterr()
    computed.clear()
    assert main(command) == 0
    assert computed["block2_pool"] == 8
    assert "4 of 12 photos already done" in capsys.readouterr().out
    assert main(command[:-1] + [str(fresh)]) == 0
    assert output.read_text() == fresh.read_text()
    assert len(output.read_text().splitlines()) == 13


@pytest.mark.parametrize("rerun", ["another model", "--restart"])
def test_predict_with_another_model_or_restart_computes_everything(
        rerun, folder, model, tmp_path, computed, capsys, monkeypatch):
    output = tmp_path / "predictions.csv"
    command = ["predict", str(model), str(folder), "--batch-size", "4", "--output", str(output)]
    assert interrupted(monkeypatch, command, after=1) == 130
    paths, labels = load_image_folder(folder)
    if rerun == "another model":
        other = make_pipeline(small_extractor(cache=False), LogisticRegression(C=0.01,
                                                                               max_iter=1000))
        joblib.dump(other.fit(paths, labels), model)
        note = "holds work done with other settings (model:"
    else:
        other = joblib.load(model)
        command.append("--restart")
        note = "--restart: the work kept in"
    capsys.readouterr()
    computed.clear()
    assert main(command) == 0
    assert note in capsys.readouterr().out
    assert computed["block2_pool"] == 12
    rows = [line.split(",") for line in output.read_text().splitlines()[1:]]
    np.testing.assert_allclose(np.array([row[2:] for row in rows], float),
                               other.predict_proba(paths), atol=1e-6)


def test_predict_rows_keep_each_path_as_given_on_the_rerun(folder, model, tmp_path, computed,
                                                           capsys, monkeypatch):
    output = tmp_path / "predictions.csv"
    command = ["predict", str(model), str(folder), "--batch-size", "4", "--output", str(output)]
    assert interrupted(monkeypatch, command, after=1) == 130
    spelled = tmp_path / "elsewhere" / ".." / "photos"  # the same folder, named otherwise
    (tmp_path / "elsewhere").mkdir()
    computed.clear()
    assert main(["predict", str(model), str(spelled), "--batch-size", "4", "--output",
                 str(output)]) == 0
    assert computed["block2_pool"] == 8
    rows = [line.split(",")[0] for line in output.read_text().splitlines()[1:]]
    assert rows == [str(spelled / path.relative_to(folder))
                    for path in load_image_folder(folder)[0]]


# Killed (SIGKILL) by itself once the output's temporary file is written, before it is renamed.
DIES_BEFORE_RENAMING = """
import os, signal, sys
from skconvnet.cli.commands import main

def dying(descriptor):
    os.kill(os.getpid(), signal.SIGKILL)

os.fsync = dying  # the store flushes one file only: the output's, under its temporary name
sys.exit(main(sys.argv[1:]))
"""


def test_a_predict_killed_before_its_output_is_renamed_resumes(folder, model, tmp_path,
                                                                computed):
    output, fresh = tmp_path / "predictions.csv", tmp_path / "fresh.csv"
    command = ["predict", str(model), str(folder), "--batch-size", "4", "--output", str(output)]
    run = subprocess.run([sys.executable, "-c", DIES_BEFORE_RENAMING, *command],
                         capture_output=True, text=True)
    assert run.returncode == -signal.SIGKILL, run.stderr
    partial = tmp_path / "predictions.csv.partial"
    assert (partial / ".output.tmp").read_text().count("\n") == 13  # written, not renamed
    assert not output.exists() and kept_photos(partial) == 12
    computed.clear()
    assert main(command) == 0
    assert computed == {}
    assert main(command[:-1] + [str(fresh)]) == 0
    assert output.read_text() == fresh.read_text()


def test_an_output_inside_the_photo_folder_is_refused(folder, capsys, computed):
    assert main(extract(folder, folder / "features.npz")) == 1
    assert "is inside DIR" in error_line(capsys) and computed == {}


def test_a_folder_of_the_store_s_name_that_is_not_one_is_left_alone(folder, tmp_path, capsys):
    mine = tmp_path / "features.npz.partial"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    assert main(extract(folder, tmp_path / "features.npz")) == 1
    assert "is not work kept by skconvnet" in error_line(capsys)
    assert (mine / "notes.txt").read_text() == "the user's"
