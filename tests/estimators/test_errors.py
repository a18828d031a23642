"""Bad input and bad parameters fail with errors that say what is wrong and how to fix it."""

import numpy as np
import pytest
from helpers import small_extractor
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError


def test_unknown_layer_lists_the_valid_names(images):
    with pytest.raises(ValueError, match=r"Unknown layer 'block6_pool' for layer.*block1_conv1, block1_conv2, "
                                         r"block1_pool.*block5_pool"):
        small_extractor(layer="block6_pool").fit(images)


@pytest.mark.parametrize("param, value", [("pooling", "mean"), ("precision", "float16"),
                                          ("batch_size", 0), ("layer", 3)])
def test_bad_parameter_values(images, param, value):
    with pytest.raises(InvalidParameterError, match=f"The '{param}' parameter"):
        small_extractor(**{param: value}).fit(images)


@pytest.mark.parametrize("size", [(32,), (32, 0), (32, 32, 3), "32", (32.0, 32)])
def test_bad_image_size(images, size):
    with pytest.raises((ValueError, TypeError), match=r"image_size"):
        small_extractor(image_size=size).fit(images)


def test_int_image_size_means_a_square(images):
    extractor = small_extractor(image_size=32, pooling=None).fit(images)
    assert extractor.feature_shapes_ == {"block2_pool": (8, 8, 128)}


def test_image_size_too_small_for_layer(images):
    with pytest.raises(ValueError, match=r"image_size=\(16, 16\) is too small for "
                                         r"layer='block5_pool'.*at least 32"):
        small_extractor(layer="block5_pool", image_size=(16, 16)).fit(images)


def test_bad_image_shape(images):
    with pytest.raises(ValueError, match=r"image_shape must be \(height, width, channels\)"):
        small_extractor(image_shape=(16, 16, 4)).fit(images.reshape(8, -1))
    with pytest.raises(ValueError, match=r"X has 3072 columns but image_shape=\(16, 16, 1\) "
                                         r"flattens to 256"):
        small_extractor(image_shape=(16, 16, 1)).fit(images.reshape(8, -1))


def test_transform_before_fit(images):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        small_extractor().transform(images)


@pytest.mark.parametrize("channels", [2, 4])
def test_wrong_channel_count(images, channels):
    pixels = np.zeros((2, 32, 32, channels), np.uint8)
    with pytest.raises(ValueError, match=rf"{channels} channels in its last axis, expected 1 "
                                         r"\(grayscale\) or 3 \(RGB\).*transpose"):
        small_extractor().fit(pixels)


@pytest.mark.parametrize("shape, message", [
    ((32, 32, 3), r"3-D array.*X\[np.newaxis\]"),
    ((1, 2, 32, 32, 3), r"shape \(1, 2, 32, 32, 3\); expected a 4-D array"),
    ((5,), r"1-D array of numbers.*Reshape your data"),
])
def test_wrong_number_of_dimensions(shape, message):
    with pytest.raises(ValueError, match=message):
        small_extractor().fit(np.zeros(shape))


@pytest.mark.parametrize("value, name", [(np.nan, "NaN"), (np.inf, "infinity")])
@pytest.mark.parametrize("ndim", [2, 4])
def test_nan_and_inf(images, value, name, ndim):
    pixels = images.astype(np.float64)
    pixels[0, 0, 0, 0] = value
    with pytest.raises(ValueError, match=f"Input X contains {name}"):
        small_extractor().fit(pixels.reshape(8, -1) if ndim == 2 else pixels)


def test_pixel_values_outside_0_255(images):
    with pytest.raises(ValueError, match=r"pixel values from -1.0 to 254.0; expected 0-255"):
        small_extractor().fit(images.astype(np.float32) - 1)


def test_pixels_scaled_to_0_1_warn(images):
    with pytest.warns(UserWarning, match="pixel values in 0-1.*multiply by 255"):
        small_extractor().fit(images / 255.0)


def test_boolean_images(images):
    with pytest.raises(TypeError, match="dtype bool; expected pixel values"):
        small_extractor().fit(images > 128)


@pytest.mark.parametrize("X, message", [
    (np.zeros((0, 32, 32, 3)), r"0 sample\(s\)"),
    (np.zeros((0, 5)), r"0 sample\(s\)"),
    ([], "X is empty"),
])
def test_no_samples(X, message):
    with pytest.raises(ValueError, match=message):
        small_extractor().fit(X)


def test_single_path_instead_of_a_list(tmp_path):
    with pytest.raises(TypeError, match=r"single path.*pass a list of image files"):
        small_extractor().fit(str(tmp_path / "a.png"))


def test_path_list_with_other_items(images, image_files):
    paths = image_files(images[:1])
    with pytest.raises(TypeError, match=r"X\[1\] is 3 \(int\).*only paths \(str, bytes or os.PathLike\) or encoded images"):
        small_extractor().fit([paths[0], 3])


def test_missing_files_are_all_named(tmp_path):
    missing = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    with pytest.raises(FileNotFoundError, match=r"2 of 2 image files cannot be used:\n.*a.jpg: "
                                                r"no such file\n.*b.jpg: no such file"):
        small_extractor().fit(missing)


def test_truncated_files_are_all_named(image_files):
    large = np.random.default_rng(0).integers(0, 256, size=(16, 200, 200, 3), dtype=np.uint8)
    paths = image_files(large, ".jpg")
    extractor = small_extractor(batch_size=4).fit(paths)
    for index in (1, 13):  # in the first and in the last batch
        data = paths[index].read_bytes()
        paths[index].write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"2 of 16 image files cannot be used:\n.*image1.jpg: "
                                         r"cannot be decoded.*truncated.*\n.*image13.jpg"):
        extractor.transform(paths)


def test_tabular_rows_need_fit_on_rows(images):
    extractor = small_extractor().fit(images)
    with pytest.raises(ValueError, match=r"X has 5 columns, which is not a flattened image.*"
                                         r"not fitted on such rows"):
        extractor.transform(np.zeros((2, 5)))


def test_rows_of_another_width_than_fit():
    extractor = small_extractor().fit(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="X has 6 features, but VGGFeatureExtractor is expecting 5"):
        extractor.transform(np.zeros((2, 6)))


def test_too_many_columns_for_bands():
    with pytest.raises(ValueError, match=r"X has 2000 columns, more than an image of "
                                         r"image_size=\(32, 32\) can show"):
        small_extractor().fit(np.zeros((2, 2000)))


def test_sparse_input_is_refused():
    from scipy import sparse

    with pytest.raises(TypeError, match="Sparse data was passed"):
        small_extractor().fit(sparse.random(4, 5, format="csr"))


def test_errors_leave_no_backend_traceback(images):
    """Errors are raised from skconvnet, not from deep inside Keras or TensorFlow."""
    with pytest.raises(ValueError) as error:
        small_extractor(layer="block5_pool", image_size=(16, 16)).fit(images)
    assert all("keras" not in entry.path.as_posix() and "tensorflow" not in
               entry.path.as_posix() for entry in error.traceback)


def test_failed_fit_leaves_the_extractor_unfitted(images):
    extractor = small_extractor().fit(images)
    with pytest.raises(ValueError, match="too small"):
        extractor.set_params(image_size=(2, 2)).fit(images)
    with pytest.raises(NotFittedError):
        extractor.transform(images)
