"""Every code example of the documentation runs as written: the python blocks
of README.md and of each docs/*.md page, in order, in one namespace a page
(tests/_docs_blocks.py). Blocks that import an optional peer (SciPy, PyTorch,
scikit-learn, XGBoost, LightGBM) run where it is installed (.ci/run installs
them) and are skipped otherwise. The docstrings' examples are run by
tests/test_build.py::test_docstring_examples."""

import re

import pytest

import xent._kernels  # noqa: F401  (the compiled extension must import)
from _docs_blocks import DOCS, README, blocks, cases, needs, page


@pytest.mark.parametrize("path, index", cases())
def test_example_runs(path, index):
    page(path).run(index)


def _doc(name):
    path = DOCS / name
    if not path.is_file():
        pytest.skip(f"{path} not found (copy docs/ beside the tests directory)")
    return path


def test_the_pages_have_examples():
    """The pages meant to show code do (a block fenced as anything but
    ``python`` would silently stop being run)."""
    for name in ("quickstart.md", "boosting.md", "coming-from.md"):
        assert blocks(_doc(name)), name
    if README.is_file():
        assert blocks(README)


def test_boosting_page_has_its_examples():
    codes = [code for _, code in blocks(_doc("boosting.md"))]
    assert len(codes) == 3
    assert [needs(c) for c in codes] == [[], ["xgboost"], ["lightgbm"]]


def test_coming_from_page_has_a_block_per_peer():
    path = _doc("coming-from.md")
    sections = re.findall(r"^## (.+)$", path.read_text(encoding="utf-8"), flags=re.M)
    assert sections == ["SciPy", "PyTorch", "Keras", "optax", "JAX", "scikit-learn"]
    codes = [code for _, code in blocks(path)]
    assert len(codes) == len(sections)
    # SciPy, PyTorch and scikit-learn are checked against the peer itself; the
    # Keras, optax and JAX blocks against those peers' documented values
    assert [needs(c) for c in codes] == [["scipy"], ["torch"], [], [], [], ["sklearn"]]


def test_api_page_documents_every_public_function():
    """docs/api.md has an autodoc entry for every public function: xent's
    (but __version__ and the metrics module), xent.metrics' and
    xent.objectives'."""
    import xent
    import xent.metrics
    import xent.objectives

    documented = set(re.findall(r"^\.\. auto(?:function|class):: (\S+)$",
                                _doc("api.md").read_text(encoding="utf-8"), flags=re.M))
    public = {f"xent.{n}" for n in xent.__all__ if n not in ("__version__", "metrics")}
    public |= {f"xent.metrics.{n}" for n in xent.metrics.__all__}
    public |= {f"xent.objectives.{n}" for n in xent.objectives.__all__}
    assert public - documented == set()


def test_torch_page_blocks_each_import_torch():
    """Every block of the PyTorch page imports torch itself, so that without
    PyTorch each is skipped rather than failing on a name an earlier,
    skipped block would have defined."""
    codes = [code for _, code in blocks(_doc("torch.md"))]
    assert codes and all("torch" in needs(c) for c in codes)
