"""Time `paracle-guard run --image X -- true` against `docker run --rm` with the same hardening.

Run by hand (never as a test), from the repository root, after installing, on a
machine with a Docker Engine:

    python benchmarks/run_bench.py                  # builds a tiny busybox image, then removes it
    python benchmarks/run_bench.py --image paracle/sandbox:0.1.0 --runs 20

Both sides start, wait for and remove one container running `true`, as whole
processes, alternating so that drift on the machine hits both alike. The
`docker run` side gets the flags the launcher's RunSpec sets under the built-in
`sandbox` policy; the launcher also checks the image and verifies the created
container twice. Target (issue 5): a ratio of medians of at most 1.3.

A second figure times the Python API as an agent framework uses it: one warm
`Launcher` (connected, policy compiled, image check remembered by image ID)
calling `run()` in-process, against the same `docker run --rm` processes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from paracle_guard import Launcher, SandboxConfig

BENCH_LABEL = "paracle-guard-bench"
BUSYBOX = Path("/bin/busybox")

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


def build_tiny_image(tag: str) -> None:
    """FROM scratch + static busybox + a non-root user: passes the sandbox policy."""
    if not BUSYBOX.is_file():
        sys.exit(f"{BUSYBOX} is missing: install busybox-static or pass --image")
    with tempfile.TemporaryDirectory() as context:
        shutil.copy2(BUSYBOX, Path(context) / "busybox")
        Path(context, "passwd").write_text("root:x:0:0::/root:/bin/sh\n"
                                           "app:x:1000:1000::/home/app:/bin/sh\n")
        Path(context, "Dockerfile").write_text(
            "FROM scratch\nCOPY busybox /bin/busybox\nCOPY passwd /etc/passwd\n"
            'RUN ["/bin/busybox", "ln", "-s", "busybox", "/bin/true"]\nUSER 1000:1000\n'
        )
        subprocess.run(["docker", "build", "-q", "--network", "none", "--label",
                        f"{BENCH_LABEL}=1", "-t", tag, context],
                       check=True, stdout=subprocess.DEVNULL)


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode().strip()}")
    return elapsed


def describe(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (f"{name:<14} median {statistics.median(times) * 1000:6.0f} ms   "
            f"min {ordered[0] * 1000:6.0f} ms   p90 {p90 * 1000:6.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", help="image to run (default: build a tiny busybox image)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per side (>= 10)")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    if args.runs < 10:
        sys.exit("--runs must be at least 10")

    executable = shutil.which("paracle-guard", path=str(Path(sys.executable).parent))
    if executable is None:
        sys.exit("paracle-guard is not installed in this environment")

    image = args.image or f"paracle-guard-bench/tiny:{os.getpid()}"
    if args.image is None:
        build_tiny_image(image)
    try:
        guard = [executable, "run", "--image", image, "--policy", "sandbox", "--", "true"]
        docker = ["docker", "run", "--rm", *HARDENING, image, "true"]
        for _ in range(args.warmup):
            timed(guard)
            timed(docker)
        guard_times: list[float] = []
        docker_times: list[float] = []
        api_times: list[float] = []
        with Launcher("sandbox") as launcher:
            config = SandboxConfig(base_image=image)
            for _ in range(args.warmup):
                launcher.run(config, ["true"])
            for _ in range(args.runs):
                guard_times.append(timed(guard))
                docker_times.append(timed(docker))
                started = time.perf_counter()
                if launcher.run(config, ["true"]).exit_code != 0:
                    sys.exit("Launcher.run(['true']) did not exit 0")
                api_times.append(time.perf_counter() - started)
    finally:
        if args.image is None:
            subprocess.run(["docker", "rmi", "-f", image], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    baseline = statistics.median(docker_times)
    print(f"image {image}, {args.runs} runs each (after {args.warmup} warm-up runs)")
    print(describe("docker run", docker_times))
    print(describe("paracle-guard", guard_times))
    print(describe("Launcher.run", api_times))
    print(f"ratio of medians, CLI: {statistics.median(guard_times) / baseline:.2f}x "
          "(target <= 1.3x)")
    print(f"ratio of medians, warm Python API: {statistics.median(api_times) / baseline:.2f}x")


if __name__ == "__main__":
    main()
