"""The benchmark suites cannot rot: asv accepts them, and the comparison command runs.

Speed itself is never asserted here (the goals live in the benchmarks, see README
"Performance"); these tests only check that the suites import, are well formed and produce
their outputs.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_asv_check_accepts_every_suite():
    asv = shutil.which("asv") or str(Path(sys.executable).parent / "asv")
    if not Path(asv).exists():
        pytest.skip("asv is not installed (pip install '.[test]')")
    run = subprocess.run([asv, "check", "--python=same"], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
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
