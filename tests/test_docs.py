"""The documentation builds without a warning: user guide, API reference, example gallery."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FAST_PRECISION

import skconvnet

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_build_without_warnings(tmp_path, cats_and_dogs_or_none):
    for module in ("sphinx", "sphinx_gallery", "myst_parser", "numpydoc", "pydata_sphinx_theme"):
        pytest.importorskip(module, reason="the docs need pip install -e '.[docs]'")
    html = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(html)],
        capture_output=True, text=True,
        env={**os.environ, "SKCONVNET_PRECISION": FAST_PRECISION},  # the gallery's precision
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    api = (html / "api.html").read_text()
    for name in set(skconvnet.__all__) - {"__version__"}:  # every public name has an entry
        assert f'id="skconvnet.{name}"' in api, name
    assert "pydata-sphinx-theme" in api or "pydata_sphinx_theme" in api
    for page in ("getting_started", "command_line", "feature_extraction",
                 "choosing_a_backbone", "backbones", "fine_tuning", "targets",
                 "looking_inside", "checking_photos", "weights",
                 "precision_and_backends", "gpu", "dask", "deploying", "troubleshooting",
                 "performance", "contributing", "auto_examples/index"):
        assert (html / f"{page}.html").is_file()
    if cats_and_dogs_or_none is not None:  # the examples ran, and drew their figures
        comparison = (html / "auto_examples" / "plot_book_comparison.html").read_text()
        assert "sphx_glr_plot_book_comparison_001.png" in comparison
        assert "fine-tuning" in comparison and "accuracy 0." in comparison
        inside = (html / "auto_examples" / "plot_looking_inside.html").read_text()
        assert "sphx_glr_plot_looking_inside_002.png" in inside  # both methods drew
        assert "12 heatmaps of 150x150 pixels" in inside
