"""``predict`` without the package a model file needs: one line naming the extra to install,
no traceback."""

import sys

import pytest
from helpers import error_line

from skconvnet.cli.commands import main


def predict(model, tmp_path):
    """Run ``predict`` on ``model`` (an empty file: it is not read) and return its status."""
    model = tmp_path / model
    model.write_bytes(b"")
    return main(["predict", str(model), str(tmp_path), "--output",
                 str(tmp_path / "predictions.csv")])


def test_a_skops_model_without_skops_names_the_skops_extra(monkeypatch, tmp_path, capsys):
    for name in ("skops", "skops.io"):
        monkeypatch.setitem(sys.modules, name, None)  # what an absent package does
    assert predict("model.skops", tmp_path) == 1
    assert error_line(capsys) == (
        "skconvnet predict: error: reading a .skops model needs skops: pip install "
        "'skconvnet[skops]' (or pip install skops).")
    assert not (tmp_path / "predictions.csv").exists()


@pytest.mark.no_backend  # an .onnx file runs without Keras
def test_an_onnx_model_without_onnx_runtime_names_the_serve_extra(monkeypatch, tmp_path,
                                                                 capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert predict("model.onnx", tmp_path) == 1
    assert error_line(capsys) == (
        "skconvnet predict: error: predicting with an .onnx model needs onnxruntime: pip "
        "install 'skconvnet[serve]' (or pip install onnxruntime).")
    assert not (tmp_path / "predictions.csv").exists()


@pytest.mark.no_backend
@pytest.mark.parametrize("command", ["evaluate", "audit", "extract", "predict"])
def test_a_command_without_keras_names_the_tensorflow_extra(command, monkeypatch, tmp_path,
                                                            capsys):
    monkeypatch.setitem(sys.modules, "keras", None)  # as on a core or serving install
    arguments = {"evaluate": [str(tmp_path), "--test", str(tmp_path)],
                 "audit": [str(tmp_path)],
                 "extract": [str(tmp_path), "--layer", "block5_pool",
                             "--out", str(tmp_path / "features.npz")],
                 "predict": [str(tmp_path / "model.joblib"), str(tmp_path),
                             "--output", str(tmp_path / "predictions.csv")]}[command]
    assert main([command, *arguments]) == 1
    assert error_line(capsys) == (
        f"skconvnet {command}: error: the {command} command needs keras: pip install "
        "'skconvnet[tensorflow]' (or pip install keras tensorflow), or pip install "
        "'skconvnet[jax]' and set KERAS_BACKEND=jax.")
