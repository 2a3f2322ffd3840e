"""The docker save walker on archives built here with tarfile: no engine involved."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paracle_guard.errors import InputError
from paracle_guard.sources.image import image_subject, load_archive_images, load_image_archive
from paracle_guard.sources.image_archive import read_saved_archive
from paracle_guard.sources.layer_scan import normalise
from paracle_guard.subject import Subject
from tests.cli_process import run_cli
from tests.docker_images import (
    NET_RAW_CAPABILITY,
    PEM_PRIVATE_KEY,
    PEM_PUBLIC_KEY,
    Node,
    directory,
    file,
    hardlink,
    layer_tar,
    symlink,
)

Layout = Literal["legacy", "oci"]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _config(diff_ids: list[str], os_name: str = "linux", **config: Any) -> bytes:
    return json.dumps({
        "architecture": "amd64",
        "os": os_name,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()


def saved_archive(
    layers: Sequence[tuple[Node, ...]],
    *,
    tags: tuple[str, ...] = ("example/app:1.0",),
    manifest_first: bool = False,
    layout: Layout = "legacy",
    gzip_layers: bool = False,
    extra_images: tuple[tuple[Sequence[tuple[Node, ...]], tuple[str, ...]], ...] = (),
    os_name: str = "linux",
    **config: Any,
) -> bytes:
    """A ``docker save`` archive of one or more images, in either member order and layout."""
    members: list[tuple[str, bytes]] = []
    manifest = []
    for image_layers, image_tags, image_config in [(layers, tags, config)] + [
        (more, more_tags, {}) for more, more_tags in extra_images
    ]:
        blobs = [layer_tar(layer) for layer in image_layers]
        diff_ids = ["sha256:" + hashlib.sha256(blob).hexdigest() for blob in blobs]
        layer_names = []
        for blob, diff_id in zip(blobs, diff_ids, strict=True):
            stored = gzip.compress(blob) if gzip_layers else blob
            if layout == "oci":
                name = "blobs/sha256/" + hashlib.sha256(stored).hexdigest()
            else:
                name = diff_id.removeprefix("sha256:")[:16] + "/layer.tar"
            layer_names.append(name)
            members.append((name, stored))
        raw_config = _config(diff_ids, os_name, **image_config)
        digest = hashlib.sha256(raw_config).hexdigest()
        config_name = f"blobs/sha256/{digest}" if layout == "oci" else f"{digest}.json"
        members.append((config_name, raw_config))
        manifest.append({"Config": config_name, "RepoTags": list(image_tags),
                         "Layers": layer_names})
    manifest_member = ("manifest.json", json.dumps(manifest).encode())
    ordered = [manifest_member, *members] if manifest_first else [*members, manifest_member]

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        seen = set()
        for name, data in ordered:
            if name not in seen:  # an identical layer shared by two images is stored once
                _add(tar, name, data)
                seen.add(name)
    return buffer.getvalue()


def load(tmp_path: Path, archive: bytes, ref: str | None = None) -> Subject:
    path = tmp_path / "image.tar"
    path.write_bytes(archive)
    return load_image_archive(path, ref)


def paths(subject: Subject) -> list[str]:
    return [entry.path for entry in subject.files]


def entry(subject: Subject, path: str) -> Any:
    return next(e for e in subject.files if e.path == path)


ACCOUNTS = (
    file("/etc/passwd", "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\n"
                        "app:x:1000:1001::/home/app:/bin/sh\n# comment\nbroken line\n"),
    file("/etc/group", "root:x:0:\nstaff:x:50:\napp:x:1001:\n"),
)


# --- whiteouts and the layer stack ------------------------------------------------------------

def test_whiteout_deletes_a_lower_file_and_everything_under_a_lower_dir(tmp_path: Path) -> None:
    subject = load(tmp_path, saved_archive([
        (file("/opt/a/sudo", mode=0o4755), file("/opt/b/sudo", mode=0o4755),
         file("/srv/x/.env"), file("/srv/y/.env")),
        (file("/opt/a/.wh.sudo"), file("/srv/.wh.x")),
    ]))
    assert paths(subject) == ["/opt/b/sudo", "/srv/y/.env"]


def test_opaque_dir_hides_lower_contents_but_keeps_its_own(tmp_path: Path) -> None:
    subject = load(tmp_path, saved_archive([
        (file("/cache/old/.env"), file("/cache/.env"), file("/other/.env")),
        (directory("/cache"), file("/cache/.wh..wh..opq"), file("/cache/new/.env")),
    ]))
    assert paths(subject) == ["/cache/new/.env", "/other/.env"]


def test_a_folder_whited_out_and_made_again_in_one_layer_keeps_the_files_below(
    tmp_path: Path,
) -> None:
    # overlay2 turns the whiteout into a device, which the folder entry then replaces: a
    # plain folder, which overlayfs merges with the one below (the engine test of the same
    # shape is in test_hostile_layers.py).
    subject = load(tmp_path, saved_archive([
        (file("/etc/sudoers.d/app", "app ALL=(ALL) NOPASSWD: ALL\n", mode=0o440),),
        (file("/.wh.etc"), directory("/etc"), file("/etc/motd")),
    ]))
    assert paths(subject) == ["/etc/sudoers.d/app"]


def test_a_layer_writing_through_its_own_symlink_is_refused(tmp_path: Path) -> None:
    # x -> /etc, then x/passwd: the engine writes /etc/passwd, not /x/passwd.
    archive = saved_archive([(symlink("/x", "/etc"), file("/x/passwd", "app:x:0:0::/:/bin/sh\n"))])
    with pytest.raises(InputError, match="writes /x/passwd through /x, a link the same layer"):
        load(tmp_path, archive)


def test_a_later_plain_version_replaces_a_setuid_file(tmp_path: Path) -> None:
    subject = load(tmp_path, saved_archive([
        (file("/usr/bin/tool", mode=0o4755), file("/usr/bin/kept", mode=0o4755)),
        (file("/usr/bin/tool", b"v2", mode=0o755),),
    ]))
    assert paths(subject) == ["/usr/bin/kept"]


def test_a_file_or_symlink_replacing_a_directory_removes_what_was_under_it(
    tmp_path: Path,
) -> None:
    subject = load(tmp_path, saved_archive([
        (file("/a/b/.env"), file("/c/d/.env"), file("/keep/e/.env")),
        (file("/a/b", b"now a file"), symlink("/c", "/elsewhere"), directory("/keep")),
    ]))
    assert paths(subject) == ["/keep/e/.env"]


def test_a_file_deleted_then_recreated_is_reported_from_the_layer_that_recreated_it(
    tmp_path: Path,
) -> None:
    archive = saved_archive([
        (file("/etc/ssl/app.key", PEM_PRIVATE_KEY),),
        (file("/etc/ssl/.wh.app.key"),),
        (file("/etc/ssl/app.key", PEM_PRIVATE_KEY),),
    ])
    subject = load(tmp_path, archive)
    assert paths(subject) == ["/etc/ssl/app.key"]
    diff_ids = json.loads(_member(archive, _manifest(archive)[0]["Config"]))["rootfs"]["diff_ids"]
    assert entry(subject, "/etc/ssl/app.key").location.layer == diff_ids[2]


def test_aufs_bookkeeping_entries_are_not_whiteouts(tmp_path: Path) -> None:
    subject = load(tmp_path, saved_archive([
        (file("/x/.env"),),
        (file("/.wh..wh.plnk"), file("/.wh..wh.aufs")),
    ]))
    assert paths(subject) == ["/x/.env"]


def _manifest(archive: bytes) -> Any:
    return json.loads(_member(archive, "manifest.json"))


def _member(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        data = tar.extractfile(name)
        assert data is not None
        return data.read()


@pytest.mark.parametrize("layout", ["legacy", "oci"])
def test_manifest_before_or_after_the_layers_gives_the_same_subject(
    tmp_path: Path, layout: Layout
) -> None:
    layers = [
        (*ACCOUNTS, file("/usr/bin/sudo", mode=0o4755), file("/app/.env")),
        (file("/app/.wh..env"), file("/usr/bin/su-exec", mode=0o755)),
    ]
    after = load(tmp_path, saved_archive(layers, layout=layout, User="app"))
    before = load(tmp_path, saved_archive(layers, layout=layout, manifest_first=True,
                                          User="app"))
    assert after == before
    assert paths(after) == ["/usr/bin/su-exec", "/usr/bin/sudo"]
    assert after.user is not None and after.user.uid == 1000


def test_oci_layout_with_gzip_layers_and_a_gzipped_archive(tmp_path: Path) -> None:
    layers = [(file("/bin/doas", mode=0o4755),), (directory("/shared", 0o777),)]
    plain = load(tmp_path, saved_archive(layers))
    oci = load(tmp_path, saved_archive(layers, layout="oci", gzip_layers=True))
    assert paths(oci) == paths(plain) == ["/bin/doas", "/shared"]
    compressed = tmp_path / "image.tar.gz"
    compressed.write_bytes(gzip.compress(saved_archive(layers)))
    assert paths(load_image_archive(compressed)) == paths(plain)


def test_a_layer_stored_as_a_symlink_to_another_is_followed(tmp_path: Path) -> None:
    # Older engines save a layer that two images share once and link the second copy.
    blob = layer_tar((file("/etc/sudoers.d/x", "x ALL=(ALL) ALL\n"),))
    diff_id = "sha256:" + hashlib.sha256(blob).hexdigest()
    config = _config([diff_id])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, "aaa/layer.tar", blob)
        link = tarfile.TarInfo("bbb/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../aaa/layer.tar"
        tar.addfile(link)
        _add(tar, "cfg.json", config)
        _add(tar, "manifest.json", json.dumps(
            [{"Config": "cfg.json", "RepoTags": None, "Layers": ["bbb/layer.tar"]}]).encode())
    subject = load(tmp_path, buffer.getvalue())
    assert paths(subject) == ["/etc/sudoers.d/x"]
    assert entry(subject, "/etc/sudoers.d/x").tags == ["sudoers-grant"]
    assert subject.metadata["id"] == "sha256:" + hashlib.sha256(config).hexdigest()
    assert subject.metadata["tags"] == []


# --- what a file entry records ----------------------------------------------------------------

def test_modes_owners_and_capabilities(tmp_path: Path) -> None:
    subject = load(tmp_path, saved_archive([(
        file("/usr/bin/passwd", mode=0o4755),
        file("/usr/bin/wall", mode=0o2755, gid=5),
        file("/usr/bin/ping", mode=0o755, xattrs=(("security.capability", NET_RAW_CAPABILITY),)),
        file("/usr/bin/plain", mode=0o755),
        directory("/data", 0o777, uid=1000, gid=1000),
        directory("/tmp", 0o1777),
        directory("/var/mail", 0o2775),
        directory("/group-writable", 0o775),
    )]))
    assert paths(subject) == ["/data", "/usr/bin/passwd", "/usr/bin/ping", "/usr/bin/wall"]
    passwd, ping, wall, data = (entry(subject, p) for p in (
        "/usr/bin/passwd", "/usr/bin/ping", "/usr/bin/wall", "/data"))
    assert (passwd.mode, passwd.kind, passwd.capabilities) == (0o4755, "file", False)
    assert (wall.mode, wall.gid) == (0o2755, 5)
    assert ping.capabilities and ping.mode == 0o755
    assert (data.kind, data.mode, data.uid, data.gid) == ("dir", 0o777, 1000, 1000)
    assert passwd.location.path == "/usr/bin/passwd"
    assert passwd.location.layer is not None and passwd.location.layer.startswith("sha256:")


def test_notable_names_are_recorded_whatever_their_mode_or_kind(tmp_path: Path) -> None:
    subject = load(tmp_path, saved_archive([(
        file("/usr/sbin/sshd", mode=0o755),
        symlink("/usr/bin/gosu", "/usr/local/bin/gosu-real"),
        file("/root/.netrc", "machine x login y password z\n", mode=0o600),
        file("/srv/config.json", "{}"),
        file("/usr/bin/ssh", mode=0o755),
    )]))
    assert paths(subject) == ["/root/.netrc", "/srv/config.json", "/usr/bin/gosu",
                              "/usr/sbin/sshd"]
    assert entry(subject, "/usr/bin/gosu").kind == "symlink"
    assert entry(subject, "/srv/config.json").tags == []


def test_content_tags(tmp_path: Path) -> None:
    subject = load(tmp_path, saved_archive([(
        file("/root/.ssh/id_rsa", PEM_PRIVATE_KEY.replace(b"OPENSSH", b"RSA")),
        file("/srv/tls/server.pem", b"junk\n" + PEM_PRIVATE_KEY.replace(b"OPENSSH ", b"")),
        file("/srv/tls/cert.pem", PEM_PUBLIC_KEY),
        file("/srv/notes.txt", PEM_PRIVATE_KEY),  # not a key's name: not sniffed
        file("/srv/app/.env", "A=b\n"),
        file("/srv/app/.env.production", "A=b\n"),
        file("/srv/app/.env.example", "A=\n"),
        file("/home/u/.aws/credentials", "[default]\n"),
        file("/home/u/.config/gcloud/application_default_credentials.json", "{}"),
        file("/srv/sa-key.json", json.dumps({"type": "service_account", "private_key": "k"})),
        file("/srv/other.json", json.dumps({"type": "service_account"})),
        file("/root/.docker/config.json", json.dumps({"auths": {"r.io": {"auth": "dTpw"}}})),
        file("/home/u/.docker/config.json", json.dumps({"auths": {"r.io": {}},
                                                         "credsStore": "pass"})),
    )]))
    tags = {e.path: e.tags for e in subject.files}
    assert tags == {
        "/root/.ssh/id_rsa": ["private-key"],
        "/srv/tls/server.pem": ["private-key"],
        "/srv/app/.env": ["dotenv"],
        "/srv/app/.env.production": ["dotenv"],
        "/home/u/.aws/credentials": ["cloud-credentials"],
        "/home/u/.config/gcloud/application_default_credentials.json": ["cloud-credentials"],
        "/srv/sa-key.json": ["cloud-credentials"],
        "/root/.docker/config.json": ["registry-auth"],
        "/home/u/.docker/config.json": [],  # notable by name, but holds no credential
    }


def test_large_files_are_not_sniffed(tmp_path: Path) -> None:
    big_key = PEM_PRIVATE_KEY + b"\n" * (128 * 1024)
    subject = load(tmp_path, saved_archive([(file("/srv/big.key", big_key),)]))
    assert paths(subject) == []


@pytest.mark.parametrize(
    ("content", "granted"),
    [
        ("root ALL=(ALL:ALL) ALL\n", True),
        ("%admin ALL=(ALL) \\\n    NOPASSWD: ALL\n", True),
        ("# root ALL=(ALL) ALL\nDefaults env_reset\n#includedir /etc/sudoers.d\n", False),
        ("Cmnd_Alias SHUTDOWN = /sbin/halt\n@includedir /etc/sudoers.d\n\n", False),
    ],
)
def test_sudoers_grant_lines(tmp_path: Path, content: str, granted: bool) -> None:
    subject = load(tmp_path, saved_archive([(file("/etc/sudoers", content, 0o440),)]))
    assert entry(subject, "/etc/sudoers").tags == (["sudoers-grant"] if granted else [])


# --- accounts and the configured user ---------------------------------------------------------

@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", {"spec": None, "name": "root", "uid": 0, "gid": 0, "is_root": True}),
        ("app", {"spec": "app", "name": "app", "uid": 1000, "gid": 1001, "is_root": False}),
        ("toor", {"spec": "toor", "name": "toor", "uid": 0, "gid": 0, "is_root": True}),
        ("1000", {"name": "app", "uid": 1000, "gid": 1001, "is_root": False}),
        ("4242", {"name": None, "uid": 4242, "gid": 0, "is_root": False}),
        ("0:0", {"name": "root", "uid": 0, "gid": 0, "is_root": True}),
        ("app:staff", {"uid": 1000, "gid": 50}),
        ("app:77", {"uid": 1000, "gid": 77}),
        # The engine refuses to start a container whose user or group is missing.
        ("app:nogroup", {"uid": None, "gid": None, "is_root": False, "unresolved_reason":
                         "the engine refuses to start it: no group 'nogroup' in the image's "
                         "/etc/group"}),
        ("ghost", {"name": "ghost", "uid": None, "gid": None, "is_root": False,
                   "unresolved_reason": "the engine refuses to start it: no user 'ghost' in "
                                        "the image's /etc/passwd"}),
    ],
)
def test_configured_user_is_resolved_through_the_images_passwd(
    tmp_path: Path, spec: str, expected: dict[str, Any]
) -> None:
    subject = load(tmp_path, saved_archive([ACCOUNTS], User=spec))
    user = subject.user
    assert user is not None
    for key, value in expected.items():
        assert getattr(user, key) == value, key
    assert user.location is not None and user.location.path == str(tmp_path / "image.tar")


ROOT_ALIAS = "root:x:0:0::/:/bin/sh\ntoor:x:0:0::/:/bin/sh\n"


@pytest.mark.parametrize(
    "layers",
    [
        # /etc/passwd a symlink, absolute or relative, to a file no first scan keeps.
        [(file("/usr/lib/accounts/users", ROOT_ALIAS), symlink("/etc/passwd",
                                                                "/usr/lib/accounts/users"))],
        [(file("/usr/lib/accounts/users", ROOT_ALIAS),
          symlink("/etc/passwd", "../usr/lib/accounts/users"))],
        # /etc itself a link, and the target's link in another layer.
        [(file("/srv/etc/passwd", ROOT_ALIAS), symlink("/etc", "srv/etc"))],
        [(file("/opt/p", ROOT_ALIAS),), (symlink("/etc/passwd", "/opt/p"),)],
        # A hard link: the tar stores /etc/passwd as a second name of the earlier file.
        [(file("/usr/lib/accounts/users", ROOT_ALIAS),
          hardlink("/etc/passwd", "/usr/lib/accounts/users"))],
        # ... and the other way round.
        [(file("/etc/passwd", ROOT_ALIAS), hardlink("/usr/lib/passwd", "/etc/passwd"))],
    ],
    ids=["absolute", "relative", "etc-link", "across-layers", "hard-link", "hard-link-target"],
)
def test_passwd_behind_links_is_read(tmp_path: Path, layers: list[tuple[Node, ...]]) -> None:
    subject = load(tmp_path, saved_archive(layers, User="toor"))
    assert subject.user is not None
    assert (subject.user.uid, subject.user.is_root) == (0, True)


def test_links_out_of_the_root_stay_in_it(tmp_path: Path) -> None:
    subject = load(tmp_path, saved_archive(
        [(file("/p", ROOT_ALIAS), symlink("/etc/passwd", "../../../../p"))], User="toor"))
    assert subject.user is not None and subject.user.uid == 0


def test_a_piped_archive_cannot_be_read_twice_so_the_user_is_unprovable(
    tmp_path: Path
) -> None:
    archive = saved_archive([(file("/usr/lib/users", ROOT_ALIAS),
                              symlink("/etc/passwd", "/usr/lib/users"))], User="toor")
    (tmp_path / "image.tar").write_bytes(archive)
    stream = io.BytesIO(archive)
    saved = read_saved_archive(stream, source="-")
    subject = image_subject(saved, saved.images[0], target="-")  # no way to read it again
    assert subject.user is not None and subject.user.uid is None and subject.user.may_be_root
    assert "cannot be read twice" in (subject.user.unresolved_reason or "")


def test_a_too_large_passwd_is_unprovable(tmp_path: Path) -> None:
    big = "root:x:0:0\n" + "#" * (5 << 20) + "\n"
    subject = load(tmp_path, saved_archive([(file("/etc/passwd", big),)], User="app"))
    assert subject.user is not None and subject.user.may_be_root
    assert "larger than" in (subject.user.unresolved_reason or "")


def test_group_memberships_and_primary_groups_from_the_files(tmp_path: Path) -> None:
    accounts = (file("/etc/passwd", "app:x:1000:1000::/:/bin/sh\nops:x:1001:0::/:/bin/sh\n"),
                file("/etc/group", "root:x:0:app\napp:x:1000:\n"))
    member = load(tmp_path, saved_archive([accounts], User="app")).user
    assert member is not None and [(g.gid, g.name) for g in member.groups] == [(0, "root")]
    primary = load(tmp_path, saved_archive([accounts], User="ops")).user
    assert primary is not None and primary.gid == 0
    explicit = load(tmp_path, saved_archive([accounts], User="app:1000")).user
    assert explicit is not None and explicit.groups == []


def test_a_windows_image_knows_its_administrator(tmp_path: Path) -> None:
    for user, root in (("ContainerAdministrator", True), ("containeradministrator", True),
                       ("ContainerUser", False), ("", True)):
        subject = load(tmp_path, saved_archive([(file("/Files/x"),)], os_name="windows",
                                               User=user))
        assert subject.user is not None and subject.user.is_root is root, user


def test_the_final_passwd_wins_and_no_passwd_is_explained(tmp_path: Path) -> None:
    later = load(tmp_path, saved_archive(
        [ACCOUNTS, (file("/etc/passwd", "app:x:0:0::/:/bin/sh\n"),)], User="app"))
    assert later.user is not None and later.user.uid == 0 and later.user.is_root

    none = load(tmp_path, saved_archive([(file("/bin/sh"),)], User="app"))
    assert none.user is not None and none.user.uid is None
    assert none.user.unresolved_reason == (
        "the engine refuses to start it: no user 'app' in the image's /etc/passwd, which is "
        "missing")

    root_by_name = load(tmp_path, saved_archive([(file("/bin/sh"),)], User="root"))
    assert root_by_name.user is not None and root_by_name.user.is_root


# --- package databases ------------------------------------------------------------------------

DPKG_STATUS = """\
Package: sudo
Status: install ok installed
Installed-Size: 6000
Version: 1.9.13p3-1
Description: root for all
 with a continuation line
 Package: not-a-package

Package: removed-tool
Status: deinstall ok config-files
Version: 1.0

Package: curl
Status: install ok installed
Version: 7.88.1-10
"""

APK = "P:musl\nV:1.2.4-r2\nI:622592\n\nC:Q1=\nP:sudo\nV:1.9.14-r1\nI:2700000\n"


def test_dpkg_apk_and_python_packages(tmp_path: Path) -> None:
    site = "/usr/local/lib/python3.11/site-packages"
    subject = load(tmp_path, saved_archive([(
        file("/var/lib/dpkg/status", DPKG_STATUS),
        file("/var/lib/dpkg/status.d/base-files", "Package: base-files\nVersion: 12.4\n"),
        file("/var/lib/dpkg/status.d/base-files.md5sums", "abc  etc/issue\n"),
        file("/lib/apk/db/installed", APK),
        file(f"{site}/requests-2.31.0.dist-info/METADATA",
             "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n\nName: body\n"),
        file(f"{site}/old-1.0.egg-info/PKG-INFO", "Name: old\nVersion: 1.0\n"),
        file("/usr/lib/python3/dist-packages/flat-2.0.egg-info", "Name: flat\nVersion: 2.0\n"),
        file(f"{site}/broken.dist-info/METADATA", "Metadata-Version: 2.1\n"),
    )]))
    found = {(p.manager, p.name, p.version, p.size_bytes) for p in subject.packages}
    assert found == {
        ("dpkg", "sudo", "1.9.13p3-1", 6000 * 1024),
        ("dpkg", "curl", "7.88.1-10", None),
        ("dpkg", "base-files", "12.4", None),
        ("apk", "musl", "1.2.4-r2", 622592),
        ("apk", "sudo", "1.9.14-r1", 2700000),
        ("python", "requests", "2.31.0", None),
        ("python", "old", "1.0", None),
        ("python", "flat", "2.0", None),
    }
    curl = next(p for p in subject.packages if p.name == "curl")
    assert (curl.location.path, curl.location.line) == ("/var/lib/dpkg/status", 13)
    assert subject.metadata["package_databases"] == ["apk", "dpkg", "python"]
    assert "unread_package_databases" not in subject.metadata
    assert subject.files == []  # package databases are facts, not notable files


def test_a_deleted_package_database_lists_nothing_and_rpm_is_noted(tmp_path: Path) -> None:
    subject = load(tmp_path, saved_archive([
        (file("/var/lib/dpkg/status", DPKG_STATUS), file("/var/lib/rpm/rpmdb.sqlite", b"SQLite")),
        (file("/var/lib/dpkg/.wh.status"),),
    ]))
    assert subject.packages == []
    assert subject.metadata["package_databases"] == []
    assert subject.metadata["unread_package_databases"] == ["rpm"]


# --- image config facts -----------------------------------------------------------------------

def test_config_facts(tmp_path: Path) -> None:
    subject = load(
        tmp_path,
        saved_archive(
            [ACCOUNTS],
            Env=["PATH=/usr/bin", "API_TOKEN=abc=def", "EMPTY="],
            Volumes={"/data": {}, "/cache": {}},
            ExposedPorts={"22/tcp": {}, "53/udp": {}, "8080": {}},
            WorkingDir="/proc/self",
            User="app",
        ),
        ref="example/app:1.0",
    )
    assert subject.kind == "image" and subject.target == "example/app:1.0"
    assert [(e.name, e.value, e.origin) for e in subject.env] == [
        ("PATH", "/usr/bin", "config"), ("API_TOKEN", "abc=def", "config"), ("EMPTY", "", "config")]
    assert subject.env[1].location.path == "example/app:1.0"
    assert subject.volumes == ["/cache", "/data"]
    assert [(p.port, p.protocol) for p in subject.exposed_ports] == [
        (22, "tcp"), (53, "udp"), (8080, "tcp")]
    assert subject.workdir == "/proc/self"
    assert subject.metadata["os"] == "linux" and subject.metadata["architecture"] == "amd64"
    assert subject.metadata["tags"] == ["example/app:1.0"]
    assert subject.metadata["repo_digests"] == []


def test_empty_config_gives_empty_facts(tmp_path: Path) -> None:
    subject = load(tmp_path, saved_archive([()]))
    assert (subject.env, subject.volumes, subject.exposed_ports, subject.workdir) == (
        [], [], [], None)
    assert subject.user is not None and subject.user.spec is None and subject.user.is_root


# --- choosing an image, and bad input ---------------------------------------------------------

def two_images() -> bytes:
    return saved_archive(
        [(file("/a/.env"),)], tags=("one:1",),
        extra_images=(([(file("/b/.env"),)], ("docker.io/library/two:latest",)),),
    )


@pytest.mark.parametrize(("ref", "expected"), [("one:1", "/a/.env"), ("two", "/b/.env"),
                                               ("docker.io/library/two", "/b/.env")])
def test_ref_picks_one_of_several_images(tmp_path: Path, ref: str, expected: str) -> None:
    assert paths(load(tmp_path, two_images(), ref)) == [expected]


def test_image_id_prefix_picks_an_image(tmp_path: Path) -> None:
    archive = two_images()
    config_name = _manifest(archive)[1]["Config"]
    image_id = hashlib.sha256(_member(archive, config_name)).hexdigest()
    assert paths(load(tmp_path, archive, image_id[:12])) == ["/b/.env"]


def test_several_images_without_a_ref_is_an_error_listing_them(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"holds 2 images \(one:1; docker.io/library/two:latest\)"):
        load(tmp_path, two_images())
    with pytest.raises(InputError, match="does not hold image three"):
        load(tmp_path, two_images(), "three")


def test_every_image_of_an_archive_is_its_own_target(tmp_path: Path) -> None:
    path = tmp_path / "two.tar"
    path.write_bytes(two_images())
    subjects = load_archive_images(str(path))
    assert [(s.target, paths(s)) for s in subjects] == [
        ("one:1", ["/a/.env"]), ("docker.io/library/two:latest", ["/b/.env"])]
    picked = load_archive_images(str(path), ["two", "one:1"])
    assert [(s.target, paths(s)) for s in picked] == [("two", ["/b/.env"]),
                                                      ("one:1", ["/a/.env"])]


def test_an_untagged_image_of_several_is_named_by_the_archive_and_its_id(tmp_path: Path) -> None:
    archive = saved_archive([(file("/a/.env"),)], tags=(),
                            extra_images=(([(file("/b/.env"),)], ("two:1",)),))
    path = tmp_path / "mixed.tar"
    path.write_bytes(archive)
    first, second = load_archive_images(str(path))
    assert first.target.startswith(f"{path}@sha256:") and len(first.target) == len(
        f"{path}@sha256:") + 12
    assert second.target == "two:1"


def test_the_cli_reads_an_archive_from_standard_input(tmp_path: Path) -> None:
    archive = saved_archive([(file("/app/.env", "API_TOKEN=abc\n"),)], tags=("one:1",))
    ran = run_cli("image", "--input", "-", "-f", "json", cwd=tmp_path, stdin=archive)
    assert ran.code == 1, ran.stderr
    result = json.loads(ran.stdout)["results"][0]
    assert result["target"] == "(stdin)"
    assert "PG602" in {f["rule"] for f in result["findings"]}


def test_the_cli_checks_each_image_of_a_piped_archive(tmp_path: Path) -> None:
    ran = run_cli("image", "--input", "-", "-f", "json", cwd=tmp_path, stdin=two_images())
    assert ran.code == 1, ran.stderr
    report = json.loads(ran.stdout)
    assert [r["target"] for r in report["results"]] == ["one:1", "docker.io/library/two:latest"]
    assert all(r["findings"] for r in report["results"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"is not a docker save archive \(it has no manifest.json\)"),
        (b"not a tar at all" * 100, "is not a readable docker save archive"),
        (saved_archive([(file("/x"),)])[:1500],
         r"is not a readable docker save archive \(unexpected end of data\)"),
    ],
)
def test_unreadable_archives(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load(tmp_path, content)


def test_archive_without_manifest_or_with_missing_members(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, "index.json", b"{}")
    with pytest.raises(InputError, match=r"not a docker save archive \(it has no manifest.json\)"):
        load(tmp_path, buffer.getvalue())

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, "c.json", _config([]))
        _add(tar, "manifest.json",
             json.dumps([{"Config": "c.json", "Layers": ["gone/layer.tar"]}]).encode())
    with pytest.raises(InputError, match=r"layer gone/layer.tar is missing from the archive"):
        load(tmp_path, buffer.getvalue())


def _with_raw_layer(name: str, data: bytes, *, used: bool) -> bytes:
    config = _config(["sha256:" + "0" * 64])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, name, data)
        _add(tar, "good/layer.tar", layer_tar((file("/x/.env"),)))
        _add(tar, "c.json", config)
        layers = [name] if used else ["good/layer.tar"]
        _add(tar, "manifest.json", json.dumps([{"Config": "c.json", "Layers": layers}]).encode())
    return buffer.getvalue()


def test_a_corrupt_layer_is_named_when_the_image_uses_it(tmp_path: Path) -> None:
    corrupt = _with_raw_layer("abc/layer.tar", b"\x01" * 2048, used=True)
    with pytest.raises(InputError, match=r"layer abc/layer\.tar is not a readable tar archive"):
        load(tmp_path, corrupt)
    unused = _with_raw_layer("abc/layer.tar", b"\x01" * 2048, used=False)
    assert paths(load(tmp_path, unused)) == ["/x/.env"]


def test_zstd_layers_are_refused_with_a_reason(tmp_path: Path) -> None:
    zstd = _with_raw_layer("blobs/sha256/" + "1" * 64, b"\x28\xb5\x2f\xfd" + b"\0" * 100,
                           used=True)
    with pytest.raises(InputError, match=r"is zstd-compressed, which is not supported"):
        load(tmp_path, zstd)


def test_missing_archive_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read .*nope.tar: No such file or directory"):
        load_image_archive(tmp_path / "nope.tar")


def test_read_saved_archive_reads_a_forward_only_stream() -> None:
    class ForwardOnly(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self._data.read(min(len(buffer), 1000))  # short reads, like a socket
            buffer[: len(chunk)] = chunk
            return len(chunk)

    archive = read_saved_archive(
        io.BufferedReader(ForwardOnly(saved_archive([(file("/x/.env"),)]))), source="stream")
    (image,) = archive.images
    assert [f.file.path for f in archive.final_files(image)] == ["/x/.env"]


@pytest.mark.parametrize(
    ("name", "path"),
    [("./etc/passwd", "/etc/passwd"), ("etc/", "/etc"), ("./", None), (".", None),
     ("a//b/../c", "/a/c"), ("../../etc/shadow", "/etc/shadow"), ("/abs", "/abs")],
)
def test_member_names_become_absolute_image_paths(name: str, path: str | None) -> None:
    assert normalise(name) == path


# --- hostile input never escapes as anything but InputError -----------------------------------

VALID = saved_archive(
    [(*ACCOUNTS, file("/usr/bin/sudo", mode=0o4755), file("/srv/.env")), (file("/srv/.wh..env"),)],
    layout="oci", User="app",
)


def _read(data: bytes) -> None:
    with contextlib.suppress(InputError):
        archive = read_saved_archive(io.BytesIO(data), source="fuzz")
        for image in archive.images:
            image_subject(archive, image, target="fuzz")


@pytest.mark.parametrize("config", [
    {"config": ["not", "a", "dict"]},
    {"config": {"User": 1000, "Env": "A=b", "Volumes": ["/x"], "ExposedPorts": ["22/tcp"],
                "WorkingDir": 7}},
    {"config": {"Env": [None, "=x", "OK=1"]}, "rootfs": "nope", "os": ["linux"]},
])
def test_odd_config_shapes_do_not_break_loading(config: dict[str, Any]) -> None:
    blob = layer_tar((file("/x/.env"),))
    raw = json.dumps(config).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, "l/layer.tar", blob)
        _add(tar, "c.json", raw)
        _add(tar, "manifest.json", json.dumps(
            [{"Config": "c.json", "RepoTags": "one:1", "Layers": ["l/layer.tar"]}]).encode())
    archive = read_saved_archive(io.BytesIO(buffer.getvalue()), source="odd")
    subject = image_subject(archive, archive.images[0], target="odd")
    assert [e.path for e in subject.files] == ["/x/.env"]
    assert subject.files[0].location.layer == "l/layer.tar"  # no diff IDs: the member name


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_give_input_errors_only(data: bytes) -> None:
    _read(data)
    _read(gzip.compress(data))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=8),
       st.integers(0, len(VALID)))
def test_corrupted_archives_give_input_errors_only(
    flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(VALID)
    for position, value in flips:
        data[position] = value
    _read(bytes(data[:cut]))
    _read(bytes(data))
