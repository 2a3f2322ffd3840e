"""Run-time filesystem rules: PG201 writable-rootfs, PG202 writable-path, PG203 image-volume
(container case), PG204 unsafe-workdir (run-time case) and PG307 sensitive-mount."""

from __future__ import annotations

import pytest

from paracle_guard.location import Location
from paracle_guard.subject_runtime import Mount
from tests.builders import check, controls, messages
from tests.runtime_builders import at, hardened, subject, tmpfs

# --- PG201 --------------------------------------------------------------------------


def test_writable_root_filesystem() -> None:
    config = hardened(read_only=False, locations={"read_only": at(4)})
    violations = check("PG201", subject(config))
    assert [v.message for v in violations] == [
        "the root filesystem is writable (read_only: true is not set)"
    ]
    assert violations[0].location == at(4)
    assert check("PG201", subject()) == []
    assert [v.message for v in check("PG201", subject(config, kind="k8s"))] == [
        "the root filesystem is writable (readOnlyRootFilesystem: true is not set)"
    ]
    assert [v.message for v in check("PG201", subject(config, kind="container"))] == [
        "the root filesystem is writable (HostConfig.ReadonlyRootfs is false)"
    ]


def test_writable_root_is_fine_when_the_policy_allows_it() -> None:
    policy = controls(root_filesystem={"read_only": False})
    assert check("PG201", subject(hardened(read_only=False)), policy) == []


# --- PG202 --------------------------------------------------------------------------


def bind(source: str, target: str, *, read_only: bool = False, line: int = 20, **extra: object
         ) -> Mount:
    return Mount(type="bind", source=source, target=target, host_path=source,
                 read_only=read_only, location=at(line), **extra)


def test_writable_mounts_outside_the_writable_paths() -> None:
    config = hardened(mounts=[
        tmpfs("/tmp"),
        tmpfs("/workspace/cache"),  # inside a writable path
        tmpfs("/data", line=21),
        bind("/srv/app", "/app", line=22),
        Mount(type="volume", source="cache", target="/var/cache", location=at(23)),
        Mount(type="volume", target="/scratch", anonymous=True, location=at(24)),
        bind("/srv/conf", "/conf", read_only=True),  # read-only: fine
        Mount(type="tmpfs", target="/workspacefoo", location=at(25)),  # not under /workspace
    ])
    violations = check("PG202", subject(config))
    assert [v.message for v in violations] == [
        "tmpfs makes /data writable, outside the writable paths (/workspace, /tmp)",
        "bind mount of /srv/app makes /app writable, outside the writable paths (/workspace, /tmp)",
        "volume cache makes /var/cache writable, outside the writable paths (/workspace, /tmp)",
        "anonymous volume makes /scratch writable, outside the writable paths (/workspace, /tmp)",
        "tmpfs makes /workspacefoo writable, outside the writable paths (/workspace, /tmp)",
    ]
    assert [v.location for v in violations] == [at(21), at(22), at(23), at(24), at(25)]


def test_image_volumes_are_left_to_pg203() -> None:
    image_volume = Mount(type="volume", source="f" * 64, target="/data", anonymous=True,
                         from_image=True, location=Location(path="Mounts[0]"))
    config = hardened(mounts=[image_volume])
    assert check("PG202", subject(config, kind="container")) == []
    violations = check("PG203", subject(config, kind="container"))
    assert [v.message for v in violations] == [
        "the image's VOLUME /data is mounted as a writable anonymous volume, even with a "
        "read-only root filesystem"
    ]
    assert violations[0].location == Location(path="Mounts[0]")


def test_read_only_image_volumes_and_covered_paths_pass_pg203() -> None:
    read_only = Mount(type="volume", target="/data", anonymous=True, from_image=True,
                      read_only=True, location=at(1))
    assert check("PG203", subject(hardened(mounts=[read_only]), kind="container")) == []
    assert check("PG203", subject(hardened(), kind="container")) == []


def test_writable_paths_are_the_policy_s() -> None:
    policy = controls(root_filesystem={"writable_paths": ["/data"]})
    config = hardened(mounts=[tmpfs("/data"), tmpfs("/tmp", line=30)])
    assert messages("PG202", subject(config), policy) == [
        "tmpfs makes /tmp writable, outside the writable paths (/data)"
    ]


# --- PG204 (run time) -----------------------------------------------------------------


def test_runtime_working_directory_under_proc() -> None:
    config = hardened(locations={"workdir": at(8)})
    violations = check("PG204", subject(config, workdir="/proc/self/fd/7"))
    assert [v.message for v in violations] == ["working directory /proc/self/fd/7 is under /proc"]
    assert violations[0].location == at(8)


# --- PG307 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("/var/run/docker.sock", "the container runtime's API socket docker.sock, which is root "
                                 "on the host"),
        ("/run/containerd/containerd.sock", "the container runtime's API socket containerd.sock, "
                                            "which is root on the host"),
        ("/home/me/podman.sock", "the container runtime's API socket podman.sock, which is root "
                                 "on the host"),
        ("/", "the host's whole filesystem"),
        ("/etc/../", "the host's whole filesystem"),
        ("/proc", "host path /proc"),
        ("/sys/fs/cgroup", "host path /sys/fs/cgroup (under /sys)"),
        ("/dev", "host path /dev"),
        ("/etc/shadow", "host path /etc/shadow (under /etc)"),
        ("/boot", "host path /boot"),
        ("/root/.ssh", "host path /root/.ssh (under /root)"),
        ("/var/run", "host path /var/run"),
        ("/run/secrets", "host path /run/secrets (under /run)"),
        ("/var/lib/docker/volumes", "host path /var/lib/docker/volumes (under /var/lib/docker)"),
        ("/var", "host path /var, which contains /var/run"),
        ("/var/lib", "host path /var/lib, which contains /var/lib/docker"),
        ("//etc//passwd", "host path /etc/passwd (under /etc)"),
        ("/srv/../etc", "host path /etc"),
    ],
)
def test_sensitive_host_paths(source: str, reason: str) -> None:
    config = hardened(mounts=[bind(source, "/mnt", read_only=True, line=40)])
    violations = check("PG307", subject(config))
    assert [v.message for v in violations] == [f"bind mount of {source} at /mnt exposes {reason}"]
    assert violations[0].location == at(40)


@pytest.mark.parametrize(
    "source", ["/srv/data", "/home/me/work", "/etc2", "/procfs", "/var/lib/dockerd", "/devices",
               "/tmp/docker.sock.d/x", "/var/cache"],
)
def test_ordinary_host_paths_pass(source: str) -> None:
    assert check("PG307", subject(hardened(mounts=[bind(source, "/mnt")]))) == []


def test_time_zone_files_read_only_are_harmless_but_not_writable() -> None:
    zone = bind("/etc/localtime", "/etc/localtime", read_only=True)
    assert check("PG307", subject(hardened(mounts=[zone]))) == []
    writable = bind("/etc/localtime", "/etc/localtime")
    assert len(check("PG307", subject(hardened(mounts=[writable])))) == 1


def test_a_volume_that_binds_a_host_path_is_a_bind() -> None:
    volume = Mount(type="volume", source="hostroot", target="/host", read_only=True,
                   host_path="/", volume_driver="local",
                   volume_options={"type": "none", "o": "bind", "device": "/"}, location=at(50))
    assert messages("PG307", subject(hardened(mounts=[volume]))) == [
        "volume hostroot (binds /) at /host exposes the host's whole filesystem"
    ]


def test_symlinks_to_sensitive_paths_are_followed_when_the_source_resolved_them() -> None:
    link = bind("/home/me/work", "/workspace", host_realpath="/etc")
    assert messages("PG307", subject(hardened(mounts=[link]), kind="container")) == [
        "bind mount of /home/me/work at /workspace exposes host path /etc, through the symlink "
        "/home/me/work"
    ]
    harmless = bind("/home/me/work", "/workspace", host_realpath="/srv/work")
    assert check("PG307", subject(hardened(mounts=[harmless]), kind="container")) == []


def test_windows_engine_pipe() -> None:
    pipe = Mount(type="npipe", source=r"\\.\pipe\docker_engine", target=r"\\.\pipe\docker_engine",
                 host_path=r"\\.\pipe\docker_engine", location=at(60))
    other = Mount(type="npipe", source=r"\\.\pipe\app", target=r"\\.\pipe\app",
                  host_path=r"\\.\pipe\app", location=at(61))
    assert messages("PG307", subject(hardened(mounts=[pipe, other]))) == [
        r"named pipe \\.\pipe\docker_engine at \\.\pipe\docker_engine exposes the container "
        "runtime's named pipe docker_engine, which is root on the host"
    ]


def test_tmpfs_and_plain_volumes_reach_no_host_path() -> None:
    config = hardened(mounts=[tmpfs("/etc"), Mount(type="volume", source="etc", target="/etc",
                                                   location=at(70))])
    assert check("PG307", subject(config)) == []
