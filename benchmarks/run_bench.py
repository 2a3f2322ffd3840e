"""Time enforced launches against `docker run --rm` with the same hardening, cold and warm.

Run by hand (never as a test), from the repository root, after installing, on a
machine with a Docker Engine:

    python benchmarks/run_bench.py                        # busybox and the Python image
    python benchmarks/run_bench.py --images busybox --runs 20
    python benchmarks/run_bench.py --image paracle/sandbox:0.1.0

Per image, every iteration runs each side once, in turn, so that drift on the
machine hits all of them alike:

- ``docker run``: ``docker run --rm`` with the flags the launcher's RunSpec sets
  under the built-in ``sandbox`` policy, running ``true``;
- ``CLI cold``: ``paracle-guard run --image IMG -- true`` with an empty cache
  folder (XDG_CACHE_HOME), so it reads the image and resolves the policy;
- ``CLI warm``: the same with a cache folder that already holds both;
- ``CLI served``: the warm command line handed to a warm-start server
  (``paracle-guard serve``) started for the benchmark;
- ``library cold``: a new ``Launcher`` on an empty cache folder, in this process
  (imports already paid), calling ``run(["true"])``;
- ``library warm``: one ``Launcher`` kept across runs, as an agent framework holds it.

Targets (issue 14): warm CLI at most 1.3x `docker run`, warm library at most 1.1x
(ratios of medians, same run).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench_images import build, image_size_mb, remove_built
from warm_server import served, unserved

from paracle_guard import Launcher, SandboxConfig

# What build_runspec produces under the sandbox policy, as docker run flags.
HARDENING = [
    "--network", "none", "--read-only", "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges:true", "--ipc", "none", "--cgroupns", "private",
    "--tmpfs", "/tmp:rw,noexec,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=0700",
    "--tmpfs", "/workspace:rw,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=0700",
    "--workdir", "/workspace", "--user", "1000:1000",
    "--memory", "512m", "--memory-swap", "512m", "--cpus", "1", "--pids-limit", "256",
    "--ulimit", "core=0", "--ulimit", "msgqueue=0", "--ulimit", "nofile=1024:1024",
    "--init", "--restart", "no",
    "--log-driver", "json-file", "--log-opt", "max-size=1m", "--log-opt", "max-file=1",
    "--label", "paracle-guard.launcher=1",
]
SIDES = ("docker run", "CLI cold", "CLI warm", "CLI served", "library cold", "library warm")


def timed_process(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode().strip()}")
    return elapsed


@contextlib.contextmanager
def cache_home(folder: Path) -> Iterator[None]:
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = previous


def launch_once(launcher: Launcher, image: str) -> None:
    if launcher.run(SandboxConfig(image=image), ["true"]).exit_code != 0:
        sys.exit("Launcher.run(['true']) did not exit 0")


def describe(name: str, times: list[float], baseline: float) -> str:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    median = statistics.median(times)
    return (f"| {name} | {median * 1000:.0f} ms | {ordered[0] * 1000:.0f} ms | "
            f"{p90 * 1000:.0f} ms | {median / baseline:.2f}x |")


def measure(image: str, runs: int, warmup: int, executable: str, scratch: Path) -> None:
    guard = [executable, "run", "--image", image, "--policy", "sandbox", "--", "true"]
    docker = ["docker", "run", "--rm", *HARDENING, image, "true"]
    warm_home = scratch / "warm"
    warm_env = unserved({**os.environ, "XDG_CACHE_HOME": str(warm_home)})
    counter = iter(range(10**6))

    def cold_home() -> Path:
        return scratch / f"cold-{next(counter)}"

    def cli_cold() -> float:
        return timed_process(guard, unserved({**os.environ, "XDG_CACHE_HOME": str(cold_home())}))

    def library_cold() -> float:
        with cache_home(cold_home()):
            started = time.perf_counter()
            with Launcher("sandbox") as fresh:
                launch_once(fresh, image)
            return time.perf_counter() - started

    with cache_home(warm_home), Launcher("sandbox") as warm, \
            served(executable, warm_env) as served_env:

        def library_warm() -> float:
            started = time.perf_counter()
            launch_once(warm, image)
            return time.perf_counter() - started

        side: dict[str, Callable[[], float]] = {
            "docker run": lambda: timed_process(docker),
            "CLI cold": cli_cold,
            "CLI warm": lambda: timed_process(guard, warm_env),
            "CLI served": lambda: timed_process(guard, served_env),
            "library cold": library_cold,
            "library warm": library_warm,
        }
        for _ in range(warmup):
            for run in side.values():
                run()
        times: dict[str, list[float]] = {name: [] for name in SIDES}
        for _ in range(runs):
            for name in SIDES:
                times[name].append(side[name]())
    baseline = statistics.median(times["docker run"])
    print(f"\nimage {image} ({image_size_mb(image):.0f} MB), {runs} runs per side after "
          f"{warmup} warm-up rounds; load average at the end: {os.getloadavg()[0]:.2f}")
    print("| side | median | min | p90 | ratio to docker run |\n| --- | --- | --- | --- | --- |")
    for name in SIDES:
        print(describe(name, times[name], baseline))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", action="append", default=[],
                        help="an existing image to run (repeatable); nothing is built")
    parser.add_argument("--images", default="busybox,python",
                        help="images to build and run when no --image is given")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per side (>= 10)")
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    if args.runs < 10:
        sys.exit("--runs must be at least 10")
    executable = shutil.which("paracle-guard", path=str(Path(sys.executable).parent))
    if executable is None:
        sys.exit("paracle-guard is not installed in this environment")

    built: list[str] = []
    scratch = Path(tempfile.mkdtemp(prefix="paracle-guard-run-bench-"))
    try:
        images = list(args.image)
        if not images:
            for kind in args.images.split(","):
                built.append(build(kind.strip()))
            images = list(built)
        for image in images:
            measure(image, args.runs, args.warmup, executable, scratch)
    finally:
        remove_built(built)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
