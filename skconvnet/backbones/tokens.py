"""A transformer's tokens pooled into features inside a Keras network: the classifier's
head on a vision transformer (:func:`skconvnet.compute.activations.pool` is the same in
NumPy)."""

import functools


def __getattr__(name):
    """``TokenPooling``, a Keras layer: defined on first use, since this module is imported
    without Keras."""
    if name == "TokenPooling":
        return _token_pooling()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _token_pooling():
    import keras

    @keras.saving.register_keras_serializable(package="skconvnet")
    class TokenPooling(keras.layers.Layer):
        """``(batch, tokens, channels)`` tokens as ``(batch, features)``: the class token
        (``"cls"``), the mean or max of the patch tokens (``"avg"``, ``"max"``; class and
        register tokens, the first ``prefix_tokens``, left out), the class token beside the
        mean (``"cls+avg"``), or the patch tokens flattened (None). Saved networks name it
        ``skconvnet>TokenPooling``."""

        def __init__(self, pooling, prefix_tokens, **kwargs):
            super().__init__(**kwargs)
            self.pooling = pooling
            self.prefix_tokens = prefix_tokens

        def call(self, tokens):
            ops = keras.ops
            patches = tokens[:, self.prefix_tokens:]
            if self.pooling == "cls":
                return tokens[:, 0]
            if self.pooling == "avg":
                return ops.mean(patches, axis=1)
            if self.pooling == "max":
                return ops.max(patches, axis=1)
            if self.pooling == "cls+avg":
                return ops.concatenate([tokens[:, 0], ops.mean(patches, axis=1)], axis=-1)
            return ops.reshape(patches, (-1, patches.shape[1] * patches.shape[2]))

        def compute_output_shape(self, shape):
            if self.pooling is None:
                return (shape[0], (shape[1] - self.prefix_tokens) * shape[2])
            return (shape[0], shape[2] * (2 if self.pooling == "cls+avg" else 1))

        def get_config(self):
            return {**super().get_config(), "pooling": self.pooling,
                    "prefix_tokens": self.prefix_tokens}

    TokenPooling.__qualname__ = "TokenPooling"
    return TokenPooling
