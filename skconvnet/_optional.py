"""Optional dependencies: imported where a feature needs them, with one error that names the
extra to install (as scikit-learn's ``check_matplotlib_support`` does for plots)."""

import importlib

#: What each extra of ``pyproject.toml`` installs, as ``pip install`` names them.
EXTRAS = {
    "serve": ("onnxruntime",),
    "tensorflow": ("keras", "tensorflow"),
    "jax": ("keras", "jax"),
    "hub": ("keras", "tensorflow", "keras-hub", "tensorflow-text", "tokenizers", "sentencepiece",
            "kagglehub"),
    "onnx": ("keras", "tensorflow", "onnx", "onnxruntime", "tf2onnx", "skl2onnx", "sympy"),
    "plot": ("matplotlib", "pandas"),
    "dask": ("dask[distributed]",),
    "skops": ("skops",),
}


def require(*modules, extra, purpose, otherwise=""):
    """Import ``modules`` and return them (one module alone), or raise an ImportError that
    names what ``purpose`` needs and the extra of skconvnet that installs it, followed by
    ``otherwise`` (another way out)."""
    imported, missing = [], []
    for module in modules:
        try:
            imported.append(importlib.import_module(module))
        except ModuleNotFoundError as error:  # the module, or a package it needs (a backend)
            missing.append((error.name or module).split(".")[0])
    if missing:
        names = " and ".join(dict.fromkeys(missing))
        raise ImportError(
            f"{purpose} needs {names}: pip install 'skconvnet[{extra}]' (or pip install "
            f"{' '.join(EXTRAS[extra])}){otherwise}."
        ) from None
    return imported[0] if len(imported) == 1 else tuple(imported)


def require_keras(purpose):
    """The keras module, or an ImportError naming the extras that install it with a backend."""
    return require("keras", extra="tensorflow", purpose=purpose,
                   otherwise=", or pip install 'skconvnet[jax]' and set KERAS_BACKEND=jax")
