"""How long `paracle-guard image` takes, cold and warm, against a bare `docker save`.

Run by hand, never as a timed test, from the repository root:

    .venv/bin/python benchmarks/image_bench.py [--large-mb 1024] [--repeat 5] [--python]

Builds throw-away images on the local engine (no network), all labelled and
removed at the end:

- ``small``: static busybox and an /etc/passwd (2 MB);
- ``large``: ``--large-mb`` MB of files in four layers over ``small``'s two;
- ``derived``: ``large`` plus one small layer (1 MB in 200 files), the shared-base case;
- ``layer-alone``: that same small layer on its own, FROM scratch;
- with ``--python``, the realistic Debian Python sandbox image (see bench_images.py).

For each it prints medians of ``--repeat`` runs, each a whole process:

- ``docker save IMAGE > /dev/null``: what the engine's export costs;
- ``paracle-guard image IMAGE`` cold (empty cache folder), through the local layer
  store when the engine allows it, and through docker save
  (PARACLE_GUARD_NO_LAYER_STORE=1), with peak resident memory;
- the same warm: the cache already holds the image (an unchanged image);
- ``paracle-guard --version``: the CLI's bare start-up, for scale;
- ``derived`` with a cache that already holds ``large`` (its base), against
  ``layer-alone`` read cold: the cost of a new layer on a known base;
- ``--input`` on the saved archive of ``large`` (the no-daemon path).

Goals (issue 14): warm `image` of an unchanged image at most 0.5 s or within 1.5x of
the bare start-up; ``derived`` on a cached base at most 1.5x ``layer-alone``; cold at
most 1.2x ``docker save > /dev/null`` on a 1 GB image with memory under 100 MB.
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
from collections.abc import Callable
from pathlib import Path

from bench_images import BUSYBOX, LABEL, build, image_size_mb, remove_built

DOCKER = shutil.which("docker") or "docker"


def write_files(folder: Path, megabytes: int, seed: int) -> None:
    """``megabytes`` MB of 1-8 MB blobs, no two megabytes alike, and 2,000 small files."""
    block = os.urandom(1 << 20)
    written = index = 0
    folder.mkdir(parents=True)
    while written < megabytes << 20:
        size = (1 + index % 8) << 20
        with (folder / f"blob{index}.bin").open("wb") as out:
            for part in range(size >> 20):
                offset = (seed * 7919 + index * 104729 + part * 1299709) % len(block)
                out.write(block[offset:] + block[:offset])
        written += size
        index += 1
    small = folder / "small"
    small.mkdir()
    for n in range(2000):
        (small / f"f{n}.txt").write_bytes(block[n * 37 % 4000:][:512])


def small_layer(folder: Path) -> None:
    folder.mkdir(parents=True)
    for n in range(200):
        (folder / f"part{n}.dat").write_bytes(os.urandom(5000))


def docker_build(context: Path, tag: str, dockerfile: str) -> str:
    (context / "Dockerfile").write_text(dockerfile)
    subprocess.run([DOCKER, "build", "-q", "--network", "none", "--label", f"{LABEL}=1",
                    "-t", tag, str(context)], check=True, stdout=subprocess.DEVNULL)
    return tag


def build_synthetic(scratch: Path, large_mb: int) -> dict[str, str]:
    suffix = os.getpid()
    context = scratch / "context"
    context.mkdir()
    shutil.copy2(BUSYBOX, context / "busybox")
    (context / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n")
    for layer in range(4):
        write_files(context / f"layer{layer}", max(1, large_mb // 4), layer)
    small_layer(context / "extra")
    head = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY passwd /etc/passwd\n"
    tags = {
        "small": docker_build(context, f"paracle-guard-bench/small:{suffix}", head + "USER app\n"),
        "large": docker_build(context, f"paracle-guard-bench/large:{suffix}", head + "".join(
            f"COPY layer{n} /data/layer{n}\n" for n in range(4)) + "USER app\n"),
    }
    tags["derived"] = docker_build(context, f"paracle-guard-bench/derived:{suffix}",
                                   f"FROM {tags['large']}\nCOPY extra /srv/extra\n")
    tags["layer-alone"] = docker_build(context, f"paracle-guard-bench/layer-alone:{suffix}",
                                       "FROM scratch\nCOPY extra /srv/extra\n")
    shutil.rmtree(context)
    return tags


def run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one whole process."""
    with tempfile.NamedTemporaryFile("r") as memory:
        started = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", memory.name, *command],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
                              env=env)
        wall = time.perf_counter() - started
        peak = int(memory.read().strip().splitlines()[-1]) / 1024
    if done.returncode not in (0, 1):  # 1: paracle-guard found something, which is fine
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-500:]}")
    return wall, peak


def median_of(repeat: int, once: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    results = [once() for _ in range(repeat)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


class Bench:
    def __init__(self, executable: str, repeat: int, scratch: Path) -> None:
        self.guard = executable
        self.repeat = repeat
        self.scratch = scratch
        self.homes = 0

    def env(self, home: Path | None = None, **extra: str) -> dict[str, str]:
        if home is None:
            self.homes += 1
            home = self.scratch / f"home{self.homes}"
        return {**os.environ, "XDG_CACHE_HOME": str(home), **extra}

    def save(self, tag: str) -> tuple[float, float]:
        return median_of(self.repeat, lambda: run(["sh", "-c", f"{DOCKER} save {tag} >/dev/null"]))

    def check(self, tag: str, **extra: str) -> tuple[float, float]:
        return median_of(self.repeat, lambda: run([self.guard, "image", tag], self.env(**extra)))

    def warm(self, tag: str) -> tuple[float, float]:
        home = self.scratch / f"warm-{tag.replace('/', '_')}"
        run([self.guard, "image", tag], self.env(home))
        return median_of(self.repeat, lambda: run([self.guard, "image", tag], self.env(home)))

    def on_cached_base(self, base: str, tag: str) -> tuple[float, float]:
        def once() -> tuple[float, float]:
            env = self.env()
            run([self.guard, "image", base], env)  # fills the cache with the base's layers
            return run([self.guard, "image", tag], env)

        return median_of(self.repeat, once)


def report(name: str, figure: tuple[float, float], floor: float | None = None,
           floor_name: str = "") -> None:
    ratio = f"  {figure[0] / floor:5.2f}x {floor_name}" if floor else ""
    print(f"  {name:<44} {figure[0]:7.3f} s  peak {figure[1]:5.0f} MB{ratio}", flush=True)


def measure_image(bench: Bench, name: str, tag: str, startup: float) -> None:
    print(f"\n{name} image {tag}: {image_size_mb(tag):.0f} MB", flush=True)
    save = bench.save(tag)
    report("docker save > /dev/null", save)
    report("paracle-guard image, cold (layer store)", bench.check(tag), save[0], "docker save")
    report("paracle-guard image, cold (docker save)",
           bench.check(tag, PARACLE_GUARD_NO_LAYER_STORE="1"), save[0], "docker save")
    report("paracle-guard image, warm (unchanged image)", bench.warm(tag), startup,
           "bare start-up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large-mb", type=int, default=1024, help="size of the large image")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement")
    parser.add_argument("--python", action="store_true",
                        help="also build and measure the realistic Python image")
    args = parser.parse_args()
    if not BUSYBOX.is_file():
        raise SystemExit("/bin/busybox is missing: apt-get install busybox-static")
    executable = shutil.which("paracle-guard", path=str(Path(sys.executable).parent))
    if executable is None:
        raise SystemExit("paracle-guard is not installed in this environment")

    scratch = Path(tempfile.mkdtemp(prefix="paracle-guard-image-bench-"))
    built: list[str] = []
    try:
        print("building the images...", flush=True)
        tags = build_synthetic(scratch, args.large_mb)
        built += list(tags.values())
        if args.python:
            tags["python"] = build("python")
            built.append(tags["python"])
        bench = Bench(executable, args.repeat, scratch)
        startup = median_of(args.repeat, lambda: run([executable, "--version"]))
        print(f"\nparacle-guard --version (bare start-up): {startup[0]:.3f} s; "
              f"load average {os.getloadavg()[0]:.2f}")
        for name in ("small", "large", "python"):
            if name in tags:
                measure_image(bench, name, tags[name], startup[0])
        print("\nshared base: one small layer on a cached base")
        alone = bench.check(tags["layer-alone"])
        report("layer-alone, cold", alone)
        report("derived, base already cached", bench.on_cached_base(tags["large"],
                                                                    tags["derived"]),
               alone[0], "layer-alone")
        archive = scratch / "large.tar"
        subprocess.run(["sh", "-c", f"{DOCKER} save {tags['large']} > {archive}"], check=True)
        report("paracle-guard image --input large.tar", median_of(
            args.repeat, lambda: run([executable, "image", "--input", str(archive)],
                                     bench.env())))
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        remove_built(built)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
