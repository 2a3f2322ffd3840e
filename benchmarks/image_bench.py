"""How long ``paracle-guard image`` takes to read an image, against a bare ``docker save``.

Run by hand, never as a timed test:

    .venv/bin/python benchmarks/image_bench.py [--large-mb 1024] [--repeat 3]

Builds two throw-away images FROM scratch on the local engine (no network): a
small one (static busybox plus an /etc/passwd) and a large one of
``--large-mb`` MB of random-ish files spread over several layers. For each it
times, best of ``--repeat``:

- ``docker save IMAGE > /dev/null``: the floor, the engine streaming the archive;
- loading the image the way ``paracle-guard image`` does (``load_image`` in a fresh
  interpreter, imports included), with that process's peak resident memory, then
  once more in the same process (the per-image cost once Python and the SDK are loaded);
- ``paracle-guard image IMAGE`` itself, when the installed CLI has that command;
- ``load_image_archive`` on the saved tarball (the no-daemon path), with peak memory.

and prints the ratios to the ``docker save`` floor. Everything it builds or
saves is removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The SDK ships no type information; reached by name, its objects are Any.
docker = importlib.import_module("docker")
docker_errors = importlib.import_module("docker.errors")

LABEL = "paracle-guard-bench"
BUSYBOX = Path("/bin/busybox")
DOCKER = shutil.which("docker") or "docker"

# Runs in a fresh interpreter so imports count and peak RSS is this load's alone.
LOADER = """
import json, resource, sys, time
from paracle_guard.sources.image import load_image, load_image_archive
kind, target = sys.argv[1], sys.argv[2]
load = load_image if kind == "engine" else load_image_archive
subject = load(target)
# Again in the same process: what a run checking many images pays per image.
again = time.perf_counter()
load(target)
print(json.dumps({
    "warm_seconds": time.perf_counter() - again,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "files": len(subject.files),
    "packages": len(subject.packages),
}))
"""


def make_context(root: Path, large_mb: int) -> None:
    """A build context: busybox, an /etc/passwd and ``large_mb`` MB of files in four layers."""
    root.mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "busybox")
    (root / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n")
    lines = ["FROM scratch", "COPY busybox /bin/busybox", "COPY passwd /etc/passwd"]
    if large_mb:
        block = os.urandom(1 << 20)
        per_layer = max(1, large_mb // 4)
        for layer in range(4):
            folder = root / f"layer{layer}"
            folder.mkdir()
            # Mostly 1-8 MB blobs, plus many small files: both shapes cost differently.
            written = 0
            index = 0
            while written < per_layer << 20:
                size = (1 + index % 8) << 20
                with (folder / f"blob{index}.bin").open("wb") as out:
                    for part in range(size >> 20):
                        # Rotate the random block so that no two megabytes are alike.
                        offset = (layer * 7919 + index * 104729 + part * 1299709) % len(block)
                        out.write(block[offset:] + block[:offset])
                written += size
                index += 1
            small = folder / "small"
            small.mkdir()
            for n in range(2000):
                (small / f"f{n}.txt").write_bytes(block[n * 37 % 4000:][:512])
            lines.append(f"COPY layer{layer} /data/layer{layer}")
    lines.append("USER app")
    (root / "Dockerfile").write_text("\n".join(lines) + "\n")


def build(client: Any, context: Path, tag: str) -> str:
    image, _ = client.images.build(path=str(context), tag=tag, labels={LABEL: "1"}, rm=True,
                                   forcerm=True, network_mode="none", pull=False)
    return str(image.id)


def best_of(repeat: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    results = [run() for _ in range(repeat)]
    best = min(results, key=lambda r: r["wall"])
    best["median_wall"] = statistics.median(r["wall"] for r in results)
    return best


def timed(command: list[str], stdout: Any = subprocess.DEVNULL) -> dict[str, Any]:
    start = time.perf_counter()
    result = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - start
    if result.returncode not in (0, 1):  # 1: paracle-guard found something, which is fine
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()[-500:]}")
    return {"wall": wall, "stdout": result.stdout}


def loader(kind: str, target: str) -> dict[str, Any]:
    run = timed([sys.executable, "-c", LOADER, kind, target], stdout=subprocess.PIPE)
    # "wall" is the first load, interpreter start-up and imports included.
    report = json.loads(run["stdout"])
    return {**report, "wall": run["wall"] - report["warm_seconds"]}


def cli_has_image_command() -> bool:
    cli = shutil.which("paracle-guard")
    if cli is None:
        return False
    probe = subprocess.run([cli, "image", "--help"], capture_output=True, check=False)
    return probe.returncode == 0


def measure(name: str, tag: str, size_mb: float, repeat: int, scratch: Path) -> None:
    save = best_of(repeat, lambda: timed([DOCKER, "save", tag]))
    engine = best_of(repeat, lambda: loader("engine", tag))
    print(f"\n{name} image {tag}: {size_mb:.0f} MB")
    print(f"  docker save > /dev/null        {save['wall']:7.2f} s  (median "
          f"{save['median_wall']:.2f})")
    print(f"  load_image (fresh process)     {engine['wall']:7.2f} s  (median "
          f"{engine['median_wall']:.2f})  ratio {engine['wall'] / save['wall']:.2f}x  "
          f"peak RSS {engine['peak_rss_mb']:.0f} MB")
    print(f"  load_image (warm, in-process)  {engine['warm_seconds']:7.2f} s  "
          f"ratio {engine['warm_seconds'] / save['wall']:.2f}x")
    if cli_has_image_command():
        cli = best_of(repeat, lambda: timed(["paracle-guard", "image", tag]))
        print(f"  paracle-guard image            {cli['wall']:7.2f} s  (median "
              f"{cli['median_wall']:.2f})  ratio {cli['wall'] / save['wall']:.2f}x")
    else:
        print("  paracle-guard image            (the installed CLI has no image command yet)")

    archive = scratch / f"{name}.tar"
    with archive.open("wb") as out:
        subprocess.run([DOCKER, "save", tag], stdout=out, check=True)
    try:
        offline = best_of(repeat, lambda: loader("archive", str(archive)))
        print(f"  load_image_archive (no daemon) {offline['wall']:7.2f} s  (median "
              f"{offline['median_wall']:.2f})  peak RSS {offline['peak_rss_mb']:.0f} MB")
    finally:
        archive.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large-mb", type=int, default=800, help="size of the large image")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    args = parser.parse_args()
    if not BUSYBOX.is_file():
        raise SystemExit("/bin/busybox is missing: apt-get install busybox-static")

    client = docker.from_env(version="auto", timeout=1800)
    scratch = Path(tempfile.mkdtemp(prefix="paracle-guard-bench-"))
    built: list[str] = []
    try:
        for name, mb in (("small", 0), ("large", args.large_mb)):
            context = scratch / name
            print(f"building the {name} image...", flush=True)
            make_context(context, mb)
            tag = f"paracle-guard-bench/{name}:latest"
            built.append(build(client, context, tag))
            shutil.rmtree(context)
            size = client.images.get(tag).attrs["Size"] / 1e6
            measure(name, tag, size, args.repeat, scratch)
    finally:
        for image in client.images.list(filters={"label": LABEL}):
            with contextlib.suppress(docker_errors.NotFound):
                client.images.remove(image.id, force=True)
        shutil.rmtree(scratch, ignore_errors=True)
        client.close()


if __name__ == "__main__":
    main()
