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
EFFICIENTNET_LITE0 = SHARED / "weights" / "efficientnet_lite0_imagenet"  # a keras-hub preset


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


def small_regressor(**params):
    """A fast regressor for unit tests, as :func:`small_classifier`."""
    from skconvnet import FineTunedConvNetRegressor

    defaults = dict(
        weights=None, image_size=(32, 32), layer="block2_pool", fine_tune_epochs=2,
        random_state=0,
    )
    return FineTunedConvNetRegressor(**{**defaults, **params})


def tagged(X, y):
    """Tags of the images ``X`` labelled ``y`` by :func:`dark_and_bright`: ``bright``, and
    ``striped`` on every other image (which they do not show: a tag to get wrong)."""
    return np.column_stack([y == "bright", np.arange(len(y)) % 2 == 0]).astype(int)


def quick_classifier(**params):
    """A classifier that learns in a few epochs: a dense head trained by epochs at a higher
    learning rate, no augmentation."""
    defaults = dict(head_epochs=3, fine_tune_epochs=1, augmentation=False, pooling="avg",
                    hidden_layer_sizes=(256,), head_learning_rate=1e-3,
                    fine_tune_learning_rate=1e-4)
    return small_classifier(**{**defaults, **params})


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


SQUARES = {"red": [220, 40, 40], "blue": [40, 40, 220], "green": [40, 200, 40]}


def patch_task(n_images, size=64, patch=16, seed=0, colours=("blue", "red")):
    """``(X, y, boxes)``: uint8 images of a blotchy, noisy grey background with a square of
    ``patch`` pixels of one of ``colours`` (of ``SQUARES``) pasted at a random place,
    labelled by its colour — the square alone decides the class; ``boxes`` holds each
    square's ``(top, left)``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(60, 200, size=(n_images, size // 8, size // 8)).astype(np.float32)
    background = np.stack([
        np.asarray(Image.fromarray(blotches).resize((size, size), Image.Resampling.BILINEAR))
        for blotches in coarse
    ]) + rng.normal(0, 20, size=(n_images, size, size))
    X = np.repeat(background[..., np.newaxis], 3, axis=-1)
    y = np.asarray(colours)[rng.integers(0, len(colours), n_images)]
    boxes = rng.integers(0, size - patch + 1, size=(n_images, 2))
    for image, (top, left), colour in zip(X, boxes, y):
        image[top:top + patch, left:left + patch] = SQUARES[colour]
    return np.clip(X, 0, 255).astype(np.uint8), y, boxes


def share_peaking_inside(heatmaps, boxes, patch=16):
    """The share of heatmaps whose maximum lies inside the square: the centre of the pixels
    at the maximum (a flat map's is the image's centre), inside its box."""
    inside = []
    for heatmap, (top, left) in zip(heatmaps, boxes):
        y, x = np.argwhere(heatmap == heatmap.max()).mean(axis=0)
        inside.append(top <= y < top + patch and left <= x < left + patch)
    return float(np.mean(inside))
