"""What many test modules share: shared data paths, the precision that is fast on this CPU,
small estimators and small labelled images. Fixtures live in ``conftest.py``."""

from pathlib import Path

import numpy as np


def _native_bfloat16():
    """Whether this CPU has bfloat16 instructions. Without them TensorFlow emulates bfloat16,
    and training takes several times as long as in float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


#: The faster precision on this machine, for the slow tests on real photos.
FAST_PRECISION = "bfloat16" if _native_bfloat16() else "float32"

SHARED = Path(__file__).resolve().parents[2] / "shared"
CATS_AND_DOGS = SHARED / "data" / "cats_and_dogs"
HED_WEIGHTS = SHARED / "weights" / "vgg16_hed_notop.weights.h5"
IMAGENET_WEIGHTS = SHARED / "weights" / "vgg16_imagenet_notop.weights.h5"


def dark_and_bright(n_per_class, shuffle=False):
    """``(X, y)``: small uint8 images of two kinds, dark ones and bright ones, labelled so."""
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 100, size=(n_per_class, 32, 32, 3))
    bright = rng.integers(155, 256, size=(n_per_class, 32, 32, 3))
    X = np.concatenate([dark, bright]).astype(np.uint8)
    y = np.array(["dark"] * n_per_class + ["bright"] * n_per_class)
    if shuffle:
        order = rng.permutation(len(y))
        return X[order], y[order]
    return X, y


def small_extractor(**params):
    """A fast extractor for unit tests: random weights, 32x32 images, cut at block2_pool."""
    from skconvnet import VGGFeatureExtractor

    defaults = dict(weights=None, image_size=(32, 32), layer="block2_pool", pooling="avg")
    return VGGFeatureExtractor(**{**defaults, **params})


def small_classifier(**params):
    """A fast classifier for unit tests: random weights, 32x32 images, cut at block2_pool,
    otherwise the defaults but for 2 fine-tuning epochs."""
    from skconvnet import FineTunedConvNetClassifier

    defaults = dict(
        weights=None, image_size=(32, 32), layer="block2_pool", fine_tune_epochs=2,
        random_state=0,
    )
    return FineTunedConvNetClassifier(**{**defaults, **params})
