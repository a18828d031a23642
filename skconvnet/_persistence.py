"""Pickling: Keras models travel as ``.keras`` archives and load back in Keras' safe mode.

Keras' own pickling of a model reloads it with ``safe_mode=False``, which would run any
code a tampered ``lambda`` layer carries. Here every Keras model in a fitted estimator's
state is saved with ``keras.saving.save_model`` and loaded with ``keras.saving.load_model``
in safe mode. The pickle around it is still a pickle: load only pickles you trust.
"""

import os
import tempfile
import warnings


class KerasArchive(bytes):
    """A Keras model saved as a ``.keras`` archive, as it is stored in a pickle."""

    @classmethod
    def of(cls, model):
        import keras

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.keras")
            keras.saving.save_model(model, path)
            with open(path, "rb") as file:
                return cls(file.read())

    def load(self):
        import keras


        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.keras")
            with open(path, "wb") as file:
                file.write(self)
            return keras.saving.load_model(path, compile=False, safe_mode=True)


class Persistent:
    """Mixin for estimators: pickles hold the Keras models named in ``_keras_models`` as
    archives, and this package's version; loading a pickle of another version warns."""

    _keras_models = ()  # names of fitted attributes that hold Keras models

    def __getstate__(self):
        state = dict(super().__getstate__())  # may be the instance's own __dict__
        for name in self._keras_models:
            if name in state:
                state[name] = KerasArchive.of(state[name])
        return {**state, "_skconvnet_version": _version()}

    def __setstate__(self, state):
        pickled_version = state.pop("_skconvnet_version", "unknown")
        if pickled_version != _version():
            warnings.warn(
                f"This {type(self).__name__} was pickled with skconvnet {pickled_version} and "
                f"is loaded with skconvnet {_version()}: pickles are only supported within "
                "one version. Refit the estimator, or install the version it was saved with.",
                UserWarning,
                stacklevel=2,
            )
        state = {
            name: value.load() if isinstance(value, KerasArchive) else value
            for name, value in state.items()
        }
        super().__setstate__(state)


def _version():
    from . import __version__

    return __version__
