"""Does FineTunedConvNetClassifier train as fast as hand-written Keras, and faster where it can?

1. The book's recipe (``BOOK_RECIPE``: fresh augmentation, the whole network in every epoch):
   seconds per epoch of each phase (frozen-base head training, then fine-tuning from
   ``block5_conv1``) for the classifier and for a hand-written Keras model of the same
   architecture (book augmentation, VGG16 base, Flatten, Dense(256), Dropout(0.5), sigmoid)
   trained with ``Model.fit`` on the same in-memory images, in the same process, the two
   fitted in turn ``--repeats`` times. Each epoch is timed by a Keras callback; a phase's
   epoch time is the best of its epochs after the first (which traces the training graph):
   TensorFlow's ``Model.fit`` runs some epochs at about two thirds of its speed, at random,
   for both alike (the median is printed too). Goal: ratio <= 1.05.
2. Fine-tuning on stored activations (the classifier's defaults: 3 augmented views drawn
   once, block4_pool's output stored for each): one fine-tuning epoch of block5 and the head
   against one hand-written Keras fine-tuning epoch through the whole network. Goal: <= 0.35.
3. The head phase without augmentation, where the classifier runs the frozen base once
   before its first epoch instead of in every epoch: that pass is timed too, and the whole
   phase compared for 30 head epochs (goal: >= 5x faster than Keras recomputing the base).

Accuracy is measured by ``bench_book.py``.

    python benchmarks/bench_finetune.py [--speed-images 100] [--extra-epochs 3] [--repeats 2]
"""

import argparse
import contextlib
import statistics
import time
from unittest import mock

import numpy as np
from common import device, photo_paths, random_images, shared_weights
from PIL import Image


@contextlib.contextmanager
def epoch_times():
    """Seconds of each epoch of every ``Model.fit`` call inside: one list per call."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    calls = []
    fit = keras.Model.fit

    def timed_fit(model, *args, callbacks=None, **kwargs):
        timer = EpochTimer()
        calls.append(timer.seconds)
        return fit(model, *args, callbacks=[*(callbacks or []), timer], **kwargs)

    with mock.patch.object(keras.Model, "fit", timed_fit):
        yield calls


@contextlib.contextmanager
def frozen_pass_seconds():
    """Seconds the classifier spends computing the frozen layers' outputs: one per fit."""
    from skconvnet.training import frozen as _frozen

    seconds = []
    store = _frozen.store

    def timed_store(*args, **kwargs):
        start = time.perf_counter()
        try:
            return store(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    with mock.patch.object(_frozen, "store", timed_store):
        yield seconds


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

    from skconvnet import BOOK_RECIPE, FineTunedConvNetClassifier, clear_cache

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

    def ours(head, fine, augmentation=True, **params):
        clear_cache()  # every fit computes the base's outputs afresh
        recipe = {**BOOK_RECIPE, "head_epochs": head, "fine_tune_epochs": fine,
                  "augmentation": augmentation, **params}
        FineTunedConvNetClassifier(**recipe, weights=weights, random_state=0).fit(images, labels)

    def theirs(head, fine, augmentation=True):
        hand_written_keras(weights, size, head, fine, pixels, targets, augmentation=augmentation)

    epochs = 1 + extra_epochs
    print(f"\n1. The book's recipe: seconds per epoch, {len(images)} images at 150x150, "
          f"block5_pool, batch 20, book augmentation, {epochs} epochs per phase, {repeats} fits "
          "each in turn; best (median) of the epochs after each fit's first")
    epoch_seconds = {name: [[], []] for name in ("Keras", "skconvnet")}
    for _ in range(repeats):
        for name, fit in (("Keras", theirs), ("skconvnet", ours)):
            with epoch_times() as phases:
                fit(epochs, epochs)
            for collected, seconds in zip(epoch_seconds[name], phases):
                collected += seconds[1:]
    for index, phase in enumerate(["head (frozen base)", "fine-tuning (block5)"]):
        keras_times, our_times = epoch_seconds["Keras"][index], epoch_seconds["skconvnet"][index]
        print(f"   {phase:22s} Keras {min(keras_times):6.2f} "
              f"({statistics.median(keras_times):5.2f}) s   skconvnet {min(our_times):6.2f} "
              f"({statistics.median(our_times):5.2f}) s   "
              f"ratio {min(our_times) / min(keras_times):.3f}")

    print("\n2. Fine-tuning block5 on stored block4_pool activations (3 augmented views, "
          "drawn once) against a Keras fine-tuning epoch through the whole network")
    keras_epochs, our_epochs = epoch_seconds["Keras"][1], []
    for _ in range(repeats):
        with epoch_times() as fits:
            ours(1, epochs, augmented_views=3)
        our_epochs += fits[-1][1:]
    print(f"   per epoch: Keras {min(keras_epochs):.2f} s, skconvnet {min(our_epochs):.2f} s, "
          f"ratio {min(our_epochs) / min(keras_epochs):.3f}")

    print("\n3. Head phase without augmentation: the classifier computes the frozen base's "
          "outputs once, before its first epoch; Keras runs the base in every epoch")
    keras_epochs, our_epochs = [], []
    with frozen_pass_seconds() as frozen_passes:
        for _ in range(repeats):
            for collected, fit in ((keras_epochs, theirs), (our_epochs, ours)):
                with epoch_times() as fits:
                    fit(epochs, 0, augmentation=False)
                collected += fits[0][1:]
    keras_epoch, our_epoch, frozen_pass = min(keras_epochs), min(our_epochs), min(frozen_passes)
    print(f"   per epoch: Keras {keras_epoch:.2f} s, skconvnet {our_epoch:.3f} s after a "
          f"{frozen_pass:.2f} s pass over the frozen base")
    keras_phase, our_phase = 30 * keras_epoch, frozen_pass + 30 * our_epoch
    print(f"   30 head epochs (the book's): Keras {keras_phase:.0f} s, skconvnet "
          f"{our_phase:.1f} s, {keras_phase / our_phase:.1f}x faster")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed-images", type=int, default=100)
    parser.add_argument("--extra-epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"device: {device()}")
    speed(shared_weights(), args.speed_images, args.extra_epochs, args.repeats)


if __name__ == "__main__":
    main()
