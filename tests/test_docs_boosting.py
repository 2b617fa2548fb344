"""The examples of docs/boosting.md run as written (XGBoost and LightGBM are
optional peers: .ci/run installs them, so the examples run there)."""

import importlib.util
import pathlib
import re

import pytest

import xent._kernels  # noqa: F401  (the compiled extension must import)

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "boosting.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def _needs(code):
    return [m for m in ("xgboost", "lightgbm") if re.search(rf"^import {m}", code, flags=re.M)]


def test_the_page_has_its_examples():
    assert len(BLOCKS) == 3
    assert [_needs(b) for b in BLOCKS] == [[], ["xgboost"], ["lightgbm"]]


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_example_runs(code):
    missing = [m for m in _needs(code) if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (an optional peer)")
    exec(compile(code, str(DOC), "exec"), {"__name__": "__doc_example__"})
