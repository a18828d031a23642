"""What does a heatmap cost, by method, against one ``transform`` of the same photos?

VGG16 at 150x150 (the shared ImageNet-grade weights where present, else random ones), on
cats/dogs photos (random images where absent), side by side in one process, ``cache=False``:
- ``transform`` of the pipelines' extractor (``block5_pool``, one forward pass),
- ``explain(method="cam")``: a pipeline of average-pooled features, a scaler and a logistic
  regression (one forward pass),
- ``explain(method="gradcam")``: a FineTunedConvNetClassifier (head fit on the frozen base),
  a forward and a backward pass,
- ``explain(method="occlusion")``: the same pipeline with max pooling (82 forward passes at
  150x150),
printing seconds per image and the ratio to ``transform``. ``--figure PATH`` also draws the
three methods' heatmaps over a few validation photos (the docs' figure).

    python benchmarks/bench_explain.py [--train 100] [--images 16] [--occluded 4]
        [--rounds 3] [--figure docs/images/explanations.png]
"""

import argparse

import numpy as np
from common import best_of, device, photo_paths, random_images, shared_weights, timed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--occluded", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--figure")
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skconvnet import FineTunedConvNetClassifier, VGGFeatureExtractor, explain

    weights = shared_weights()
    X_train, y_train = photos(args.train, "train")
    X_test, y_test = photos(args.images, "validation")

    def pipeline(pooling):
        return make_pipeline(
            VGGFeatureExtractor(layer="block5_pool", pooling=pooling, weights=weights,
                                cache=False),
            StandardScaler(), LogisticRegression(max_iter=2000),
        ).fit(X_train, y_train)

    models = {
        "cam": pipeline("avg"),
        "gradcam": FineTunedConvNetClassifier(weights=weights, image_size=(150, 150),
                                              fine_tune_epochs=0, random_state=0)
        .fit(X_train, y_train),
        "occlusion": pipeline("max"),
    }
    print(f"{device()}; VGG16 block5_pool at 150x150, weights {weights or 'random'}; "
          f"accuracy on {len(X_test)} validation photos: "
          + ", ".join(f"{name} model {model.score(X_test, y_test):.3f}"
                      for name, model in models.items()))
    extractor = models["cam"][0]
    times = best_of({
        "transform": lambda: extractor.transform(X_test),
        "cam": lambda: explain(models["cam"], X_test, method="cam"),
        "gradcam": lambda: explain(models["gradcam"], X_test, method="gradcam"),
    }, args.rounds)
    per_image = {name: seconds / len(X_test) for name, seconds in times.items()}
    occluded = X_test[:args.occluded]
    per_image["occlusion"] = timed(
        lambda: explain(models["occlusion"], occluded, method="occlusion")) / len(occluded)
    print(f"{'':12s} {'s/image':>8s} {'x transform':>12s}")
    for name, seconds in per_image.items():
        print(f"{name:12s} {seconds:8.4f} {seconds / per_image['transform']:12.2f}")
    if args.figure:
        draw(models, X_test, y_test, args.figure)


def photos(n, split):
    """``n`` cats/dogs photos and labels, or random images where the photos are absent."""
    paths = photo_paths(n, split)
    if paths:
        return paths, np.array([path.parent.name for path in paths])
    return random_images(n, (150, 150)), np.array(["cats", "dogs"] * (n // 2))


def draw(models, X, y, path, n=6):
    """Each method's heatmaps of the predicted class over the first ``n / 2`` images of each
    class of ``X``: a row per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skconvnet import explain
    from skconvnet.heatmaps.figures import as_seen, overlay

    chosen = np.concatenate([np.flatnonzero(y == label)[:n // 2] for label in np.unique(y)])
    images = [X[i] for i in chosen]
    titles = {"cam": "exact class activation map\n(avg-pooled block5_pool, logistic regression)",
              "gradcam": "Grad-CAM (fine-tuned classifier,\nblock5_conv3)",
              "occlusion": "occlusion\n(max-pooled block5_pool)"}
    fig, axes = plt.subplots(len(models), len(images) + 1,
                             figsize=(2 * (len(images) + 1), 2.1 * len(models)))
    for row, (name, model) in zip(axes, models.items()):
        heatmaps = explain(model, images, method=name)
        pictures = as_seen(model, images)
        predicted = model.predict(images)
        row[0].text(0.5, 0.5, titles[name], ha="center", va="center", fontsize="small",
                    wrap=True)
        for ax, picture, heatmap, true, label in zip(row[1:], pictures, heatmaps, y[chosen],
                                                     predicted):
            ax.imshow(overlay(picture, heatmap))
            ax.set_title(f"{true} → predicted {label}", fontsize="small")
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"Figure written to {path}")


if __name__ == "__main__":
    main()
