"""Test images: specs, the catalogue the suite shares, and the builder.

No registry is reachable, so every image is built here ``FROM scratch`` around
the host's static ``/bin/busybox`` (Debian's busybox-static). A spec lists
filesystem layers; each becomes a tar that the Dockerfile ``ADD``s, because
ADD of a local tar keeps what COPY from a build context loses: setuid bits,
owners, world-writable modes and ``security.capability`` xattrs. Extra
Dockerfile lines (USER, ENV, VOLUME, EXPOSE, exec-form RUN through busybox)
follow the layers; a ``RUN`` that deletes a file is how a spec gets a whiteout.

Every image carries the run's label so the session finaliser in conftest.py can
remove all of them, whatever happened to the tests.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

LABEL = "paracle-guard-test"
PID_LABEL = "paracle-guard-test.pid"
REPOSITORY = "paracle-guard-test"
BUSYBOX = Path("/bin/busybox")
HOST_DPKG_STATUS = Path("/var/lib/dpkg/status")

# A real file capability (cap_net_raw+ep) as `setcap` writes it: VFS_CAP_REVISION_2 header,
# effective flag, permitted bit 13.
NET_RAW_CAPABILITY = bytes.fromhex("0100000200200000000000000000000000000000")

PEM_PRIVATE_KEY = (
    b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
    b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    b"-----END OPENSSH PRIVATE KEY-----\n"
)
PEM_PUBLIC_KEY = (
    b"-----BEGIN PUBLIC KEY-----\n"
    b"MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
    b"-----END PUBLIC KEY-----\n"
)

NodeKind = Literal["file", "dir", "symlink", "hardlink"]

# The SDK ships no type information; reached by name, its objects are Any.
docker_errors = importlib.import_module("docker.errors")


@dataclass(frozen=True)
class Node:
    """One filesystem entry of a test layer."""

    path: str  # absolute, inside the image
    data: bytes = b""
    mode: int = 0o644
    kind: NodeKind = "file"
    target: str = ""  # for symlinks (as written) and hard links (an earlier path of the layer)
    uid: int = 0
    gid: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()


def file(path: str, data: bytes | str = b"", mode: int = 0o644, **extra: Any) -> Node:
    raw = data.encode() if isinstance(data, str) else data
    return Node(path=path, data=raw, mode=mode, **extra)


def directory(path: str, mode: int = 0o755, **extra: Any) -> Node:
    return Node(path=path, mode=mode, kind="dir", **extra)


def symlink(path: str, target: str) -> Node:
    return Node(path=path, mode=0o777, kind="symlink", target=target)


def hardlink(path: str, target: str) -> Node:
    """A second name for ``target``, which must come earlier in the same layer."""
    return Node(path=path, mode=0o644, kind="hardlink", target=target)


def busybox(*argv: str) -> str:
    """An exec-form RUN of a busybox applet: scratch images have no /bin/sh to run a shell form."""
    return "RUN " + json.dumps(["/bin/busybox", *argv])


@dataclass(frozen=True)
class ImageSpec:
    name: str  # unique within a run; becomes the tag's repository part
    layers: tuple[tuple[Node, ...], ...] = ()
    instructions: tuple[str, ...] = ()  # Dockerfile lines after the layers

    def dockerfile(self) -> str:
        lines = ["FROM scratch", "COPY busybox /bin/busybox"]
        lines += [f"ADD layer{index}.tar /" for index in range(len(self.layers))]
        lines += list(self.instructions)
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BuiltImage:
    spec: ImageSpec
    ref: str  # the tag it was built under
    id: str


def layer_tar(nodes: tuple[Node, ...]) -> bytes:
    """A layer as a PAX tar, parents created as needed, xattrs as SCHILY.xattr records."""
    buffer = io.BytesIO()
    declared = {node.path for node in nodes}
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()
        for node in nodes:
            parts = node.path.strip("/").split("/")
            for depth in range(1, len(parts)):
                parent = "/" + "/".join(parts[:depth])
                if parent not in made and parent not in declared:
                    info = tarfile.TarInfo(parent.lstrip("/"))
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                made.add(parent)
            info = tarfile.TarInfo(node.path.lstrip("/"))
            info.mode, info.uid, info.gid = node.mode, node.uid, node.gid
            info.pax_headers = {
                f"SCHILY.xattr.{key}": value.decode("utf-8", "surrogateescape")
                for key, value in node.xattrs
            }
            if node.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif node.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, node.target
                tar.addfile(info)
            elif node.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, node.target.lstrip("/")
                tar.addfile(info)
            else:
                info.size = len(node.data)
                tar.addfile(info, io.BytesIO(node.data))
            made.add(node.path)
    return buffer.getvalue()


def write_context(spec: ImageSpec, directory_: Path) -> Path:
    directory_.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, directory_ / "busybox")
    for index, layer in enumerate(spec.layers):
        (directory_ / f"layer{index}.tar").write_bytes(layer_tar(layer))
    (directory_ / "Dockerfile").write_text(spec.dockerfile())
    return directory_


def build(
    client: Any, spec: ImageSpec, *, run_id: str, workdir: Path, pid: int | None = None
) -> BuiltImage:
    """Build ``spec`` through the SDK with no network, labelled for run ``run_id``.

    ``pid`` is the process that owns the run (this one by default): cleanup treats
    images of a run whose process is gone as stale.
    """
    context = write_context(spec, workdir / spec.name)
    ref = f"{REPOSITORY}/{spec.name}:{run_id}"
    options = {"path": str(context), "tag": ref, "rm": True, "forcerm": True,
               "labels": {LABEL: run_id, PID_LABEL: str(pid or os.getpid())},
               "network_mode": "none", "pull": False}
    try:
        try:
            image, _ = client.images.build(**options)
        except docker_errors.BuildError as exc:
            # Another run on the same engine removed a cached layer this build was reusing
            # (its sweep of a dead run's images): build again without the cache.
            if "unknown parent image ID" not in str(exc.msg):
                raise
            image, _ = client.images.build(**options, nocache=True)
    except docker_errors.BuildError as exc:
        log = "".join(str(line.get("stream") or line.get("error") or "") for line in exc.build_log)
        raise AssertionError(f"building test image {spec.name} failed: {exc.msg}\n{log}") from exc
    return BuiltImage(spec=spec, ref=ref, id=image.id)


def load_archive(ref: str, layers: tuple[bytes, ...], config: dict[str, Any]) -> bytes:
    """A ``docker load`` archive of ``layers`` (bottom first) and an image ``config``."""
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    document = json.dumps({
        "architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "raw layer"} for _ in layers],
    }).encode()
    config_name = hashlib.sha256(document).hexdigest() + ".json"
    names = [f"layer{index}/layer.tar" for index in range(len(layers))]
    members = [*zip(names, layers, strict=True), (config_name, document),
               ("manifest.json", json.dumps([{"Config": config_name, "RepoTags": [ref],
                                              "Layers": names}]).encode())]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member_name, data in members:
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# --- the catalogue ---------------------------------------------------------------------------

PASSWD = file(
    "/etc/passwd",
    "root:x:0:0:root:/root:/bin/sh\n"
    "toor:x:0:0:root alias:/root:/bin/sh\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
)
GROUP = file("/etc/group", "root:x:0:\nstaff:x:50:\napp:x:1000:\nnogroup:x:65534:\n")
ACCOUNTS = (PASSWD, GROUP, directory("/home/app", 0o755, uid=1000, gid=1000))


@functools.cache
def raw_base_layer() -> bytes:
    """The base layer of images loaded from raw layers: busybox, the accounts, and the
    launcher's mount targets as plain folders."""
    return layer_tar((
        Node("/bin/busybox", BUSYBOX.read_bytes(), 0o755),
        *(symlink(f"/bin/{applet}", "busybox") for applet in ("sh", "ls", "cat", "echo", "id")),
        *ACCOUNTS, directory("/tmp", 0o1777),
        directory("/workspace", 0o755, uid=1000, gid=1000),
    ))


def _dpkg_status() -> bytes:
    """The host's dpkg database: a real one, with real oddities (config-files, long fields)."""
    if HOST_DPKG_STATUS.is_file():
        return HOST_DPKG_STATUS.read_bytes()
    return (
        b"Package: sudo\nStatus: install ok installed\nInstalled-Size: 6000\nVersion: 1.9\n\n"
        b"Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n"
    )


# Read once: the image carries this snapshot, and tests compare against the same bytes
# even if the host installs packages while the suite runs.
DPKG_STATUS = _dpkg_status()

APK_INSTALLED = (
    "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nS:383152\nI:622592\nT:the musl c library\n\n"
    "C:Q1def=\nP:busybox\nV:1.36.1-r5\nA:x86_64\nS:509770\nI:946176\nT:Size optimized toolbox\n"
    "F:bin\nR:busybox\n\n"
    "C:Q1ghi=\nP:sudo\nV:1.9.14-r1\nA:x86_64\nS:700000\nI:2700000\nT:Give limited root\n"
)

PYTHON_METADATA = (
    "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: HTTP for Humans.\n\n"
    "Requests\n========\n\nName: not-a-header\n"
)
EGG_PKG_INFO = "Metadata-Version: 1.1\nName: legacy-tool\nVersion: 0.9\n"

SITE = "/usr/lib/python3.11/site-packages"

IMAGES: dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        # Passes the user, package, file and config controls: non-root, nothing notable.
        ImageSpec("minimal", layers=(ACCOUNTS,), instructions=("USER app", "WORKDIR /home/app")),
        ImageSpec("root-default", layers=(ACCOUNTS,)),
        ImageSpec("root-by-name", layers=(ACCOUNTS,), instructions=("USER toor",)),
        ImageSpec("numeric-user", layers=(ACCOUNTS,), instructions=("USER 4242:4242",)),
        ImageSpec("unknown-user", layers=(ACCOUNTS,), instructions=("USER ghost",)),
        ImageSpec("user-group", layers=(ACCOUNTS,), instructions=("USER app:staff",)),
        ImageSpec(
            "packages",
            layers=(
                (
                    *ACCOUNTS,
                    file("/var/lib/dpkg/status", DPKG_STATUS),
                    file("/lib/apk/db/installed", APK_INSTALLED),
                    file(f"{SITE}/requests-2.31.0.dist-info/METADATA", PYTHON_METADATA),
                    file(f"{SITE}/legacy_tool-0.9.egg-info/PKG-INFO", EGG_PKG_INFO),
                ),
            ),
            instructions=("USER app",),
        ),
        ImageSpec(
            "privileged-files",
            layers=(
                (
                    *ACCOUNTS,
                    file("/usr/bin/sudo", b"\x7fELF sudo", 0o4755),
                    file("/usr/bin/wall", b"\x7fELF wall", 0o2755, gid=5),
                    file("/usr/bin/ping", b"\x7fELF ping", 0o755,
                         xattrs=(("security.capability", NET_RAW_CAPABILITY),)),
                    file("/etc/sudoers", "Defaults env_reset\n# a comment\n"
                         "root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n", 0o440),
                    file("/etc/sudoers.d/app", "app ALL=(ALL) NOPASSWD: ALL\n", 0o440),
                    directory("/data", 0o777),
                    directory("/tmp", 0o1777),
                    directory("/var/mail", 0o2775),
                ),
            ),
            instructions=("USER app",),
        ),
        ImageSpec(
            "secrets",
            layers=(
                (
                    *ACCOUNTS,
                    file("/home/app/.ssh/id_ed25519", PEM_PRIVATE_KEY, 0o600, uid=1000),
                    file("/home/app/.ssh/id_ed25519.pub", b"ssh-ed25519 AAAA app\n"),
                    file("/srv/tls/server.key", PEM_PRIVATE_KEY.replace(b"OPENSSH ", b"RSA ")),
                    file("/srv/tls/public.pem", PEM_PUBLIC_KEY),
                    file("/srv/app/.env", "DATABASE_PASSWORD=hunter2\n"),
                    file("/srv/app/.env.example", "DATABASE_PASSWORD=\n"),
                    file("/root/.aws/credentials", "[default]\naws_access_key_id = AKIA\n"),
                    file("/root/.docker/config.json",
                         json.dumps({"auths": {"registry.example": {"auth": "dTpw"}}})),
                    file("/home/app/.docker/config.json", json.dumps({"credsStore": "pass"})),
                    file("/srv/app/sa.json", json.dumps({"type": "service_account",
                                                         "private_key": "-----BEGIN"})),
                ),
            ),
            instructions=("ENV API_TOKEN=s3cr3t-value-never-printed LOG_LEVEL=info", "USER app"),
        ),
        ImageSpec(
            "runtime-config",
            layers=((*ACCOUNTS, file("/usr/sbin/sshd", b"\x7fELF sshd", 0o755)),),
            instructions=(
                "VOLUME /data /cache",
                "EXPOSE 22 8080/udp",
                "WORKDIR /proc/app",
                "USER 1000",
            ),
        ),
        # Layers that take back what earlier layers put there.
        ImageSpec(
            "whiteouts",
            layers=(
                (
                    *ACCOUNTS,
                    file("/etc/deploy.key", PEM_PRIVATE_KEY),
                    file("/opt/tool", b"tool", 0o4755),
                    file("/opt/kept", b"kept", 0o4755),
                    directory("/var/cache/app", 0o777),
                    file("/var/cache/app/.env", "TOKEN=x\n"),
                    file("/srv/old/.env", "TOKEN=x\n"),
                ),
                # A later layer replacing the setuid tool with a plain one.
                (file("/opt/tool", b"tool v2", 0o755),),
            ),
            instructions=(
                busybox("rm", "/etc/deploy.key"),
                # Removing and recreating a directory in one step leaves an opaque whiteout.
                busybox("sh", "-c", "rm -rf /var/cache/app && mkdir -m 755 /var/cache/app"),
                busybox("rm", "-rf", "/srv/old"),
                "USER app",
            ),
        ),
    )
}


@dataclass
class TestImages:
    """Builds catalogue or ad-hoc specs on first use, once per run; saves them as archives."""

    __test__ = False  # not a test class, whatever its name

    client: Any
    run_id: str
    workdir: Path
    built: dict[str, BuiltImage] = field(default_factory=dict)
    archives: dict[str, Path] = field(default_factory=dict)

    def get(self, spec: ImageSpec | str) -> BuiltImage:
        if isinstance(spec, str):
            spec = IMAGES[spec]
        known = self.built.get(spec.name)
        if known is not None:
            if known.spec != spec:
                raise AssertionError(f"two different test image specs are named {spec.name!r}")
            return known
        if not BUSYBOX.is_file():
            raise FileNotFoundError(
                f"{BUSYBOX} is missing: install busybox-static (apt-get install busybox-static)"
            )
        built = build(self.client, spec, run_id=self.run_id, workdir=self.workdir / "contexts")
        self.built[spec.name] = built
        return built

    def load_layers(self, name: str, layers: tuple[bytes, ...],
                    **config_fields: Any) -> BuiltImage:
        """An image of the busybox base and ``layers`` (raw tar bytes, any bytes the engine
        accepts), loaded with ``docker load``, labelled for this run: no build rewrites them.
        ``config_fields`` go into the image config (``WorkingDir="/app"``)."""
        known = self.built.get(name)
        if known is not None:
            return known
        ref = f"{REPOSITORY}/{name}:{self.run_id}"
        config = {"User": "1000:1000", "Env": ["PATH=/bin"], **config_fields,
                  "Labels": {LABEL: self.run_id, PID_LABEL: str(os.getpid())}}
        archive = load_archive(ref, (raw_base_layer(), *layers), config)
        loaded = self.client.images.load(archive)
        image = next(i for i in loaded if ref in i.tags)
        built = BuiltImage(spec=ImageSpec(name), ref=ref, id=image.id)
        self.built[name] = built
        return built

    def archive(self, spec: ImageSpec | str) -> Path:
        """The image saved as ``docker save`` would save it, tagged, in a temporary file."""
        built = self.get(spec)
        path = self.archives.get(built.spec.name)
        if path is None:
            path = self.workdir / "archives" / f"{built.spec.name}.tar"
            path.parent.mkdir(parents=True, exist_ok=True)
            image = self.client.images.get(built.id)
            with path.open("wb") as out:
                for chunk in image.save(named=built.ref):
                    out.write(chunk)
            self.archives[built.spec.name] = path
        return path
