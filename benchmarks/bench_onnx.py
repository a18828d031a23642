"""What does serving on ONNX Runtime cost or gain against Keras, in float32 and in int8?

1. VGG16 with the shared ImageNet-grade weights at 150x150, ``block5_pool`` average pooling,
   standardised logistic regression fit (in Keras float32) on the shared cats/dogs training
   photos: accuracy on the validation photos of the pipeline itself and of its ONNX export in
   float32 and int8 (calibrated on a seeded sample of training photos), and throughput of
   the network (preloaded uint8 images, batch 32) in each, best of 3 interleaved rounds.
2. How many calibration photos int8 needs: accuracy against their number.
3. The other backbones (random weights, 224x224, deepest cut, average pooling): throughput
   of ONNX Runtime float32 and int8 against Keras float32, and the features' error.

    python benchmarks/bench_onnx.py [--train 2000] [--validation 1000] [--rounds 3]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from common import best_of, device, photo_paths, random_images, shared_weights  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import skconvnet  # noqa: E402
from skconvnet import ConvNetFeatureExtractor, load_images, to_onnx  # noqa: E402
from skconvnet.compute.graphs import session  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--validation", type=int, default=1000)
    parser.add_argument("--calibration", type=int, default=30)
    parser.add_argument("--timed-images", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backbones", default=",".join(skconvnet.list_backbones()[1:]))
    args = parser.parse_args()
    print(device())
    print(f"ONNX Runtime {__import__('onnxruntime').__version__}, tf2onnx "
          f"{__import__('tf2onnx').__version__}, skl2onnx {__import__('skl2onnx').__version__}")
    vgg16(args)
    others(args)


def throughput(runners, images, rounds, batch_size=32):
    """Images per second of each ``runner(batch)`` over ``images``, best of ``rounds``."""
    batches = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
    times = best_of({name: (lambda run=run: [run(batch) for batch in batches])
                     for name, run in runners.items()}, rounds)
    return {name: len(images) / seconds for name, seconds in times.items()}


def vgg16(args):
    weights = shared_weights()
    train = photo_paths(args.train)
    validation = photo_paths(args.validation, "validation")
    if weights is None or not train:
        print("VGG16 part skipped: --train 0, or the shared weights or photos are absent")
        return
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    train_pixels, validation_pixels = load_images(train, 150), load_images(validation, 150)
    y_train = np.array([path.parent.name for path in train])
    y_validation = np.array([path.parent.name for path in validation])
    extractor = dict(backbone="vgg16", layer="block5_pool", pooling="avg", weights=weights,
                     image_size=150, cache=False)
    model = make_pipeline(ConvNetFeatureExtractor(**extractor), StandardScaler(),
                          LogisticRegression(max_iter=2000)).fit(train_pixels, y_train)
    keras_accuracy = model.score(validation_pixels, y_validation)
    print(f"\nVGG16 block5_pool avg + logistic regression, {len(train)} training / "
          f"{len(validation)} validation photos, 150x150 "
          f"(fit and Keras scoring {time.perf_counter() - started:.0f} s)")

    def onnx_accuracy(graph):
        run = session(graph)
        labels = np.concatenate([run.run(["label"], {"images": validation_pixels[i:i + 32]})[0]
                                 for i in range(0, len(validation_pixels), 32)])
        return float(np.mean(labels == y_validation))

    calibration = train_pixels[rng.choice(len(train), args.calibration, replace=False)]
    started = time.perf_counter()
    float_graph = to_onnx(model)
    exported = time.perf_counter() - started
    started = time.perf_counter()
    int8_graph = to_onnx(model, quantize="int8", calibration=calibration)
    quantized = time.perf_counter() - started
    print(f"export {exported:.1f} s, int8 export and calibration on {args.calibration} photos "
          f"{quantized:.1f} s")
    bfloat16 = model[0].__class__(**{**extractor, "precision": "bfloat16"}).fit(train[:1])
    timed = validation_pixels[:args.timed_images]
    float_run, int8_run = session(float_graph), session(int8_graph)
    speed = throughput({
        "Keras float32 transform": model[0].transform,
        "Keras bfloat16 transform": bfloat16.transform,
        "ONNX Runtime float32": lambda batch: float_run.run(None, {"images": batch}),
        "ONNX Runtime int8": lambda batch: int8_run.run(None, {"images": batch}),
    }, timed, args.rounds)
    accuracy = {
        "Keras float32 transform": keras_accuracy,
        "Keras bfloat16 transform": make_pipeline(bfloat16, *model[1:]).score(
            validation_pixels, y_validation),
        "ONNX Runtime float32": onnx_accuracy(float_graph),
        "ONNX Runtime int8": onnx_accuracy(int8_graph),
    }
    base = speed["Keras float32 transform"]
    print(f"\n{'':26s} {'img/s':>7s} {'vs float32':>11s} {'vs bfloat16':>12s} {'accuracy':>9s}")
    for name, value in speed.items():
        print(f"{name:26s} {value:7.1f} {value / base:10.2f}x "
              f"{value / speed['Keras bfloat16 transform']:11.2f}x {accuracy[name]:9.3f}")
    print("\nint8 accuracy against the number of calibration photos")
    for n in [n for n in (1, 8, 30, 100) if n <= len(train)]:
        chosen = train_pixels[rng.choice(len(train), n, replace=False)]
        graph = to_onnx(model, quantize="int8", calibration=chosen)
        print(f"{n:4d} photos: {onnx_accuracy(graph):.3f}")


def others(args):
    photos = photo_paths(args.calibration + args.timed_images)
    print(f"\nOther backbones: random weights, 224x224, deepest cut, average pooling, "
          f"calibrated on {args.calibration} {'photos' if photos else 'random images'}")
    print(f"{'backbone':18s} {'Keras fp32':>10s} {'ORT fp32':>9s} {'ORT int8':>9s} "
          f"{'fp32 error':>11s} {'int8 error':>11s}")
    for name in args.backbones.split(","):
        if photos:
            pixels = load_images(photos, 224)
        else:
            pixels = random_images(args.calibration + args.timed_images, (224, 224))
        calibration, timed = pixels[:args.calibration], pixels[args.calibration:]
        extractor = ConvNetFeatureExtractor(backbone=name, pooling="avg", weights=None,
                                            cache=False).fit(timed[:1])
        float_run = session(to_onnx(extractor))
        int8_run = session(to_onnx(extractor, quantize="int8", calibration=calibration))
        speed = throughput({
            "keras": extractor.transform,
            "float32": lambda batch: float_run.run(None, {"images": batch}),
            "int8": lambda batch: int8_run.run(None, {"images": batch}),
        }, timed, args.rounds)
        reference = extractor.transform(timed)
        largest = np.abs(reference).max()
        errors = [np.abs(run.run(None, {"images": timed})[0] - reference).max() / largest
                  for run in (float_run, int8_run)]
        print(f"{name:18s} {speed['keras']:7.1f}/s {speed['float32'] / speed['keras']:8.2f}x "
              f"{speed['int8'] / speed['keras']:8.2f}x {errors[0]:11.1e} {errors[1]:11.3f}")


if __name__ == "__main__":
    main()
