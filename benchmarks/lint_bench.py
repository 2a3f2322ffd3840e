"""Time `paracle-guard lint`: one file against a bare Typer app, and a corpus in one invocation.

Run by hand (never as a test), from the repository root, after installing:

    python benchmarks/make_corpus.py benchmarks/corpus --count 1000
    python benchmarks/lint_bench.py --corpus benchmarks/corpus

The floor for one file is a bare two-command Typer app (Typer imports pydantic
through its adapters) run the same way, by the same interpreter, interleaved
with the lint runs. Both start with a warm cache folder (a resolved built-in
policy is remembered there after the first run).

A third side hands the same lint to a warm-start server (``paracle-guard serve``)
started for the benchmark; the other two run with PARACLE_GUARD_NO_SERVER=1.

Targets (issue 14): one Dockerfile in at most 1.3x the bare Typer app (medians,
same run); 1,000 Dockerfiles in one invocation under 2 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from warm_server import served, unserved

BARE_TYPER_APP = '''\
import typer

app = typer.Typer()


@app.command()
def hello(name: str) -> None:
    print(name)


@app.command()
def bye(name: str) -> None:
    print(name)


app()
'''


def wall_time(command: list[str], cpu: list[float] | None = None,
              env: dict[str, str] | None = None) -> float:
    """Wall seconds of one whole process; its CPU seconds (user + system) go to ``cpu``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed: {completed.stderr.decode().strip()}")
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("benchmarks/corpus"))
    parser.add_argument("--file", type=Path, default=Path("docker/Dockerfile.sandbox"))
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    executable = shutil.which("paracle-guard", path=str(Path(sys.executable).parent))
    if executable is None:
        sys.exit("paracle-guard is not installed in this environment")

    with tempfile.TemporaryDirectory() as scratch:
        bare = Path(scratch) / "bare_typer_app.py"
        bare.write_text(BARE_TYPER_APP)
        lint = [executable, "lint", str(args.file), "--policy", "sandbox"]
        floor = [sys.executable, str(bare), "hello", "world"]
        alone = unserved(dict(os.environ))
        for command in (lint, floor):  # warm the page cache and the policy cache
            wall_time(command, env=alone)
        lint_times, floor_times, served_times = [], [], []
        lint_cpu: list[float] = []
        floor_cpu: list[float] = []
        with served(executable, alone) as served_env:
            wall_time(lint, env=served_env)
            for _ in range(args.runs):
                lint_times.append(wall_time(lint, lint_cpu, env=alone))
                floor_times.append(wall_time(floor, floor_cpu, env=alone))
                served_times.append(wall_time(lint, env=served_env))
    lint_median, floor_median = statistics.median(lint_times), statistics.median(floor_times)
    print(f"one file ({args.file}), whole process, {args.runs} runs each, interleaved; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"  bare two-command Typer app: median {floor_median * 1000:.0f} ms, "
          f"min {min(floor_times) * 1000:.0f} ms")
    print(f"  paracle-guard lint:         median {lint_median * 1000:.0f} ms, "
          f"min {min(lint_times) * 1000:.0f} ms")
    print(f"  ratio of medians: {lint_median / floor_median:.2f}x (target <= 1.3x)")
    served_median = statistics.median(served_times)
    print(f"  lint served by paracle-guard serve: median {served_median * 1000:.0f} ms, "
          f"min {min(served_times) * 1000:.0f} ms, ratio {served_median / floor_median:.2f}x")
    # CPU time moves less than wall time when other work shares the cores.
    lint_cpu_median, floor_cpu_median = statistics.median(lint_cpu), statistics.median(floor_cpu)
    print(f"  CPU (user + system), medians: Typer app {floor_cpu_median * 1000:.0f} ms, "
          f"lint {lint_cpu_median * 1000:.0f} ms, ratio {lint_cpu_median / floor_cpu_median:.2f}x")

    files = sorted(args.corpus.glob("*"))
    if not files:
        sys.exit(f"{args.corpus}: empty; run benchmarks/make_corpus.py first")
    corpus_runs = max(3, args.runs // 4)
    many = [wall_time([executable, "lint", str(args.corpus), "--policy", "sandbox",
                       "--format", "json"]) for _ in range(corpus_runs)]
    median = statistics.median(many)
    print(f"{len(files)} files, one invocation, {corpus_runs} runs: median {median:.2f} s "
          f"({len(files) / median:.0f} files/s)")


if __name__ == "__main__":
    main()
