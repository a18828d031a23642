"""Resolving ``weights``: ImageNet download, random init, files; once per process."""

import hashlib
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from helpers import small_extractor
from sklearn.base import clone

from skconvnet import ConvNetFeatureExtractor
from skconvnet.backbones import specs, weights
from skconvnet.backbones.hub_specs import HubBackbone

VGG16 = specs.get("vgg16")


@pytest.fixture
def fresh_cache():
    """Forget the weights resolved so far in this process (and again afterwards)."""
    weights._load.cache_clear()
    yield
    weights._load.cache_clear()


def _save_legacy_h5(model, path):
    """Write weights in the legacy Keras HDF5 layout of Keras' published ImageNet files."""
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    with h5py.File(path, "w") as file:
        save_weights_to_hdf5_group(file, model)


@pytest.fixture
def imagenet_stand_in(tmp_path, monkeypatch, fresh_cache):
    """Serve prepared notop files in place of Keras' downloads and point its cache at tmp.

    ``keras.applications`` still asks for its own file names; only the origin is swapped.
    Returns ``serve(backbone) -> (keras model, origin file, requested file names, cache)``.
    """
    import keras
    from keras.src.utils import file_utils

    (tmp_path / "keras_home").mkdir()
    # Keras reads $KERAS_HOME once, at import: point its cache at tmp directly.
    monkeypatch.setattr(keras.src.backend.config, "_KERAS_DIR", str(tmp_path / "keras_home"))
    download = file_utils.get_file

    def serve(backbone):
        base = weights.new_keras_model(specs.get(backbone), "random")
        origin = tmp_path / "origin" / f"{backbone}.h5"
        origin.parent.mkdir(exist_ok=True)
        _save_legacy_h5(base, origin)
        requested = []
        md5 = hashlib.md5(origin.read_bytes()).hexdigest()

        def get_file(fname, origin_url, **kwargs):
            requested.append(fname)
            kwargs["file_hash"] = md5
            return download(fname, origin.as_uri(), **kwargs)

        monkeypatch.setattr(file_utils, "get_file", get_file)
        return base, origin, requested, tmp_path / "keras_home" / "models"

    return serve


@pytest.mark.parametrize("backbone", [
    name if name == "vgg16" else pytest.param(name, marks=pytest.mark.slow)
    for name, spec in specs.BACKBONES.items()
    if not isinstance(spec, HubBackbone)  # keras-hub's presets: test_hub.py
])
def test_imagenet_downloads_through_keras_applications_once(imagenet_stand_in, images, backbone):
    base, origin, requested, cache = imagenet_stand_in(backbone)
    extractor = ConvNetFeatureExtractor(backbone=backbone, weights="imagenet", image_size=32,
                                        pooling="avg").fit(images)
    # Keras' own file name for the network without its top
    assert len(requested) == 1 and ("notop" in requested[0] or "no_top" in requested[0])
    assert (cache / requested[0]).is_file()  # stored in Keras' cache
    resolved = weights.resolve_weights(specs.get(backbone), "imagenet")
    for array, expected in zip(resolved.arrays, base.get_weights(), strict=True):
        np.testing.assert_array_equal(array, expected)
    # A new process (simulated by clearing the cache) reuses the cached file: the origin
    # can be gone.
    origin.unlink()
    weights._load.cache_clear()
    np.testing.assert_array_equal(
        clone(extractor).fit_transform(images), extractor.transform(images)
    )


def test_imagenet_download_failure_says_how_to_work_offline(imagenet_stand_in, images):
    _, origin, _, _ = imagenet_stand_in("vgg16")
    origin.unlink()
    with pytest.raises(OSError, match=r"Could not download the ImageNet weights of vgg16 "
                       r"through keras.applications.VGG16.*weights="):
        small_extractor(weights="imagenet").fit(images)


def test_weights_are_read_once_per_process(hed_weights, images, monkeypatch, fresh_cache):
    reads = []
    read = weights._read_weights_file
    monkeypatch.setattr(weights, "_read_weights_file",
                        lambda spec, path: reads.append(path) or read(spec, path))
    extractor = small_extractor(weights=hed_weights).fit(images)
    clone(extractor).fit(images).transform(images)
    small_extractor(weights=str(hed_weights), layer="block4_pool").fit(images)
    assert len(reads) == 1


def test_rewritten_weights_file_is_read_again_and_refused_until_refit(tmp_path, images, fresh_cache):
    import keras

    path = tmp_path / "base.weights.h5"
    keras.applications.VGG16(include_top=False, weights=None).save_weights(path)
    extractor = small_extractor(weights=path).fit(images)
    before = extractor.transform(images)
    keras.applications.VGG16(include_top=False, weights=None).save_weights(path)
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match="file changed.*Fit the extractor again"):
        extractor.transform(images)
    after = extractor.fit(images).transform(images)
    assert not np.allclose(before, after)


def test_random_weights_are_the_same_in_another_process(fresh_cache):
    code = ("from skconvnet.backbones import specs, weights; "
            "print(weights.resolve_weights(specs.get('vgg16'), None).digest)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == weights.resolve_weights(VGG16, None).digest


def test_full_vgg16_weights_file_gives_its_conv_base(tmp_path, fresh_cache):
    import keras

    full = keras.applications.VGG16(include_top=True, weights=None)
    path = tmp_path / "full.weights.h5"
    full.save_weights(path)
    arrays = weights.resolve_weights(VGG16, path).arrays
    assert len(arrays) == 26  # 13 convolutions' kernels and biases, no dense layer
    for array, expected in zip(arrays, full.get_weights()[:26], strict=True):
        np.testing.assert_array_equal(array, expected)


def test_missing_weights_file(tmp_path, images):
    with pytest.raises(FileNotFoundError, match=r"no such file.*'imagenet'.*None.*include_top=False"):
        small_extractor(weights=tmp_path / "nowhere.weights.h5").fit(images)


@pytest.mark.parametrize("content", ["resnet", "text"])
def test_weights_file_that_is_not_a_vgg16_conv_base(tmp_path, images, content, fresh_cache):
    import keras

    path = tmp_path / "other.weights.h5"
    if content == "resnet":
        keras.applications.ResNet50(include_top=False, weights=None).save_weights(path)
    else:
        path.write_text("not weights")
    with pytest.raises(ValueError, match=r"is not a Keras VGG16 convolutional base.*failed with"):
        small_extractor(weights=path).fit(images)
