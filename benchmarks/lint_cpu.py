"""CPU time of linting a corpus in one process, file by file as `paracle-guard lint` does.

CPU time, unlike wall time, barely moves with other processes' load, so it compares
two source trees fairly on a shared machine. Run by hand from the repository root, once
per tree (PYTHONPATH picks the tree):

    PYTHONPATH=/tmp/before python benchmarks/lint_cpu.py --corpus benchmarks/corpus
    PYTHONPATH=. python benchmarks/lint_cpu.py --corpus benchmarks/corpus
    PYTHONPATH=. python benchmarks/lint_cpu.py --corpus benchmarks/corpus --no-gc

``--no-gc`` turns the garbage collector off, to tell the collector's share apart.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from paracle_guard.engine import Plan
from paracle_guard.policy.loader import load_policy
from paracle_guard.sources.dockerfile import load_dockerfile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("benchmarks/corpus"))
    parser.add_argument("--no-gc", action="store_true")
    args = parser.parse_args()
    files = sorted(args.corpus.iterdir())
    plan = Plan.compile(load_policy("sandbox"))
    plan.evaluate(load_dockerfile(files[0]))  # warm: first-use costs are start-up's
    if args.no_gc:
        gc.disable()
    started = time.process_time()
    for path in files:
        plan.evaluate(load_dockerfile(path))
    print(f"{len(files)} files, parsed and judged one by one: "
          f"{time.process_time() - started:.3f} s CPU{' (no GC)' if args.no_gc else ''}")


if __name__ == "__main__":
    main()
