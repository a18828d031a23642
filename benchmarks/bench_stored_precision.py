"""Would storing the frozen layers' activations in 16 bits change what the classifier learns?

The classifier stores the activations it fine-tunes on in its compute precision: float32 by
default, half the bytes in bfloat16. This fits the defaults in float32 (the shared
ImageNet-grade VGG16 weights where present, ``random_state=0``) on ``--photos`` shared cats/dogs
photos three times, the stored activations kept as float32 (as shipped), float16 and
bfloat16, and prints each fit's accuracy on 400 held-out photos, how many of their
predictions differ from the float32-stored fit's, and the largest probability difference.

    python benchmarks/bench_stored_precision.py [--photos 1000]
"""

import argparse
import time
from unittest import mock

import numpy as np
from bench_fit_growth import photos_by_class, split
from common import device, shared_weights


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=1000)
    args = parser.parse_args()

    import ml_dtypes

    from skconvnet import FineTunedConvNetClassifier
    from skconvnet.training import frozen

    train, y_train, test, y_test = split(photos_by_class(), args.photos)
    print(device())
    print(f"{args.photos} training photos, {len(test)} held out; float32 compute")
    print(f"{'stored as':>10} {'accuracy':>8} {'predictions changed':>19} {'max |dp|':>8} "
          f"{'fit s':>6}")
    reference = None
    for name, dtype in (("float32", np.float32), ("float16", np.float16),
                        ("bfloat16", ml_dtypes.bfloat16)):
        clf = FineTunedConvNetClassifier(weights=shared_weights(), random_state=0)
        with mock.patch.object(frozen, "storage_dtype", lambda precision, d=dtype: np.dtype(d)):
            start = time.perf_counter()
            clf.fit(train, y_train)
            seconds = time.perf_counter() - start
        proba = clf.predict_proba(test)
        if reference is None:
            reference = proba
        changed = int((proba.argmax(1) != reference.argmax(1)).sum())
        print(f"{name:>10} {clf.score(test, y_test):>8.3f} {changed:>19} "
              f"{np.abs(proba - reference).max():>8.4f} {seconds:>6.0f}", flush=True)


if __name__ == "__main__":
    main()
