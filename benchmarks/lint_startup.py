"""Start-up of `paracle-guard lint` on one file: a bare Typer app, another source tree, this one.

Run by hand (never as a test), from the repository root:

    git worktree add /tmp/before main
    python benchmarks/lint_startup.py --before /tmp/before --runs 20

The three sides alternate run by run, with the same interpreter, so that the machine's
load hits them alike. The other tree is imported in place of the installed package (the
editable install's finder is taken off ``sys.meta_path``). Every side runs once first,
so a built-in policy is remembered by both trees before timing starts.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from lint_bench import BARE_TYPER_APP

RUN_LINT = """\
import sys
tree = sys.argv.pop(1)
if tree:
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, tree)
sys.argv[0] = "paracle-guard"
from paracle_guard.cli import main
main()
"""


def timed(command: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of one whole process."""
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall * 1000, cpu * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the other source tree")
    parser.add_argument("--file", type=Path, default=Path("docker/Dockerfile.sandbox"))
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        bare = Path(scratch) / "bare_typer_app.py"
        bare.write_text(BARE_TYPER_APP)
        runner = Path(scratch) / "run_lint.py"
        runner.write_text(RUN_LINT)
        lint = ["lint", str(args.file), "--policy", "sandbox"]
        sides = {
            "bare two-command Typer app": [sys.executable, str(bare), "hello", "world"],
            f"lint, {args.before}": [sys.executable, str(runner), str(args.before), *lint],
            "lint, this tree": [sys.executable, str(runner), "", *lint],
        }
        for command in sides.values():
            timed(command)
        walls: dict[str, list[float]] = {name: [] for name in sides}
        cpus: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.runs):
            for name, command in sides.items():
                wall, cpu = timed(command)
                walls[name].append(wall)
                cpus[name].append(cpu)
    floor_wall = statistics.median(walls["bare two-command Typer app"])
    floor_cpu = statistics.median(cpus["bare two-command Typer app"])
    print(f"{args.runs} interleaved runs each; load average {os.getloadavg()[0]:.2f}")
    for name in sides:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"  {name}: wall median {wall:.0f} ms ({wall / floor_wall:.2f}x), "
              f"CPU median {cpu:.0f} ms ({cpu / floor_cpu:.2f}x)")


if __name__ == "__main__":
    main()
