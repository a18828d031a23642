"""Sphinx configuration: user guide (Markdown), API reference (numpydoc), example gallery."""

import os
from pathlib import Path

import skconvnet

project = "skconvnet"
version = release = skconvnet.__version__
extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
myst_heading_anchors = 3
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
html_theme = "pydata_sphinx_theme"  # the theme of scikit-learn and its contrib projects
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}

# The gallery's examples run on the shared cats/dogs photos; without them the pages are built
# from the code alone (SKCONVNET_DOCS_RUN_EXAMPLES=0 does the same on purpose).
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cats_and_dogs"
run_examples = SHARED.is_dir() and os.environ.get("SKCONVNET_DOCS_RUN_EXAMPLES", "1") != "0"
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "plot_gallery": run_examples,
    "download_all_examples": False,
    "remove_config_comments": True,
}
