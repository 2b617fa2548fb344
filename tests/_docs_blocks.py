"""Run the ```python blocks of a Markdown page (README.md, docs/*.md) as tests.

A page's python blocks run in order in one namespace, as a reader would run
them; blocks that are not meant to run use another fence language (``sh``,
``text``). A block importing an optional peer (PyTorch, XGBoost, ...) that is
not importable here is skipped, with the reason; a block importing anything
else that is missing fails.

The pages are found next to the tests directory: ``<tests>/../docs`` and
``<tests>/../README.md`` (a source checkout; .ci/run copies docs/ and the
README beside the copy of tests/ it runs against the installed wheel).
"""

import functools
import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

#: the optional peers a block may import; skipped (not failed) when missing
PEERS = ("dask", "distributed", "jax", "keras", "lightgbm", "matplotlib", "mpmath", "optax", "pandas", "scipy", "sklearn",
         "tensorflow", "threadpoolctl", "torch", "xgboost")

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", flags=re.S | re.M)
_IMPORT = re.compile(r"^[ \t]*(?:import|from)[ \t]+([A-Za-z_]\w*)", flags=re.M)


@functools.lru_cache(maxsize=None)
def blocks(path):
    """The page's python blocks: (line of the block's first code line, code)."""
    text = pathlib.Path(path).read_text(encoding="utf-8")
    return tuple((text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in _FENCE.finditer(text))


def needs(code):
    """The optional peers the block imports, sorted."""
    return sorted({m for m in _IMPORT.findall(code) if m in PEERS})


def _importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # (a module set to None in sys.modules)
        return False


def missing(code):
    """The optional peers the block imports that are not importable here."""
    return [m for m in needs(code) if not _importable(m)]


class Page:
    """A page's blocks and the namespace they share."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.blocks = blocks(self.path)
        self.namespace = {"__name__": "__doc_example__"}
        self.ran = set()

    def _exec(self, i):
        self.ran.add(i)
        line, code = self.blocks[i]
        # padded so that a traceback names the page's own line numbers
        exec(compile("\n" * (line - 1) + code, str(self.path), "exec"), self.namespace)

    def run(self, i):
        """Run block i, after the blocks before it that have not run yet
        (a block whose peers are missing here is left out, as its test is)."""
        lacking = missing(self.blocks[i][1])
        if lacking:
            pytest.skip(f"{', '.join(lacking)} not installed (an optional peer)")
        for j in range(i):
            if j not in self.ran and not missing(self.blocks[j][1]):
                self._exec(j)
        if i in self.ran:
            return  # (it ran already, before a later block)
        self._exec(i)


@functools.lru_cache(maxsize=None)
def page(path):
    """The one Page of path in this process (its namespace shared by its tests)."""
    return Page(path)


def cases():
    """pytest parameters: one per python block of README.md and of every
    docs/*.md page; a missing README.md or docs/ is one case, skipped."""
    params = []
    if README.is_file():
        params += [pytest.param(README, i, id=f"README.md-block{i}") for i in range(len(blocks(README)))]
    else:
        params.append(pytest.param(None, 0, id="README.md", marks=pytest.mark.skip(
            reason=f"{README} not found (copy README.md beside the tests directory)")))
    pages = sorted(DOCS.glob("*.md")) if DOCS.is_dir() else []
    if not pages:
        params.append(pytest.param(None, 0, id="docs", marks=pytest.mark.skip(
            reason=f"no pages in {DOCS} (copy docs/ beside the tests directory)")))
    for p in pages:
        params += [pytest.param(p, i, id=f"{p.name}-block{i}") for i in range(len(blocks(p)))]
    return params
