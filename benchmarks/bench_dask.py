"""Featurizing on a Dask cluster: throughput with 1 and 2 worker processes, overhead per task.

Times, side by side in one run, on the same JPEG paths (150x150, ``block4_pool``, avg):
- ``extractor.transform(paths)`` in this process,
- ``dask_transform(extractor, paths).compute()`` on a ``LocalCluster`` of 1 and of 2 worker
  processes (one thread each; workers warmed up first, so weights and models are in place),
and the overhead per task: one task per image of a cheap layer on 1 worker, against the same
images in one ``transform``.

    python benchmarks/bench_dask.py [--images 192] [--partition-size 32]
"""

import argparse

import numpy as np
from common import device, photo_paths, random_images, shared_weights, timed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--partition-size", type=int, default=32)
    args = parser.parse_args()

    import tempfile
    from pathlib import Path

    from distributed import Client, LocalCluster
    from PIL import Image

    from skconvnet import VGGFeatureExtractor, dask_transform

    with tempfile.TemporaryDirectory() as folder:
        paths = [str(p) for p in photo_paths(args.images)]
        if not paths:
            for index, pixels in enumerate(random_images(args.images, (150, 150))):
                paths.append(str(Path(folder) / f"{index}.jpg"))
                Image.fromarray(pixels).save(paths[-1])
        extractor = VGGFeatureExtractor(
            layer="block4_pool", pooling="avg", weights=shared_weights(), cache=False
        ).fit(paths[:2])
        cheap = VGGFeatureExtractor(
            layer="block1_conv1", pooling="avg", weights=shared_weights(), image_size=32,
            cache=False,
        ).fit(paths[:2])

        extractor.transform(paths[:8])  # warm this process up like the workers
        seconds = {"in-process transform": timed(lambda: extractor.transform(paths))}
        expected = extractor.transform(paths[:16])
        for n_workers in (1, 2):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, env={"TF_CPP_MIN_LOG_LEVEL": "3"})
            with cluster, Client(cluster) as client:
                warm = dask_transform(extractor, paths[:16] * n_workers, partition_size=16)
                features = client.compute(warm).result()
                np.testing.assert_array_equal(features[:16], expected)
                seconds[f"dask, {n_workers} worker process{'es' * (n_workers > 1)}"] = timed(
                    lambda: client.compute(
                        dask_transform(extractor, paths, partition_size=args.partition_size)
                    ).result()
                )
                if n_workers == 1:
                    client.compute(dask_transform(cheap, paths[:8], partition_size=1)).result()
                    n = 64
                    per_task = timed(lambda: client.compute(
                        dask_transform(cheap, paths[:n], partition_size=1)).result())
                    one_call = timed(lambda: cheap.transform(paths[:n]))
                    overhead = (per_task - one_call) / n

    print(f"device: {device()}")
    print(f"data: {len(paths)} JPEG paths, 150x150, block4_pool, avg, "
          f"partitions of {args.partition_size}")
    baseline = seconds["in-process transform"]
    for name, value in seconds.items():
        print(f"{name:28s} {len(paths) / value:7.1f} images/s   {baseline / value:5.2f}x in-process")
    print(f"overhead per task (1 worker, {n} one-image tasks vs one transform): "
          f"{overhead * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
