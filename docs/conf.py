"""Sphinx configuration of xent's documentation site.

Built by CI with warnings as errors, in an environment where xent is installed
and ``pip install ".[docs]"`` brought Sphinx, numpydoc and myst-parser:

    python -m sphinx -W --keep-going -b html docs <outdir>

The pages are the Markdown files of this directory (MyST); the API reference
(api.md) is generated from the numpydoc docstrings by autodoc. No extension
needs the network (no intersphinx inventories).
"""

import os
import sys

# The xent documented is the importable one: a checkout built in place (run
# from its root, or with PYTHONPATH=<checkout>) or the installed package. Run
# from the root of a checkout that is not built (``python -m`` puts the current
# directory first on sys.path), the source tree's xent/ has no compiled
# extension: fall back to the installed xent then.
_root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
try:
    import xent
except ImportError:
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _root]
    for _name in [m for m in sys.modules if m == "xent" or m.startswith("xent.")]:
        del sys.modules[_name]
    import xent

project = "xent"
author = "the xent authors"
copyright = "the xent authors"
release = xent.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = []

# MyST: anchors for the ``page.md#section`` links the pages (and the README,
# included by index.md) use
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# autodoc + numpydoc: signatures without annotations (the docstrings'
# Parameters sections give the types, and annotations would be unresolvable
# cross-references without intersphinx); no autosummary member tables
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# references into other projects' documentation (``:func:`numpy.unique```)
# cannot resolve without intersphinx inventories (no network at build time):
# with -n they are rendered as plain code rather than reported
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|scipy|sklearn|torch|xgboost|lightgbm|jax|optax|keras)(\..*)?"),
]

html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"xent {release}"
html_theme_options = {
    "description": "Fast, exact cross-entropy losses for NumPy",
    "fixed_sidebar": False,
}
