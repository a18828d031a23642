"""Every accepted kind of X gives the features of the images it holds."""

import threading

import numpy as np
import pandas as pd
import pytest
from helpers import small_extractor
from PIL import Image

from skconvnet.backbones import specs
from skconvnet.compute import activations
from skconvnet.inputs import decoding, sources

VGG16_PREPROCESSING = activations.preprocessor(specs.get("vgg16"))


def test_grayscale_channel_is_repeated_to_rgb(images):
    gray = images[..., :1]
    np.testing.assert_array_equal(
        small_extractor().fit_transform(gray),
        small_extractor().fit_transform(np.repeat(gray, 3, axis=-1)),
    )


def test_rows_of_flattened_images_are_reshaped_back(images):
    rows = images.reshape(len(images), -1)
    np.testing.assert_array_equal(
        small_extractor().fit_transform(rows), small_extractor().fit_transform(images)
    )


def test_image_shape_reads_rows_of_other_images(images):
    gray = images[:, :16, :16, :1]
    rows = gray.reshape(len(gray), -1)
    np.testing.assert_array_equal(
        small_extractor(image_shape=(16, 16, 1)).fit_transform(rows),
        small_extractor().fit_transform(gray),
    )


def test_images_of_other_sizes_are_resized():
    colors = np.random.default_rng(1).integers(0, 256, size=(3, 1, 1, 3)).astype(np.float32)
    large = np.broadcast_to(colors, (3, 64, 48, 3))
    exact = np.broadcast_to(colors, (3, 32, 32, 3))
    np.testing.assert_allclose(
        small_extractor().fit_transform(large), small_extractor().fit_transform(exact), rtol=1e-5
    )


def test_image_files_give_the_features_of_their_pixels(images, image_files):
    paths = image_files(images, ".png")
    from_files = small_extractor().fit_transform(paths)
    np.testing.assert_array_equal(from_files, small_extractor().fit_transform(images))
    as_strings = [str(p) for p in paths]
    for same in (as_strings, np.array(as_strings), pd.Series(as_strings), tuple(paths)):
        np.testing.assert_array_equal(small_extractor().fit_transform(same), from_files)


@pytest.mark.parametrize(
    "mode, suffix", [("L", ".png"), ("RGBA", ".png"), ("P", ".png"), ("CMYK", ".jpg"),
                     ("I;16", ".png"), ("RGB", ".bmp"), ("RGB", ".webp")]
)
@pytest.mark.filterwarnings("ignore:X holds pixel values in 0-1")  # 16-bit levels of 8-bit gray
def test_files_in_any_mode_are_read_as_rgb(images, image_files, mode, suffix):
    paths = image_files(images[:2], suffix, mode=mode)
    assert Image.open(paths[0]).mode == mode
    extractor = small_extractor(cache=False).fit(paths)

    def shown(path):  # what an image viewer shows; 16-bit levels of 8-bit gray scaled back
        image = Image.open(path)
        if image.mode == "I;16":
            return np.repeat(np.asarray(image, np.float32)[..., None] / 257, 3, axis=-1)
        return np.asarray(image.convert("RGB"))

    np.testing.assert_array_equal(extractor.transform(paths),
                                  extractor.transform(np.stack([shown(p) for p in paths])))


def test_grayscale_file_matches_grayscale_array(images, image_files):
    gray = images[..., 0]
    paths = image_files(gray, ".png")
    np.testing.assert_array_equal(
        small_extractor().fit_transform(paths), small_extractor().fit_transform(gray[..., None])
    )


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_picture_gives_the_same_features_as_file_uint8_and_float_array(image_files, suffix):
    """Resized from 40x48 to 32x32: the file, the uint8 array of its decoded pixels and a
    float array of the same integer values give the same features."""
    pixels = np.random.default_rng(4).integers(0, 256, size=(3, 40, 48, 3), dtype=np.uint8)
    paths = image_files(pixels, suffix)
    decoded = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in paths])
    extractor = small_extractor(cache=False).fit(decoded)
    from_files = extractor.transform(paths)
    np.testing.assert_array_equal(extractor.transform(decoded), from_files)
    np.testing.assert_array_equal(extractor.transform(decoded.astype(np.float32)), from_files)
    np.testing.assert_allclose(extractor.transform(decoded.astype(np.float64)), from_files,
                               rtol=1e-5, atol=1e-5)


def _encoded(pixels, suffix):
    import io

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format={".png": "PNG", ".jpg": "JPEG"}[suffix])
    return buffer.getvalue()


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_encoded_images_are_decoded_like_their_files(images, image_files, tmp_path, suffix):
    paths = image_files(images[:4], suffix)
    contents = [path.read_bytes() for path in paths]
    extractor = small_extractor(cache=False).fit(images)
    expected = extractor.transform(paths)
    np.testing.assert_array_equal(extractor.transform(contents), expected)
    frame = pd.DataFrame({"image": contents, "label": [0, 1, 0, 1]})
    np.testing.assert_array_equal(extractor.transform(frame["image"]), expected)
    frame.to_parquet(tmp_path / "images.parquet")
    column = pd.read_parquet(tmp_path / "images.parquet")["image"]
    np.testing.assert_array_equal(extractor.transform(column), expected)


def test_encoded_images_share_the_cache_with_their_files(images, image_files, computed):
    paths = image_files(images[:3], ".png")
    extractor = small_extractor().fit(images)
    extractor.transform(paths)
    computed.clear()
    extractor.transform([path.read_bytes() for path in paths])
    assert computed == {}


def test_undecodable_encoded_images_are_named(images):
    good = _encoded(images[0], ".png")
    with pytest.raises(ValueError, match=r"2 of 3 image files cannot be used:\n"
                       r"  X\[1\] \(an encoded image of 16 bytes\): is not an image.*\n"
                       r"  X\[2\] \(an encoded image of \d+ bytes\): cannot be decoded"):
        small_extractor().fit_transform([good, b"\x89PNG\0\0\0\0 not png", good[:80]])
    with pytest.raises(TypeError, match=r"single image file's contents.*e\.g\. \[X\]"):
        small_extractor().fit_transform(good)


def test_sixteen_bit_file_is_scaled_not_clipped(images, tmp_path):
    """A 16-bit grayscale PNG gives the pixels of its 8-bit version, not a white image."""
    gray = images[0, ..., 0]
    path = tmp_path / "deep.png"
    Image.fromarray(gray.astype(np.uint16) * 257).save(path)
    assert Image.open(path).mode == "I;16"
    np.testing.assert_allclose(decoding.decode(path, (32, 32)),
                               np.repeat(gray[..., None], 3, axis=-1), atol=1e-3)


def test_files_of_mixed_sizes(tmp_path):
    rng = np.random.default_rng(2)
    paths = []
    for index, (height, width) in enumerate([(20, 90), (300, 200), (32, 32), (7, 5)]):
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        paths.append(tmp_path / f"{index}.jpg")
        Image.fromarray(pixels).save(paths[-1])
    extractor = small_extractor().fit(paths)
    features = extractor.transform(paths)
    assert features.shape == (4, 128)
    for row, path in zip(features, paths):  # each file as its decoded pixels, at any size
        np.testing.assert_array_equal(row[None],
                                      extractor.transform(np.asarray(Image.open(path))[None]))


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((32, 64, 3), np.uint8)
    pixels[:, :32] = 255  # left half white
    upright, rotated = tmp_path / "upright.png", tmp_path / "rotated.png"
    Image.fromarray(pixels).save(upright)
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated: viewers turn it 90 degrees counter-clockwise
    Image.fromarray(np.rot90(pixels, k=-1).copy()).save(rotated, exif=exif)
    np.testing.assert_array_equal(
        decoding.decode(rotated, (32, 64)), decoding.decode(upright, (32, 64))
    )


def test_tabular_rows_are_invariant_to_column_scaling():
    X = np.random.default_rng(3).normal(size=(12, 5))
    features = small_extractor().fit_transform(X)
    rescaled = small_extractor().fit_transform(X * [1, 10, 100, 0.1, 3] + 7)
    np.testing.assert_allclose(features, rescaled, rtol=1e-5, atol=1e-5)
    assert np.unique(features.round(4), axis=0).shape[0] == len(X)


def test_test_rows_beyond_the_fitted_range_are_clipped():
    X = np.random.default_rng(4).uniform(size=(10, 3))
    extractor = small_extractor().fit(X)
    np.testing.assert_array_equal(
        extractor.transform(X.max(axis=0, keepdims=True) + 5),
        extractor.transform(X.max(axis=0, keepdims=True)),
    )


def test_dataframe_rows_keep_feature_names():
    frame = pd.DataFrame(np.random.default_rng(5).normal(size=(6, 3)), columns=["a", "b", "c"])
    extractor = small_extractor().fit(frame)
    assert list(extractor.feature_names_in_) == ["a", "b", "c"]
    assert extractor.n_features_in_ == 3


def test_refit_on_images_forgets_tabular_state(images):
    extractor = small_extractor().fit(np.random.default_rng(6).normal(size=(6, 3)))
    extractor.fit(images)
    assert not hasattr(extractor, "n_features_in_") and not hasattr(extractor, "data_min_")


def test_images_are_streamed_in_order_a_few_batches_ahead(images, image_files, monkeypatch):
    """Batches come in order, preprocessed; at most three are decoded before the network
    takes the first, and an abandoned stream leaves no loading threads behind."""
    paths = image_files(np.concatenate([images] * 3), ".png")  # 24 files
    decoded = []
    decode = decoding.decode
    monkeypatch.setattr(decoding, "decode", lambda *a: decoded.append(1) or decode(*a))
    source = sources.FileImages(paths, (32, 32))
    chunks = [np.arange(start, start + 4) for start in range(0, 24, 4)]
    batches = source.stream(chunks, VGG16_PREPROCESSING)
    first = next(batches)
    assert first.shape == (4, 32, 32, 3) and first.dtype == np.float32
    assert len(decoded) <= 12
    second = next(batches)
    expected = VGG16_PREPROCESSING(np.stack([decode(paths[i], (32, 32)) for i in chunks[1]]))
    np.testing.assert_array_equal(second, expected)
    batches.close()
    assert len(decoded) <= 16
    assert not [t for t in threading.enumerate() if t.name.startswith("skconvnet-load")]


def test_a_whole_stream_gives_every_image_once_in_order(images):
    source = sources.ArrayImages(np.concatenate([images] * 5), (32, 32))
    chunks = [np.arange(start, min(start + 3, 40)) for start in range(0, 40, 3)]
    streamed = np.concatenate(list(source.stream(chunks, VGG16_PREPROCESSING)))
    np.testing.assert_array_equal(streamed, VGG16_PREPROCESSING(source.load(np.arange(40))))


def photo_extractor():
    from skconvnet import VGGFeatureExtractor

    return VGGFeatureExtractor(weights=None, image_size=32, layer="block1_pool", pooling="avg",
                               cache=False)


@pytest.mark.parametrize("as_bytes", [False, True], ids=["paths", "bytes"])
def test_column_transformer_takes_photos_selected_as_a_list(images, image_files, as_bytes):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import StandardScaler

    files = [str(path) for path in image_files(images[:5], ".png")]
    if as_bytes:
        files = [open(path, "rb").read() for path in files]
    numbers = np.random.default_rng(7).normal(size=(5, 2)) * [1.0, 100.0]
    frame = pd.DataFrame({"photo": files, "age": numbers[:, 0], "weight": numbers[:, 1]})
    both = ColumnTransformer([("photo", photo_extractor(), ["photo"]),
                              ("tabular", StandardScaler(), ["age", "weight"])])
    features = both.fit_transform(frame)
    expected = photo_extractor().fit(frame["photo"]).transform(frame["photo"])
    assert features.shape == (5, expected.shape[1] + 2)
    np.testing.assert_array_equal(features[:, :-2], expected)
    np.testing.assert_allclose(features[:, -2:], StandardScaler().fit_transform(numbers))
    np.testing.assert_array_equal(both.transform(frame), features)
    extractor = both.named_transformers_["photo"]
    assert list(extractor.feature_names_in_) == ["photo"] and extractor.n_features_in_ == 1
    assert both.get_feature_names_out()[0] == "photo__block1_pool_avg_ch0"
    with pytest.raises(ValueError, match="The feature names should match"):
        extractor.transform(frame[["photo"]].rename(columns={"photo": "image"}))


def test_a_one_column_frame_of_numbers_is_still_tabular():
    frame = pd.DataFrame({"x": np.random.default_rng(8).normal(size=6)})
    extractor = photo_extractor().fit(frame)
    assert list(extractor.feature_names_in_) == ["x"] and extractor.data_min_.shape == (1,)
    np.testing.assert_array_equal(
        extractor.transform(frame), photo_extractor().fit_transform(frame.to_numpy())
    )


def test_a_frame_of_several_columns_of_paths_is_refused(images, image_files):
    paths = [str(path) for path in image_files(images[:2], ".png")]
    frame = pd.DataFrame({"front": paths, "back": paths})
    with pytest.raises(TypeError, match=r"image file paths as a list, a 1-D array or a "
                                        r"DataFrame of one column \(df\['path'\] or"):
        photo_extractor().fit(frame)
