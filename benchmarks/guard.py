"""Regression guard for speed-sensitive work: run it before merging, never in CI.

    python benchmarks/guard.py                  # main against HEAD, factor 1.3
    python benchmarks/guard.py BASE --factor 1.2
    python benchmarks/guard.py --threads        # also numba-parallel / numba (idle cores)

It runs ``asv continuous --factor F -b <ratio suites> BASE HEAD``: asv builds both commits
into its virtualenv (asv.conf.json), runs the ratio benchmarks of ``bench_ratios.py`` on
each and exits 1 when a ratio rose by more than the factor on HEAD, or a ratio that BASE
measured failed on HEAD; this script passes that status on (0: no regression). The ratios
are times measured side by side inside one call, so a VM's drift from one hour to the next
cancels; the threaded ratio does not hold still while other processes take the cores, so
it is left out unless asked for. Arguments after ``--`` go to asv (``-- --show-stderr``).
"""

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERIAL_RATIOS = r"^bench_ratios\.(OracleRatio|PeerRatio|StreamRatio)\."
THREADED_RATIOS = r"^bench_ratios\.ParallelRatio\."


def asv_command(base, head, factor, threads, extra=()):
    bench = ["--bench", SERIAL_RATIOS] + (["--bench", THREADED_RATIOS] if threads else [])
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
    parser.add_argument("--threads", action="store_true",
                        help="also guard numba-parallel / numba (needs otherwise idle cores)")
    args = parser.parse_args(argv)
    if args.factor <= 1:
        parser.error("--factor must be above 1")
    command = asv_command(args.base, args.head, args.factor, args.threads, extra)
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
