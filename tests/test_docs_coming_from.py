"""The examples of docs/coming-from.md run as written: the SciPy, PyTorch and
scikit-learn blocks against the peer itself where it is installed (.ci/run
installs them), the others against the peers' documented values."""

import importlib.util
import pathlib
import re

import pytest

import xent._kernels  # noqa: F401  (the compiled extension must import)

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "coming-from.md"
TEXT = DOC.read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
PEERS = ("scipy", "torch", "sklearn", "keras", "jax", "optax")


def _needs(code):
    return sorted({m for m in PEERS if re.search(rf"^import {m}\b", code, flags=re.M)})


def test_the_page_has_a_block_per_peer():
    sections = re.findall(r"^## (.+)$", TEXT, flags=re.M)
    assert sections == ["SciPy", "PyTorch", "Keras", "optax", "JAX", "scikit-learn"]
    assert len(BLOCKS) == len(sections)
    assert [_needs(b) for b in BLOCKS] == [["scipy"], ["torch"], [], [], [], ["sklearn"]]


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_example_runs(code):
    missing = [m for m in _needs(code) if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (an optional peer)")
    exec(compile(code, str(DOC), "exec"), {"__name__": "__doc_example__"})
