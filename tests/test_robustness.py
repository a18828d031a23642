"""Reliability: interrupted fits, concurrent calls, process workers."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_validate
from sklearn.pipeline import make_pipeline

from conftest import small_classifier, small_extractor
from skconvnet import _images, _network


@pytest.fixture(scope="module")
def two_looks():
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 100, size=(8, 32, 32, 3))
    bright = rng.integers(155, 256, size=(8, 32, 32, 3))
    return np.concatenate([dark, bright]).astype(np.uint8), np.array(["dark"] * 8 + ["bright"] * 8)


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


# Interruption: never half-fitted


@pytest.mark.parametrize("fitted_before", [False, True])
def test_interrupted_extractor_fit_leaves_it_unfitted(two_looks, monkeypatch, fitted_before):
    X, _ = two_looks
    rows = np.random.default_rng(1).normal(size=(16, 5))
    extractor = small_extractor()
    if fitted_before:
        extractor.fit(X)
    images = _images.ImageInput._images

    def learn_then_interrupt(self, X, reset):  # after the adapter has learned the rows' range
        images(self, X, reset=reset)
        raise KeyboardInterrupt

    monkeypatch.setattr(_images.ImageInput, "_images", learn_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        extractor.fit(rows)
    assert not [name for name in vars(extractor) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        extractor.transform(X)
    monkeypatch.undo()
    np.testing.assert_array_equal(extractor.fit(X).transform(X), small_extractor().fit_transform(X))


@pytest.mark.parametrize("stage", ["unfreeze", "inference_copy"])
def test_interrupted_classifier_fit_leaves_it_unfitted(two_looks, monkeypatch, stage):
    X, y = two_looks
    clf = small_classifier(head_epochs=1, fine_tune_epochs=1).fit(X, y)
    monkeypatch.setattr(_network, stage, _interrupt)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    assert not [name for name in vars(clf) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_a_failed_fit_keeps_the_parameters_and_output_settings(two_looks):
    X, _ = two_looks
    extractor = small_extractor().set_output(transform="pandas").fit(X)
    with pytest.raises(ValueError, match="too small"):
        extractor.set_params(image_size=(2, 2)).fit(X)
    assert extractor.get_params()["image_size"] == (2, 2)
    extractor.set_params(image_size=(32, 32))
    assert hasattr(extractor.fit(X).transform(X), "columns")  # still a DataFrame


# Concurrency: threads and processes


@pytest.mark.parametrize("cache", [False, True])
def test_transform_from_several_threads_equals_sequential(two_looks, cache):
    X, _ = two_looks
    _assert_threads_agree_with_sequential(small_extractor(cache=cache).fit(X).transform, X)


def test_predict_from_several_threads_equals_sequential(two_looks):
    X, y = two_looks
    clf = small_classifier(head_epochs=1, fine_tune_epochs=0).fit(X, y)
    _assert_threads_agree_with_sequential(clf.predict_proba, X)


def _assert_threads_agree_with_sequential(method, X):
    """``method`` on 8 overlapping parts of ``X`` from 8 threads at once, as one by one."""
    inputs = [X[i::4] for i in range(4)] * 2
    sequential = [method(part) for part in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(method, inputs))
    for one, other in zip(sequential, concurrent):
        np.testing.assert_array_equal(one, other)


def test_cross_validate_in_process_workers(two_looks):
    X, y = two_looks
    pipeline = make_pipeline(small_extractor(), LogisticRegression())
    in_process = cross_validate(pipeline, X, y, cv=4, n_jobs=1)
    in_workers = cross_validate(pipeline, X, y, cv=4, n_jobs=2)  # loky: worker processes
    np.testing.assert_allclose(in_workers["test_score"], in_process["test_score"], rtol=1e-12)
