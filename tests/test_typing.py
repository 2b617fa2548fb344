"""Type information: the user-style example runs and passes ``mypy --strict``,
mypy catches a wrong use, and ``mypy.stubtest`` finds the annotations and the
stub of the compiled module consistent with the runtime.

The mypy checks need mypy (the CI installs it where it runs them); without it
they are skipped, never passed.
"""

import importlib.util
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TYPING = ROOT / "tests" / "typing"
EXAMPLE = TYPING / "example.py"
ALLOWLIST = TYPING / "stubtest-allowlist.txt"


def _mypy_api():
    try:
        from mypy import api
    except ImportError:
        pytest.skip("mypy is not installed (the CI's typing check installs it)")
    return api


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory):
    """One mypy cache for this module's runs, outside the tree (NumPy's stubs
    are checked once)."""
    return tmp_path_factory.mktemp("mypy_cache")


@pytest.fixture
def run_mypy(monkeypatch, mypy_cache):
    """mypy.api.run from the repository root (mypy puts the current directory
    on its search path: the xent under test is found there). Returns
    (stdout, stderr, exit status)."""
    api = _mypy_api()
    monkeypatch.chdir(ROOT)

    def run(*args):
        return api.run(["--cache-dir", str(mypy_cache), *map(str, args)])

    return run


# --strict for the user's file; xent is followed "silently", as an installed
# package is (mypy reports no errors inside site-packages): the user sees the
# public annotations, not the strictness of xent's private helpers.
STRICT = ("--strict", "--follow-imports=silent")


def test_example_runs():
    result = runpy.run_path(str(EXAMPLE), run_name="xent_typing_example")
    out = result["main"]()
    assert out["loss"] > 0 and out["version"]


def test_example_passes_mypy_strict(run_mypy):
    stdout, stderr, status = run_mypy(*STRICT, EXAMPLE)
    assert status == 0, stdout + stderr
    assert "Success" in stdout


def test_mypy_catches_a_wrong_use(run_mypy, tmp_path):
    """The check can fail: wrong uses of the public API are type errors."""
    bad = tmp_path / "bad_use.py"
    bad.write_text(textwrap.dedent("""\
        import numpy as np
        import xent
        from xent.objectives import softmax_grad_hess

        x = np.zeros((2, 3))
        y = np.array([0, 2])
        lse: str = xent.logsumexp(x)
        loss, grad = xent.softmax_cross_entropy(x, y)
        g, h = softmax_grad_hess(x, y, return_loss=True)
        xent.softmax_cross_entropy(x, y, reduction="average")
        xent.nll_loss(x, y, label_smothing=0.1)
    """))
    stdout, stderr, status = run_mypy(*STRICT, bad)
    assert status == 1, stdout + stderr
    assert "import-not-found" not in stdout and "import-untyped" not in stdout, stdout
    errors = [line for line in stdout.splitlines() if ": error: " in line]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    # the str annotation, unpacking a loss that may be a scalar (a reduced
    # loss: its type is a scalar or an array, whatever the reduction),
    # unpacking three arrays into two names, an unknown reduction, a
    # misspelt option (the options are the overloads' **options TypedDict)
    assert lines == [7, 8, 9, 10, 11], stdout


def _public_functions():
    import inspect

    import xent
    import xent.metrics
    import xent.objectives

    for module in (xent, xent.objectives, xent.metrics):
        for name in module.__all__:
            if inspect.isfunction(getattr(module, name)):
                yield f"{module.__name__}.{name}", inspect.signature(getattr(module, name))


def test_every_option_type_checks(run_mypy, tmp_path):
    """Each public function called with every parameter it has, each passed by
    name at its default value (the required ones: an array), type-checks.

    The overloads take the options as ``**options: Unpack[<Function>Options]``
    (xent/_typing.py). mypy checks those TypedDicts against the implementation
    (a key it lacks, or typed more widely, is an error) but not that they list
    all its options, and stubtest cannot compare such overloads with the
    runtime (its allowlist): an option left out of its TypedDict fails here.
    """
    calls = ["import numpy as np", "import xent", "import xent.metrics",
             "import xent.objectives", "", "x = np.zeros((2, 3))"]
    for name, signature in _public_functions():
        args = []
        for p in signature.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.default is p.empty:
                args.append("x" if p.kind is not p.KEYWORD_ONLY else f"{p.name}=x")
            else:
                args.append(f"{p.name}={p.default!r}")
        calls.append(f"{name}({', '.join(args)})")
    assert len(calls) > 20
    source = tmp_path / "every_option.py"
    source.write_text("\n".join(calls) + "\n")
    stdout, stderr, status = run_mypy(*STRICT, source)
    assert status == 0, source.read_text() + stdout + stderr


def test_package_passes_mypy(run_mypy):
    """The package itself, with mypy's default flags."""
    stdout, stderr, status = run_mypy("-p", "xent")
    assert status == 0, stdout + stderr


def test_stubtest(mypy_cache, tmp_path):
    """The annotations and xent/_kernels.pyi agree with the runtime objects
    (allowlist: only what stubtest cannot check, each entry with its reason)."""
    _mypy_api()
    config = tmp_path / "mypy.ini"  # (only to keep the cache out of the tree)
    config.write_text(f"[mypy]\ncache_dir = {mypy_cache}\n")
    allow = ["--allowlist", str(ALLOWLIST)]
    if importlib.util.find_spec("torch") is None:
        # xent.torch cannot be imported without PyTorch (its ImportError names
        # the extra, tests/test_torch_bridge.py); it is checked where torch is
        skip = tmp_path / "without-torch.txt"
        skip.write_text("xent\\.torch(\\..*)?\n")
        allow += ["--allowlist", str(skip)]
    if importlib.util.find_spec("dask") is None:
        # xent.dask likewise without dask (tests/test_dask.py checks its ImportError)
        skip = tmp_path / "without-dask.txt"
        skip.write_text("xent\\.dask(\\..*)?\n")
        allow += ["--allowlist", str(skip)]
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "xent", *allow,
         "--mypy-config-file", str(config)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
