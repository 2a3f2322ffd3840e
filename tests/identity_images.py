"""The images of issue 11's real-engine tests, shared by the CLI and launcher tests.

``CASES`` are built from specs like the rest of the catalogue. The image whose
config spells ``User`` twice cannot be built by any builder: ``load_case_variant``
writes its ``docker save`` archive byte for byte and loads it with ``docker load``,
labelled for the run like every test image.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from tests.docker_images import (
    BUSYBOX,
    GROUP,
    LABEL,
    PID_LABEL,
    REPOSITORY,
    ImageSpec,
    directory,
    file,
    hardlink,
    symlink,
)

ARABIC_1000 = "\u0661\u0660\u0660\u0660"
TOOR = "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n"
PASSWD = file("/etc/passwd", TOOR)


def spec(name: str, layer: tuple[Any, ...], user: str) -> ImageSpec:
    return ImageSpec(f"identity-{name}", layers=(layer,), instructions=(f"USER {user}",))


# name -> (image, what the engine runs it as: "uid gid groups" from `id -u; id -g; id -G`,
# or a piece of its refusal).
CASES: dict[str, tuple[ImageSpec, str]] = {
    "signed": (spec("signed", (PASSWD, GROUP), "+0"), "0 0 0"),
    "signed-pair": (spec("signed-pair", (PASSWD, GROUP), "-0:-0"), "0 0 0"),
    # A name to the engine, uid 0 in this image's /etc/passwd; Python's isdigit() says 1000.
    "arabic": (spec("arabic", (file("/etc/passwd", TOOR + ARABIC_1000 + ":x:0:0::/:/bin/sh\n"),
                               GROUP), ARABIC_1000), "0 0 0"),
    "superscript": (spec("superscript", (PASSWD, GROUP), "\u00b2"), "unable to find user"),
    "symlinked-passwd": (spec("symlinked-passwd", (
        file("/usr/lib/accounts/users", TOOR), directory("/etc"),
        symlink("/etc/passwd", "../usr/lib/accounts/users"), GROUP), "toor"), "0 0 0"),
    "hardlinked-passwd": (spec("hardlinked-passwd", (
        file("/usr/lib/accounts/users", TOOR), directory("/etc"),
        hardlink("/etc/passwd", "/usr/lib/accounts/users"), GROUP), "toor"), "0 0 0"),
    "root-group-member": (spec("root-group-member", (
        PASSWD, file("/etc/group", "root:x:0:app\napp:x:1000:\n")), "app"), "1000 1000 1000 0"),
    "primary-gid-0": (spec("primary-gid-0", (
        file("/etc/passwd", "app:x:1000:0::/:/bin/sh\n"), GROUP), "app"), "1000 0 0"),
    "explicit-gid-0": (spec("explicit-gid-0", (PASSWD, GROUP), "1000:0"), "1000 0 0"),
    # No /etc/passwd at all: the engine's default group, 0.
    "no-passwd": (spec("no-passwd", (file("/etc/hostname", "x\n"),), "1000"), "1000 0 0"),
    "clean": (spec("clean", (PASSWD, GROUP), "app:app"), "1000 1000 1000"),
}
def handmade_archive(config: bytes, layer: bytes, tag: str) -> bytes:
    """A docker save archive (legacy layout) around a config written byte for byte."""
    layer_id = hashlib.sha256(layer).hexdigest()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag],
                            "Layers": [f"{layer_id}/layer.tar"]}]).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in ((f"{layer_id}/layer.tar", layer), (config_name, config),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def busybox_layer() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("bin", "etc"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for name, data in (("etc/passwd", TOOR.encode()), ("etc/group", b"root:x:0:\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def load_case_variant(client: Any, run_id: str, directory_: Path) -> tuple[str, Path, str]:
    """Load the image whose config has two keys for User and for Volumes.

    Returns its tag, its archive and its ID; the caller removes it.
    """
    layer = busybox_layer()
    labels = json.dumps({LABEL: run_id, PID_LABEL: str(os.getpid())})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    # Written by hand: two keys for Config.User and for Config.Volumes.
    config = (
        '{"architecture": "amd64", "os": "linux", "config": {"User": "1000:1000", '
        f'"Labels": {labels}, "Volumes": null, "user": "0", "volumes": {{"/data": {{}}}}}}, '
        f'"rootfs": {{"type": "layers", "diff_ids": ["{diff_id}"]}}}}'
    ).encode()
    tag = f"{REPOSITORY}/identity-case-variant:{run_id}"
    archive = handmade_archive(config, layer, tag)
    path = directory_ / "case-variant.tar"
    path.write_bytes(archive)
    (loaded,) = client.images.load(archive)
    return tag, path, str(loaded.id)
