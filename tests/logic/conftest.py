"""The pure-logic tier: ``python -m pytest tests/logic`` runs in seconds and never imports
Keras or TensorFlow, which each test here checks of itself."""

import sys

import pytest

BACKENDS = ("keras", "tensorflow", "jax")


@pytest.fixture(autouse=True)
def imports_no_backend():
    before = {name for name in BACKENDS if name in sys.modules}
    yield
    imported = {name for name in BACKENDS if name in sys.modules} - before
    assert not imported, f"this test imported {sorted(imported)}"
