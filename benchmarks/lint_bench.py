"""Time `paracle-guard lint`: one file as a whole process, and a corpus in one invocation.

Run by hand (never as a test), from the repository root, after installing:

    python benchmarks/make_corpus.py benchmarks/corpus --count 1000
    python benchmarks/lint_bench.py --corpus benchmarks/corpus

Targets (issue 2): one Dockerfile in <= 100 ms wall; 1,000 Dockerfiles in <= 2 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall_times(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        completed = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - started)
        if completed.returncode not in (0, 1):
            sys.exit(f"{' '.join(command)} failed: {completed.stderr.decode().strip()}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("benchmarks/corpus"))
    parser.add_argument("--file", type=Path, default=Path("docker/Dockerfile.sandbox"))
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    executable = shutil.which("paracle-guard", path=str(Path(sys.executable).parent))
    if executable is None:
        sys.exit("paracle-guard is not installed in this environment")

    single = wall_times([executable, "lint", str(args.file), "--policy", "sandbox"], args.runs)
    print(f"one file ({args.file}), whole process, {args.runs} runs: "
          f"median {statistics.median(single) * 1000:.0f} ms, min {min(single) * 1000:.0f} ms")

    files = sorted(args.corpus.glob("*"))
    if not files:
        sys.exit(f"{args.corpus}: empty; run benchmarks/make_corpus.py first")
    corpus_runs = max(3, args.runs // 4)
    many = wall_times(
        [executable, "lint", str(args.corpus), "--policy", "sandbox", "--format", "json"],
        corpus_runs,
    )
    median = statistics.median(many)
    print(f"{len(files)} files, one invocation, {corpus_runs} runs: median {median:.2f} s "
          f"({len(files) / median:.0f} files/s)")


if __name__ == "__main__":
    main()
