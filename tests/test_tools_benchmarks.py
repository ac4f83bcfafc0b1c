"""The benchmark suites cannot rot: asv accepts them, and the comparison command runs.

Speed itself is never asserted here (the goals live in the benchmarks, see README
"Performance"); these tests only check that the suites import, are well formed and produce
their outputs.
"""

import importlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_asv_check_accepts_every_suite():
    """`asv check` in this interpreter (`--python=same` is the Python that runs asv, which
    must be the one with engine installed, not an `asv` script of another Python on PATH):
    every suite imports and is well formed, and no commit is built."""
    pytest.importorskip("asv", reason="asv is not installed (pip install '.[test]')")
    run = subprocess.run([sys.executable, "-m", "asv", "check", "--python=same"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "No problems found" in output, output


def test_suites_define_the_goal_benchmarks():
    """The benchmarks the README's goal table refers to exist with their parameter grids."""
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks import bench_startup, bench_train
    finally:
        sys.path.remove(str(REPO))
    epoch = bench_train.TimeEpoch
    assert epoch.param_names == ["backend", "dtype", "network", "batch_size"]
    assert {"numba", "numba-parallel", "numpy"} <= set(epoch.params[0])
    assert hasattr(bench_train.MemoryFit, "peakmem_fit_60k_float32")
    assert hasattr(bench_startup.CompileTime, "track_first_fit_compile")
    assert hasattr(bench_startup.WarmStartup, "track_warm_startup")


def test_compare_command_writes_table_json_and_chart(tmp_path):
    """A smoke run on a few hundred images, engine backends only."""
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "compare.py"), "--quick", "--rows", "300",
         "--no-peers", "--workloads", "seeds,predict", "--dtypes", "float32",
         "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    table = (tmp_path / "compare.md").read_text()
    for name in ("engine numba", "engine numba-parallel", "engine numpy"):
        assert f"| {name} |" in table
    records = json.loads((tmp_path / "compare.json").read_text())
    assert {r["workload"] for r in records} == {"seeds", "predict"}
    assert all(len(times) == 1 for r in records for times in r["times"].values())
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _benchmarks_module(name):
    sys.path.insert(0, str(REPO))
    try:
        return importlib.import_module(f"benchmarks.{name}")
    finally:
        sys.path.remove(str(REPO))


def test_numba_cache_lives_in_the_asv_environment_one_folder_per_commit(tmp_path):
    """asv builds every commit into one virtualenv: the suites point Numba's cache into it,
    one folder per commit, and drop other commits' folders; `--python=same` runs keep
    Numba's default."""
    stale = tmp_path / "numba-cache" / "0123456789ab"
    stale.mkdir(parents=True)
    probe = "import benchmarks, numba; print(numba.config.CACHE_DIR)"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ASV") and k != "NUMBA_CACHE_DIR"}
    built = dict(env, ASV_ENV_TYPE="virtualenv", ASV_ENV_DIR=str(tmp_path),
                 ASV_COMMIT="fedcba9876543210fedcba9876543210fedcba98")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=built,
                         capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == str(tmp_path / "numba-cache" / "fedcba987654")
    assert not stale.exists()
    same = dict(env, ASV_ENV_TYPE="existing", ASV_ENV_DIR=str(tmp_path),
                ASV_COMMIT="fedcba9876543210fedcba9876543210fedcba98")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=same,
                         capture_output=True, text=True, timeout=120, check=True)
    assert "numba-cache" not in out.stdout


RATIO_BENCHMARKS = [("OracleRatio", "track_numba_over_oracle", ("float32",)),
                    ("ParallelRatio", "track_parallel_over_numba", ()),
                    ("PeerRatio", "track_engine_over_peer", ("scikit-learn",)),
                    ("PeerRatio", "track_engine_over_peer", ("PyTorch",)),
                    ("StreamRatio", "track_epoch_over_stream", ("float64",))]


@pytest.mark.parametrize("cls, method, params", RATIO_BENCHMARKS,
                         ids=[f"{c}{list(p)}" for c, _, p in RATIO_BENCHMARKS])
def test_ratio_benchmark_measures_a_ratio_on_a_few_rows(monkeypatch, cls, method, params):
    """Each ratio benchmark builds its contenders, times them side by side and returns a
    positive finite ratio with its unit marked (256 rows, one round: no speed asserted).
    A peer that is not installed is skipped the way asv records it (NotImplementedError)."""
    bench_ratios = _benchmarks_module("bench_ratios")
    monkeypatch.setattr(bench_ratios, "ROWS", 256)
    monkeypatch.setattr(bench_ratios, "ROUNDS", 1)
    monkeypatch.setattr(bench_ratios.StreamRatio, "STREAM_ROWS", 256)
    suite = getattr(bench_ratios, cls)
    assert suite.unit.startswith("ratio: ")
    bench = suite()
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch else None
    try:
        bench.setup(*params)
    except NotImplementedError as why:
        pytest.skip(f"asv would record this benchmark as skipped: {why}")
    try:
        ratio = getattr(bench, method)(*params)
    finally:
        bench.teardown(*params)  # BLAS threads back to what they were
        if "torch" in sys.modules and threads:  # the PyTorch peer runs one thread
            sys.modules["torch"].set_num_threads(threads)
    assert isinstance(ratio, float) and math.isfinite(ratio) and ratio > 0


def test_regression_guard_runs_asv_continuous_on_the_ratio_suites():
    """The guard's command: asv continuous with the factor, BASE then HEAD, and a selection
    that asv resolves (against "name(params)") to the steady ratios by default and to every
    ratio benchmark with --all."""
    guard = _benchmarks_module("guard")
    bench_ratios = _benchmarks_module("bench_ratios")
    names = []
    for cls in [getattr(bench_ratios, n) for n in dir(bench_ratios)
                if n.endswith("Ratio") and not n.startswith("_")]:
        for method in [m for m in dir(cls) if m.startswith("track_")]:
            name = f"bench_ratios.{cls.__name__}.{method}"
            params = getattr(cls, "params", ())
            names += ([f"{name}({p!r})" for p in params[0]] if params else [name])

    def selected(command):
        patterns = [command[i + 1] for i, a in enumerate(command) if a == "--bench"]
        return {n for n in names if any(re.search(p, n) for p in patterns)}

    command = guard.asv_command("main", "HEAD", 1.3, every_ratio=False)
    assert command[1:6] == ["-m", "asv", "continuous", "--factor", "1.3"]
    assert command[-2:] == ["main", "HEAD"]
    assert selected(command) == set(names) - {
        "bench_ratios.ParallelRatio.track_parallel_over_numba",
        "bench_ratios.StreamRatio.track_epoch_over_stream('float32')"}
    assert selected(guard.asv_command("main", "HEAD", 1.3, every_ratio=True)) == set(names)


def test_offline_dashboard_replaces_every_cdn_library_of_asvs_page():
    """asv's own page template: every script and stylesheet it loads from a CDN has a
    vendored copy, and none is left pointing at the network."""
    asv = pytest.importorskip("asv")
    template = (Path(asv.__file__).parent / "www" / "index.html").read_text()
    offline = _benchmarks_module("dashboard_offline")
    html, unknown = offline.localize(template)
    assert unknown == []
    assert re.findall(r'<script[^>]*src="https://', html) == []
    assert re.findall(r'<link[^>]*href="https://[^"]*\.css"', html) == []
    assert sorted(re.findall(r'"vendor/([^"]+)"', html)) == sorted(offline.VENDORED.values())
