"""Compare `paracle-guard lint` between two source trees, runs interleaved.

On a shared machine the load changes from one minute to the next; running the two
trees alternately, with the same interpreter and corpus, keeps the comparison fair
when the absolute figures are not. Run by hand from the repository root:

    git worktree add /tmp/before main
    python benchmarks/compare_lint.py --before /tmp/before --after . --corpus benchmarks/corpus

Each run is a whole process, as a user runs it: the corpus in one invocation
(``--policy sandbox --format json``), and one file (``docker/Dockerfile.sandbox``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

_MAIN = "import sys; from paracle_guard.cli import main; sys.argv[0] = 'paracle-guard'; main()"


def _run(tree: Path, args: list[str]) -> float:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MAIN, "lint", *args], env=env, cwd=tree,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"{tree}: lint failed: {done.stderr.decode().strip()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=Path("."))
    parser.add_argument("--corpus", type=Path, default=Path("benchmarks/corpus"))
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    corpus = str(args.corpus.resolve())
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    cases = {
        "corpus": [corpus, "--policy", "sandbox", "--format", "json"],
        "one file": ["docker/Dockerfile.sandbox", "--policy", "sandbox"],
    }
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    for case, case_args in cases.items():
        times: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.runs):
            for name, tree in trees.items():
                times[name].append(_run(tree, case_args))
        for name, values in times.items():
            print(f"{case}, {name} ({trees[name]}): median {statistics.median(values):.2f} s, "
                  f"min {min(values):.2f} s over {args.runs} runs")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
