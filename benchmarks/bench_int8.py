"""Does ``precision="int8"`` pay for the extractor, and what does it cost a layer search?

1. ``transform`` throughput of VGG16 (150x150, ``block5_pool``, average pooling,
   ``cache=False``, preloaded uint8 images, batch 32) in float32, bfloat16 and int8, best
   of 3 interleaved rounds (goal: int8 >= 1.5x bfloat16).
2. A layer search on the shared cats/dogs photos with the shared ImageNet-grade weights:
   ``GridSearchCV`` over ``block3_pool``, ``block4_pool``, ``block5_pool`` (standardised
   logistic regression, cv=3, activation cache on) in float32 and in int8: each layer's
   cross-validated accuracy, the refit best pipeline's accuracy on validation photos, and
   the search's time (goal: int8 within 0.01 of float32).
3. Why weights are quantized in 7 bits: int8 features' error at ``block3_pool`` and
   ``block5_pool`` against float32 with 8-bit and 7-bit weights (``--weight-bits``, alone).

    python benchmarks/bench_int8.py [--train 600] [--validation 400] [--rounds 3]
    python benchmarks/bench_int8.py --weight-bits
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from common import best_of, device, photo_paths, random_images, shared_weights  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import skconvnet  # noqa: E402
from skconvnet import VGGFeatureExtractor, load_images  # noqa: E402

PRECISIONS = ("float32", "bfloat16", "int8")
LAYERS = ["block3_pool", "block4_pool", "block5_pool"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--validation", type=int, default=400)
    parser.add_argument("--timed-images", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--weight-bits", action="store_true")
    args = parser.parse_args()
    print(device())
    weights = shared_weights()
    if args.weight_bits:
        return weight_bits(weights, photo_paths(64))
    train = photo_paths(args.train)
    validation = photo_paths(args.validation, "validation")
    throughput(weights, train, args)
    if weights is None or not train:
        print("Layer search skipped: the shared weights or photos are absent")
        return
    layer_search(weights, train, validation)


def throughput(weights, train, args):
    timed = (load_images(train[:args.timed_images], 150) if train
             else random_images(args.timed_images, (150, 150)))
    extractors = {
        precision: VGGFeatureExtractor(weights=weights, pooling="avg", precision=precision,
                                       cache=False).fit(timed)
        for precision in PRECISIONS
    }
    seconds = best_of({precision: (lambda e=extractor: e.transform(timed))
                       for precision, extractor in extractors.items()}, args.rounds)
    speed = {precision: len(timed) / value for precision, value in seconds.items()}
    reference = extractors["float32"].transform(timed)
    error = (np.abs(extractors["int8"].transform(timed) - reference).max()
             / np.abs(reference).max())
    print(f"\nVGG16 transform, block5_pool average, 150x150, {len(timed)} images, batch 32")
    print(f"{'precision':10s} {'img/s':>7s} {'vs float32':>11s} {'vs bfloat16':>12s}")
    for precision, value in speed.items():
        print(f"{precision:10s} {value:7.1f} {value / speed['float32']:10.2f}x "
              f"{value / speed['bfloat16']:11.2f}x")
    print(f"int8 features within {error:.3f} of the largest float32 feature")


def layer_search(weights, train, validation):
    y_train = np.array([path.parent.name for path in train])
    y_validation = np.array([path.parent.name for path in validation])
    print(f"\nLayer search: {len(train)} training photos (cv=3), {len(validation)} "
          "validation photos, VGG16 ImageNet-grade weights, average pooling")
    results = {}
    for precision in ("float32", "int8"):
        skconvnet.clear_cache()
        pipeline = Pipeline([
            ("vgg", VGGFeatureExtractor(weights=weights, pooling="avg", precision=precision)),
            ("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=2000)),
        ])
        started = time.perf_counter()
        search = GridSearchCV(pipeline, {"vgg__layer": LAYERS}, cv=3).fit(train, y_train)
        seconds = time.perf_counter() - started
        results[precision] = (search, seconds, search.score(validation, y_validation))
    print(f"{'precision':10s} " + " ".join(f"{layer:>12s}" for layer in LAYERS)
          + f" {'best':>12s} {'validation':>11s} {'search s':>9s}")
    for precision, (search, seconds, score) in results.items():
        cv = search.cv_results_["mean_test_score"]
        print(f"{precision:10s} " + " ".join(f"{value:12.3f}" for value in cv)
              + f" {search.best_params_['vgg__layer']:>12s} {score:11.3f} {seconds:9.1f}")
    difference = results["int8"][2] - results["float32"][2]
    print(f"int8 - float32 validation accuracy: {difference:+.3f}")


def weight_bits(weights, photos):
    from skconvnet.compute import int8 as _int8
    from skconvnet.compute import graphs as _onnx

    pixels = load_images(photos, 150) if photos else random_images(64, (150, 150))
    options = _onnx.quantization_options
    print(f"\nint8 feature error (of the largest float32 feature), {len(pixels)} images")
    for bits in (8, 7):
        _onnx.quantization_options = lambda: {**options(), "reduce_range": bits == 7}
        _int8._calibrated.clear()  # segments quantized the other way
        for layer in ("block3_pool", "block5_pool"):
            common = dict(weights=weights, layer=layer, pooling="avg", cache=False)
            reference = VGGFeatureExtractor(**common).fit(pixels).transform(pixels)
            int8 = VGGFeatureExtractor(**common, precision="int8").fit(pixels).transform(pixels)
            error = np.abs(int8 - reference).max() / np.abs(reference).max()
            print(f"{bits}-bit weights, {layer}: {error:.3f}")
    _onnx.quantization_options = options


if __name__ == "__main__":
    main()
