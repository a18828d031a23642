"""``python -m skconvnet audit``: labelled photos (a folder of class folders, or a CSV file)
that are probably mislabelled, copies of one another, or unlike their class."""

import os
import time

from .evaluate import _candidates, audit_layers, best_layer, check_photos, search_layers
from .options import PhotoOptions, check_output


def audit_command(args):
    """Run ``audit`` on parsed arguments: search the layers, check the photos, print a
    summary and write what the options ask for."""
    from ..report.evaluation import audit_summary, write_json

    candidates = _candidates(args.backbone, args.layers)
    for option in ("report", "html"):
        if getattr(args, option):
            check_output(getattr(args, option), f"--{option}")
    photos = PhotoOptions.from_args(args)
    started = time.perf_counter()
    read = photos.load_labelled(args.train_dir)
    weights = photos.resolve_weights(list(candidates))
    scores, features, folds = search_layers(photos, candidates, weights, args.cv, *read,
                                            kind=read.kind)
    best = best_layer(scores)
    copies, searched = audit_layers(scores, best)
    audit = check_photos(features, read, folds, best, copies, searched)
    print(audit_summary(audit))
    print(f"{time.perf_counter() - started:.0f} s")
    if args.report:
        write_json(args.report, audit)
        print(f"Report written to {args.report}")
    if args.html:
        from ..report.photos import write_audit_page

        write_audit_page(args.html, audit, folder=os.fspath(args.train_dir))
        print(f"Page written to {args.html}")
