"""On a real dask.distributed cluster with worker processes: searches, featurizing, faults."""

import os
import signal
import time

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import Pipeline

from conftest import small_extractor
from skconvnet import _backbone, dask_transform

distributed = pytest.importorskip("distributed", reason="needs pip install 'skconvnet[dask]'")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        env={"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def two_looks():
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 100, size=(8, 32, 32, 3))
    bright = rng.integers(155, 256, size=(8, 32, 32, 3))
    return np.concatenate([dark, bright]).astype(np.uint8), np.array([0] * 8 + [1] * 8)


def test_grid_search_on_the_cluster_matches_in_process(client, two_looks):
    import joblib

    X, y = two_looks

    def search():
        pipeline = Pipeline([("vgg", small_extractor()), ("clf", LogisticRegression())])
        grid = {"vgg__layer": ["block1_pool", "block2_pool"], "clf__C": [0.01, 1.0]}
        return GridSearchCV(pipeline, grid, cv=2, n_jobs=-1)

    local = search().fit(X, y)
    with joblib.parallel_backend("dask"):
        remote = search().fit(X, y)
    assert remote.best_params_ == local.best_params_
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"], rtol=1e-12)
    # 8 fits + refit ran in the workers: each read the weights once, then reused them
    loads = client.run(lambda: _backbone._load.cache_info())
    assert all(info.misses <= 1 for info in loads.values()), loads
    assert sum(info.hits for info in loads.values()) >= 1, loads


def test_cross_validate_on_the_cluster_matches_in_process(client, two_looks):
    import joblib

    X, y = two_looks
    pipeline = Pipeline([("vgg", small_extractor()), ("clf", LogisticRegression())])
    local = cross_validate(pipeline, X, y, cv=4, n_jobs=-1)
    with joblib.parallel_backend("dask"):
        remote = cross_validate(pipeline, X, y, cv=4, n_jobs=-1)
    np.testing.assert_allclose(remote["test_score"], local["test_score"], rtol=1e-12)


def test_dask_transform_gives_the_features_of_transform_in_order(client, image_files, images):
    paths = image_files(np.concatenate([images] * 3), ".png")  # 24 files
    extractor = small_extractor().fit(paths)
    features = dask_transform(extractor, paths, partition_size=5)
    assert features.chunks[0] == (5, 5, 5, 5, 4)
    np.testing.assert_array_equal(client.compute(features).result(), extractor.transform(paths))


def test_a_worker_killed_mid_job_costs_neither_rows_nor_duplicates(client, image_files):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(48, 96, 96, 3), dtype=np.uint8)
    paths = image_files(pixels, ".png")
    extractor = small_extractor(image_size=(96, 96), layer="block3_pool").fit(paths[:2])
    expected = extractor.transform(paths)

    job = client.compute(dask_transform(extractor, paths, partition_size=3))  # 16 tasks
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 60
    while not any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    busy = next(worker for worker, tasks in client.processing().items() if tasks)
    assert not job.done()
    os.kill(pids[busy], signal.SIGKILL)

    features = job.result(timeout=300)
    assert features.shape == expected.shape
    np.testing.assert_array_equal(features, expected)
