"""Keras internals that skconvnet relies on, used in this one place.

Keras 3 exposes no public way to walk a functional model's graph from a layer to its
neighbours, to skip the optimizer's gradient all-reduce, nor to predict without copying the
outputs; a release that renames one of these attributes breaks one function here.
"""

import numpy as np


def input_layers(operation):
    """The layers whose outputs ``operation`` is called on (in a functional model)."""
    return [tensor._keras_history[0]
            for node in operation._inbound_nodes for tensor in node.input_tensors]


def output_in(model, operation):
    """The output of ``operation`` in ``model``'s graph. ``operation.output`` is that of
    its first call, which is another graph's where a model reuses layers (a chain of the
    layers that keras-hub's own graph called, or the copies of a graph that Keras makes
    for a model cut out of another)."""
    nodes = {id(node) for depth in model._nodes_by_depth.values() for node in depth}
    return next(node.output_tensors[0] for node in operation._inbound_nodes
                if id(node) in nodes)


def predict_on_batch(model, batch):
    """``model.predict_on_batch(batch)`` as read-only NumPy views of the output tensors.

    Keras copies each output into a new array; on TensorFlow NumPy can read a tensor where
    it lies, which saves a copy of every activation a layer search passes on.
    """
    import keras

    if keras.backend.backend() != "tensorflow" or not isinstance(model, keras.Model):
        return model.predict_on_batch(batch)
    model.make_predict_function()
    return keras.tree.map_structure(np.asarray, model.predict_function([(batch,)]))


def n_calls(layer):
    """How many times ``layer`` is called in the models built so far (its consumers)."""
    return len(layer._outbound_nodes)


def without_single_replica_all_reduce(optimizer):
    """Skip Keras' all-reduce of gradients on TensorFlow when there is one replica.

    Traced, that all-reduce goes through ``tf.custom_gradient``, which registers a gradient
    function in TensorFlow's global registry, never emptied; its closure keeps the training
    graph and every variable of the network alive: about 50 MB per fit of a small classifier,
    forever. Summing over one replica is the identity, so skipping it changes no number.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return optimizer
    import tensorflow as tf

    all_reduce = optimizer._all_reduce_sum_gradients

    def sum_over_replicas(grads_and_vars):
        strategy = tf.distribute.get_strategy()
        if tf.distribute.has_strategy() and strategy.num_replicas_in_sync > 1:
            return all_reduce(grads_and_vars)
        return list(grads_and_vars)

    optimizer._all_reduce_sum_gradients = sum_over_replicas
    return optimizer


def value_and_vjp(function, x):
    """``(function(x), vjp)``, where ``vjp(cotangent)`` is the gradient with respect to ``x``
    of the sum of ``function(x) * cotangent``.

    Keras 3 has no backend-independent gradient outside ``fit``; each backend has its own.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
        return y, lambda cotangent: tape.gradient(
            y, x, output_gradients=tf.convert_to_tensor(cotangent, y.dtype))
    if backend == "jax":
        import jax

        y, vjp = jax.vjp(function, x)
        return y, lambda cotangent: vjp(jax.numpy.asarray(cotangent, y.dtype))[0]
    raise ValueError(
        f"Gradients (Grad-CAM) are computed on the TensorFlow and JAX backends of Keras; this "
        f"process runs Keras on {backend!r}. Set KERAS_BACKEND=tensorflow or jax before "
        "Keras is imported."
    )
