"""What does a grid search over the cut-off layer cost, with and without the activation cache?

Runs, on the same images in the same process, for ``--backbone``:
- one pass: ``ConvNetFeatureExtractor(layer=<deepest of the three>, pooling="avg")
  .fit_transform``;
- ``GridSearchCV(Pipeline([convnet, LogisticRegression]), {"convnet__layer": <the last cut
  point of each of the three deepest stages>}, cv=3, n_jobs=1)`` with the cache (reuse) and
  without;
and prints each search's time as a ratio of the one pass (goal with reuse <= 1.5x; naive
about 8x), which layer wins, and the time saved. Uses the shared cats/dogs photos, and for
vgg16 the shared ImageNet-grade weights, where present (random weights otherwise: the cost
does not depend on them).

    python benchmarks/bench_layer_search.py [--backbone vgg16] [--images 300] [--size 150]
"""

import argparse
import time

import numpy as np
from common import device, photo_paths, random_images, shared_weights
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg16")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", type=int, default=150)
    args = parser.parse_args()

    import skconvnet
    from skconvnet import ConvNetFeatureExtractor
    from skconvnet.backbones import specs as _backbones

    layers = _backbones.get(args.backbone).default_search()

    X = photo_paths(args.images)
    if X:
        y = np.array([p.parent.name for p in X])
        data = f"{len(X)} cats/dogs photos (JPEG paths)"
    else:
        X = random_images(args.images, (args.size, args.size))
        y = np.arange(len(X)) % 2
        data = f"{len(X)} random images"
    weights = shared_weights() if args.backbone == "vgg16" else None
    common = dict(backbone=args.backbone, weights=weights, pooling="avg",
                  image_size=(args.size, args.size))

    def one_pass():
        ConvNetFeatureExtractor(layer=layers[-1], cache=False, **common).fit_transform(X)

    def layer_search(cache):
        skconvnet.clear_cache()
        pipeline = Pipeline([
            ("convnet", ConvNetFeatureExtractor(cache=cache, **common)),
            ("clf", LogisticRegression(max_iter=2000)),
        ])
        return GridSearchCV(pipeline, {"convnet__layer": layers}, cv=3, n_jobs=1).fit(X, y)

    one_pass()  # warm-up: weights read, models built
    seconds = {}
    start = time.perf_counter()
    one_pass()
    seconds[f"one transform to {layers[-1]}"] = time.perf_counter() - start
    searches = {}
    for name, cache in (("search with reuse (cache)", True), ("search without reuse", False)):
        start = time.perf_counter()
        searches[name] = layer_search(cache)
        seconds[name] = time.perf_counter() - start

    base = seconds[f"one transform to {layers[-1]}"]
    print(f"device: {device()}")
    print(f"data: {data}, {args.size}x{args.size}, {args.backbone}, weights "
          f"{weights.name if weights else None}, search over {', '.join(layers)} x 3 folds "
          "+ refit, n_jobs=1")
    for name, value in seconds.items():
        print(f"{name:40s} {value:7.1f} s   {value / base:5.2f}x one pass")
    cached, naive = searches.values()
    assert np.array_equal(cached.cv_results_["mean_test_score"], naive.cv_results_["mean_test_score"])
    print("cv_results_ identical with and without the cache: yes")
    print(skconvnet.layer_scores(cached)[["depth", "mean_test_score", "std_test_score"]]
          .round(3).to_string())
    saved = seconds["search without reuse"] - seconds["search with reuse (cache)"]
    print(f"best layer: {cached.best_params_['convnet__layer']}; the cache saved {saved:.0f} s "
          f"({seconds['search without reuse'] / seconds['search with reuse (cache)']:.1f}x faster)")


if __name__ == "__main__":
    main()
