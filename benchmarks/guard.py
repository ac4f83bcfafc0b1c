"""Regression guard for speed-sensitive work: run it before merging, never in CI.

    python benchmarks/guard.py                  # main against HEAD, factor 1.3
    python benchmarks/guard.py BASE --factor 1.2
    python benchmarks/guard.py --all            # every ratio (a quiet machine)

It runs ``asv continuous --factor F -b <ratios> BASE HEAD``: asv builds both commits into
its virtualenv (asv.conf.json), runs the ratio benchmarks of ``bench_ratios.py`` on each
and exits 1 when a ratio rose by more than the factor on HEAD, or a ratio that BASE
measured failed on HEAD; this script passes that status on (0: no regression).

By default it guards the ratios that held still between two runs on the loaded two-core
VM (within 0.89-1.06): numba over the oracle, over scikit-learn and over PyTorch, and the
float64 epoch over one NumPy pass. Left out unless ``--all``: numba-parallel over numba
(wall time, threads: it reads the load) and the float32 stream ratio, whose memory-bound
epoch and pass share the memory bandwidth with other processes (8.4 and 11.8 in those
two runs). Arguments after ``--`` go to asv (``-- --show-stderr``).
"""

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# asv matches these against "name(param, ...)" of every parameter combination.
GUARDED_RATIOS = [r"^bench_ratios\.(OracleRatio|PeerRatio)\.",
                  r"^bench_ratios\.StreamRatio\..*\('float64'\)"]
ALL_RATIOS = [r"^bench_ratios\."]


def asv_command(base, head, factor, every_ratio, extra=()):
    patterns = ALL_RATIOS if every_ratio else GUARDED_RATIOS
    bench = [arg for pattern in patterns for arg in ("--bench", pattern)]
    return [sys.executable, "-m", "asv", "continuous", "--factor", str(factor), *bench,
            *extra, base, head]


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", default="main", help="commit to compare against")
    parser.add_argument("head", nargs="?", default="HEAD", help="commit under test")
    parser.add_argument("--factor", type=float, default=1.3,
                        help="a ratio this many times BASE's is a regression (default 1.3)")
    parser.add_argument("--all", action="store_true", dest="every_ratio",
                        help="every ratio, also numba-parallel / numba and the float32 "
                             "stream ratio (on a quiet machine)")
    args = parser.parse_args(argv)
    if args.factor <= 1:
        parser.error("--factor must be above 1")
    command = asv_command(args.base, args.head, args.factor, args.every_ratio, extra)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"guard: load average {load} on {os.cpu_count()} CPUs\n$ {shlex.join(command)}",
          flush=True)
    status = subprocess.call(command, cwd=REPO)
    verdict = {0: "no ratio regressed", 1: f"a ratio regressed by more than {args.factor}x "
                                           f"(the lines marked + or ! above)"}
    print(f"guard: {verdict.get(status, f'asv failed (exit status {status})')}")
    return status


if __name__ == "__main__":
    sys.exit(main())
