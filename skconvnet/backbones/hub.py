"""keras-hub backbones (:mod:`~skconvnet.backbones.hub_specs`) loaded and built as Keras models.

keras-hub runs a transformer's encoder as one layer; here its blocks are laid
out as a chain of their own (the preset's layer objects, called in keras-hub's order), so
that a cut computes only the blocks up to it and a deeper cut resumes from a shallower one.

keras-hub is an optional dependency (``pip install 'skconvnet[hub]'``), imported on first use.
"""

import functools
import json
import os
import tempfile
from dataclasses import replace

import numpy as np

from .._optional import require
from .hub_specs import HubBackbone, configured
from .precision import dtype_policy


def keras_hub(spec):
    """The keras_hub module, or an ImportError naming the extra that installs it."""
    return require("keras_hub", extra="hub", purpose=f"backbone={spec.name!r} ({spec.title})")


def family(spec):
    """The keras-hub class of ``spec``'s network."""
    return getattr(keras_hub(spec).models, spec.constructor)


def new_model(spec, config, *, image_size=None, precision="float32"):
    """keras-hub's model of ``spec`` from ``config`` (a JSON string), random weights, at
    ``image_size`` (transformers) and ``precision``."""
    config = dict(json.loads(config), dtype=dtype_policy(precision))
    if spec.transformer and image_size is not None:
        config["image_shape"] = (*image_size, 3)
    return family(spec).from_config(config)


def load_preset(spec, preset):
    """``(spec, config, arrays)`` of a keras-hub preset (a name, downloaded and cached by
    keras-hub, or a ``save_to_preset`` folder): ``spec`` with the preprocessing of the
    preset's image converter, the model's config as JSON and its weights."""
    hub = keras_hub(spec)
    try:
        model = hub.models.Backbone.from_preset(preset)
    except Exception as error:
        raise OSError(
            f"weights={preset!r} could not be loaded as a keras-hub preset for "
            f"backbone={spec.name!r} ({str(error).splitlines()[0] if str(error) else error!r}). "
            f"Pass a keras-hub preset name (e.g. {spec.preset!r}, downloaded once into "
            "keras-hub's cache), a folder written by save_to_preset, or None (random weights)."
        ) from None
    model = getattr(model, "vision_encoder", model)  # image-text models: the image tower
    if type(model).__name__ != spec.constructor:
        fitting = [name for name, other in _registry().items()
                   if other.constructor == type(model).__name__]
        raise ValueError(
            f"weights={preset!r} is a keras-hub {type(model).__name__}, not a "
            f"{spec.constructor} as backbone={spec.name!r} needs. "
            + (f"It fits backbone={' or '.join(map(repr, fitting))}. " if fitting else
               "skconvnet cuts no network of that kind. ")
            + f"The keras-hub backbones: {', '.join(_registry())}."
        )
    config = _plain(model.get_config())
    config.pop("dtype", None)
    preset_spec = replace(configured(spec, config), **_preprocessing(hub, preset))
    return preset_spec, json.dumps(config), [np.array(array) for array in model.weights]


def _preprocessing(hub, preset):
    """``scale`` and ``offset`` of the preset's image converter (the spec's where it has none)."""
    try:
        converter = hub.layers.ImageConverter.from_preset(preset)
    except Exception:
        return {}
    values = {}
    for name in ("scale", "offset"):
        value = getattr(converter, name, None)
        if value is not None:
            values[name] = tuple(float(v) for v in np.broadcast_to(np.asarray(value, float), 3))
    return values


def _plain(value):
    """JSON-like ``value`` with tuples as lists, to compare configs."""
    return json.loads(json.dumps(value))


def _registry():
    from .specs import BACKBONES

    return {name: spec for name, spec in BACKBONES.items() if isinstance(spec, HubBackbone)}


def random_arrays(spec, config, seed):
    """Weights of ``spec``'s network drawn from a seeded NumPy generator, the same in every
    process: kernels Glorot-uniform, other variables that keras-hub initialises at random
    (tokens, position embeddings) normal with standard deviation 0.02, constants kept."""
    rng = np.random.default_rng(seed)
    arrays = []
    for variable in new_model(spec, config).weights:
        value = np.array(variable, dtype=np.float32)
        if variable.path.endswith("kernel") and value.ndim >= 2:
            receptive = int(np.prod(value.shape[:-2]))
            fan_in, fan_out = receptive * value.shape[-2], receptive * value.shape[-1]
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            value = rng.uniform(-limit, limit, size=value.shape).astype(np.float32)
        elif value.size > 1 and np.ptp(value) > 0:
            value = rng.normal(0.0, 0.02, size=value.shape).astype(np.float32)
        arrays.append(value)
    return arrays


def build(weights, image_size, precision):
    """The network of ``weights`` computing in ``precision``, as a Keras model whose
    operations are the cut points' layers in order (a transformer's at ``image_size``)."""
    spec = weights.spec
    reference = new_model(spec, weights.config)
    reference.set_weights(list(weights.arrays))
    size = tuple(image_size) if spec.transformer else None
    if precision == "float32" and (size is None or size == _built_size(weights.config)):
        model = reference
    else:  # keras-hub's own loading, which interpolates position embeddings to the size
        model = new_model(spec, weights.config, image_size=size, precision=precision)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.weights.h5")
            reference.save_weights(path)
            model.load_weights(path)
    return chain(spec, model, size or spec.image_size) if spec.transformer else model


def _built_size(config):
    """The image size a transformer's ``config`` (JSON) builds it for."""
    return tuple(json.loads(config)["image_shape"][:2])


def chain(spec, model, image_size):
    """A transformer as one Keras operation per cut point: embedding (and keras-hub's
    layers before the first block), each block, the final normalisation: ``model``'s
    layers, called once more."""
    import keras

    inputs = keras.Input(shape=(*image_size, 3), name="images")
    tokens = spec.token_shape(image_size)[0]
    x = inputs
    for layer in _chain_layers(spec, model):
        x = layer(x)
        if x.shape[1] != tokens:  # keras-hub 0.32's SigLIP embedding declares one token
            x = x[:, :tokens]     # more than it makes: the shape the next blocks expect
    return keras.Model(inputs, x, name=spec.name)


def _chain_layers(spec, model):
    if spec.constructor == "DINOV2Backbone":
        return [model.embeddings, *model.encoder.layers, model.layernorm]
    if spec.constructor == "ViTBackbone":
        embedding, encoder = model.layers[1], model.layers[2]
        return [embedding, encoder.dropout, *encoder.encoder_layers, encoder.layer_norm]
    if spec.constructor == "SigLIPVisionEncoder":
        return [model.embedding, *model.encoder_layers, model.post_layer_norm]
    if spec.constructor == "CLIPVisionEncoder":
        return [model.embedding, model.pre_layer_norm, *model.encoder_layers,
                model.layer_norm]
    raise AssertionError(spec.constructor)


@functools.cache
def skeleton(spec):
    """A float32 model of ``spec`` at its customary size with keras-hub's initial weights,
    for shapes and positions only."""
    model = new_model(spec, spec.config)
    return chain(spec, model, spec.image_size) if spec.transformer else model
