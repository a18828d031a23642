"""Does FineTunedConvNetClassifier train as fast as hand-written Keras, and what does it reach?

1. Speed: seconds per epoch of each phase (frozen-base head training, then fine-tuning from
   ``block5_conv1``) for the classifier and for a hand-written Keras model of the same
   architecture (book augmentation, VGG16 base, Flatten, Dense(256), Dropout(0.5), sigmoid)
   trained with ``Model.fit`` on the same in-memory images, in the same process. Epoch time
   is the difference between fits of ``1 + E`` and ``1`` epochs (each the best of
   ``--repeats``), which cancels the one-off building and compiling. Goal: ratio <= 1.05.
   Then the head phase without augmentation, where the classifier runs the frozen base once
   instead of every epoch (goal: epochs after the first >= 5x faster than Keras recomputing
   the base).
2. Accuracy on the shared cats/dogs photos (held-out validation photos) of the book's three
   approaches: training VGG16 from scratch, frozen features + logistic regression, and
   fine-tuning. The book uses 2,000 training photos at 150x150 and 30 + 100 epochs; on CPUs
   that takes hours, so the defaults are smaller — every setting is printed.

    python benchmarks/bench_finetune.py [--speed-images 100] [--repeats 2]
        [--train-per-class 150] [--test-per-class 100] [--size 64] [--head-epochs 10] [--fine-tune-epochs 5]
"""

import argparse

import numpy as np
from PIL import Image

from common import device, photo_paths, random_images, shared_weights, timed


def fastest(function, repeats):
    """Best of ``repeats`` timings: each fit builds a new model, and their speeds scatter."""
    return min(timed(function) for _ in range(repeats))


def hand_written_keras(weights, size, head_epochs, fine_tune_epochs, pixels, labels,
                       augmentation=True):
    """The book's fine-tuning, written directly in Keras, on preprocessed in-memory pixels."""
    import keras

    base = keras.applications.VGG16(include_top=False, weights=weights, input_shape=(*size, 3))
    base.trainable = False
    inputs = keras.Input(shape=(*size, 3))
    x = inputs
    if augmentation:
        x = keras.layers.RandomFlip("horizontal", seed=0)(x)
        x = keras.layers.RandomRotation(40 / 360, fill_mode="nearest", seed=1)(x)
        x = keras.layers.RandomZoom(0.2, fill_mode="nearest", seed=2)(x)
        x = keras.layers.RandomTranslation(0.2, 0.2, fill_mode="nearest", seed=3)(x)
    x = keras.layers.Flatten()(base(x))
    x = keras.layers.Dropout(0.5, seed=4)(keras.layers.Dense(256, activation="relu")(x))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile(keras.optimizers.RMSprop(2e-5), "binary_crossentropy", metrics=["accuracy"])
    model.fit(pixels, labels, batch_size=20, epochs=head_epochs, verbose=0)
    if fine_tune_epochs:
        base.trainable = True
        for layer in base.layers:
            layer.trainable = layer.name.startswith("block5")
        model.compile(keras.optimizers.RMSprop(1e-5), "binary_crossentropy", metrics=["accuracy"])
        model.fit(pixels, labels, batch_size=20, epochs=fine_tune_epochs, verbose=0)


def speed(weights, n_images, extra_epochs, repeats):
    import keras

    from skconvnet import FineTunedConvNetClassifier, clear_cache

    size = (150, 150)
    paths = photo_paths(n_images)
    if paths:
        images = np.stack([np.asarray(Image.open(p).convert("RGB").resize(size)) for p in paths])
        labels = np.array([p.parent.name for p in paths])
    else:
        images = random_images(n_images, size)
        labels = np.array(["cats", "dogs"] * (n_images // 2))
    pixels = keras.applications.vgg16.preprocess_input(images.astype("float32"))
    targets = (labels == labels[0]).astype("float32")

    def ours(head, fine, augmentation=True):
        def fit():
            clear_cache()  # every fit computes the base's outputs afresh
            FineTunedConvNetClassifier(
                weights=weights, head_epochs=head, fine_tune_epochs=fine, random_state=0,
                augmentation=augmentation,
            ).fit(images, labels)
        return fit

    def theirs(head, fine, augmentation=True):
        return lambda: hand_written_keras(
            weights, size, head, fine, pixels, targets, augmentation=augmentation
        )

    print(f"\n1. Seconds per epoch, {len(images)} images at 150x150, block5_pool, batch 20, "
          f"book augmentation, difference of fits with {1 + extra_epochs} and 1 epochs")
    for phase, (short, long) in {
        "head (frozen base)": ((1, 0), (1 + extra_epochs, 0)),
        "fine-tuning (block5)": ((1, 1), (1, 1 + extra_epochs)),
    }.items():
        per_epoch = {}
        for name, make in (("hand-written Keras Model.fit", theirs), ("skconvnet", ours)):
            per_epoch[name] = (fastest(make(*long), repeats) - fastest(make(*short), repeats)) / extra_epochs
        keras_time, our_time = per_epoch.values()
        print(f"   {phase:22s} Keras {keras_time:6.2f} s   skconvnet {our_time:6.2f} s   "
              f"ratio {our_time / keras_time:.3f}")

    print("\n   Without augmentation the frozen base's outputs are computed once, in the first "
          "head epoch (goal: later epochs >= 5x faster than recomputing them)")
    first = {}
    later = {}
    for name, make in (("Keras (recomputes)", theirs), ("skconvnet", ours)):
        first[name] = fastest(make(1, 0, augmentation=False), repeats)
        longer = fastest(make(1 + extra_epochs, 0, augmentation=False), repeats)
        later[name] = (longer - first[name]) / extra_epochs
    (keras_first, our_first), (keras_later, our_later) = first.values(), later.values()
    print(f"   head, no augmentation  Keras {keras_later:6.2f} s   skconvnet {our_later:6.2f} s   "
          f"{keras_later / our_later:.1f}x faster per epoch after the first")
    print(f"   one-epoch fits (build, compile, first epoch): Keras {keras_first:.2f} s, "
          f"skconvnet {our_first:.2f} s")


def accuracy(weights, args):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from skconvnet import FineTunedConvNetClassifier, VGGFeatureExtractor

    train = photo_paths(2 * args.train_per_class)
    test = photo_paths(2 * args.test_per_class, split="validation")
    if not train:
        print("\n2. Accuracy: skipped, the shared cats/dogs photos are absent")
        return
    y_train = [p.parent.name for p in train]
    y_test = [p.parent.name for p in test]
    size = (args.size, args.size)
    print(f"\n2. Accuracy on {len(test)} validation photos after training on {len(train)}, "
          f"{args.size}x{args.size}, weights {weights.name if weights else None}")
    contenders = {
        "from scratch (random VGG16, all layers, "
        f"{args.head_epochs + args.fine_tune_epochs} epochs at 1e-4)": FineTunedConvNetClassifier(
            weights=None, image_size=size, unfreeze_from="block1_conv1", head_epochs=0,
            fine_tune_epochs=args.head_epochs + args.fine_tune_epochs,
            fine_tune_learning_rate=1e-4, random_state=0,
        ),
        "frozen features (block4_pool, avg) + logistic regression": make_pipeline(
            VGGFeatureExtractor(weights=weights, layer="block4_pool", pooling="avg",
                                image_size=size),
            LogisticRegression(max_iter=2000),
        ),
        f"fine-tuning block4 ({args.head_epochs} head + {args.fine_tune_epochs} "
        "fine-tuning epochs)": FineTunedConvNetClassifier(
            weights=weights, layer="block4_pool", pooling="avg", image_size=size,
            unfreeze_from="block4_conv1", head_epochs=args.head_epochs,
            fine_tune_epochs=args.fine_tune_epochs, head_learning_rate=1e-3,
            augmentation=args.augmentation, random_state=0,
        ),
    }
    for name, model in contenders.items():
        seconds = timed(lambda: model.fit(train, y_train))
        print(f"   {name:70s} {model.score(test, y_test):.3f}  ({seconds:.0f} s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed-images", type=int, default=100)
    parser.add_argument("--extra-epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-per-class", type=int, default=150)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--head-epochs", type=int, default=10)
    parser.add_argument("--fine-tune-epochs", type=int, default=5)
    parser.add_argument("--augmentation", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    weights = shared_weights()
    print(f"device: {device()}")
    if not args.skip_speed:
        speed(weights, args.speed_images, args.extra_epochs, args.repeats)
    if not args.skip_accuracy:
        accuracy(weights, args)


if __name__ == "__main__":
    main()
