"""The price of gVisor's kernel: launch latency and a small Python workload, runsc against runc.

Run by hand (never as a test), from the repository root, on an engine that has
runsc registered (scripts/docker-engine does that):

    python benchmarks/gvisor_bench.py --runs 10

Both sides run the same container with the launcher's hardening flags (those of
``run_bench.py``: read-only root, no capabilities, no network, limits, init)
and differ only in ``--runtime``; the runs alternate so that drift on the
machine hits both alike. Three figures per runtime:

- launch: ``docker run --rm ... true`` in a busybox image, as a whole process;
- guarded: the same ``true`` through a warm ``Launcher`` (the Python API), under
  the ``sandbox`` policy for runc and ``sandbox-gvisor`` for runsc: checks,
  create, verify, start, the proof from the host, removal;
- cpu: pure-Python arithmetic and sorting, timed inside the container (no
  system calls: what the application kernel should not slow down);
- syscalls: small file writes, stats and unlinks on the /tmp tmpfs plus
  ``getppid`` calls, timed inside the container (every one goes through
  gVisor's kernel instead of the host's).

No image can be pulled, so the Python image is made here from this host's own
``/usr/bin/python3`` (its binary, shared libraries and standard library) and
removed at the end with the busybox image.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from run_bench import BENCH_LABEL, HARDENING, build_tiny_image, timed

from paracle_guard import Launcher, SandboxConfig

PYTHON = Path("/usr/bin/python3")
# Left out of the image: big, and nothing the workload imports.
SKIPPED = ("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
           "site-packages", "dist-packages", "__pycache__", "config-")

WORKLOAD = r"""
import json, os, random, time
started = time.perf_counter()
total = 0
for i in range(2_000_000):
    total += (i * i) % 7
data = [random.random() for _ in range(200_000)]
data.sort()
cpu = time.perf_counter() - started
started = time.perf_counter()
for i in range(5_000):
    path = "/tmp/f%d" % i
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"x" * 64)
    os.close(fd)
    os.stat(path)
    os.unlink(path)
for _ in range(50_000):
    os.getppid()
syscalls = time.perf_counter() - started
print(json.dumps({"cpu": cpu, "syscalls": syscalls, "total": total}))
"""


def shared_libraries(binary: Path) -> list[Path]:
    """The binary's shared libraries and loader, as ldd lists them."""
    listed = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                            check=True).stdout
    found = []
    for line in listed.splitlines():
        parts = line.split()
        candidates = [part for part in parts if part.startswith("/")]
        if candidates:
            found.append(Path(candidates[0]))
    return found


def python_layer() -> bytes:
    """A tar of the host's python3 with what it needs to run the workload."""
    real = PYTHON.resolve()
    version = real.name.removeprefix("python")
    stdlib = Path(f"/usr/lib/python{version}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for library in shared_libraries(real):
            tar.add(str(library.resolve()), arcname=str(library).lstrip("/"))
        tar.add(str(real), arcname="usr/bin/python3")
        for path in sorted(stdlib.rglob("*")):
            relative = path.relative_to(stdlib)
            if any(part.startswith(SKIPPED) for part in relative.parts) or path.is_symlink():
                continue
            if path.is_file():
                tar.add(str(path), arcname=str(path).lstrip("/"), recursive=False)
    return buffer.getvalue()


def build_python_image(tag: str, workdir: Path) -> None:
    if not PYTHON.is_file():
        sys.exit(f"{PYTHON} is missing: this benchmark builds its image from it")
    (workdir / "python.tar").write_bytes(python_layer())
    (workdir / "Dockerfile").write_text("FROM scratch\nADD python.tar /\nUSER 1000:1000\n")
    subprocess.run(["docker", "build", "-q", "--network", "none", "--label",
                    f"{BENCH_LABEL}=1", "-t", tag, str(workdir)],
                   check=True, stdout=subprocess.DEVNULL)


def workload(runtime: str, image: str) -> dict[str, float]:
    command = ["docker", "run", "--rm", "--runtime", runtime, *HARDENING, image,
               "/usr/bin/python3", "-S", "-c", WORKLOAD]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the workload failed under {runtime}: {done.stderr.strip()}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall"] = wall
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per runtime (>= 5)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--gvisor", default="runsc", help="the engine's name for gVisor")
    args = parser.parse_args()
    if args.runs < 5:
        sys.exit("--runs must be at least 5")
    runtimes = ("runc", args.gvisor)
    tiny = f"paracle-guard-bench/tiny:{os.getpid()}"
    python = f"paracle-guard-bench/python:{os.getpid()}"
    workdir = Path(f"/tmp/paracle-guard-gvisor-bench-{os.getpid()}")
    workdir.mkdir()
    try:
        build_tiny_image(tiny)
        build_python_image(python, workdir)
        launches: dict[str, list[float]] = {runtime: [] for runtime in runtimes}
        guarded: dict[str, list[float]] = {runtime: [] for runtime in runtimes}
        results: dict[str, list[dict[str, float]]] = {runtime: [] for runtime in runtimes}
        launchers = {"runc": Launcher("sandbox"), args.gvisor: Launcher("sandbox-gvisor")}
        config = SandboxConfig(image=tiny)
        for index in range(args.warmup + args.runs):
            for runtime in runtimes:
                launch = timed(["docker", "run", "--rm", "--runtime", runtime, *HARDENING,
                                tiny, "true"])
                started = time.perf_counter()
                if launchers[runtime].run(config, ["true"]).exit_code != 0:
                    sys.exit(f"Launcher.run(['true']) under {runtime} did not exit 0")
                through_guard = time.perf_counter() - started
                figures = workload(runtime, python)
                if index >= args.warmup:
                    launches[runtime].append(launch)
                    guarded[runtime].append(through_guard)
                    results[runtime].append(figures)
        for launcher in launchers.values():
            launcher.close()
    finally:
        subprocess.run(["docker", "rmi", "-f", tiny, python], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for leftover in workdir.iterdir():
            leftover.unlink()
        workdir.rmdir()

    print(f"{args.runs} runs per runtime (after {args.warmup} warm-up), medians:")
    columns = ("launch", "guarded", "cpu", "syscalls", "wall")
    print(f"{'':10} " + " ".join(f"{column:>10}" for column in columns))
    medians: dict[str, dict[str, float]] = {}
    for runtime in runtimes:
        medians[runtime] = {
            "launch": statistics.median(launches[runtime]),
            "guarded": statistics.median(guarded[runtime]),
            **{key: statistics.median(r[key] for r in results[runtime])
               for key in ("cpu", "syscalls", "wall")},
        }
        print(f"{runtime:10} " + " ".join(f"{medians[runtime][column] * 1000:8.0f}ms"
                                          for column in columns))
    base, gvisor = medians["runc"], medians[args.gvisor]
    print(f"{'ratio':10} " + " ".join(f"{gvisor[column] / base[column]:9.2f}x"
                                      for column in columns))


if __name__ == "__main__":
    main()
