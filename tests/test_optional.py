"""Optional dependencies: imported on demand, or one error that names what to install."""

import re
import sys

import pytest
from helpers import TESTS

from skconvnet._optional import EXTRAS, require

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
                                          r"'skconvnet\[onnx\]' \(or pip install keras "
                                          r"tensorflow onnx onnxruntime tf2onnx skl2onnx "
                                          r"sympy\), or leave out "
                                          r"--export\.$"):
        require("onnx", "tf2onnx", "tf2onnx.convert", "json", extra="onnx", purpose="--export",
                otherwise=", or leave out --export")


def test_the_packages_an_error_offers_are_those_of_the_extra_it_names():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]

    def packages(extra):  # pip's names, with the extras an extra includes (skconvnet[...])
        names = []
        for requirement in extras[extra]:
            name, wanted = re.match(r"([\w.-]+)(?:\[([\w,]+)\])?", requirement).groups()
            if name == "skconvnet":
                names += [package for part in wanted.split(",") for package in packages(part)]
            else:
                names.append(name if wanted is None else f"{name}[{wanted}]")
        return names

    for extra, offered in EXTRAS.items():
        assert sorted(set(packages(extra))) == sorted(offered), extra


def test_a_broken_install_is_not_taken_for_a_missing_package(tmp_path, monkeypatch):
    (tmp_path / "broken.py").write_text("raise ImportError('undefined symbol: omp_get_num_threads')\n")
    monkeypatch.syspath_prepend(tmp_path)
    with pytest.raises(ImportError, match="^undefined symbol: omp_get_num_threads$"):
        require("broken", extra="tensorflow", purpose="x")


def test_a_package_that_a_module_needs_is_named_in_its_place(tmp_path, monkeypatch):
    (tmp_path / "frontend.py").write_text("import absent_backend_of_frontend\n")
    monkeypatch.syspath_prepend(tmp_path)
    with pytest.raises(ImportError, match=r"^x needs absent_backend_of_frontend: pip install "
                                          r"'skconvnet\[tensorflow\]'"):
        require("frontend", extra="tensorflow", purpose="x")


@pytest.fixture
def without_keras(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # as if it were not installed


KERAS_EXTRAS = (r"needs keras: pip install 'skconvnet\[tensorflow\]' \(or pip install keras "
                r"tensorflow\), or pip install 'skconvnet\[jax\]' and set KERAS_BACKEND=jax\.$")


@pytest.mark.parametrize("backbone", ["vgg16", "resnet50", "dinov2_small"])
def test_an_extractor_without_keras_names_the_extras_that_install_it(backbone, without_keras):
    import numpy as np

    from skconvnet import ConvNetFeatureExtractor

    images = np.zeros((2, 56, 56, 3), np.uint8)
    extractor = ConvNetFeatureExtractor(backbone=backbone, weights=None, image_size=(56, 56))
    with pytest.raises(ImportError, match=rf"^ConvNetFeatureExtractor\.fit {KERAS_EXTRAS}"):
        extractor.fit(images)


@pytest.mark.parametrize("name", ["FineTunedConvNetClassifier", "FineTunedConvNetRegressor"])
def test_fine_tuning_without_keras_names_the_extras_that_install_it(name, without_keras):
    import numpy as np

    import skconvnet

    estimator = getattr(skconvnet, name)(weights=None, image_size=(32, 32))
    with pytest.raises(ImportError, match=rf"^{name}\.fit {KERAS_EXTRAS}"):
        estimator.fit(np.zeros((2, 32, 32, 3), np.uint8), [0, 1])


def test_loading_a_fitted_network_without_keras_names_the_extras_that_install_it(without_keras):
    import warnings

    import joblib
    from helpers import TESTS

    with warnings.catch_warnings(), pytest.raises(ImportError,
                                                  match=rf"^Loading a fitted network {KERAS_EXTRAS}"):
        warnings.simplefilter("ignore")  # saved with another version
        joblib.load(TESTS / "data" / "saved_before_packages" / "classifier.joblib")
