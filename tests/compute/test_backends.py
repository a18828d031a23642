"""The same code on Keras' JAX backend (what a GPU machine without TensorFlow runs)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import TESTS, small_extractor

ON_JAX = """
import sys
import numpy as np
import keras
from helpers import small_classifier, small_extractor

folder = sys.argv[1]
assert keras.backend.backend() == "jax", keras.backend.backend()
X = np.load(folder + "/X.npy")
y = np.load(folder + "/y.npy")
np.save(folder + "/features.npy", small_extractor().fit(X).transform(X))
np.save(folder + "/bfloat16.npy", small_extractor(precision="bfloat16").fit(X).transform(X))
clf = small_classifier(head_epochs=5, fine_tune_epochs=1, batch_size=4, augmentation=False,
                       pooling="avg", head_learning_rate=1e-3).fit(X, y)
np.save(folder + "/proba.npy", clf.predict_proba(X))
np.save(folder + "/predicted.npy", clf.predict(X))
"""


def test_extractor_and_classifier_run_unchanged_on_jax(tmp_path, few_looks):
    pytest.importorskip("jax", reason="the JAX backend needs jax (pip install 'jax[cpu]')")
    images, y = few_looks
    np.save(tmp_path / "X.npy", images)
    np.save(tmp_path / "y.npy", y)
    environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
                   "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", ON_JAX, str(tmp_path)], env=environment,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]

    expected = small_extractor().fit(images).transform(images)  # on this process's backend
    features = np.load(tmp_path / "features.npy")
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    bfloat16 = np.load(tmp_path / "bfloat16.npy")
    assert np.abs(bfloat16 - expected).max() <= 0.05 * np.abs(expected).max()
    proba = np.load(tmp_path / "proba.npy")
    assert proba.shape == (16, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert (np.load(tmp_path / "predicted.npy") == y).mean() >= 0.9
