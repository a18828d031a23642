"""``python -m skconvnet audit``: photos of a folder of class folders that are probably
mislabelled, copies of one another, or unlike their class."""

import os
import time

from ..audit.collection import audit_collection, copy_layer
from ..backbones import specs
from .evaluate import _candidates, _need_plotting, search_layers
from .options import PhotoOptions, check_output


def audit_command(args):
    """Run ``audit`` on parsed arguments: search the layers, check the photos, print a
    summary and write what the options ask for."""
    from ..report.evaluation import audit_summary, write_json

    candidates = _candidates(args.backbone, args.layers)
    for option in ("report", "html"):
        if getattr(args, option):
            check_output(getattr(args, option), f"--{option}")
    if args.html:
        _need_plotting("--html")
    photos = PhotoOptions.from_args(args)
    started = time.perf_counter()
    paths, labels = photos.load_folder(args.train_dir)
    weights = photos.resolve_weights(list(candidates))
    scores, features, folds = search_layers(photos, candidates, weights, args.cv, paths, labels)
    best = max(scores, key=lambda score: score.cv_accuracy)
    searched = [score for score in scores if score.backbone == best.backbone]
    copies = next(score.label for score in searched if score.layer == copy_layer(
        specs.get(best.backbone), [score.layer for score in searched]))
    outliers = [score.label for score in searched]
    print(f"Checking the photos: label issues on {best.label}, copies on {copies}, outliers "
          f"on {', '.join(outliers)}")
    audit = audit_collection(labels, probe=features[best.label], copies=features[copies],
                             outliers=[features[label] for label in outliers], folds=folds,
                             paths=paths, layers=(best.label, copies, outliers))
    print(audit_summary(audit))
    print(f"{time.perf_counter() - started:.0f} s")
    if args.report:
        write_json(args.report, audit)
        print(f"Report written to {args.report}")
    if args.html:
        from ..report.photos import write_audit_page

        write_audit_page(args.html, audit, folder=os.fspath(args.train_dir))
        print(f"Page written to {args.html}")
