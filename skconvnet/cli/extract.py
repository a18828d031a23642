"""``python -m skconvnet extract``: the features of labelled photos (a folder of class
folders, or a CSV file), with their targets, as a ``.npz`` file.

Each finished batch is kept in ``FEATURES.npz.partial/`` (:mod:`skconvnet.cli.partial`), so
that rerunning the command after a crash computes only the photos not done yet.
"""

import os
from pathlib import Path

import numpy as np

from ..backbones import specs
from ..backbones.checks import check_layer
from .options import PhotoOptions, check_output
from .partial import PartialStore
from .progress import Progress


def extract_command(args):
    spec = specs.get(args.backbone, "--backbone")
    layers = [name.strip() for name in args.layer.split(",") if name.strip()]
    if len(layers) != 1:
        raise ValueError(f"--layer takes one layer, got {args.layer!r}; evaluate compares several.")
    layer = check_layer(spec, layers[0], "--layer")
    out = args.out if args.out.endswith(".npz") else f"{args.out}.npz"  # as numpy.savez names it
    check_output(out, "--out")
    if Path(out).resolve().parent == Path(args.directory).resolve():
        raise ValueError(f"--out {out} is inside DIR {args.directory}, where the work kept "
                         f"as it goes ({out}.partial/) would read as a class folder: write "
                         "the output outside DIR.")
    photos = PhotoOptions.from_args(args)
    labelled = photos.load_labelled(args.directory)
    paths = labelled.paths
    weights = photos.resolve_weights([spec.name])[spec.name]
    # the progress bar is this command's; nothing in this process would reuse cached activations
    extractor = photos.extractor(spec.name, layer, weights).set_params(verbose=0, cache=False)
    extractor.fit(paths)
    settings = dict(backbone=spec.name, layer=layer, weights=extractor.weights_id_,
                    pooling=photos.pooling, image_size=list(extractor._image_size()),
                    precision=photos.precision)
    store = PartialStore(out, settings, restart=args.restart)
    with store.kept_on_failure():
        todo = store.resume(paths)
        with Progress(len(paths), already=len(paths) - len(todo)) as progress:
            for chunk, features in extractor._transform_batches(todo) if todo else ():
                store.add([todo[i] for i in chunk], features=features)
                progress.update(len(chunk))
        features = store.gather(paths, "features")
        store.finish(lambda file: np.savez(
            file, features=features, paths=np.array([os.fspath(p) for p in paths]),
            labels=labelled.y, kind=labelled.kind, target_names=np.array(labelled.target_names),
            feature_names=extractor.get_feature_names_out().astype(str), layer=layer,
            backbone=spec.name,
        ))
    print(f"{features.shape[0]} x {features.shape[1]} features at {layer} of {spec.name} "
          f"written to {out}")
