"""Reliability: hostile inputs, persistence, interrupted fits, concurrent calls, process
workers, memory over many fits."""

import copy
import pickle
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from helpers import TESTS, small_classifier, small_extractor, small_regressor, tagged
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline

import skconvnet
from skconvnet import VGGFeatureExtractor
from skconvnet.inputs import adapters, sources
from skconvnet.training import network


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


# Hostile inputs: a clear error raised by skconvnet, the caller's data untouched

_RNG = np.random.default_rng(0)
_PIXELS = _RNG.integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)

BAD_X = {  # name: (X, error, what the message must say)
    "None": (None, TypeError, r"X is None \(NoneType\); expected a 4-D array"),
    "dict": ({"a": 1}, TypeError, r"X is \{'a': 1\} \(dict\); expected"),
    "scalar": (3.0, TypeError, r"X is 3.0 \(float\); expected a 4-D array"),
    "1-D numbers": (np.arange(5.0), ValueError, r"1-D array of numbers"),
    "3-D": (_PIXELS[0], ValueError, r"3-D array.*X\[np.newaxis\]"),
    "5-D": (_PIXELS[None], ValueError, r"shape \(1, 4, 32, 32, 3\); expected a 4-D array"),
    "no images": (_PIXELS[:0], ValueError, r"0 sample\(s\)"),
    "no columns": (np.zeros((4, 0)), ValueError, r"0 feature\(s\)"),
    "empty list": ([], ValueError, "X is empty"),
    "zero height": (np.zeros((2, 0, 32, 3)), ValueError, r"images of 0x32 pixels hold no pixels"),
    "two channels": (_PIXELS[..., :2], ValueError, r"2 channels in its last axis"),
    "channels first": (_PIXELS.transpose(0, 3, 1, 2), ValueError, r"X.transpose\(0, 2, 3, 1\)"),
    "bool": (_PIXELS > 100, TypeError, "dtype bool; expected pixel values"),
    "complex": (_PIXELS.astype(complex), ValueError, "complex numbers; expected real"),
    "datetime": (_PIXELS.astype("datetime64[s]"), TypeError, r"dtype datetime64\[s\]"),
    "strings": (np.full((2, 32, 32, 3), "7"), TypeError, r"X holds text \('7'\), not numbers"),
    "text columns": (pd.DataFrame({"path": ["a.jpg", "b.jpg"], "label": ["x", "y"]}), TypeError,
                     r"text \('a.jpg'\).*a DataFrame of one column"),
    "NaN pixels": (np.where(_PIXELS == _PIXELS[0, 0, 0, 0], np.nan, _PIXELS), ValueError,
                   "Input X contains NaN"),
    "inf rows": (np.array([[1.0, np.inf], [2.0, 3.0]]), ValueError, "Input X contains infinity"),
    "16-bit pixels": (_PIXELS.astype(np.uint16) * 257, ValueError,
                      r"pixel values from 0 to 65535; expected 0-255.*X / 257"),
    "negative pixels": (_PIXELS.astype(np.int16) - 128, ValueError, r"from -128 to 127"),
    "images of two sizes": ([np.zeros((32, 32, 3)), np.zeros((40, 30, 3))], ValueError,
                            r"images of different shapes \(\(32, 32, 3\), \(40, 30, 3\)\)"),
    "sparse": (sparse.random(4, 5, format="csr"), TypeError,
               "Sparse data was passed"),
    "single path": ("photo.jpg", TypeError, r"single path \('photo.jpg'\)"),
    "path and number": (["photo.jpg", 7], TypeError, r"X\[1\] is 7 \(int\)"),
}


@pytest.fixture(scope="module")
def fitted():
    """Both estimators, fitted, to check what ``transform`` and ``predict`` refuse."""
    return {
        "extractor": small_extractor().fit(_PIXELS),
        "classifier": small_classifier(head_epochs=1, fine_tune_epochs=0).fit(
            _PIXELS, ["a", "b"] * 2),
    }


@pytest.mark.parametrize("name", BAD_X)
@pytest.mark.parametrize("kind", ["extractor", "classifier"])
def test_bad_input_is_refused_clearly_and_left_untouched(fitted, kind, name):
    X, error, message = BAD_X[name]
    before = copy.deepcopy(X)
    unfitted = small_extractor() if kind == "extractor" else small_classifier()
    calls = [lambda: unfitted.fit(X, ["a", "b"])]
    estimator = fitted[kind]
    calls.append(lambda: (estimator.transform if kind == "extractor" else estimator.predict)(X))
    for call in calls:
        with pytest.raises(error, match=message) as raised:
            call()
        _assert_raised_by_skconvnet_or_sklearn(raised)
    _assert_same(X, before)


def _assert_raised_by_skconvnet_or_sklearn(raised):
    """No frame of the traceback lies in Keras, TensorFlow, NumPy or Pillow."""
    for entry in raised.traceback:
        path = entry.path.as_posix()
        assert not any(f"/{package}/" in path for package in ("keras", "tensorflow", "numpy", "PIL"))


def _assert_same(X, before):
    if isinstance(X, pd.DataFrame):
        pd.testing.assert_frame_equal(X, before)
    elif hasattr(X, "toarray"):
        np.testing.assert_array_equal(X.toarray(), before.toarray())
    elif isinstance(X, list):
        assert len(X) == len(before)
        for item, kept in zip(X, before):
            np.testing.assert_array_equal(item, kept)
    else:
        np.testing.assert_array_equal(X, before)


BAD_Y = {
    "2-D classes": (np.array([[0, 2], [1, 0], [2, 1], [0, 0]]),
                    r"y has shape \(4, 2\) but is not a 0/1 indicator of labels.*"
                    r"'multiclass-multioutput'.*MultiLabelBinarizer"),
    "mixed types": (np.array([0, "a", 0, "a"], dtype=object), "mixes labels of types int, str"),
    "None labels": (np.array([None, "a", None, "a"], dtype=object), "NoneType, str"),
    "NaN labels": (np.array([0.0, 1.0, np.nan, 1.0]), "Input y contains NaN"),
    "continuous": (np.linspace(0, 1, 4), "Unknown label type: continuous"),
    "3-D": (np.zeros((4, 1, 1)), "Found array with dim 3"),
    "too few": (np.array(["a", "b"]), "X has 4 samples but y has 2 labels"),
    "one class": (np.array(["a"] * 4), r"only one class \('a'\)"),
}


@pytest.mark.parametrize("name", BAD_Y)
def test_bad_labels_are_refused_clearly_and_left_untouched(name):
    y, message = BAD_Y[name]
    before = y.copy()
    with pytest.raises(ValueError, match=message) as raised:
        small_classifier().fit(_PIXELS, y)
    _assert_raised_by_skconvnet_or_sklearn(raised)
    np.testing.assert_array_equal(y, before)


def test_all_bad_files_are_named_together(tmp_path, monkeypatch, image_files):
    good = image_files(_PIXELS[:2], ".jpg")
    truncated = image_files([_RNG.integers(0, 256, (300, 300, 3), dtype=np.uint8)], ".png")[0]
    truncated.write_bytes(truncated.read_bytes()[:5000])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not an image")
    (tmp_path / "folder.jpg").mkdir()
    Image.fromarray(np.full((8, 8), 1000.0, np.float32)).save(tmp_path / "depth.tiff")
    Image.new("L", (600, 600)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 300)  # bomb.png: 4x the limit
    bad = {
        "missing.jpg": "no such file",
        "empty.jpg": r"is empty \(0 bytes\)",
        "notes.jpg": "is not an image file Pillow can read",
        "folder.jpg": "is a directory, not an image file",
        "image0.png": "cannot be decoded.*truncated",
        "depth.tiff": r"cannot be decoded \(its 'F' pixels range from 1000 to 1000, not 0-255",
        "bomb.png": r"is too large to decode safely.*PIL.Image.MAX_IMAGE_PIXELS",
    }
    X = [good[0], *(tmp_path / name for name in bad), good[1]]
    for fit in (small_extractor().fit, lambda X: small_classifier().fit(X, ["a", "b"] * 4)):
        with pytest.raises(ValueError) as raised:
            fit(X)
        lines = str(raised.value).splitlines()
        assert lines[0] == "7 of 9 image files cannot be used:"
        for (name, problem), line in zip(bad.items(), lines[1:]):
            assert re.fullmatch(rf"  .*{re.escape(name)}: {problem}.*", line), line
        assert len(lines) == 8


def test_unusual_but_valid_image_files_give_the_pixels_they_show(tmp_path):
    """Every mode, container and size reads as the picture a viewer shows, end to end."""
    colors = _RNG.integers(0, 256, size=(6, 3), dtype=np.uint8)  # few colors: palettes are exact
    picture = colors[_RNG.integers(0, 6, size=(32, 32))]
    gray = picture[..., 0]
    rgb, luminance = Image.fromarray(picture), Image.fromarray(gray)
    files = {  # name: (how it is written, the picture it shows)
        "gray.png": (lambda p: luminance.save(p), gray),
        "gray-alpha.png": (lambda p: luminance.convert("LA").save(p), gray),
        "rgba.png": (lambda p: rgb.convert("RGBA").save(p), picture),
        "palette.png": (lambda p: rgb.quantize(6).save(p), picture),
        "palette-transparency.png": (lambda p: rgb.quantize(6).save(p, transparency=0), picture),
        "cmyk.tiff": (lambda p: rgb.convert("CMYK").save(p), picture),
        "16-bit.png": (lambda p: Image.fromarray(gray.astype(np.uint16) * 257).save(p), gray),
        "32-bit.tiff": (lambda p: luminance.convert("I").save(p), gray),
        "float.tiff": (lambda p: luminance.convert("F").save(p), gray),
        "animated.gif": (lambda p: rgb.save(p, save_all=True, append_images=[rgb.rotate(90)]), picture),
        "pages.tiff": (lambda p: rgb.save(p, save_all=True, append_images=[rgb.rotate(90)]), picture),
        "lossless.webp": (lambda p: rgb.save(p, lossless=True), picture),
        "bitmap.bmp": (lambda p: rgb.save(p), picture),
        "wrong-suffix.jpg": (lambda p: rgb.save(p, format="PNG"), picture),
        "rotated.png": (lambda p: _save_rotated(rgb, p), picture),
    }
    paths, shown = [], []
    for name, (write, pixels) in files.items():
        write(tmp_path / name)
        paths.append(tmp_path / name)
        shown.append(np.broadcast_to(np.atleast_3d(pixels), (32, 32, 3)))
    extractor = small_extractor().fit(paths)
    np.testing.assert_allclose(extractor.transform(paths), extractor.transform(np.stack(shown)),
                               rtol=1e-6, atol=0)


def _save_rotated(image, path):
    """Stored turned by 90 degrees, with the EXIF orientation that turns it back."""
    exif = Image.Exif()
    exif[0x0112] = 8
    image.transpose(Image.Transpose.ROTATE_270).save(path, exif=exif)


def test_tiny_huge_and_mixed_sizes_in_one_call(tmp_path):
    """Solid colours of any size, 1x1 to 6000x4000, give the features of that colour."""
    color = np.array([200, 30, 90], np.uint8)
    paths = []
    for height, width in [(1, 1), (3, 500), (4000, 6000), (32, 32)]:
        paths.append(tmp_path / f"{height}x{width}.png")
        Image.new("RGB", (width, height), tuple(int(c) for c in color)).save(paths[-1])
    extractor = small_extractor().fit(paths)
    expected = extractor.transform(np.broadcast_to(color, (1, 32, 32, 3)))
    np.testing.assert_allclose(extractor.transform(paths), np.repeat(expected, 4, axis=0),
                               rtol=1e-6, atol=0)


@pytest.mark.parametrize("kind", ["extractor", "classifier"])
def test_valid_input_is_never_modified(tmp_path, kind, image_files):
    """Writable arrays keep their values and read-only ones are never written to."""
    floats = _PIXELS.astype(np.float64)
    read_only = _PIXELS.copy()
    read_only.setflags(write=False)
    rows = pd.DataFrame(_RNG.normal(size=(4, 3)), columns=["a", "b", "c"])
    paths = image_files(_PIXELS, ".png")
    labels = np.array(["a", "b", "a", "b"], dtype=object)
    weights = np.array([1.0, 2.0, 1.0, 2.0])
    for X in (floats, read_only, rows, paths, list(map(str, paths))):
        before = copy.deepcopy((X, labels, weights))
        if kind == "extractor":
            small_extractor().fit(X).transform(X)
        else:
            small_classifier(head_epochs=1, fine_tune_epochs=1).fit(
                X, labels, sample_weight=weights).predict_proba(X)
        for value, kept in zip((X, labels, weights), before):
            _assert_same(value, kept)


# Properties of the input adapter, over random shapes, dtypes and values

_DTYPES = st.sampled_from(
    [np.uint8, np.uint16, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64]
)
_SIZES = st.tuples(st.integers(1, 24), st.integers(1, 24))
_PROPERTIES = settings(max_examples=40, deadline=None, derandomize=True)  # same examples in CI
_DIM_IMAGES_ARE_VALID = pytest.mark.filterwarnings("ignore:X holds pixel values in 0-1")


@st.composite
def pixel_arrays(draw):
    """4-D arrays of 1 or 3 channels, any dtype, values in 0-255 (0-127 for int8)."""
    dtype = draw(_DTYPES)
    shape = (draw(st.integers(1, 3)), *draw(_SIZES), draw(st.sampled_from([1, 3])))
    high = 127 if dtype == np.int8 else 255
    return draw(hnp.arrays(dtype, shape, elements=st.integers(0, high)))


@_DIM_IMAGES_ARE_VALID
@_PROPERTIES
@given(X=pixel_arrays(), size=_SIZES)
def test_any_valid_pixel_array_becomes_rgb_batches_of_its_pixels(X, size):
    before = X.copy()
    source = adapters.image_source(small_extractor(), X, image_size=size, reset=True)
    batch = source.load(np.arange(len(X)))
    assert batch.shape == (len(X), *size, 3) and batch.dtype == np.float32
    assert np.isfinite(batch).all() and batch.min() >= 0 and batch.max() <= 255 + 1e-3
    if X.shape[-1] == 1:  # gray: one level in all three channels
        np.testing.assert_array_equal(batch, np.repeat(batch[..., :1], 3, axis=-1))
    if X.shape[1:3] == size:
        np.testing.assert_array_equal(batch, np.broadcast_to(X, batch.shape).astype(np.float32))
    for index in range(len(X)):  # no image depends on its batch-mates
        np.testing.assert_array_equal(source.load(np.array([index]))[0], batch[index])
    np.testing.assert_array_equal(X, before)


@_DIM_IMAGES_ARE_VALID
@_PROPERTIES
@given(X=pixel_arrays())
def test_cache_keys_are_equal_exactly_for_equal_images(X):
    X = np.concatenate([X, X[:1]])
    keys = adapters.image_source(small_extractor(), X, image_size=(8, 8), reset=True).keys()
    for i in range(len(X)):
        for j in range(len(X)):
            assert (keys[i] == keys[j]) == np.array_equal(X[i], X[j])


@_PROPERTIES
@given(X=pixel_arrays(), where=st.integers(0, 10**6),
       value=st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(
           lambda v: not 0 <= v <= 255), st.just(np.nan)))
def test_any_value_outside_0_255_is_refused(X, where, value):
    X = X.astype(np.float64)
    X.flat[where % X.size] = value
    match = "Input X contains" if not np.isfinite(value) else "expected 0-255"
    with pytest.raises(ValueError, match=match):
        adapters.image_source(small_extractor(), X, image_size=(8, 8), reset=True)


@_PROPERTIES
@given(rows=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 40)),
                       elements=st.floats(-1e12, 1e12)),
       size=st.tuples(st.integers(40, 48), st.integers(1, 24)))
@example(rows=np.array([[0.0, 2.2e-309], [1.0, 0.0]]), size=(40, 8))  # 255 / span overflows
def test_any_finite_rows_become_bands_within_0_255(rows, size):
    before = rows.copy()
    extractor = small_extractor()
    source = adapters.image_source(extractor, rows, image_size=size, reset=True)
    batch = source.load(np.arange(len(rows)))
    assert batch.shape == (len(rows), *size, 3)
    assert np.isfinite(batch).all() and batch.min() >= 0 and batch.max() <= 255
    spread = rows.max(axis=0) > rows.min(axis=0)
    lowest, highest = rows.argmin(axis=0), rows.argmax(axis=0)
    layout = sources._band_layout(rows.shape[1], size)
    for column in np.flatnonzero(spread):  # each column spans 0-255 over the rows
        shown = layout == column
        assert batch[lowest[column]][shown].max() == 0
        assert batch[highest[column]][shown].min() >= 255 - 1e-3
    np.testing.assert_array_equal(rows, before)


# Persistence


SERIALIZERS = ("pickle", "joblib", "cloudpickle", "skops")


def _save(estimator, path):
    import cloudpickle
    import skops.io as sio

    {"pickle": lambda: path.write_bytes(pickle.dumps(estimator)),
     "joblib": lambda: joblib.dump(estimator, path),
     "cloudpickle": lambda: path.write_bytes(cloudpickle.dumps(estimator)),
     "skops": lambda: path.write_bytes(sio.dumps(estimator))}[path.suffix[1:]]()


def _load(path):
    """Load ``path``; a skops file trusting only skconvnet's types, and the scikit-learn ones
    skops itself does not trust by default (a search's folds and scorer)."""
    import cloudpickle
    import skops.io as sio

    kind = path.suffix[1:]
    if kind == "skops":
        sklearn_types = [name for name in sio.get_untrusted_types(file=path)
                         if name.startswith("sklearn.")]
        return sio.load(path, trusted=skconvnet.TRUSTED_TYPES + sklearn_types)
    return {"pickle": pickle.loads, "cloudpickle": cloudpickle.loads}[kind](
        path.read_bytes()) if kind != "joblib" else joblib.load(path)


def _load_in_a_fresh_interpreter(path, X_path, out_path, trusted):
    """Load ``path`` with its serializer in a new interpreter that imports nothing but that
    serializer and NumPy, as a user's script would, and save what the estimator gives."""
    kind = path.suffix[1:]
    load = {
        "pickle": f"import pickle; m = pickle.load(open({str(path)!r}, 'rb'))",
        "joblib": f"import joblib; m = joblib.load({str(path)!r})",
        "cloudpickle": f"import cloudpickle; m = cloudpickle.load(open({str(path)!r}, 'rb'))",
        "skops": f"import skops.io; m = skops.io.load({str(path)!r}, trusted={trusted!r})",
    }[kind]
    use = ("import numpy as np; X = np.load({X!r}); "
           "f = m.predict_proba if hasattr(m, 'predict_proba') else m.transform "
           "if hasattr(m, 'transform') else m.predict; "
           "np.save({out!r}, f(X))").format(X=str(X_path), out=str(out_path))
    return subprocess.Popen([sys.executable, "-c", f"{load}; {use}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=path.parent)


@pytest.mark.slow
def test_round_trips_are_identical_in_a_fresh_process(few_looks, tmp_path):
    """pickle, joblib, cloudpickle and skops.io, each estimator alone (the classifier of
    classes and of tags, the regressor), in a pipeline and in a search, each loaded in an interpreter of its own that has imported nothing else; for
    skops, the only non-scikit-learn types to trust are skconvnet.TRUSTED_TYPES."""
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    X, y = few_looks
    classifier = small_classifier(head_epochs=2, fine_tune_epochs=1)
    fitted = {
        "extractor": small_extractor().fit(X),
        "int8extractor": small_extractor(precision="int8").fit(X),
        "pipeline": make_pipeline(small_extractor(), LogisticRegression()).fit(X, y),
        "search": GridSearchCV(make_pipeline(small_extractor(), LogisticRegression()),
                               {"vggfeatureextractor__layer": ["block1_pool", "block2_pool"]},
                               cv=2).fit(X, y),
        "classifier": clone(classifier).fit(X, y),
        "classifierpipeline": make_pipeline(FunctionTransformer(), clone(classifier)).fit(X, y),
        "classifiersearch": GridSearchCV(clone(classifier), {"fine_tune_epochs": [0, 1]},
                                         cv=2).fit(X, y),
        "tagger": clone(classifier).fit(X, tagged(X, y)),
        "regressor": small_regressor(fine_tune_epochs=1).fit(X, X.mean(axis=(1, 2, 3))),
    }
    np.save(tmp_path / "X.npy", X)
    runs, expected = {}, {}
    for name, estimator in fitted.items():
        expected[name] = _outputs(estimator, X)
        for kind in SERIALIZERS:
            _save(estimator, tmp_path / f"{name}.{kind}")
        untrusted = sio.get_untrusted_types(file=tmp_path / f"{name}.skops")
        ours = {type_ for type_ in untrusted if not type_.startswith("sklearn.")}
        assert ours and ours <= set(skconvnet.TRUSTED_TYPES), untrusted
        trusted = [type_ for type_ in untrusted if type_.startswith("sklearn.")] + sorted(ours)
        runs.update({(name, kind): (tmp_path / f"{name}.{kind}", trusted)
                     for kind in SERIALIZERS})
    pending = list(runs)
    while pending:  # three interpreters at a time
        batch, pending = pending[:3], pending[3:]
        started = {key: _load_in_a_fresh_interpreter(runs[key][0], tmp_path / "X.npy",
                                                     tmp_path / f"{key[0]}-{key[1]}.npy",
                                                     runs[key][1]) for key in batch}
        for (name, kind), process in started.items():
            _, stderr = process.communicate()
            assert process.returncode == 0, (name, kind, stderr.decode()[-2000:])
            np.testing.assert_array_equal(np.load(tmp_path / f"{name}-{kind}.npy"),
                                          expected[name])
    sio.dump(fitted["classifier"], tmp_path / "dumped.skops")  # and dump + loads
    back = sio.loads((tmp_path / "dumped.skops").read_bytes(), trusted=skconvnet.TRUSTED_TYPES)
    np.testing.assert_array_equal(back.predict_proba(X), expected["classifier"])


def _tampered(estimator, changes):
    """A pickle of ``estimator`` whose saved state has ``changes`` (``...``: left out)."""
    state = {**estimator.__getstate__(), **changes}
    state = {name: value for name, value in state.items() if value is not ...}

    class Tampered:
        def __reduce__(self):
            return object.__new__, (type(estimator),), state

    return pickle.dumps(Tampered())


@pytest.mark.parametrize("changes, error, message", [
    ({"model_": "a string"}, TypeError,
     r"The saved FineTunedConvNetClassifier's model_ is a str, not the bytes of a \.keras "
     r"archive.*Save fitted estimators with pickle, joblib or skops\.io, or refit"),
    ({"model_": b"PK\x03\x04 not a zip"}, ValueError,
     r"The saved FineTunedConvNetClassifier's model_ \(a \.keras archive of 14 bytes\) could "
     r"not be loaded: .*Load it with the skconvnet and Keras versions it was saved with"),
    ({"backbone": ...}, ValueError,
     r"The saved FineTunedConvNetClassifier has no backbone: it was saved with skconvnet "),
])
def test_a_state_that_cannot_be_restored_fails_on_loading(few_looks, changes, error, message):
    X, y = few_looks
    clf = small_classifier(head_epochs=1, fine_tune_epochs=0).fit(X, y)
    with pytest.raises(error, match=message):
        pickle.loads(_tampered(clf, changes))


def _outputs(estimator, X):
    """What a fitted estimator gives: features, class probabilities or predicted numbers."""
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)
    return (estimator.transform if hasattr(estimator, "transform") else estimator.predict)(X)


def test_keras_models_in_pickles_load_in_safe_mode(few_looks):
    """A pickled network that would run code (a lambda layer) is refused on loading."""
    import keras

    X, y = few_looks
    clf = small_classifier(head_epochs=1, fine_tune_epochs=0).fit(X, y)
    inputs = keras.Input(shape=(32, 32, 3))
    clf.model_ = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 0)(inputs))
    tampered = pickle.dumps(clf)
    with pytest.raises(ValueError, match="safe_mode"):
        pickle.loads(tampered)


def test_a_pickle_of_another_version_warns(few_looks):
    X, _ = few_looks
    state = small_extractor().fit(X).__getstate__()
    assert state["_skconvnet_version"] == skconvnet.__version__
    state["_skconvnet_version"] = "0.0.1"
    loaded = VGGFeatureExtractor.__new__(VGGFeatureExtractor)
    with pytest.warns(UserWarning, match=r"saved with skconvnet 0.0.1 and is loaded with "
                                         rf"skconvnet {re.escape(skconvnet.__version__)}.*Refit"):
        loaded.__setstate__(state)
    np.testing.assert_array_equal(loaded.transform(X), small_extractor().fit_transform(X))


# Interruption: never half-fitted


@pytest.mark.parametrize("fitted_before", [False, True])
def test_interrupted_extractor_fit_leaves_it_unfitted(few_looks, monkeypatch, fitted_before):
    X, _ = few_looks
    rows = np.random.default_rng(1).normal(size=(16, 5))
    extractor = small_extractor()
    if fitted_before:
        extractor.fit(X)
    images = adapters.ImageInput._images

    def learn_then_interrupt(self, X, reset):  # after the adapter has learned the rows' range
        images(self, X, reset=reset)
        raise KeyboardInterrupt

    monkeypatch.setattr(adapters.ImageInput, "_images", learn_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        extractor.fit(rows)
    assert not [name for name in vars(extractor) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        extractor.transform(X)
    monkeypatch.undo()
    np.testing.assert_array_equal(extractor.fit(X).transform(X), small_extractor().fit_transform(X))


@pytest.mark.parametrize("stage", ["unfreeze", "inference_copy"])
def test_interrupted_classifier_fit_leaves_it_unfitted(few_looks, monkeypatch, stage):
    X, y = few_looks
    clf = small_classifier(head_epochs=1, fine_tune_epochs=1).fit(X, y)
    monkeypatch.setattr(network, stage, _interrupt)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    assert not [name for name in vars(clf) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_a_failed_fit_keeps_the_parameters_and_output_settings(few_looks):
    X, _ = few_looks
    extractor = small_extractor().set_output(transform="pandas").fit(X)
    with pytest.raises(ValueError, match="too small"):
        extractor.set_params(image_size=(2, 2)).fit(X)
    assert extractor.get_params()["image_size"] == (2, 2)
    extractor.set_params(image_size=(32, 32))
    assert hasattr(extractor.fit(X).transform(X), "columns")  # still a DataFrame


# Concurrency: threads and processes


@pytest.mark.parametrize("cache", [False, True])
def test_transform_from_several_threads_equals_sequential(few_looks, cache, computed):
    X, _ = few_looks

    def forget():  # the threads must compute (and store) every image themselves
        skconvnet.clear_cache()
        computed.clear()

    _assert_threads_agree_with_sequential(small_extractor(cache=cache).fit(X).transform, X,
                                          between=forget)
    # 8 parts cover every image twice; with the cache, a race may compute an image twice
    assert (len(X) if cache else 2 * len(X)) <= computed["block2_pool"] <= 2 * len(X)


def test_predict_from_several_threads_equals_sequential(few_looks):
    X, y = few_looks
    clf = small_classifier(head_epochs=1, fine_tune_epochs=0).fit(X, y)
    _assert_threads_agree_with_sequential(clf.predict_proba, X)


def _assert_threads_agree_with_sequential(method, X, between=lambda: None):
    """``method`` on 8 overlapping parts of ``X`` from 8 threads at once, as one by one."""
    inputs = [X[i::4] for i in range(4)] * 2
    sequential = [method(part) for part in inputs]
    between()
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(method, inputs))
    for one, other in zip(sequential, concurrent):
        np.testing.assert_array_equal(one, other)


def test_cross_validate_in_process_workers(few_looks):
    X, y = few_looks
    pipeline = make_pipeline(small_extractor(), LogisticRegression())
    in_process = cross_validate(pipeline, X, y, cv=4, n_jobs=1)
    in_workers = cross_validate(pipeline, X, y, cv=4, n_jobs=2)  # loky: worker processes
    np.testing.assert_allclose(in_workers["test_score"], in_process["test_score"], rtol=1e-12)


# Memory: flat over many fits

_FITS_IN_A_LOOP = """
import ctypes, gc, sys, numpy as np
from helpers import small_classifier, small_extractor
from skconvnet.compute import activations
X = np.random.default_rng(0).integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8)
y = np.array(["dark", "bright"] * 8)
fitted = {"extractor": lambda: small_extractor(cache=False).fit(X).transform,
          "classifier": lambda: small_classifier().fit(X, y).predict}[sys.argv[1]]
computed, counting = [], []  # images the network computed for transform / predict
predict = activations.predict_batch
activations.predict_batch = lambda model, batch, **options: (
    counting and computed.append(len(batch))) or predict(model, batch, **options)

def fit():
    predictions = fitted()
    counting.append(True)
    predictions(X)
    counting.clear()

def rss_mb():
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # what the allocator holds free is not a leak
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20

for fits in (20, 10):
    for _ in range(fits):
        fit()
    print(rss_mb())
print(sum(computed))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads Linux's /proc")
@pytest.mark.parametrize("kind", ["extractor", "classifier"])
def test_thirty_fits_in_a_loop_keep_memory_flat(kind):
    """As in a grid search: 30 fits in one process, each running the network on its 16
    images (the extractor without the activation cache, which would serve all but the first).
    Over the last 10, memory grows by < 8 MB per fit: a fit used to keep ~50 MB of its
    network alive in TensorFlow's gradient registry; now a few MB while the allocator still
    grows, about 2 MB after (bench_fit_memory.py)."""
    done = subprocess.run([sys.executable, "-c", _FITS_IN_A_LOOP, kind], capture_output=True,
                          text=True, check=True, cwd=TESTS)
    after_20, after_30, computed = map(float, done.stdout.split())
    assert computed == 30 * 16
    assert (after_30 - after_20) / 10 < 8, (
        f"RSS grew from {after_20:.0f} MB to {after_30:.0f} MB in 10 fits")


def test_the_network_is_released_with_the_classifier(few_looks):
    import gc
    import weakref

    X, y = few_looks
    clf = small_classifier(head_epochs=1, fine_tune_epochs=1).fit(X, y)
    model = weakref.ref(clf.model_)
    variables = [weakref.ref(variable) for variable in clf.model_.weights]
    del clf
    gc.collect()
    assert model() is None and all(variable() is None for variable in variables)
