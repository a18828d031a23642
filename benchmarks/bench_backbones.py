"""Does ``ConvNetFeatureExtractor.transform`` run as fast as raw Keras, on every backbone?

For each backbone, at its customary image size (VGG16 150x150, the others 224x224), on the
same images in the same process, interleaved, best of ``--rounds``, images per second of
- raw Keras: ``keras.applications.X(include_top=False)`` run batch by batch with
  ``Model.predict_on_batch`` after the network's own ``preprocess_input``, in float32 and
  under the ``mixed_bfloat16`` policy;
- ``ConvNetFeatureExtractor(backbone=X).transform`` at the deepest cut, in float32 and in
  bfloat16 (``cache=False``), with the same weights (a file saved from the raw model);
and prints one row per backbone: its GFLOPs per image (multiply-adds x 2, counted from the
model's layers), raw float32 speed, and transform float32 / raw float32 (goal >= 0.95x) and
transform bfloat16 / raw float32 (goal >= 1.7x where the CPU has bfloat16 instructions). The
float32 features are checked equal to the raw model's first (max relative error < 1e-4).

    python benchmarks/bench_backbones.py [--backbones vgg16,resnet50] [--images 32]
        [--batch-size 32] [--rounds 3]
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import best_of, device, random_images


def gflops(model, image_size):
    """Multiply-adds x 2 of the convolutions and dense layers for one image."""
    import keras

    probe = keras.models.clone_model(model, input_tensors=keras.Input((*image_size, 3)))
    total = 0
    for layer in probe.layers:
        # a Sequential (ConvNeXt's stem and downsampling) ends at its convolution's size
        for sub in getattr(layer, "layers", [layer]):
            if isinstance(sub, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                                keras.layers.Dense)):
                kernel = sub.weights[0].shape
                positions = int(np.prod(layer.output.shape[1:-1]))
                per_position = int(np.prod(kernel))
                if isinstance(sub, keras.layers.DepthwiseConv2D):
                    per_position = int(np.prod(kernel[:2])) * kernel[2] * kernel[3]
                elif isinstance(sub, keras.layers.Conv2D) and sub.groups > 1:
                    per_position //= sub.groups
                total += 2 * positions * per_position
    return total / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import keras

    from skconvnet import ConvNetFeatureExtractor, list_backbones
    from skconvnet.backbones import specs as _backbones
    from skconvnet.backbones import weights as backbone_weights

    names = args.backbones.split(",") if args.backbones else list_backbones()
    print(f"device: {device()}")
    print(f"data: {args.images} random images per backbone at its customary size, deepest "
          f"cut, batch {args.batch_size}, best of {args.rounds} rounds")
    print(f"{'backbone':18s} {'size':>7s} {'GFLOPs':>7s} {'raw f32 img/s':>14s} "
          f"{'f32 / raw f32':>14s} {'bf16 / raw f32':>15s} {'raw bf16 / raw f32':>19s}")
    folder = Path(tempfile.mkdtemp())
    for name in names:
        spec = _backbones.get(name)
        size = spec.image_size
        images = random_images(args.images, size, seed=1)
        preprocess = getattr(keras.applications, spec.module).preprocess_input

        def raw_model(policy):
            keras.config.set_dtype_policy(policy)
            try:
                return backbone_weights.new_keras_model(spec, "random")
            finally:
                keras.config.set_dtype_policy("float32")

        raw = {"float32": raw_model("float32"), "bfloat16": raw_model("mixed_bfloat16")}
        path = folder / f"{name}.weights.h5"
        raw["float32"].save_weights(path)
        raw["bfloat16"].load_weights(path)

        def run_raw(model):
            return np.concatenate([
                np.asarray(model.predict_on_batch(
                    preprocess(images[start : start + args.batch_size].astype("float32"))))
                for start in range(0, len(images), args.batch_size)
            ])

        extractors = {
            precision: ConvNetFeatureExtractor(
                backbone=name, weights=path, batch_size=args.batch_size, precision=precision,
                cache=False,  # measure computing, not cache hits
            ).fit(images)
            for precision in ("float32", "bfloat16")
        }
        expected = run_raw(raw["float32"])
        ours = extractors["float32"].transform(images).reshape(expected.shape)
        assert np.abs(ours - expected).max() / np.abs(expected).max() < 1e-4

        seconds = best_of({
            "raw float32": lambda: run_raw(raw["float32"]),
            "raw bfloat16": lambda: run_raw(raw["bfloat16"]),
            "float32": lambda: extractors["float32"].transform(images),
            "bfloat16": lambda: extractors["bfloat16"].transform(images),
        }, args.rounds)
        base = seconds["raw float32"]
        print(f"{name:18s} {size[0]:>3d}x{size[1]:<3d} {gflops(raw['float32'], size):7.2f} "
              f"{args.images / base:14.1f} {base / seconds['float32']:13.3f}x "
              f"{base / seconds['bfloat16']:14.3f}x {base / seconds['raw bfloat16']:18.3f}x",
              flush=True)


if __name__ == "__main__":
    main()
