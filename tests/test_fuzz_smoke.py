"""The fuzz target (fuzz/fuzz_api.py) runs: a few hundred inputs from fixed
seeds pass its contract checks, and the checks do catch a function that
breaks the contract. (The real fuzzing is run by hand; see the README.)"""

import importlib.util
import pathlib
import warnings

import numpy as np
import pytest

import xent

FUZZ = pathlib.Path(__file__).resolve().parent.parent / "fuzz" / "fuzz_api.py"


@pytest.fixture(scope="module")
def fuzz_api():
    assert FUZZ.is_file(), f"{FUZZ} is missing (it ships beside tests/)"
    spec = importlib.util.spec_from_file_location("fuzz_api", FUZZ)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._load()
    return module


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fuzz_target_runs_clean_from_fixed_seeds(fuzz_api, seed, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        execs, failures = fuzz_api.run_random(runs=300, seed=seed, provider="shim",
                                              artifact_dir=str(tmp_path), quiet=True)
    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    assert (execs, failures, crashes) == (300, 0, [])


def test_every_public_function_is_fuzzed(fuzz_api):
    names = {n for n in xent.__all__ if callable(getattr(xent, n))
             and not isinstance(getattr(xent, n), type(xent))}
    assert names | {"metrics.log_loss"} == set(fuzz_api.FUNCTIONS)


def _writes_its_input(x, axis=-1, *, out=None, n_threads=None):
    result = xent.softmax(x, axis=axis, out=out, n_threads=n_threads)
    if isinstance(x, np.ndarray) and x.size and isinstance(x.base, np.ndarray):
        # flip a bit of x's first element in the byte buffer x is a view of
        x.base[x.__array_interface__["data"][0] - x.base.__array_interface__["data"][0]] ^= 1
    return result


def _raises_index_error(x, axis=-1, *, out=None, n_threads=None):
    xent.softmax(x, axis=axis, out=out, n_threads=n_threads)
    raise IndexError("a bug")


def _returns_nan(x, axis=-1, *, out=None, n_threads=None):
    result = xent.softmax(x, axis=axis, out=out, n_threads=n_threads)
    if result.size:
        result.flat[0] = np.nan
    return result


@pytest.mark.parametrize("broken", [_writes_its_input, _raises_index_error, _returns_nan])
def test_the_checks_catch_a_broken_function(fuzz_api, broken, monkeypatch, tmp_path):
    monkeypatch.setattr(fuzz_api, "FUNCTIONS", ("softmax",))
    monkeypatch.setattr(xent, "softmax", broken)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        execs, failures = fuzz_api.run_random(runs=300, seed=0, provider="shim",
                                              artifact_dir=str(tmp_path), quiet=True)
    assert failures == 1 and len(list(tmp_path.glob("crash-*"))) == 1
