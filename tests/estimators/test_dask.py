"""On a real dask.distributed cluster with worker processes: searches, featurizing, faults."""

import os
import re
import signal
import sys
import time

import numpy as np
import pytest
from helpers import small_extractor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import Pipeline

from skconvnet import dask_transform
from skconvnet.backbones import weights

distributed = pytest.importorskip("distributed", reason="needs pip install 'skconvnet[dask]'")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        env={"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


def test_grid_search_on_the_cluster_matches_in_process(client, few_looks):
    import joblib

    X, y = few_looks

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
    loads = client.run(lambda: weights._load.cache_info())
    assert all(info.misses <= 1 for info in loads.values()), loads
    assert sum(info.hits for info in loads.values()) >= 1, loads


def test_cross_validate_on_the_cluster_matches_in_process(client, few_looks):
    import joblib

    X, y = few_looks
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


@pytest.mark.parametrize("backbone, layer, size", [("dinov2_small", "block2", 28),
                                                   ("efficientnet_lite0", "stage3", 32)])
def test_dask_transform_of_a_keras_hub_backbone(client, images, backbone, layer, size):
    """Workers build the keras-hub network from the family's configuration and its seeded
    random weights: the same features as in this process."""
    pytest.importorskip("keras_hub")
    from skconvnet import ConvNetFeatureExtractor

    extractor = ConvNetFeatureExtractor(backbone=backbone, layer=layer, weights=None,
                                        image_size=size, pooling="avg").fit(images)
    features = dask_transform(extractor, images, partition_size=3)
    np.testing.assert_allclose(client.compute(features).result(), extractor.transform(images),
                               rtol=1e-5, atol=1e-6)


def test_a_worker_killed_mid_job_costs_neither_rows_nor_duplicates(client, image_files, tmp_path):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(48, 96, 96, 3), dtype=np.uint8)
    paths = image_files(pixels, ".png")
    extractor = small_extractor(image_size=(96, 96), layer="block3_pool").fit(paths[:2])
    expected = extractor.transform(paths)
    holding = tmp_path / "holding"  # written by the worker that holds the gate's task
    this_process = os.getpid()

    class Gate(os.PathLike):
        """A path whose first reading in a worker never returns: that worker is certainly
        in the middle of a task until it is killed. Recomputed elsewhere, it reads as usual.
        (A local class: Dask ships it by value to workers that cannot import the tests.)"""

        def __init__(self, path):
            self.path = os.fspath(path)

        def __fspath__(self):
            if os.getpid() != this_process:
                mine = f"{holding}.{os.getpid()}"
                with open(mine, "w") as file:
                    file.write(str(os.getpid()))
                try:
                    os.link(mine, holding)  # atomic: only the first reading blocks
                except FileExistsError:
                    return self.path
                time.sleep(600)
            return self.path

    gated = [*paths[:24], Gate(paths[24]), *paths[25:]]
    job = client.compute(dask_transform(extractor, gated, partition_size=3))  # 16 tasks
    deadline = time.monotonic() + 120
    while not holding.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # waits for a condition: no assertion depends on how long
    worker_pid = int(holding.read_text())
    assert worker_pid in client.run(os.getpid).values()
    assert not job.done()
    os.kill(worker_pid, signal.SIGKILL)

    features = job.result(timeout=300)
    assert features.shape == expected.shape
    np.testing.assert_array_equal(features, expected)


def test_dask_transform_errors(client, image_files, images, monkeypatch):
    from sklearn.exceptions import NotFittedError

    paths = image_files(images, ".png")
    extractor = small_extractor().fit(paths)
    for size in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match=f"partition_size must be a positive integer, got "
                                             f"{re.escape(repr(size))}"):
            dask_transform(extractor, paths, partition_size=size)
    with pytest.raises(ValueError, match="X is empty: it holds no images"):
        dask_transform(extractor, [])
    with pytest.raises(NotFittedError, match="not fitted yet"):
        dask_transform(small_extractor(), paths)

    paths[5].write_bytes(b"not a png")  # in the second partition, read by a worker
    job = client.compute(dask_transform(extractor, paths, partition_size=4))
    with pytest.raises(ValueError, match=r"1 of 4 image files cannot be used:\s+\S*image5\.png: "
                                         r"is not an image file"):
        job.result(timeout=120)

    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r"dask_transform needs dask: pip install "
                                          r"'skconvnet\[dask\]'"):
        dask_transform(extractor, paths)
