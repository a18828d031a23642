"""The activation cache: reuse across a layer search, identical results, budget, staleness."""

import threading

import numpy as np
import pytest
from helpers import small_extractor
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import skconvnet
from skconvnet import list_layers
from skconvnet.compute.cache import DEFAULT_BUDGET, activation_cache

LAYERS = ["block3_pool", "block4_pool", "block5_pool"]


@pytest.fixture(autouse=True)
def empty_cache():
    skconvnet.clear_cache()
    yield
    skconvnet.set_cache_budget(DEFAULT_BUDGET)
    skconvnet.clear_cache()


@pytest.fixture
def labelled():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(30, 32, 32, 3), dtype=np.uint8)
    y = np.array([0, 1] * 15)
    X[y == 1] //= 2  # something to learn
    return X, y


def search(X, y, cache):
    pipeline = Pipeline([
        ("vgg", small_extractor(cache=cache)),
        ("clf", LogisticRegression(max_iter=1000)),
    ])
    return GridSearchCV(pipeline, {"vgg__layer": LAYERS}, cv=3).fit(X, y)


def test_layer_search_computes_each_layer_once_per_image(labelled, computed):
    X, y = labelled
    search(X, y, cache=True)
    assert computed == {name: len(X) for name in list_layers("vgg16")}


def test_layer_search_without_cache_recomputes(labelled, computed):
    X, y = labelled
    fitted = search(X, y, cache=False)
    # Each candidate runs every layer up to its own on all images in each of the 3 folds
    # (training and test part), and the refit runs the best candidate's once more.
    names = list_layers("vgg16")
    refit = names[: names.index(fitted.best_params_["vgg__layer"]) + 1]
    reaching = {name: sum(names.index(name) <= names.index(layer) for layer in LAYERS)
                for name in names}
    assert computed == {name: (3 * reaching[name] + (name in refit)) * len(X)
                        for name in names if reaching[name] or name in refit}


def test_cv_results_identical_with_and_without_cache(labelled):
    X, y = labelled
    with_cache, without = search(X, y, cache=True), search(X, y, cache=False)
    for key in ["params", "mean_test_score", "std_test_score", "rank_test_score"] + [
        f"split{k}_test_score" for k in range(3)
    ]:
        assert np.array_equal(with_cache.cv_results_[key], without.cv_results_[key]), key
    np.testing.assert_array_equal(
        with_cache.best_estimator_.predict_proba(X), without.best_estimator_.predict_proba(X)
    )


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("pooling", [None, "avg", "max"])
def test_resumed_and_cached_features_equal_direct_ones(images, precision, pooling):
    def features(layer, cache):
        return small_extractor(layer=layer, pooling=pooling, precision=precision,
                               cache=cache).fit_transform(images)

    direct = features("block4_pool", cache=False)
    features("block3_pool", cache=True)
    resumed = features("block4_pool", cache=True)  # from the cached block3_pool
    cached = features("block4_pool", cache=True)  # an exact hit
    np.testing.assert_array_equal(resumed, direct)
    np.testing.assert_array_equal(cached, direct)


def test_repeated_transform_is_served_from_the_cache(images, computed):
    extractor = small_extractor(layer="block3_pool").fit(images)
    first = extractor.transform(images)
    counted = dict(computed)
    np.testing.assert_array_equal(extractor.transform(images[::-1]), first[::-1])
    clone(extractor).fit(images).transform(images[:3])
    assert computed == counted


def test_several_layers_in_one_pass(images, computed):
    layers = ["block4_pool", "block2_pool"]
    extractor = small_extractor(layer=layers, cache=False).fit(images)
    both = extractor.transform(images)
    assert computed == {name: len(images) for name in list_layers("vgg16")[:14]}
    separate = [small_extractor(layer=layer, cache=False).fit_transform(images) for layer in layers]
    np.testing.assert_array_equal(both, np.hstack(separate))
    names = extractor.get_feature_names_out()
    assert len(names) == both.shape[1] == 512 + 128
    assert names[0] == "block4_pool_avg_ch0" and names[512] == "block2_pool_avg_ch0"


def test_layer_list_errors(images):
    with pytest.raises(ValueError, match="must name at least one layer, each once"):
        small_extractor(layer=["block2_pool", "block2_pool"]).fit(images)
    with pytest.raises(ValueError, match="must name at least one layer"):
        small_extractor(layer=[]).fit(images)
    with pytest.raises(ValueError, match="Unknown layer 'block9_pool'"):
        small_extractor(layer=["block2_pool", "block9_pool"]).fit(images)


def test_budget_is_respected(images):
    per_image = 4 * 8 * 8 * 128  # block2_pool at 32x32
    skconvnet.set_cache_budget(5 * per_image)
    small_extractor(layer="block2_pool").fit_transform(images[:2])  # 2 images: admitted
    assert len(activation_cache) == 2
    small_extractor(layer="block2_pool").fit_transform(images[2:8])  # 6 > half the budget
    assert len(activation_cache) == 2
    for start in (2, 4, 6):  # two at a time: admitted, oldest evicted
        small_extractor(layer="block2_pool").fit_transform(images[start : start + 2])
        assert activation_cache.nbytes <= 5 * per_image
    assert len(activation_cache) == 5


def test_cache_can_be_turned_off(images):
    small_extractor(cache=False).fit_transform(images)
    assert len(activation_cache) == 0
    skconvnet.set_cache_budget(0)
    small_extractor(cache=True).fit_transform(images)
    assert len(activation_cache) == 0
    with pytest.raises(ValueError, match="n_bytes must be a non-negative integer"):
        skconvnet.set_cache_budget(-1)


def test_changed_image_size_is_not_stale(images):
    small_extractor(image_size=(32, 32)).fit_transform(images)
    bigger = small_extractor(image_size=(48, 48)).fit_transform(images)
    np.testing.assert_array_equal(
        bigger, small_extractor(image_size=(48, 48), cache=False).fit_transform(images)
    )


def test_changed_pixels_are_not_stale(images):
    extractor = small_extractor().fit(images)
    before = extractor.transform(images)
    changed = images.copy()
    changed[0] = 255 - changed[0]
    after = extractor.transform(changed)
    np.testing.assert_array_equal(after[1:], before[1:])
    np.testing.assert_array_equal(after[:1], small_extractor(cache=False).fit_transform(changed[:1]))


def test_rewritten_files_are_not_stale(images, image_files):
    paths = image_files(images[:2])
    extractor = small_extractor().fit(paths)
    before = extractor.transform(paths)
    image_files(images[2:4])  # same file names, new pixels
    np.testing.assert_array_equal(extractor.transform(paths), extractor.transform(images[2:4]))
    assert not np.array_equal(extractor.transform(paths), before)


def test_changed_weights_are_not_stale(images, hed_weights):
    small_extractor(weights=None).fit_transform(images)
    pretrained = small_extractor(weights=hed_weights).fit_transform(images)
    np.testing.assert_array_equal(
        pretrained, small_extractor(weights=hed_weights, cache=False).fit_transform(images)
    )


def test_tabular_rows_key_on_the_fitted_range():
    X = np.random.default_rng(1).normal(size=(10, 4))
    first = small_extractor().fit(X)
    second = small_extractor().fit(X * 2)  # other range: other images for the same rows
    np.testing.assert_array_equal(
        second.transform(X), small_extractor(cache=False).fit(X * 2).transform(X)
    )
    assert not np.array_equal(first.transform(X), second.transform(X))


def test_threads_get_the_same_features(images):
    expected = small_extractor(cache=False, layer="block3_pool").fit_transform(images)
    extractor = small_extractor(layer="block3_pool").fit(images)
    results = [None] * 4

    def work(slot):
        results[slot] = extractor.transform(images)

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_array_equal(result, expected)


def test_layer_scores_table_and_plot(labelled, tmp_path):
    X, y = labelled
    fitted = search(X, y, cache=True)
    table = skconvnet.layer_scores(fitted)
    assert list(table.index) == LAYERS
    assert list(table["depth"]) == [10, 14, 18]
    for layer in LAYERS:
        row = fitted.cv_results_["params"].index({"vgg__layer": layer})
        assert table.loc[layer, "mean_test_score"] == fitted.cv_results_["mean_test_score"][row]
    ax = skconvnet.plot_layer_scores(fitted)
    ax.figure.savefig(tmp_path / "depth.png")
    assert (tmp_path / "depth.png").stat().st_size > 0
    assert [t.get_text() for t in ax.get_xticklabels()] == LAYERS


def test_layer_scores_needs_to_know_the_parameter():
    results = {"params": [{"a__layer": "block3_pool", "b__layer": "block4_pool"}],
               "param_a__layer": ["block3_pool"], "param_b__layer": ["block4_pool"],
               "mean_test_score": [0.5], "std_test_score": [0.0]}
    with pytest.raises(ValueError, match="Cannot tell which searched parameter is the layer"):
        skconvnet.layer_scores(results)
    assert list(skconvnet.layer_scores(results, param="b__layer").index) == ["block4_pool"]


def test_plot_without_matplotlib_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    results = {"params": [{"vgg__layer": "block3_pool"}], "param_vgg__layer": ["block3_pool"],
               "mean_test_score": [0.5], "std_test_score": [0.0]}
    with pytest.raises(ImportError, match=r"plot_layer_scores needs matplotlib: pip install "
                                          r"'skconvnet\[plot\]' \(or pip install matplotlib pandas\)"):
        skconvnet.plot_layer_scores(results)
