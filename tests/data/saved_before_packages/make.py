"""Writes the estimators in this folder: saved by skconvnet 0.2.0 as it was before its modules
moved into packages (commit a999c5d), so that tests can check that they still load and predict
as they did. Run from this folder with that version installed: ``python make.py``."""

import pickle

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
