"""How much memory does each backbone take: its weights, and what ``transform`` adds?

For each backbone, in a fresh process of its own (so that one backbone's models, weights and
allocator state neither add to nor hide another's), with random weights (``weights=None``:
the memory does not depend on their values), at the backbone's customary image size (VGG16
150x150, the others 224x224), cut at its deepest cut point, average pooling, float32,
``cache=False``, on ``--images`` random images:

- its parameters up to that cut, and their size in float32;
- the process's peak resident memory (Linux ``VmHWM``, reset through /proc/self/clear_refs
  before each call) above its resident memory before the extractor existed (Keras, its
  backend and, for the keras-hub families, keras-hub imported, the images made; after
  ``gc.collect()`` and ``malloc_trim``):
  during the first ``fit`` + ``transform`` at the smallest batch size — weights read,
  network built and traced, images computed — and during a later ``transform`` at each of
  ``--batch-sizes``, smallest first (the first call at a batch size is a warm-up, the
  second is measured, so that memory the allocator kept from a smaller batch never hides a
  larger one's): what the running extractor needs in all;
- what the process still holds above that baseline after the last call, after
  ``gc.collect()`` and ``malloc_trim``: the weights, the built networks, and the buffers
  TensorFlow's allocator keeps for the next call.

Prints one row per backbone, with the ratio of the later ``transform``'s peak at the largest
batch size to that at the smallest (memory that grows with ``batch_size``).

    python benchmarks/bench_backbone_memory.py [--backbones vgg16,resnet50] [--images 32]
        [--batch-sizes 8,32] [--hub]

By default the seven ``keras.applications`` backbones; ``--hub`` measures the eight keras-hub
families instead (needs ``pip install 'skconvnet[hub]'``).
"""

import argparse
import json
import subprocess
import sys

from common import (cpu_flags, device, random_images, reset_peak_memory, rss_mb,
                    settled_rss_mb)


def measure(name, n_images, batch_sizes):
    """One backbone's numbers, in this process (a fresh one)."""
    from skconvnet import ConvNetFeatureExtractor
    from skconvnet.backbones import specs
    from skconvnet.backbones.hub_specs import HubBackbone
    from skconvnet.backbones.weights import resolve_weights

    spec = specs.get(name)
    images = random_images(n_images, spec.image_size, seed=1)
    import keras  # noqa: F401  (imported before the baseline: every backbone needs it)

    if isinstance(spec, HubBackbone):
        import keras_hub  # noqa: F401

    extractor = ConvNetFeatureExtractor(backbone=name, weights=None, pooling="avg",
                                        batch_size=batch_sizes[0], cache=False)
    baseline = settled_rss_mb()
    reset_peak_memory()
    features = extractor.fit(images).transform(images)
    first = rss_mb("VmHWM") - baseline
    later = {}
    for batch_size in batch_sizes:
        extractor.set_params(batch_size=batch_size)
        extractor.transform(images)  # warm-up: traced at this batch size
        settled_rss_mb()
        reset_peak_memory()
        extractor.transform(images)
        later[batch_size] = rss_mb("VmHWM") - baseline
    held = settled_rss_mb() - baseline
    parameters = sum(int(array.size) for array in resolve_weights(spec, None).arrays)
    return {
        "size": list(spec.image_size), "layer": spec.layer_names[-1],
        "features": features.shape[1], "parameters": parameters, "first": first,
        "later": {str(size): value for size, value in later.items()}, "held": held,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-sizes", default="8,32")
    parser.add_argument("--hub", action="store_true",
                        help="the keras-hub families instead of keras.applications'")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # one backbone, in this process
    args = parser.parse_args()
    batch_sizes = sorted(int(size) for size in args.batch_sizes.split(","))
    if args.one:
        print(json.dumps(measure(args.one, args.images, batch_sizes)))
        return

    from skconvnet import list_backbones
    from skconvnet.backbones import specs
    from skconvnet.backbones.hub_specs import HubBackbone

    if args.backbones:
        names = args.backbones.split(",")
    else:
        names = [name for name in list_backbones()
                 if isinstance(specs.get(name), HubBackbone) == args.hub]
    print(f"device: {device()}")
    print(f"CPU {cpu_flags()}")
    print(f"data: {args.images} random images per backbone at its customary size, deepest "
          f"cut, average pooling, float32, weights=None, cache=False, a fresh process each; "
          f"MB: peak resident memory above the process before the extractor existed")
    small, large = batch_sizes[0], batch_sizes[-1]
    print(f"{'backbone':28s} {'size':>7s} {'deepest cut':24s} {'parameters':>11s} "
          f"{'float32 MB':>10s} {'first call MB':>13s} "
          + " ".join(f"{'transform b' + str(size) + ' MB':>17s}" for size in batch_sizes)
          + (f" {'b' + str(large) + ' / b' + str(small):>10s}" if large != small else "")
          + f" {'held MB':>8s}")
    for name in names:
        done = subprocess.run(
            [sys.executable, __file__, "--one", name, "--images", str(args.images),
             "--batch-sizes", args.batch_sizes],
            capture_output=True, text=True,
        )
        if done.returncode:
            print(f"{name:28s} failed: {done.stderr.strip().splitlines()[-1]}", flush=True)
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        later = {int(size): value for size, value in row["later"].items()}
        ratio = (f" {later[large] / max(later[small], 1e-9):9.2f}x" if large != small else "")
        print(f"{name:28s} {row['size'][0]:>3d}x{row['size'][1]:<3d} {row['layer']:24s} "
              f"{row['parameters'] / 1e6:9.2f} M {row['parameters'] * 4 / 2**20:10.1f} "
              f"{row['first']:13.0f} "
              + " ".join(f"{later[size]:17.0f}" for size in batch_sizes) + ratio
              + f" {row['held']:8.0f}", flush=True)


if __name__ == "__main__":
    main()
