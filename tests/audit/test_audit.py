"""find_label_issues, find_duplicates and find_outliers: each fault built, then found; clean
data flagged little; memory bounded."""

import io
import tracemalloc

import numpy as np
import pytest
from helpers import IMAGENET_WEIGHTS, small_extractor, texture_folder
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skconvnet import (
    VGGFeatureExtractor,
    find_duplicates,
    find_label_issues,
    find_outliers,
    load_image_folder,
)
from skconvnet.audit.labels import label_issues


def _blobs(n_per_class=60, classes=("cat", "dog", "fox"), spread=1.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = 8 * np.eye(len(classes), 6)
    X = np.concatenate([rng.normal(centre, spread, (n_per_class, 6)) for centre in centres])
    return X, np.repeat(np.array(classes), n_per_class)


# label issues


@pytest.mark.no_backend
def test_flipped_labels_are_found_first_with_the_class_they_belong_to():
    X, y = _blobs()
    flipped = {5: "dog", 70: "fox", 150: "cat"}  # a cat, a dog and a fox filed wrongly
    given = y.copy()
    for i, label in flipped.items():
        given[i] = label
    issues = find_label_issues(LogisticRegression(), X, given)
    assert sorted(issues.indices[:3].tolist()) == sorted(flipped)
    for i, given_label, suggested in zip(issues.indices[:3], issues.given, issues.suggested):
        assert given_label == flipped[i] and suggested == y[i]
    assert np.all(np.diff(issues.margin) <= 0)
    assert len(issues) <= 6  # the three, and at most a few borderline photos


@pytest.mark.no_backend
def test_clean_labels_give_no_issue():
    X, y = _blobs()
    assert len(find_label_issues(LogisticRegression(), X, y)) == 0


@pytest.mark.no_backend
def test_an_issue_needs_its_own_class_below_and_another_above_its_threshold():
    classes = np.array(["a", "b", "c"])
    proba = np.array([
        [0.9, 0.05, 0.05],  # a, confident
        [0.3, 0.35, 0.35],  # a, unsure: below a's threshold, but no other class clears its own
        [0.3, 0.7, 0.0],  # a, below a's threshold (0.5), b clears b's (0.575): an issue
        [0.1, 0.8, 0.1],  # b, confident
        [0.65, 0.35, 0.0],  # b below b's threshold, a clears a's: an issue
        [0.0, 0.0, 1.0],
    ])
    y = np.array(["a", "a", "a", "b", "b", "c"])
    issues = label_issues(y, proba, classes)
    np.testing.assert_allclose(issues.thresholds, [0.5, 0.575, 1.0])
    assert issues.indices.tolist() == [2, 4]
    assert issues.suggested.tolist() == ["b", "a"]
    np.testing.assert_allclose(issues.margin, [0.4, 0.3])
    np.testing.assert_allclose(issues.margins, [-0.85, 0.05, 0.4, -0.7, 0.3, -1.0])


def test_a_pipeline_computes_its_features_once_and_cross_validates_the_rest(
        monkeypatch, images):
    calls = []
    transform = VGGFeatureExtractor.transform
    monkeypatch.setattr(VGGFeatureExtractor, "transform",
                        lambda self, X: calls.append(len(X)) or transform(self, X))
    X = np.concatenate([images, 255 - images])
    y = np.repeat(["a", "b"], len(images))
    head = make_pipeline(StandardScaler(), LogisticRegression(C=0.1))
    issues = find_label_issues(make_pipeline(small_extractor(), head), X, y, cv=2)
    assert calls == [len(X)]
    features = small_extractor().fit_transform(X)
    proba = cross_val_predict(head, features, y, cv=2, method="predict_proba")
    expected = label_issues(y, proba, np.array(["a", "b"]))
    np.testing.assert_array_equal(issues.indices, expected.indices)
    np.testing.assert_allclose(issues.margins, expected.margins)


@pytest.mark.slow
def test_a_fine_tuned_classifier_finds_a_dark_image_filed_as_bright():
    from helpers import dark_and_bright, small_classifier

    X, y = dark_and_bright(12)
    given = y.copy()
    given[3] = "bright"
    issues = find_label_issues(small_classifier(fine_tune_epochs=0), X, given, cv=3)
    assert issues.indices[0] == 3 and issues.suggested[0] == "dark"


def test_a_list_of_paths_and_a_folder_give_the_same_outliers_and_label_issues(tmp_path):
    folder = texture_folder(tmp_path / "photos", 10, seed=5)
    paths, labels = load_image_folder(folder)
    extractor = small_extractor(layer="block1_pool")
    from_folder, from_paths = find_outliers(extractor, folder), find_outliers(extractor, paths,
                                                                               labels)
    np.testing.assert_array_equal(from_folder.distances, from_paths.distances)
    assert from_folder.photo.tolist() == from_paths.photo.tolist()
    model = make_pipeline(extractor, StandardScaler(), LogisticRegression(C=0.1))
    np.testing.assert_array_equal(find_label_issues(model, folder, cv=3).margins,
                                  find_label_issues(model, paths, labels, cv=3).margins)


def test_a_folder_gives_the_photos_and_their_labels(tmp_path):
    folder = texture_folder(tmp_path / "photos", 10, seed=3)
    wrong = folder / "stripes" / "misfiled.png"
    (folder / "checks" / "04.png").rename(wrong)
    model = make_pipeline(small_extractor(layer="block1_pool"), StandardScaler(),
                          LogisticRegression(C=0.1))
    issues = find_label_issues(model, folder, cv=3)
    assert issues.photo[0] == str(wrong)
    assert (issues.given[0], issues.suggested[0]) == ("stripes", "checks")
    frame = issues.to_frame()
    assert list(frame.columns) == ["index", "given", "suggested", "margin", "proba_checks",
                                   "proba_stripes", "photo"]
    paths, _ = load_image_folder(folder)
    assert paths[frame["index"][0]] == wrong


@pytest.mark.no_backend
def test_label_issue_mistakes_are_named():
    X, y = _blobs()
    with pytest.raises(TypeError, match="needs a classifier with predict_proba; .*LinearRegr"):
        from sklearn.linear_model import LinearRegression

        find_label_issues(LinearRegression(), X, np.arange(len(X)))
    with pytest.raises(ValueError, match="needs the given labels: pass y"):
        find_label_issues(LogisticRegression(), X)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        find_label_issues(LogisticRegression(), X, y[:-1])
    with pytest.raises(ValueError, match=r"y holds one class \(\['cat'\]\)"):
        find_label_issues(LogisticRegression(), X, np.full(len(X), "cat"))
    few = y.copy()
    few[:3] = "owl"
    with pytest.raises(ValueError, match=r"Classes \['owl'\] have fewer photos than the 5 "
                       "folds"):
        find_label_issues(LogisticRegression(), X, few)


# duplicates


@pytest.mark.no_backend
def test_a_near_copy_leaked_into_another_set_is_found():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(300, 32)), rng.normal(size=(100, 32))
    test[7] = train[120] + rng.normal(0, 0.05, 32)
    test[60] = train[3]
    leaks = find_duplicates(None, train, test)
    assert leaks.pairs.tolist() == [[3, 60], [120, 7]]
    assert leaks.exact.tolist() == [True, False]
    assert leaks.leaked.tolist() == [60, 7] and leaks.indices.tolist() == [3, 120]
    assert leaks.similarity[0] == pytest.approx(1) and 0.95 < leaks.similarity[1] < 1
    assert leaks.groups == [] and leaks.conflicting == []


@pytest.mark.no_backend
def test_copies_within_a_set_form_groups_and_disagreeing_labels_are_named():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 32))
    X[50] = X[10] * 1.01  # 10, 50 and 90 are one photo three times
    X[90] = X[10] + rng.normal(0, 0.02, 32)
    X[150] = X[40]  # filed as a and as b
    y = np.repeat(["a", "b"], 100)
    duplicates = find_duplicates(None, X, y=y)
    assert [group.tolist() for group in duplicates.groups] == [[10, 50, 90], [40, 150]]
    assert [group.tolist() for group in duplicates.conflicting] == [[40, 150]]
    assert len(duplicates) == 4  # 10-50, 10-90, 50-90, 40-150
    assert set(map(tuple, duplicates.pairs.tolist())) == {(10, 50), (10, 90), (50, 90),
                                                           (40, 150)}
    exact = dict(zip(map(tuple, duplicates.pairs.tolist()), duplicates.exact))
    assert exact[(40, 150)] and not exact[(10, 50)]  # the same direction is not the same row
    assert list(duplicates.to_frame().columns) == ["first", "second", "similarity", "exact"]


@pytest.mark.no_backend
def test_the_copy_layer_is_the_searched_layer_nearest_three_quarters_of_the_depth():
    from skconvnet.audit.collection import copy_layer
    from skconvnet.backbones import specs

    vgg16 = specs.get("vgg16")
    assert copy_layer(vgg16, ["block3_pool", "block4_pool", "block5_pool"]) == "block4_pool"
    assert copy_layer(vgg16, ["block5_pool", "block2_pool"]) == "block5_pool"
    assert copy_layer(specs.get("resnet50"), specs.get("resnet50").default_search()) == (
        "conv4_block6_out")
    assert copy_layer(specs.get("dinov2_small"), specs.get("dinov2_small").default_search()) == (
        "block9")


@pytest.mark.no_backend
def test_distinct_rows_give_no_pair_and_the_threshold_is_checked():
    X = np.random.default_rng(2).normal(size=(500, 64))
    assert len(find_duplicates(None, X)) == 0
    with pytest.raises(ValueError, match=r"threshold=1.5: give a cosine similarity in \(0, 1\]"):
        find_duplicates(None, X, threshold=1.5)


def test_an_exact_copy_of_an_image_is_marked_exact_and_a_changed_one_is_not(images):
    X = np.concatenate([images, images[2:3], np.clip(images[5:6] * 1.02, 0, 255)]).astype(np.uint8)
    duplicates = find_duplicates(small_extractor(), X, threshold=0.999)
    pairs = {tuple(pair): exact for pair, exact in zip(duplicates.pairs.tolist(),
                                                       duplicates.exact)}
    assert pairs[(2, 8)] is np.True_ or pairs[(2, 8)] is True
    assert (5, 9) in pairs and not pairs[(5, 9)]


def test_a_pipeline_and_a_series_of_paths_are_taken_as_the_extractor_and_the_photos(
        images, image_files):
    pd = pytest.importorskip("pandas")
    paths = image_files([*images, images[4]])
    frame = pd.DataFrame({"photo": [str(path) for path in paths]})
    model = make_pipeline(small_extractor(), StandardScaler(), LogisticRegression())
    duplicates = find_duplicates(model, frame["photo"], threshold=0.9999)
    assert [4, 8] in duplicates.pairs.tolist()
    assert duplicates.exact[duplicates.pairs.tolist().index([4, 8])]
    outliers = find_outliers(model, frame["photo"], n_neighbors=2, cutoff=-np.inf)
    assert sorted(outliers.photo.tolist()) == sorted(frame["photo"])


@pytest.mark.no_backend
def test_duplicates_and_outliers_of_thousands_of_rows_never_hold_a_square_matrix():
    n = 6000
    X = np.random.default_rng(3).normal(size=(n, 64)).astype(np.float32)
    X[5999] = X[0]
    square = n * n * 8
    tracemalloc.start()
    try:
        duplicates = find_duplicates(None, X, block_size=512)
        _, duplicates_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        outliers = find_outliers(None, X)
        _, outliers_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert duplicates.pairs.tolist() == [[0, 5999]]
    assert len(outliers.distances) == n
    assert duplicates_peak < square / 4, duplicates_peak
    assert outliers_peak < square / 4, outliers_peak


def _resaved(path, quality=60, scale=0.8, crop=0.04):
    picture = Image.open(path).convert("RGB")
    width, height = picture.size
    picture = picture.crop((round(crop * width), round(crop * height), width, height))
    picture = picture.resize((round(picture.width * scale), round(picture.height * scale)))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@pytest.mark.slow
def test_a_resaved_resized_cropped_photo_is_found_among_real_photos(cats_and_dogs,
                                                                    imagenet_weights):
    train, _ = load_image_folder(cats_and_dogs / "train", max_per_class=60)
    test, _ = load_image_folder(cats_and_dogs / "validation", max_per_class=30)
    test = [path.read_bytes() for path in test] + [_resaved(train[17])]
    extractor = VGGFeatureExtractor(layer="block4_pool", pooling="avg", weights=imagenet_weights)
    leaks = find_duplicates(extractor, train, test)
    assert leaks.pairs.tolist() == [[17, 60]] and not leaks.exact[0]


# outliers


@pytest.mark.no_backend
def test_a_point_far_from_its_class_is_the_first_outlier_and_clean_data_has_few():
    X, y = _blobs(n_per_class=200)
    clean = find_outliers(None, X, y)
    assert len(clean) <= 0.01 * len(X)
    X[30] = X[250]  # a photo of the second class filed under the first
    outliers = find_outliers(None, X, y)
    assert outliers.indices[0] == 30 and outliers.label[0] == "cat"
    assert outliers.distances.argmax() == 30
    assert np.all(np.diff(outliers.distance) <= 0)
    assert np.all(outliers.z_score > 3.5)


@pytest.mark.no_backend
def test_without_labels_a_photo_is_compared_with_the_whole_set():
    X, y = _blobs(n_per_class=200)
    X[30] = X[250]  # typical of the set, though not of its class
    assert 30 not in find_outliers(None, X).indices
    X[31] = -4  # unlike anything
    assert find_outliers(None, X).indices[0] == 31


@pytest.mark.no_backend
def test_outlier_mistakes_are_named():
    X, y = _blobs()
    with pytest.raises(ValueError, match="Class 'lone' has one photo"):
        find_outliers(None, X, np.r_[y[:-1], ["lone"]])
    with pytest.raises(ValueError, match="y has 179 labels for 180 photos"):
        find_outliers(None, X, y[:-1])
    with pytest.raises(ValueError, match="n_neighbors=0: give a number of neighbours"):
        find_outliers(None, X, n_neighbors=0)
    with pytest.raises(TypeError, match="compares the photos' features: pass a feature "
                       "extractor.*got LogisticRegression"):
        find_outliers(LogisticRegression(), X)
    with pytest.raises(ValueError, match="find_outliers with extractor=None takes feature rows "
                       r"\(a 2-D array of numbers\), not these .*Pass images with an extractor"):
        find_outliers(None, ["cat.1.jpg", "cat.2.jpg"])
    with pytest.raises(ValueError, match="y has 179 labels for 180 photos; give one per photo "
                       "of X"):
        find_duplicates(None, X, y=y[:-1])
    assert len(find_outliers(None, X, y, n_neighbors=np.int64(3)).distances) == len(X)


@pytest.mark.slow
def test_a_texture_among_cat_photos_is_their_first_outlier(cats_and_dogs, imagenet_weights,
                                                            tmp_path):
    cats, _ = load_image_folder(cats_and_dogs / "train", max_per_class=80)
    cats = cats[:80]
    noise = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(noise).resize((400, 300)).save(tmp_path / "texture.png")
    photos = [*cats[:40], tmp_path / "texture.png", *cats[40:]]
    extractor = VGGFeatureExtractor(layer="block5_pool", pooling="avg", weights=imagenet_weights)
    outliers = find_outliers(extractor, photos)
    assert outliers.indices[0] == 40
    assert outliers.photo[0] == str(tmp_path / "texture.png")
    assert len(outliers) <= 4
