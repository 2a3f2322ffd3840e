"""Time `paracle-guard lint` on the hostile Dockerfiles the red team found (after issue 13).

Each shape once made lint hang or die: thousands of stages (each FROM scanned every
earlier stage), variables that double themselves (ARG, ENV, or a shell variable, forty
times: 2**40 characters), ``name(`` repeated (each '(' copied the rest of the
script), and nested function definitions (each scanned the rest of the script for
its closing brace). Run by hand, from the repository root:

    python benchmarks/hostile.py [--tree PATH] [--runs 3]

``--tree`` runs another source tree (say, main checked out in /tmp) with the same
interpreter, for a before/after. A run that takes longer than ``--timeout`` seconds, or
dies (a traceback, or killed), is reported as such. Each run may use at most
``--memory-gb`` of address space, so a tree that builds 2**40 characters fails with
MemoryError instead of taking the shared machine's memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_MAIN = "import sys; from paracle_guard.cli import main; sys.argv[0] = 'paracle-guard'; main()"


def shapes() -> dict[str, str]:
    return {
        "20,000 stages": "FROM alpine:3.20 AS s0\n" + "".join(
            f"FROM s{i} AS s{i + 1}\n" for i in range(20_000)) + "USER 1000\n",
        "ARG doubled 40 times": "FROM alpine:3.20\nARG A=xx\n" + "ARG A=${A}${A}\n" * 40
                                + "USER 1000\n",
        "ENV doubled 40 times": "FROM alpine:3.20\nENV A=xx\n" + "ENV A=$A$A\n" * 40
                                + "USER 1000\n",
        "shell variable doubled 40 times": "FROM alpine:3.20\nRUN A=xx; " + "A=$A$A; " * 40
                                           + "echo $A\nUSER 1000\n",
        "'a(' 200,000 times": "FROM alpine:3.20\nRUN " + "a(" * 200_000 + "\nUSER 1000\n",
        "'f() { ' 50,000 times, then f": "FROM alpine:3.20\nRUN " + "f() { " * 50_000
                                         + "apk add sudo; f\nUSER 1000\n",
    }


def run(tree: Path, path: Path, timeout: float, memory: int) -> str | float:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _MAIN, "lint", "--policy", "sandbox", "--format", "json",
             str(path)], env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            timeout=timeout,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (memory, memory)))
    except subprocess.TimeoutExpired:
        return f"over {timeout:.0f} s"
    elapsed = time.perf_counter() - started
    stderr = completed.stderr.decode(errors="replace")
    if completed.returncode not in (0, 1) or "Traceback" in stderr:
        last = stderr.strip().splitlines()[-1:] or ["?"]
        return f"failed (exit {completed.returncode}: {last[0][:60]})"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=Path("."))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--memory-gb", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for name, text in shapes().items():
            path = Path(folder) / "Dockerfile"
            path.write_text(text)
            memory = int(args.memory_gb * (1 << 30))
            results = [run(args.tree.resolve(), path, args.timeout, memory)
                       for _ in range(args.runs)]
            times = [r for r in results if isinstance(r, float)]
            failures = [r for r in results if isinstance(r, str)]
            shown = (f"median {statistics.median(times):.2f} s" if times and not failures
                     else failures[0])
            print(f"{name} ({len(text) / 1024:.0f} KB): {shown}")


if __name__ == "__main__":
    main()
