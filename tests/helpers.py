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

TESTS = Path(__file__).resolve().parent  # on sys.path of the tests and of their subprocesses
SHARED = TESTS.parents[1] / "shared"
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


#: The command line's options for fast runs on texture folders (random weights, 32x32, three
#: layers of which the best is neither first nor last, 3 folds).
EVALUATE_LAYERS = ["block2_pool", "block1_pool", "block3_pool"]
FAST_EVALUATE = ["--weights", "none", "--image-size", "32", "--layers", ",".join(EVALUATE_LAYERS),
                 "--cv", "3"]


def texture_folder(root, per_class, seed=0, size=32):
    """A texture only shallow layers see, one sub-folder per class.

    A 1-pixel checkerboard or 1-pixel stripes of small amplitude over large random colour
    cells: block1_pool's features tell them apart, while three max-poolings (block3_pool)
    mostly blur the texture away. So the layers' scores differ, and the best is block1_pool.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[:size, :size]
    textures = {"checks": (rows + columns) % 2, "stripes": rows % 2}
    for label, texture in textures.items():
        (root / label).mkdir(parents=True)
        for index in range(per_class):
            cells = rng.integers(40, 216, size=(size // 4, size // 4, 3)).repeat(4, 0).repeat(4, 1)
            sign = rng.choice([-1, 1])
            pixels = cells + (8 * sign * (2 * texture - 1))[..., np.newaxis]
            Image.fromarray(pixels.astype(np.uint8)).save(root / label / f"{index:02d}.png")
    return root


def hand_written_pipeline(layer, **params):
    """What evaluate fits on one layer: features, standardised, logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(small_extractor(layer=layer, **params), StandardScaler(),
                         LogisticRegression(max_iter=2000))


def error_line(capsys):
    """The one line a failed command wrote to standard error."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err
