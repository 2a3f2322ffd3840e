"""Images built in the suite, read through the engine and from their saved archives.

Tests using the engine fixtures are marked ``docker`` by the root conftest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paracle_guard.docker_client import Engine
from paracle_guard.errors import EngineUnavailable, ImageNotFound
from paracle_guard.sources.image import load_image, load_image_archive
from paracle_guard.sources.package_db import parse_dpkg_status
from paracle_guard.subject import Subject
from tests.docker_images import (
    ACCOUNTS,
    DPKG_STATUS,
    IMAGES,
    ImageSpec,
    TestImages,
    busybox,
    directory,
    symlink,
)


def through_engine(test_images: TestImages, engine: Engine, name: str) -> Subject:
    return load_image(test_images.get(name).ref, engine)


def files(subject: Subject) -> dict[str, tuple[int, str, list[str], bool]]:
    return {e.path: (e.mode, e.kind, list(e.tags), e.capabilities) for e in subject.files}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_engine_and_archive_give_the_same_facts(test_images: TestImages, engine: Engine,
                                                name: str) -> None:
    built = test_images.get(name)
    live = load_image(built.ref, engine)
    saved = load_image_archive(test_images.archive(name), built.ref)
    assert live == saved
    assert live.kind == "image" and live.target == built.ref
    assert live.metadata["id"] == built.id
    assert live.metadata["tags"] == [built.ref]


def test_connects_from_the_environment_when_given_no_engine(test_images: TestImages) -> None:
    built = test_images.get("minimal")
    assert load_image(built.ref).metadata["id"] == built.id


def test_users(test_images: TestImages, engine: Engine) -> None:
    users = {name: through_engine(test_images, engine, name).user for name in (
        "minimal", "root-default", "root-by-name", "numeric-user", "unknown-user", "user-group")}
    summary = {
        name: (u.spec, u.name, u.uid, u.gid, u.is_root) for name, u in users.items() if u
    }
    assert summary == {
        "minimal": ("app", "app", 1000, 1000, False),
        "root-default": (None, "root", 0, 0, True),
        "root-by-name": ("toor", "toor", 0, 0, True),
        "numeric-user": ("4242:4242", None, 4242, 4242, False),
        "unknown-user": ("ghost", "ghost", None, None, False),
        "user-group": ("app:staff", "app", 1000, 50, False),
    }
    ghost = users["unknown-user"]
    assert ghost is not None
    assert ghost.unresolved_reason == (
        "the engine refuses to start it: no user 'ghost' in the image's /etc/passwd")


def test_minimal_image_has_nothing_notable(test_images: TestImages, engine: Engine) -> None:
    subject = through_engine(test_images, engine, "minimal")
    assert subject.files == [] and subject.packages == []
    assert (subject.volumes, subject.exposed_ports, subject.workdir) == ([], [], "/home/app")
    assert [e.name for e in subject.env] == ["PATH"]


def test_packages_from_the_hosts_dpkg_database(test_images: TestImages, engine: Engine) -> None:
    subject = through_engine(test_images, engine, "packages")
    dpkg = {(p.name, p.version) for p in subject.packages if p.manager == "dpkg"}
    expected = {(r.name, r.version)
                for r in parse_dpkg_status(DPKG_STATUS.decode(errors="replace"))}
    assert dpkg == expected and len(dpkg) > 0
    others = {(p.manager, p.name) for p in subject.packages if p.manager != "dpkg"}
    assert others == {("apk", "musl"), ("apk", "busybox"), ("apk", "sudo"),
                      ("python", "requests"), ("python", "legacy-tool")}
    layer = subject.packages[0].location.layer
    assert layer is not None and layer.startswith("sha256:")
    assert subject.metadata["package_databases"] == ["apk", "dpkg", "python"]


def test_privileged_files(test_images: TestImages, engine: Engine) -> None:
    assert files(through_engine(test_images, engine, "privileged-files")) == {
        "/data": (0o777, "dir", [], False),
        "/etc/sudoers": (0o440, "file", ["sudoers-grant"], False),
        "/etc/sudoers.d/app": (0o440, "file", ["sudoers-grant"], False),
        "/usr/bin/ping": (0o755, "file", [], True),
        "/usr/bin/sudo": (0o4755, "file", [], False),
        "/usr/bin/wall": (0o2755, "file", [], False),
    }


def test_secrets(test_images: TestImages, engine: Engine) -> None:
    subject = through_engine(test_images, engine, "secrets")
    assert {path: tags for path, (_, _, tags, _) in files(subject).items()} == {
        "/home/app/.docker/config.json": [],
        "/home/app/.ssh/id_ed25519": ["private-key"],
        "/root/.aws/credentials": ["cloud-credentials"],
        "/root/.docker/config.json": ["registry-auth"],
        "/srv/app/.env": ["dotenv"],
        "/srv/app/sa.json": ["cloud-credentials"],
        "/srv/tls/server.key": ["private-key"],
    }
    env = {e.name: (e.value, e.origin) for e in subject.env}
    assert env["API_TOKEN"] == ("s3cr3t-value-never-printed", "config")


def test_runtime_config(test_images: TestImages, engine: Engine) -> None:
    subject = through_engine(test_images, engine, "runtime-config")
    assert subject.volumes == ["/cache", "/data"]
    assert [(p.port, p.protocol) for p in subject.exposed_ports] == [(22, "tcp"), (8080, "udp")]
    assert subject.workdir == "/proc/app"
    assert [e.path for e in subject.files] == ["/usr/sbin/sshd"]


def test_whiteouts_remove_what_later_layers_deleted(test_images: TestImages,
                                                    engine: Engine) -> None:
    built = test_images.get("whiteouts")
    subject = load_image(built.ref, engine)
    # Gone: the deleted key, the replaced setuid tool, the recreated (now 755) cache dir
    # with its .env, the removed /srv/old. Left: the setuid file nothing touched.
    assert files(subject) == {"/opt/kept": (0o4755, "file", [], False)}
    info = engine.resolve_image(built.ref)
    # busybox, then the first ADDed layer: /opt/kept comes from there.
    assert subject.files[0].location.layer == info.diff_ids[1]


def test_missing_image(engine: Engine) -> None:
    with pytest.raises(ImageNotFound, match="is not present locally; build or pull it first"):
        load_image("paracle-guard-test/not-built:never", engine)


def test_unreachable_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/missing.sock")
    with pytest.raises(EngineUnavailable, match=r"cannot reach the Docker Engine at unix://"):
        load_image("anything:latest")


# A /tmp that a later layer turns into a symlink to /etc (RUN rm + ln leaves a whiteout and
# the link), and a /workspace that is a relative symlink to usr/local/bin from the start.
SYMLINKED_TARGETS = ImageSpec(
    "symlinked-mount-targets",
    layers=((*ACCOUNTS, directory("/tmp", 0o1777), directory("/usr/local/bin"),
             symlink("/workspace", "usr/local/bin")),),
    instructions=(busybox("rm", "-rf", "/tmp"), busybox("ln", "-s", "/etc", "/tmp"),
                  "USER 1000:1000"),
)


def test_the_tree_sees_symlinks_through_whiteouts_the_same_live_and_saved(
    test_images: TestImages, engine: Engine,
) -> None:
    built = test_images.get(SYMLINKED_TARGETS)
    live = load_image(built.ref, engine)
    saved = load_image_archive(test_images.archive(SYMLINKED_TARGETS), built.ref)
    assert live.image_tree == saved.image_tree
    tree = live.image_tree
    assert tree is not None
    assert tree.resolve("/tmp") == "/etc"
    assert tree.resolve("/workspace") == "/usr/local/bin"
    tmp = tree.mount_target_problem("/tmp")
    assert tmp is not None
    assert tmp.layer in tree.layer_ids[1:]  # the RUN layer that made the link
    home = tree.lookup("/home/app")
    assert home is not None and home.kind == "dir"
    shell = tree.lookup("/bin/busybox")
    assert shell is not None and shell.kind == "other"
