"""Estimators saved by an earlier layout of the package load and predict as they did."""

import subprocess
import sys

import pytest
from helpers import TESTS

# written by tests/data/make.py with the version of each folder's name
SAVED = {"0.2.0": TESTS / "data" / "saved_before_packages",
         "63172f3": TESTS / "data" / "saved_before_layers"}

# Run in an interpreter that imports only what a user loading a model would.
LOAD = """
import pickle, sys
import joblib, numpy as np, skops.io
import skconvnet

folder, name, kind = sys.argv[1:]
path = f"{folder}/{name}.{kind}"
if kind == "skops":
    untrusted = skops.io.get_untrusted_types(file=path)
    ours = [t for t in untrusted if not t.startswith("sklearn.")]
    assert set(ours) <= set(skconvnet.TRUSTED_TYPES), ours
    estimator = skops.io.load(path, trusted=untrusted)
elif kind == "joblib":
    estimator = joblib.load(path)
else:
    with open(path, "rb") as file:
        estimator = pickle.load(file)
saved = np.load(f"{folder}/outputs.npz")
method = estimator.transform if name == "extractor" else estimator.predict_proba
np.testing.assert_allclose(method(saved["images"]), saved[name], rtol=1e-5, atol=1e-6)
if name != "extractor":
    expected = estimator.classes_[saved[name].argmax(axis=1)]
    np.testing.assert_array_equal(estimator.predict(saved["images"]), expected)
from sklearn.base import clone
clone(estimator)  # every parameter there, those added since the save at their defaults
print(type(estimator).__module__, type(estimator).__name__)
"""


@pytest.mark.parametrize("kind", ["pkl", "joblib", "skops"])
@pytest.mark.parametrize("name", ["pipeline", "extractor", "classifier"])
@pytest.mark.parametrize("version", list(SAVED))
def test_models_saved_by_earlier_layouts_load_and_predict_identically(version, name, kind):
    """Saved by skconvnet 0.2.0 with its flat modules (``skconvnet._classifier``, ...), and by
    the package before its layers (``InferenceMode`` in ``training.network``); loaded in a
    fresh interpreter, with skops trusting only scikit-learn's types and TRUSTED_TYPES."""
    folder = SAVED[version]
    assert (folder / f"{name}.{kind}").is_file()
    result = subprocess.run([sys.executable, "-c", LOAD, str(folder), name, kind],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = {"pipeline": "sklearn.pipeline Pipeline",
                "extractor": "skconvnet._extractor ConvNetFeatureExtractor",
                "classifier": "skconvnet._classifier FineTunedConvNetClassifier"}[name]
    assert result.stdout.strip().splitlines()[-1] == expected, result.stdout
