"""Optional dependencies: imported on demand, or one error that names what to install."""

import sys

import pytest

from skconvnet._optional import require

pytestmark = pytest.mark.no_backend


def test_present_modules_are_returned():
    import json
    import os.path

    assert require("json", extra="plot", purpose="x") is json
    assert require("json", "os.path", extra="plot", purpose="x") == (json, os.path)


def test_a_missing_module_is_named_with_the_extra_and_the_packages(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an absent package does
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"^plot_layer_scores needs matplotlib: pip install "
                                          r"'skconvnet\[plot\]' \(or pip install matplotlib "
                                          r"pandas\)\.$"):
        require("matplotlib.pyplot", extra="plot", purpose="plot_layer_scores")


def test_every_missing_module_is_named_once_and_another_way_out_is_offered(monkeypatch):
    for name in ("onnx", "tf2onnx", "tf2onnx.convert"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"^--export needs onnx and tf2onnx: pip install "
                                          r"'skconvnet\[onnx\]' \(or pip install onnx "
                                          r"onnxruntime tf2onnx skl2onnx sympy\), or leave out "
                                          r"--export\.$"):
        require("onnx", "tf2onnx", "tf2onnx.convert", "json", extra="onnx", purpose="--export",
                otherwise=", or leave out --export")
