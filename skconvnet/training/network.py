"""The Keras side of ``FineTunedConvNetClassifier``: network, augmentation, batches, phases."""

import math
from typing import NamedTuple

import keras
import numpy as np

from .._keras import output_in, without_single_replica_all_reduce
from ..backbones.graph import (
    InferenceMode,
    build_base,
    cut_base,
    first_trained,
    locate,
    preprocess,
)
from ..backbones.precision import dtype_policy
from ..backbones.tokens import TokenPooling


def book_augmentation(seeds):
    """Random flips, rotations (up to 40 degrees), zooms and shifts (20%), as in the book;
    ``seeds``: one per layer."""
    flip, rotation, zoom, translation = seeds
    return [
        keras.layers.RandomFlip("horizontal", seed=flip),
        keras.layers.RandomRotation(40 / 360, fill_mode="nearest", seed=rotation),
        keras.layers.RandomZoom(0.2, fill_mode="nearest", seed=zoom),
        keras.layers.RandomTranslation(0.2, 0.2, fill_mode="nearest", seed=translation),
    ]


def fresh_copies(layers):
    """New layers with the same configuration, so that fits share no layer state."""
    copies = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(
                f"augmentation[{index}] is {layer!r}; augmentation must be True, False or a "
                "list of Keras layers such as keras.layers.RandomFlip('horizontal')."
            )
        copies.append(layer.__class__.from_config(layer.get_config()))
    return copies


def augmentation_layers(augmentation, seeds):
    """The layers of the ``augmentation`` parameter: the book's (True), new copies of the
    given ones, or none (False)."""
    if augmentation is True:
        return book_augmentation(seeds.ints("augmentation", 4))
    return fresh_copies(augmentation or [])


class Network(NamedTuple):
    """The network and its parts, which share their layers with it."""

    model: keras.Model  # from pixels to the outputs: probabilities, or numbers
    base: keras.Model  # the backbone cut at the layer, frozen until fine-tuning
    pool: keras.layers.Layer  # pooling or flattening of the base's output
    head: keras.Model  # from the pooled features to the outputs
    augmentation: list  # the augmentation layers, active in training only


def build_network(weights, parameters, *, targets, seeds):
    """The :class:`Network` for the checked ``parameters``
    (:class:`~skconvnet.training.plan.TrainingParameters`): the base cut at their ``layer``
    (a nested model, frozen), its pooling layer and a new head with the outputs of
    ``targets`` (a :class:`~skconvnet.training.targets.Targets`), after the layers of the
    ``augmentation`` parameter.

    Pixels come in preprocessed as the backbone expects (a per-channel affine map, or none
    for networks that preprocess inside); the augmentation layers, active only in training,
    commute with such maps since they fill with ``nearest``. The base always runs in
    inference mode (:class:`InferenceMode`): batch normalisation keeps its statistics and
    the dropout inside some networks stays off, in every phase.

    The head is a model of its own from the pooled (or flattened) base output to the
    outputs; it shares its layers with the network, so training either trains both.
    """
    augmentation = augmentation_layers(parameters.augmentation, seeds)
    policy = dtype_policy(parameters.precision)
    inputs = keras.Input(shape=(*parameters.image_size, 3), name="pixels")
    x = inputs
    for augment in augmentation:
        x = augment(x)
    spec = weights.spec
    base = cut_base(build_base(weights, parameters.precision, image_size=parameters.image_size),
                    spec, parameters.layer)
    base.trainable = False
    x = InferenceMode(base, name=spec.name)(x)
    if spec.transformer:
        pool = TokenPooling(parameters.pooling, spec.prefix_tokens, dtype=policy)
    else:
        pool = {
            None: keras.layers.Flatten,
            "avg": keras.layers.GlobalAveragePooling2D,
            "max": keras.layers.GlobalMaxPooling2D,
        }[parameters.pooling](dtype=policy)
    x = pool(x)
    hidden = parameters.hidden_layer_sizes
    *hidden_kernels, last_kernel = seeds.ints("kernels", len(hidden) + 1)
    head_layers = []
    for units, kernel, dropout in zip(hidden, hidden_kernels,
                                      seeds.ints("dropout", len(hidden))):
        head_layers.append(keras.layers.Dense(
            units, activation="relu", dtype=policy,
            kernel_initializer=keras.initializers.GlorotUniform(seed=kernel),
        ))
        if parameters.dropout:
            head_layers.append(keras.layers.Dropout(parameters.dropout, seed=dropout))
    head_layers.append(keras.layers.Dense(
        targets.n_outputs, activation=targets.activation, dtype="float32",
        kernel_initializer=keras.initializers.GlorotUniform(seed=last_kernel),
        name="probability",
    ))
    features = keras.Input(shape=x.shape[1:], name="features")
    model = keras.Model(inputs, _stack(head_layers, x), name=f"finetuned_{weights.spec.name}")
    head = keras.Model(features, _stack(head_layers, features), name="head")
    return Network(model, base, pool, head, augmentation)


def phase_inputs(phase, plan, network, stored, source, spec):
    """``(model, load, n_views)`` of a :class:`~skconvnet.training.plan.Phase`: the model
    it trains, ``load(rows)`` of that model's inputs, and the stored views per image
    (None: one row per image).

    The head alone trains on the stored pooled features; the layers above the plan's
    ``top`` with the head, on the stored activations of ``top``; the whole network, on
    the pixels decoded and preprocessed in every epoch.
    """
    if phase.trains == "head":
        return network.head, stored.features.read, plan.n_views
    if phase.trains == "upper":
        upper = upper_model(network, spec=spec, top=plan.top)
        return upper, stored.activations.read, plan.n_views
    return network.model, pixel_loader(source, spec), None


def upper_model(network, *, spec, top):
    """The network above the frozen cut point ``top`` (None: pixels), sharing its layers.

    Its input is ``top``'s activation, so it trains on stored activations exactly as the
    whole network would on the pixels they came from.
    """
    upper = network.base
    if top is not None:
        upper = keras.Model(output_in(network.base, locate(network.base, spec, top)),
                            network.base.output)
    inputs = keras.Input(shape=upper.input.shape[1:], name=top or "pixels")
    x = InferenceMode(upper)(inputs)
    return keras.Model(inputs, network.head(network.pool(x)), name=f"above_{top or 'pixels'}")


def _stack(layers, x):
    for layer in layers:
        x = layer(x)
    return x


def unfreeze(base, spec, unfreeze_from):
    """Make the base's layers from ``unfreeze_from`` up to its top trainable."""
    base.trainable = True
    first = first_trained(base, spec, unfreeze_from)
    for index, operation in enumerate(base.operations):
        if isinstance(operation, keras.layers.Layer):
            operation.trainable = index >= first


def compile_for(model, *, optimizer, learning_rate, targets):
    optimizers = {
        "rmsprop": keras.optimizers.RMSprop,
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
    }
    model.compile(
        optimizer=without_single_replica_all_reduce(
            optimizers[optimizer](learning_rate=learning_rate)
        ),
        loss=targets.loss,
        weighted_metrics=[targets.metric],
    )


def unstandardised(model, mean, scale):
    """``model``, whose last layer is linear in standardised targets, made to give the
    targets in their own units: ``scale`` and ``mean`` folded into that layer."""
    last = model.layers[-1]
    kernel, bias = last.get_weights()
    last.set_weights([(kernel * scale).astype(np.float32),
                      (bias * scale + mean).astype(np.float32)])
    return model


def early_stopping(patience):
    """Stop when the validation loss stalls for ``patience`` epochs; keep the best weights."""
    return keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True
    )


def inference_copy(model):
    """The trained network without its optimizer state: what a fitted estimator keeps."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def pixel_loader(source, spec):
    """``load(indices)``: those images of ``source``, preprocessed for ``spec``."""
    return lambda indices: preprocess(spec, source.load(indices))


class Batches(keras.utils.PyDataset):
    """``(inputs, labels, sample weights)`` batches, loaded on demand by ``load(indices)``.

    With a ``shuffle_seed`` (any seed of ``np.random.default_rng``) the order is drawn anew
    after every epoch from a seeded NumPy generator, so training is reproducible without
    touching any global random state. With
    ``n_views`` stored views of each image (rows ``image * n_views + view``, view 0 the
    original), every epoch shows each image once, in a view drawn at random when shuffling
    and as the original otherwise.
    """

    def __init__(self, load, indices, y, sample_weight, batch_size, shuffle_seed=None,
                 n_views=None):
        super().__init__()
        self.load = load
        self.indices = np.asarray(indices)
        self.y = y
        self.sample_weight = sample_weight
        self.batch_size = batch_size
        self.n_views = n_views
        self.rng = None if shuffle_seed is None else np.random.default_rng(shuffle_seed)
        self._draw()

    def _draw(self):
        self.order = self.indices if self.rng is None else self.rng.permutation(self.indices)
        self.views = (np.zeros(len(self.order), int) if self.rng is None or not self.n_views
                      else self.rng.integers(self.n_views, size=len(self.order)))

    def __len__(self):
        return math.ceil(len(self.indices) / self.batch_size)

    def __getitem__(self, index):
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        chosen = self.order[batch]
        rows = chosen if self.n_views is None else chosen * self.n_views + self.views[batch]
        return self.load(rows), self.y[chosen], self.sample_weight[chosen]

    def on_epoch_end(self):
        self._draw()

    def release(self):
        """Drop the data, once training is over.

        TensorFlow's global default graph keeps the generator of every dataset Keras made
        from a ``PyDataset`` alive (``from_generator``'s ``py_func``), and with it this
        object: without this, each fit would keep its images, or its base outputs, forever.
        """
        self.load = self.indices = self.order = self.views = self.y = self.sample_weight = None
