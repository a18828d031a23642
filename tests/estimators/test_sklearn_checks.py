"""scikit-learn's own estimator checks, all of them.

The VGG16 extractor runs them twice: with the activation cache, and on the computing path
(``cache=False``), where checks that compare two calls (subsets, sample order, refitting)
compare two runs of the network rather than the cache with itself. The int8
extractor runs them on the computing path too. ConvNetFeatureExtractor
also runs them on the computing path for two networks with batch normalisation and skip
connections (ResNet-50, EfficientNetV2-B0); the classifier (its multilabel checks included)
on VGG16 and EfficientNetV2-B0; the regressor (its multi-output checks included) on VGG16.

The classifier and the regressor each declare exactly one expected failure, the same check:
under mini-batch training, weighting a sample is not the same as repeating it (scikit-learn
marks the same check as an expected failure of its own SGDClassifier).
"""

import itertools

import numpy as np
import pytest
from helpers import small_classifier, small_extractor, small_regressor
from sklearn.utils.estimator_checks import (
    check_fit_idempotent,
    check_methods_sample_order_invariance,
    check_methods_subset_invariance,
    parametrize_with_checks,
)

from skconvnet import ConvNetFeatureExtractor
from skconvnet.compute import activations

CLASSIFIER_EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": (
        "a mini-batch-trained network (SGD, dropout, augmentation) cannot make weighting a "
        "sample equivalent to repeating it"
    ),
}


def _convnet(backbone, layer, cache=False):
    return ConvNetFeatureExtractor(backbone=backbone, layer=layer, weights=None,
                                   image_size=(32, 32), pooling="avg", cache=cache)


# VGG16 with the cache (as ConvNetFeatureExtractor) and on the computing path (as
# VGGFeatureExtractor, the same class with its own defaults)
@parametrize_with_checks([_convnet("vgg16", "block2_pool", cache=True),
                          small_extractor(cache=False)])
def test_extractor_is_sklearn_compatible(estimator, check):
    check(estimator)


# int8 on ONNX Runtime, on the computing path: each fit calibrates on its own images
@pytest.mark.slow
@parametrize_with_checks([small_extractor(precision="int8", cache=False)])
def test_int8_extractor_is_sklearn_compatible(estimator, check):
    check(estimator)


# networks with batch normalisation and skip connections, cut after their first blocks
@pytest.mark.slow
@parametrize_with_checks([_convnet("resnet50", "conv2_block1_out"),
                          _convnet("efficientnetv2b0", "block2b_add")])
def test_convnet_extractor_is_sklearn_compatible(estimator, check):
    check(estimator)


# keras-hub networks: a vision transformer's first block, EfficientNet's second stage
@pytest.mark.slow
@parametrize_with_checks([
    ConvNetFeatureExtractor(backbone="dinov2_small", layer="block1", weights=None,
                            image_size=(28, 28), cache=False),
    _convnet("efficientnet_lite0", "stage2"),
])
def test_keras_hub_extractor_is_sklearn_compatible(estimator, check):
    pytest.importorskip("keras_hub")
    check(estimator)


REGRESSOR_EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": (
        "mini-batch fine-tuning (Adam on shuffled batches) sees a repeated sample in other "
        "batches than a weighted one, and the probe's folds of images differ"
    ),
}


# The regressor: multi-output, as MLPRegressor.
@pytest.mark.slow
@parametrize_with_checks(
    [small_regressor(fine_tune_epochs=1)],
    expected_failed_checks=lambda _: REGRESSOR_EXPECTED_FAILURES,
)
def test_regressor_is_sklearn_compatible(estimator, check):
    check(estimator)


# The classifier declares multilabel targets: the multilabel checks run on it.
@pytest.mark.slow
@parametrize_with_checks(
    [small_classifier(fine_tune_epochs=1),
     small_classifier(backbone="efficientnetv2b0", layer="block1a_project_activation",
                      fine_tune_epochs=1)],
    expected_failed_checks=lambda _: CLASSIFIER_EXPECTED_FAILURES,
)
def test_classifier_is_sklearn_compatible(estimator, check):
    check(estimator)


def _depends_on_batch_size(predict):
    return lambda model, batch, **options: predict(model, batch, **options) + len(batch)


def _depends_on_place_in_batch(predict):
    return lambda model, batch, **options: predict(model, batch, **options) + np.arange(
        len(batch)).reshape(-1, *[1] * (batch.ndim - 1))


def _depends_on_earlier_calls(predict):
    calls = itertools.count()
    return lambda model, batch, **options: predict(model, batch, **options) + next(calls)


@pytest.mark.parametrize("check, broken", [
    (check_methods_subset_invariance, _depends_on_batch_size),
    (check_methods_sample_order_invariance, _depends_on_place_in_batch),
    (check_fit_idempotent, _depends_on_earlier_calls),
])
def test_the_checks_on_the_computing_path_see_the_network(monkeypatch, check, broken):
    """Each property these checks name fails them where the network breaks it."""
    monkeypatch.setattr(activations, "predict_batch", broken(activations.predict_batch))
    with pytest.raises(AssertionError):
        check("VGGFeatureExtractor", small_extractor(cache=False))
