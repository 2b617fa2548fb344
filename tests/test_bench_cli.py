"""``python -m xent bench``: the command runs, prints every case and saves its measurements."""

import importlib.util
import json
import subprocess
import sys

import pytest

from xent._bench import CASES, QUICK_ROWS, shape

HAS_MPL = importlib.util.find_spec("matplotlib") is not None

# One worker runs this file (pytest-xdist's --dist loadgroup, set in
# pyproject.toml and .ci/run), so the quick bench of the module fixture runs
# once, not once in each worker.
pytestmark = pytest.mark.xdist_group("bench_cli")


def bench(*args):
    return subprocess.run([sys.executable, "-m", "xent", "bench", "--quick", "--repeats", "1", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick bench run, saving its JSON (and its plot, with matplotlib)."""
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    png = path.with_suffix(".png")
    proc = bench("--json", str(path), *(["--plot", str(png)] if HAS_MPL else []))
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(path.read_text()), png


def test_table_has_header_and_every_case(quick_run):
    proc, _, _ = quick_run
    out = proc.stdout
    assert "| case | shape | dtype | implementation | median ms | GB/s | vs copyto | xent speedup |" in out
    assert "python -m xent bench --quick --repeats 1" in out
    for case in CASES:
        rows, cols = shape(case, QUICK_ROWS)
        prefix = f"| {case.name} | {rows}x{cols} | {case.dtype} |"
        for impl in ("np.copyto", "xent", "numpy"):
            assert f"{prefix} {impl} |" in out, (prefix, impl)
    assert "| xent (allocating) |" in out
    assert "[" not in out.split("| --- |")[-1], "progress leaked into stdout"


def test_missing_peers_are_named_with_how_to_install_them(quick_run):
    """A peer that is not installed is named, with the command that adds it,
    instead of its rows silently missing; an installed one is not."""
    from xent._bench import PEER_INSTALL, missing_peers

    proc, data, _ = quick_run
    for name, (_, command) in PEER_INSTALL.items():
        installed = data["versions"][name] != "not installed"
        assert (command in proc.stdout) != installed, name
    assert missing_peers({"scipy": "1.0", "torch": "not installed", "jax": "not installed"}) == [
        "Peers not measured (install them for their rows):",
        f"- torch is not installed, so {PEER_INSTALL['torch'][0]} are missing: {PEER_INSTALL['torch'][1]}",
        f"- jax is not installed, so {PEER_INSTALL['jax'][0]} are missing: {PEER_INSTALL['jax'][1]}",
    ]
    assert missing_peers({k: "1.0" for k in PEER_INSTALL}) == []


def test_json_has_positive_medians(quick_run):
    _, data, _ = quick_run
    assert data["machine"]["version"] and data["machine"]["isa"]
    assert len(data["cases"]) == len(CASES)
    for record, case in zip(data["cases"], CASES):
        assert (record["name"], record["dtype"]) == (case.name, case.dtype)
        assert record["shape"] == list(shape(case, QUICK_ROWS))
        assert record["medians_s"]["xent"] > 0 and record["medians_s"]["np.copyto"] > 0
        assert record["ratio_to_copyto"]["np.copyto"] == 1.0
        assert record["xent_speedup"]["numpy"] > 0


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib not installed")
def test_plot_writes_png(quick_run):
    proc, _, png = quick_run
    assert f"plot saved to {png}" in proc.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(HAS_MPL, reason="matplotlib installed")
def test_plot_without_matplotlib_exits_2(tmp_path):
    proc = bench("--plot", str(tmp_path / "ce.png"))
    assert proc.returncode == 2
    assert "matplotlib" in proc.stderr
    assert not (tmp_path / "ce.png").exists()


def test_other_commands_still_work():
    proc = subprocess.run([sys.executable, "-m", "xent", "config"], capture_output=True, text=True)
    assert proc.returncode == 0 and "isa" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "xent", "bench", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--quick" in proc.stdout and "--plot" in proc.stdout


def test_grid_covers_every_registered_function(tmp_path):
    """--grid: a row for every registered function (and variant) at each class
    count, and the worst-ratio summary."""
    from xent import _grid

    path = tmp_path / "grid.json"
    proc = bench("--grid", "--classes", "3,130", "--sizes", "0.25", "--json", str(path))
    assert proc.returncode == 0, proc.stderr
    labels = [e.label for e in _grid.cases()]
    assert len(labels) >= 17
    for label in labels:
        for c in (3, 130):
            assert f"| {label} | {c} |" in proc.stdout, (label, c)
        assert f"| {label} | " in proc.stdout.split("| worst ratio to copy |")[1]
    data = json.loads(path.read_text())
    assert len(data["results"]) == 2 * len(labels)
    for r in data["results"]:
        assert r["ratio"] > 0 and r["gb_per_s"] > 0 and r["two_vs_one"] > 0


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib not installed")
def test_grid_plot_writes_png(tmp_path):
    png = tmp_path / "grid.png"
    proc = bench("--grid", "--classes", "3,130", "--sizes", "0.25", "--only", "logsumexp",
                 "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
