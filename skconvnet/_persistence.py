"""Saving: Keras models travel as ``.keras`` archives and load back in Keras' safe mode.

Keras' own pickling of a model reloads it with ``safe_mode=False``, which would run any
code a tampered ``lambda`` layer carries. Here every Keras model in a fitted estimator's
state is saved with ``keras.saving.save_model`` as plain ``bytes`` — which pickle, joblib
and ``skops.io`` all store as they are — and loaded with ``keras.saving.load_model`` in safe
mode. A pickle around it is still a pickle: load only pickles you trust; ``skops.io`` runs
no code of the file's choosing, and needs to trust only :data:`TRUSTED_TYPES`.
"""

import os
import tempfile
import warnings
import zipfile

from ._optional import require, require_keras

#: The types a ``skops.io`` file of a fitted skconvnet estimator holds beyond scikit-learn's
#: and NumPy's own: ``skops.io.load(file, trusted=skconvnet.TRUSTED_TYPES)`` loads it (a
#: pipeline or search around it may hold other types, which ``skops.io.get_untrusted_types``
#: lists).
TRUSTED_TYPES = [
    "skconvnet._classifier.FineTunedConvNetClassifier",
    "skconvnet._regressor.FineTunedConvNetRegressor",
    "skconvnet._extractor.ConvNetFeatureExtractor",
    "skconvnet._extractor.VGGFeatureExtractor",
]


def keras_archive(model):
    """``model`` saved as a ``.keras`` archive, as bytes."""
    import keras

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        keras.saving.save_model(model, path)
        with open(path, "rb") as file:
            return file.read()


def load_keras_archive(archive):
    """The Keras model of a ``.keras`` archive, loaded in safe mode.

    Keras finds this package's layers by their registered names, which exist only once the
    module defining them is imported: loading imports it, so that a saved estimator loads in
    an interpreter that has imported nothing else.
    """
    keras = require_keras("Loading a fitted network")

    from .backbones.graph import InferenceMode
    from .backbones.tokens import TokenPooling

    custom_objects = {keras.saving.get_registered_name(layer): layer
                      for layer in (InferenceMode, TokenPooling)}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        with open(path, "wb") as file:
            file.write(archive)
        with zipfile.ZipFile(path) as keras_zip:  # keras-hub registers its layers on import
            if b'"keras_hub' in keras_zip.read("config.json"):
                require("keras_hub", extra="hub", purpose="Loading a network on a keras-hub "
                                                          "backbone")
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=False,
                                       safe_mode=True)


class KerasArchive(bytes):
    """How skconvnet 0.1.0 stored a Keras model's archive; kept so that its pickles load (and
    are then refused with a clear error, see :meth:`Persistent.__setstate__`)."""


class Persistent:
    """Mixin for estimators: saved states hold the Keras models named in ``_keras_models``
    as archives, and this package's version; loading a state of another version warns, and
    a state that cannot be restored raises, naming the attribute."""

    _keras_models = ()  # names of fitted attributes that hold Keras models
    # parameters added since 0.2.0, with the value that keeps what an estimator saved before
    # them does: a saved state without them gets it
    _added_parameters = {}

    def __getstate__(self):
        state = dict(super().__getstate__())  # may be the instance's own __dict__
        for name in self._keras_models:
            if name in state:
                state[name] = keras_archive(state[name])
        return {**state, "_skconvnet_version": _version()}

    def __setstate__(self, state):
        state = dict(state)
        saved_version = state.pop("_skconvnet_version", "unknown")
        if saved_version != _version():
            warnings.warn(
                f"This {type(self).__name__} was saved with skconvnet {saved_version} and "
                f"is loaded with skconvnet {_version()}: saved estimators are only supported "
                "within one version. Refit the estimator, or install the version it was saved "
                "with.",
                UserWarning,
                stacklevel=2,
            )
        state = {**self._added_parameters, **state}
        missing = [name for name in self._get_param_names() if name not in state]
        if missing:
            raise ValueError(
                f"The saved {type(self).__name__} has no {', '.join(missing)}: it was saved "
                f"with skconvnet {saved_version}, whose estimators this version cannot "
                "restore. Refit it, or load it with the version it was saved with."
            )
        for name in self._keras_models:
            if name in state:
                state[name] = self._restored(name, state[name])
        super().__setstate__(state)

    def _restored(self, name, archive):
        where = f"The saved {type(self).__name__}'s {name}"
        if not isinstance(archive, (bytes, bytearray)):
            raise TypeError(
                f"{where} is a {type(archive).__name__}, not the bytes of a .keras archive: "
                "whatever saved or copied it changed the estimator's state. Save fitted "
                "estimators with pickle, joblib or skops.io, or refit."
            )
        try:
            return load_keras_archive(archive)
        except ImportError:  # names the extra to install
            raise
        except Exception as error:
            raise ValueError(
                f"{where} (a .keras archive of {len(archive)} bytes) could not be loaded: "
                f"{error} Load it with the skconvnet and Keras versions it was saved with, "
                "or refit."
            ) from error


def _version():
    from . import __version__

    return __version__
