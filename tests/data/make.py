"""Writes the saved estimators of a folder beside this file, so that tests can check that
they still load and predict as they did: run ``python make.py FOLDER`` with the version of
skconvnet to save with importable.

- ``saved_before_packages/``: skconvnet 0.2.0 before its modules moved into packages (commit
  a999c5d);
- ``saved_before_layers/``: before the package's layers were set in one direction (commit
  63172f3: ``InferenceMode`` in ``skconvnet.training.network``).
"""

import os
import pickle
import sys

import joblib
import numpy as np
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skconvnet import (
    ConvNetFeatureExtractor,
    FineTunedConvNetClassifier,
    VGGFeatureExtractor,
)

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), sys.argv[1]))
rng = np.random.default_rng(0)
images = rng.integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8)
labels = np.array(["cat", "dog"] * 6)
small = dict(weights=None, image_size=(32, 32), layer="block1_pool")
estimators = {
    "pipeline": make_pipeline(VGGFeatureExtractor(**small, pooling="avg"),
                              LogisticRegression()).fit(images, labels),
    "extractor": ConvNetFeatureExtractor(backbone="mobilenetv3small", weights=None,
                                         image_size=(32, 32), pooling="avg").fit(images),
    "classifier": FineTunedConvNetClassifier(**small, fine_tune_epochs=1,
                                             random_state=0).fit(images, labels),
}
outputs = {
    "pipeline": estimators["pipeline"].predict_proba(images),
    "extractor": estimators["extractor"].transform(images),
    "classifier": estimators["classifier"].predict_proba(images),
}
for name, estimator in estimators.items():
    with open(f"{name}.pkl", "wb") as file:
        pickle.dump(estimator, file)
    joblib.dump(estimator, f"{name}.joblib")
    skops.io.dump(estimator, f"{name}.skops")
np.savez_compressed("outputs.npz", images=images, **outputs)
