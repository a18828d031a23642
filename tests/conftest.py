import os
import sys

# Before any backend or SciPy import: quiet TensorFlow's C++ logs, and let scikit-learn's
# array-API check run (it is skipped without this flag).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from helpers import (  # noqa: E402
    CATS_AND_DOGS,
    HED_WEIGHTS,
    IMAGENET_WEIGHTS,
    dark_and_bright,
    texture_folder,
)
from PIL import Image  # noqa: E402

# tests/data holds saved models and the script that wrote them, which must not run here.
collect_ignore_glob = ["data/*"]

BACKENDS = ("keras", "tensorflow", "jax")


def _backend_modules():
    """The loaded modules of the backends, by name (``keras``, ``keras.ops``...)."""
    return {name: module for name, module in dict(sys.modules).items()
            if module is not None and name.partition(".")[0] in BACKENDS}


@pytest.fixture(autouse=True)
def imports_no_backend(request):
    """Tests marked ``no_backend`` import no backend: Keras, TensorFlow or JAX.

    A backend not loaded before the test must still be absent after it. A backend already
    loaded (by collecting other test modules, or by earlier tests) is hidden while the test
    runs, as ``None`` in ``sys.modules``, so that importing it fails there too."""
    if request.node.get_closest_marker("no_backend") is None:
        yield
        return
    loaded = _backend_modules()
    sys.modules.update(dict.fromkeys(loaded))
    try:
        yield
    finally:
        sys.modules.update(loaded)
    imported = {name.partition(".")[0] for name in set(_backend_modules()) - set(loaded)}
    assert not imported, f"this test imported {sorted(imported)}"


@pytest.fixture(scope="session")
def hed_weights():
    """The shared pretrained VGG16 conv base (HED edge-detection weights)."""
    if not HED_WEIGHTS.is_file():
        pytest.skip(f"shared weights not found at {HED_WEIGHTS}")
    return HED_WEIGHTS


@pytest.fixture(scope="session")
def imagenet_weights():
    """The shared ImageNet-grade VGG16 conv base (it transfers as ImageNet VGG16 does)."""
    if not IMAGENET_WEIGHTS.is_file():
        pytest.skip(f"shared weights not found at {IMAGENET_WEIGHTS}")
    return IMAGENET_WEIGHTS


@pytest.fixture(scope="session")
def cats_and_dogs():
    """The shared cats/dogs photos: ``{"train": ..., "validation": ...}`` folders."""
    if not CATS_AND_DOGS.is_dir():
        pytest.skip(f"shared cats/dogs photos not found at {CATS_AND_DOGS}")
    return CATS_AND_DOGS


@pytest.fixture(scope="session")
def cats_and_dogs_or_none():
    """The shared cats/dogs photos folder, or None where it is absent."""
    return CATS_AND_DOGS if CATS_AND_DOGS.is_dir() else None


@pytest.fixture
def computed(monkeypatch):
    """Record which base layers each image goes through: ``{layer: images computed}``.

    Counts what the network computed, never what the activation cache served.
    """
    import threading

    from skconvnet.backbones import specs
    from skconvnet.compute import activations

    counts = {}
    lock = threading.Lock()
    predict = activations.predict_batch

    def counting(model, batch, **options):
        if model.name.count("__") == 2:  # a segment between two cut points
            backbone, start, ends = model.name.split("__")
            names = specs.get(backbone).layer_names
            first = 0 if start == "pixels" else names.index(start) + 1
            deepest = ends.split(".")[-1]  # several ends: shallow to deep
            with lock:
                for name in names[first : names.index(deepest) + 1]:
                    counts[name] = counts.get(name, 0) + len(batch)
        return predict(model, batch, **options)

    monkeypatch.setattr(activations, "predict_batch", counting)
    return counts


@pytest.fixture
def two_looks():
    """24 images, dark and bright ones in random order, labelled as such."""
    return dark_and_bright(12, shuffle=True)


@pytest.fixture
def few_looks():
    """16 images: 8 dark ones, then 8 bright ones, labelled as such."""
    return dark_and_bright(8)


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """Texture photos in class folders (see ``helpers.texture_folder``): ``(train, test)``,
    12 and 8 per class."""
    root = tmp_path_factory.mktemp("photos")
    return texture_folder(root / "train", 12, seed=1), texture_folder(root / "test", 8, seed=2)


@pytest.fixture
def images():
    """Eight small random RGB images, uint8."""
    return np.random.default_rng(0).integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)


@pytest.fixture
def image_files(tmp_path):
    """Write arrays as image files and return their paths: ``image_files(arrays, suffix)``."""

    def write(arrays, suffix=".png", mode=None):
        paths = []
        for index, array in enumerate(arrays):
            path = tmp_path / f"image{index}{suffix}"
            image = Image.fromarray(np.asarray(array))
            (image.convert(mode) if mode else image).save(path)
            paths.append(path)
        return paths

    return write
