"""keras-hub backbones: as fast as keras-hub itself, layer search in one pass, ONNX, and
EfficientNet-Lite0 against VGG16 on real photos.

Measured side by side in one process:

1. ``transform`` against the keras-hub backbone's own ``predict_on_batch`` at the same cut
   (its output layer, features pooled alike), float32 and bfloat16, for EfficientNet-Lite0
   (the shared ImageNet preset) and DINOv2-Small (random weights: the cost does not depend
   on them); goal >= 0.95x in float32.
2. A layer search over every cut point (``layer=[all of them]``, the activation cache off)
   against one pass to the deepest; goal <= 1.3x.
3. ONNX Runtime float32 and int8 (``to_onnx(quantize=...)``) against Keras ``transform``.
5. Per family at its default size, random weights (the cost does not depend on them):
   parameters, GFLOPs per image (TensorFlow's profiler: multiply-adds x 2, attention
   included), ``transform`` images per second in float32, bfloat16 and int8 (deepest cut,
   pooling "auto"), and the bytes per image of the activations fine-tuning stores (the
   frozen cut below the blocks it trains by default, float32).
4. On the shared cats/dogs photos (``--train`` per class from train/, ``--test`` per class
   from validation/): a linear probe (standardised logistic regression, C by 5-fold
   cross-validation) on average-pooled features at every cut point of EfficientNet-Lite0
   (224x224; pretrained and random) and VGG16 (150x150 and 224x224), test accuracy per
   layer, and time per photo (decoding included) for every cut point in one pass and for
   the deepest alone.

    python benchmarks/bench_hub.py [--images 64] [--train 250] [--test 250] [--only 1 2 3 4 5]
        [--precisions float32 bfloat16 int8] [--backbones dinov2_small ...]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from common import SHARED, best_of, device, photo_paths, random_images, shared_weights

LITE0 = SHARED / "weights" / "efficientnet_lite0_imagenet"


def speed(images, rounds):
    """1 and 2: transform against keras-hub's predict_on_batch, and the layer search."""
    import keras_hub

    from skconvnet import ConvNetFeatureExtractor, list_layers

    for name, weights, size in (("efficientnet_lite0", str(LITE0), 224),
                                ("dinov2_small", None, 224)):
        X = random_images(images, (size, size))
        for precision in ("float32", "bfloat16"):
            extractor = ConvNetFeatureExtractor(backbone=name, weights=weights, pooling="avg",
                                                precision=precision, cache=False).fit(X[:2])
            spec = extractor._spec()
            if weights is None:
                model = keras_hub.models.DINOV2Backbone.from_config(
                    {**json.loads(spec.config),
                     "dtype": "mixed_bfloat16" if precision == "bfloat16" else "float32"})
            else:
                model = keras_hub.models.Backbone.from_preset(
                    weights, dtype="mixed_bfloat16" if precision == "bfloat16" else "float32")
            scale, offset = np.float32(spec.scale), np.float32(spec.offset)

            def raw():  # hand-written: the converter's scaling, the model, the pooling
                for start in range(0, images, 32):
                    batch = X[start:start + 32].astype(np.float32) * scale + offset
                    out = np.asarray(model.predict_on_batch(
                        {"images": batch} if name.startswith("dinov2") else batch))
                    if out.ndim == 3:
                        out[:, spec.prefix_tokens:].mean(axis=1)
                    else:
                        out.mean(axis=(1, 2))

            times = best_of({"raw": raw, "ours": lambda: extractor.transform(X)}, rounds)
            print(f"{name:18s} {precision:9s} keras-hub {images / times['raw']:7.1f} img/s  "
                  f"transform {images / times['ours']:7.1f} img/s  "
                  f"ratio {times['raw'] / times['ours']:.2f}x")
        layers = list_layers(name)
        deepest = ConvNetFeatureExtractor(backbone=name, weights=weights, pooling="avg",
                                          layer=layers[-1], cache=False).fit(X[:2])
        every = ConvNetFeatureExtractor(backbone=name, weights=weights, pooling="avg",
                                        layer=layers, cache=False).fit(X[:2])
        times = best_of({"one": lambda: deepest.transform(X), "all": lambda: every.transform(X)},
                        rounds)
        print(f"{name:18s} every one of {len(layers)} cut points in one pass: "
              f"{times['all'] / times['one']:.2f}x one pass to the deepest")


def onnx(images, rounds):
    """3: ONNX Runtime float32 and int8 against Keras."""
    import onnxruntime

    from skconvnet import ConvNetFeatureExtractor, to_onnx

    for name, weights, size in (("efficientnet_lite0", str(LITE0), 224),
                                ("dinov2_small", None, 224)):
        X = random_images(images, (size, size))
        extractor = ConvNetFeatureExtractor(backbone=name, weights=weights, pooling="avg",
                                            cache=False).fit(X)
        want = extractor.transform(X)
        runs = {"keras": lambda: extractor.transform(X)}
        with tempfile.TemporaryDirectory() as folder:
            for quantize in (None, "int8"):
                path = Path(folder) / f"{quantize}.onnx"
                to_onnx(extractor, path, quantize=quantize, calibration=X[:32])
                session = onnxruntime.InferenceSession(str(path))
                feed = session.get_inputs()[0].name
                got = session.run(None, {feed: X})[0]
                correlation = np.corrcoef(got.ravel(), want.ravel())[0, 1]
                print(f"{name:18s} ONNX {quantize or 'float32':7s} correlation with Keras "
                      f"{correlation:.4f}")
                runs[quantize or "float32"] = (lambda s=session, f=feed:
                                               [s.run(None, {f: X[i:i + 32]})
                                                for i in range(0, images, 32)])
            times = best_of(runs, rounds)
        print(f"{name:18s} " + "  ".join(f"{key} {images / value:7.1f} img/s"
                                          for key, value in times.items()))


def photos(n_train, n_test):
    """4: EfficientNet-Lite0 against VGG16 on the shared cats/dogs photos."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skconvnet import ConvNetFeatureExtractor, list_layers

    train, test = photo_paths(2 * n_train, "train"), photo_paths(2 * n_test, "validation")
    if not train:
        print("the shared cats/dogs photos are absent: part 4 skipped")
        return
    y_train = np.array([0] * n_train + [1] * n_train)
    y_test = np.array([0] * n_test + [1] * n_test)
    for name, weights, size in (("efficientnet_lite0", str(LITE0), 224),
                                ("efficientnet_lite0", None, 224),
                                ("vgg16", shared_weights(), 150),
                                ("vgg16", shared_weights(), 224)):
        layers = list_layers(name)
        extractor = ConvNetFeatureExtractor(backbone=name, weights=weights, layer=layers,
                                            pooling="avg", image_size=size, cache=False)
        start = time.perf_counter()
        features_train = extractor.fit_transform(train)
        features_test = extractor.transform(test)
        per_photo = (time.perf_counter() - start) / (len(train) + len(test))
        scores, start_column = {}, 0
        for layer, shape in extractor.feature_shapes_.items():
            columns = slice(start_column, start_column + shape[-1])
            start_column += shape[-1]
            search = GridSearchCV(make_pipeline(StandardScaler(),
                                                LogisticRegression(max_iter=3000)),
                                  {"logisticregression__C": np.logspace(-4, 1, 6)}, cv=5)
            search.fit(features_train[:, columns], y_train)
            scores[layer] = search.score(features_test[:, columns], y_test)
        deepest = ConvNetFeatureExtractor(backbone=name, weights=weights, layer=layers[-1],
                                          pooling="avg", image_size=size, cache=False)
        deepest.fit(test[:2])
        start = time.perf_counter()
        deepest.transform(test)
        per_deepest = (time.perf_counter() - start) / len(test)
        best = max(scores, key=scores.get)
        label = f"{name} ({'pretrained' if weights else 'random'}, {size}x{size})"
        print(f"{label}: {per_photo * 1000:.1f} ms per photo for every cut point in one pass, "
              f"{per_deepest * 1000:.1f} ms to the deepest alone; best {best} "
              f"{scores[best]:.3f}")
        print("   " + "  ".join(f"{layer} {score:.3f}" for layer, score in scores.items()))


def gflops(model, image_size):
    """Multiply-adds x 2 of ``model`` on one image, counted by TensorFlow's profiler."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, *image_size, 3], tf.float32))
    graph = convert_variables_to_constants_v2(function).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops / 1e9


def families(images, rounds, precisions, names):
    """5: each family's size, cost and speed (``names``: those families, None: all)."""
    from skconvnet import ConvNetFeatureExtractor, list_backbones
    from skconvnet.backbones import graph, specs
    from skconvnet.backbones.checks import output_shape
    from skconvnet.backbones.hub_specs import HubBackbone
    from skconvnet.backbones.weights import resolve_weights

    print(f"{'backbone':28s} {'params':>7s} {'GFLOPs':>7s} {'float32':>9s} {'bfloat16':>9s} "
          f"{'int8':>9s}  stored per image")
    for name in names or list_backbones():
        spec = specs.get(name)
        if not isinstance(spec, HubBackbone):
            continue
        X = random_images(images, spec.image_size)
        weights = resolve_weights(spec, None)
        model = graph.build_base(weights, "float32", image_size=spec.image_size)
        n_params = sum(int(np.prod(array.shape)) for array in weights.arrays)
        runs = {}
        for precision in precisions:
            extractor = ConvNetFeatureExtractor(backbone=name, weights=None, precision=precision,
                                                pooling="avg" if precision == "int8" and
                                                not spec.transformer else "auto",
                                                cache=False).fit(X[:32])
            runs[precision] = (lambda e=extractor: e.transform(X))
        times = best_of(runs, rounds)
        top = graph.frozen_top(spec, spec.default_unfreeze_from(spec.layer_names[-1]))
        stored = 4 * int(np.prod(output_shape(spec, top, spec.image_size)))
        print(f"{name:28s} {n_params / 1e6:6.1f}M {gflops(model, spec.image_size):7.2f} "
              + " ".join(f"{images / times[p]:9.1f}" if p in times else f"{'-':>9s}"
                         for p in ("float32", "bfloat16", "int8"))
              + f"  {stored / 1024:.0f} KiB at {top}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train", type=int, default=250, help="photos per class")
    parser.add_argument("--test", type=int, default=250, help="photos per class")
    parser.add_argument("--only", nargs="*", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--precisions", nargs="*", default=["float32", "bfloat16", "int8"],
                        help="part 5's precisions")
    parser.add_argument("--backbones", nargs="*", default=None, help="part 5's families")
    args = parser.parse_args()
    print(device())
    if {1, 2} & set(args.only):
        speed(args.images, args.rounds)
    if 3 in args.only:
        onnx(args.images, args.rounds)
    if 4 in args.only:
        photos(args.train, args.test)
    if 5 in args.only:
        families(args.images, args.rounds, args.precisions, args.backbones)


if __name__ == "__main__":
    main()
