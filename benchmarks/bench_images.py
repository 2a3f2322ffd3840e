"""Images the benchmarks run and read, built on the local engine with no registry, then removed.

- ``busybox``: a 2 MB image FROM scratch (static busybox, an /etc/passwd, USER 1000:1000);
- ``python``: a realistic Debian Python sandbox image, built exactly as the sandbox
  images are where no registry is reachable: ``scripts/build-sandbox-images
  --air-gapped`` (a debootstrapped bookworm base with python3 and pip, then
  ``docker/Dockerfile.sandbox``: pinned requests, pydantic, click, rich, jinja2,
  PyYAML; a non-root user; setuid bits stripped).

Everything built carries the ``paracle-guard-bench`` label and is removed by
``remove_built``; an image given by reference is only used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LABEL = "paracle-guard-bench"
BUSYBOX = Path("/bin/busybox")
ROOT = Path(__file__).resolve().parent.parent


def build_busybox(tag: str) -> str:
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
                        f"{LABEL}=1", "-t", tag, context],
                       check=True, stdout=subprocess.DEVNULL)
    return tag


def build_python(tag: str) -> str:
    """The sandbox image on the air-gapped Debian base, as scripts/build-sandbox-images makes it."""
    repository, _, version = tag.rpartition(":")
    built = subprocess.run(
        [str(ROOT / "scripts" / "build-sandbox-images"), "--air-gapped", "--repository",
         repository.removesuffix("/sandbox"), "--tag", version, "--label", f"{LABEL}=1",
         "sandbox"],
        check=False, capture_output=True, text=True,
    )
    if built.returncode != 0:
        sys.exit(f"building the Python image failed:\n{built.stderr[-2000:]}")
    return tag


def build(kind: str) -> str:
    tag = f"paracle-guard-bench/{'sandbox' if kind == 'python' else kind}:{os.getpid()}"
    print(f"building the {kind} image {tag}...", file=sys.stderr, flush=True)
    return build_python(tag) if kind == "python" else build_busybox(tag)


def remove_built(tags: list[str]) -> None:
    for tag in tags:
        subprocess.run(["docker", "rmi", "-f", tag], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def image_size_mb(ref: str) -> float:
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", ref],
                         check=True, capture_output=True, text=True).stdout
    return int(out.strip()) / 1e6
