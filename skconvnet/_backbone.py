"""The VGG16 convolutional base: layer names, weights, and models cut at a layer.

Keras is imported inside the functions so that ``import skconvnet`` stays light.
"""

import functools
import hashlib
import os
import threading
import warnings

import numpy as np

# (filters, convolutions) of each block, as in keras/src/applications/vgg16.py.
_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))

LAYER_NAMES = tuple(
    name
    for block, (_, n_convs) in enumerate(_BLOCKS, start=1)
    for name in [f"block{block}_conv{i}" for i in range(1, n_convs + 1)] + [f"block{block}_pool"]
)

# Keras' own download of the ImageNet conv base (same file name and hash as
# keras.applications.VGG16, so the two share the ~/.keras/models cache).
IMAGENET_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + IMAGENET_FILE
)
IMAGENET_MD5 = "6d6bbae143d832006294945121d1f1fc"

RANDOM_SEED = 0


def check_layer(layer, parameter="layer"):
    """Return ``layer`` if it names a VGG16 conv-base layer, else raise a listing error."""
    if layer not in LAYER_NAMES:
        raise ValueError(
            f"Unknown layer {layer!r} for {parameter}. VGG16's convolutional base has these "
            f"layers, shallow to deep: {', '.join(LAYER_NAMES)}."
        )
    return layer


def check_layers(layer):
    """The list of layer names in a ``layer`` parameter: one name, or a list of them."""
    if isinstance(layer, str):
        return [check_layer(layer)]
    layers = list(layer)
    if not layers or len(set(layers)) != len(layers):
        raise ValueError(
            f"layer={layer!r}: a list of layers must name at least one layer, each once."
        )
    return [check_layer(name) for name in layers]


def n_poolings(layer):
    """How many 2x2 poolings lie between the input and the output of ``layer``."""
    return sum(name.endswith("_pool") for name in LAYER_NAMES[: LAYER_NAMES.index(layer) + 1])


def n_channels(layer):
    block = int(layer[len("block")])
    return _BLOCKS[block - 1][0]


def output_shape(layer, image_size):
    """``(height, width, channels)`` of ``layer``'s activation for images of ``image_size``."""
    factor = 2 ** n_poolings(layer)
    height, width = image_size
    if height < factor or width < factor:
        raise ValueError(
            f"image_size={tuple(image_size)} is too small for layer={layer!r}: the network "
            f"halves the image {n_poolings(layer)} times up to that layer, so height and width "
            f"must each be at least {factor}. Increase image_size or choose a shallower layer."
        )
    return height // factor, width // factor, n_channels(layer)


def _conv_shapes():
    """``{conv layer name: (in_channels, out_channels)}`` in order."""
    shapes, channels = {}, 3
    for name in LAYER_NAMES:
        if "_conv" in name:
            filters = n_channels(name)
            shapes[name] = (channels, filters)
            channels = filters
    return shapes


class Weights:
    """The conv layers' weights as read-only NumPy arrays, with a digest that names them."""

    def __init__(self, arrays):
        self.arrays = arrays  # {conv layer name: [kernel, bias]}
        digest = hashlib.sha256()
        for name, pair in arrays.items():
            for array in pair:
                array.setflags(write=False)
                digest.update(name.encode())
                digest.update(np.ascontiguousarray(array).data)
        self.digest = digest.hexdigest()[:16]


def resolve_weights(weights):
    """Return the :class:`Weights` for a ``weights`` parameter, reading them once per process.

    ``"imagenet"`` downloads through Keras' cache, ``None`` draws seeded random weights, and a
    path loads a weights file saved from a Keras VGG16 conv base. A path is keyed by its size
    and modification time, so a rewritten file is read again.
    """
    if weights is None:
        return _load(None)
    if isinstance(weights, str) and weights == "imagenet":
        return _load("imagenet")
    path = os.path.abspath(os.fspath(weights))
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"weights={os.fspath(weights)!r}: no such file. Pass 'imagenet' (downloaded by "
            "Keras), None (random initialisation) or the path to a weights file saved from a "
            "Keras VGG16 convolutional base (include_top=False)."
        )
    stat = os.stat(path)
    return _load((path, stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _load(key):
    if key is None:
        return Weights(_random_arrays(RANDOM_SEED))
    if key == "imagenet":
        return Weights(_read_weights_file(_download_imagenet()))
    return Weights(_read_weights_file(key[0]))


def _random_arrays(seed):
    """Glorot-uniform kernels and zero biases drawn from a seeded NumPy generator.

    Drawn in NumPy rather than by Keras' initialisers so that every process, a Dask worker
    included, gets the same weights for the same seed.
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, (cin, cout) in _conv_shapes().items():
        limit = np.sqrt(6.0 / (9 * cin + 9 * cout))
        kernel = rng.uniform(-limit, limit, size=(3, 3, cin, cout)).astype(np.float32)
        arrays[name] = [kernel, np.zeros(cout, np.float32)]
    return arrays


def _download_imagenet():
    import keras

    try:
        return keras.utils.get_file(
            IMAGENET_FILE, IMAGENET_URL, cache_subdir="models", file_hash=IMAGENET_MD5
        )
    except Exception as error:
        raise OSError(
            f"Could not download the ImageNet VGG16 weights from {IMAGENET_URL} ({error}). "
            f"Without network access, copy {IMAGENET_FILE} into Keras' cache "
            "(~/.keras/models, or $KERAS_HOME/models) or pass weights=<path to a weights file "
            "saved from a Keras VGG16 convolutional base>."
        ) from None


def _read_weights_file(path):
    import keras

    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns per skipped object before it raises
            base.load_weights(path)
    except Exception as error:
        raise ValueError(
            f"weights={path!r} is not a Keras VGG16 convolutional base (include_top=False): "
            f"loading it failed with: {str(error).splitlines()[0]}"
        ) from None
    arrays = {name: [np.array(w) for w in base.get_layer(name).get_weights()] for name in _conv_shapes()}
    return arrays


_models = {}
_models_lock = threading.Lock()


def segment_model(weights, precision, start, end):
    """A Keras model of the base's layers after ``start`` up to ``end`` (inclusive).

    ``start=None`` starts from (preprocessed) pixels; otherwise the input is ``start``'s
    activation, so a deeper layer can resume from a shallower one. Models share their layers
    (one set per weights and precision) and are built once per process.
    """
    key = (weights.digest, precision, start, end)
    with _models_lock:
        if key not in _models:
            import keras

            base = _base_model(weights, precision)
            first = 0 if start is None else LAYER_NAMES.index(start) + 1
            channels = 3 if start is None else n_channels(start)
            x = inputs = keras.Input(shape=(None, None, channels))
            for name in LAYER_NAMES[first : LAYER_NAMES.index(end) + 1]:
                x = base.get_layer(name)(x)
            _models[key] = keras.Model(inputs, x, name=f"vgg16_{start or 'pixels'}_to_{end}")
        return _models[key]


def _base_model(weights, precision):
    """The full conv base for ``weights`` at ``precision`` (call with ``_models_lock`` held)."""
    key = (weights.digest, precision)
    if key not in _models:
        _models[key] = build_base(weights, precision)
    return _models[key]


def dtype_policy(precision):
    """The Keras dtype policy that computes in ``precision`` (variables stay float32)."""
    return {"float32": "float32", "bfloat16": "mixed_bfloat16"}[precision]


def build_base(weights, precision, *, up_to=LAYER_NAMES[-1]):
    """A new VGG16 conv base with ``weights`` up to layer ``up_to``, computing in ``precision``.

    Each layer gets its own dtype policy, so Keras' global policy is never touched.
    """
    import keras

    policy = dtype_policy(precision)
    x = inputs = keras.Input(shape=(None, None, 3), name="pixels")
    for name in LAYER_NAMES[: LAYER_NAMES.index(up_to) + 1]:
        if "_conv" in name:
            layer = keras.layers.Conv2D(
                n_channels(name), 3, activation="relu", padding="same", name=name, dtype=policy
            )
        else:
            layer = keras.layers.MaxPooling2D(2, strides=2, name=name, dtype=policy)
        x = layer(x)
        if "_conv" in name:
            layer.set_weights(weights.arrays[name])
    return keras.Model(inputs, x, name="vgg16")
