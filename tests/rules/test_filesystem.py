"""PG203-PG206 (volumes, workdir, world-writable, mount targets) and the path helpers."""

from __future__ import annotations

import pytest

from paracle_guard.image_tree import ImageTree, LayerTree
from paracle_guard.location import Location
from paracle_guard.rules.filesystem import is_under, normalise_path
from paracle_guard.subject import FileEntry
from tests.builders import check, controls, dockerfile, file, image, instruction, loc, messages


@pytest.mark.parametrize(
    ("path", "root", "expected"),
    [
        ("/proc", "/proc", True),
        ("/proc/self/fd/7", "/proc", True),
        ("/procfoo", "/proc", False),
        ("/tmp/../proc/1", "/proc", True),
        ("//proc/", "/proc", True),
        ("/workspace/x", "/workspace/", True),
        ("/anything", "/", True),
    ],
)
def test_is_under_compares_whole_components(path: str, root: str, expected: bool) -> None:
    assert is_under(path, root) is expected


def test_normalise_path() -> None:
    assert normalise_path("app/../data/") == "/data"
    assert normalise_path("//x//y") == "/x/y"


# --- PG203 image-volume -----------------------------------------------------------


def test_each_volume_is_a_finding() -> None:
    found = messages("PG203", image(volumes=["/data", "/workspace"]))
    assert found == [
        "VOLUME /data becomes a writable anonymous volume, even with a read-only root filesystem",
        "VOLUME /workspace becomes a writable anonymous volume, even with a read-only root "
        "filesystem",
    ]


def test_no_volumes_or_writable_root_passes() -> None:
    assert check("PG203", image()) == []
    policy = controls(root_filesystem={"read_only": False})
    assert check("PG203", image(volumes=["/data"]), policy) == []


# --- PG204 unsafe-workdir ---------------------------------------------------------


@pytest.mark.parametrize("workdir", ["/proc/self/fd/8", "/sys", "/dev/shm", "/proc/../proc/1"])
def test_workdir_under_kernel_filesystems(workdir: str) -> None:
    (violation,) = check("PG204", image(workdir=workdir))
    assert workdir in violation.message


@pytest.mark.parametrize("workdir", ["/procfoo", "/workspace", "/srv/dev", "/device", None])
def test_ordinary_workdirs_pass(workdir: str | None) -> None:
    assert check("PG204", image(workdir=workdir)) == []


@pytest.mark.parametrize(("link", "landing"), [
    ("/proc/self/fd/7", "/proc/self/fd/7"), ("../proc/self/cwd", "/proc/self/cwd"),
    ("sys", "/sys"),
])
def test_a_workdir_that_is_a_symlink_into_the_kernel_filesystems(link: str,
                                                                 landing: str) -> None:
    # CVE-2024-21626's WORKDIR, one symlink away: runc follows it inside the container.
    tree = _tree(("/app", "symlink", link), ("/sys", "dir", ""))
    (violation,) = check("PG204", image(workdir="/app", image_tree=tree))
    assert f"leads to {landing} through a symlink" in violation.message


def test_a_workdir_symlink_to_an_ordinary_folder_passes() -> None:
    tree = _tree(("/app", "symlink", "/srv/app"), ("/srv", "dir", ""))
    assert check("PG204", image(workdir="/app", image_tree=tree)) == []


def test_dockerfile_finding_points_at_the_last_final_workdir() -> None:
    subject = dockerfile(
        workdir="/proc/self/fd/7",
        instructions=[
            instruction("WORKDIR", "/build", line=2, final=False),
            instruction("WORKDIR", "/app", line=6),
            instruction("WORKDIR", "/proc/self/fd/7", line=9),
        ],
    )
    (violation,) = check("PG204", subject)
    assert violation.location == loc(9)


# --- PG205 world-writable ---------------------------------------------------------


def test_world_writable_dir_without_sticky_bit() -> None:
    (violation,) = check("PG205", image(files=[file("/opt/shared", 0o777, kind="dir")]))
    assert violation.message == (
        "directory /opt/shared is world-writable (mode 0777) without the sticky bit"
    )


@pytest.mark.parametrize(
    "entry",
    [
        file("/var/tmp", 0o1777, kind="dir"),  # sticky: users cannot remove others' files
        file("/tmp/cache", 0o777, kind="dir"),  # inside a writable path
        file("/workspace", 0o777, kind="dir"),
        file("/opt/app", 0o775, kind="dir"),
        file("/opt/app/log.txt", 0o666),  # a file, not a directory
    ],
)
def test_other_entries_pass(entry: FileEntry) -> None:
    assert check("PG205", image(files=[entry])) == []


def test_writable_paths_are_path_aware() -> None:
    # /tmpfoo is not inside /tmp.
    assert len(check("PG205", image(files=[file("/tmpfoo", 0o777, kind="dir")]))) == 1


def test_policy_writable_paths() -> None:
    policy = controls(root_filesystem={"writable_paths": ["/opt"]})
    assert check("PG205", image(files=[file("/opt/shared", 0o777, kind="dir")]), policy) == []


# --- PG206 unsafe-mount-target ----------------------------------------------------


def _tree(*entries: tuple[str, str, str]) -> ImageTree:
    layer = LayerTree()
    for path, kind, target in (("/etc", "dir", ""), ("/usr", "dir", ""), *entries):
        layer.record(path, kind, target)  # type: ignore[arg-type]
    return ImageTree(layers=[layer], layer_ids=["sha256:layer1"])


def test_a_symlinked_tmp_is_a_finding_located_at_the_link() -> None:
    (violation,) = check("PG206", image(image_tree=_tree(("/tmp", "symlink", "/etc"))))
    assert violation.message == (
        "mount target /tmp: /tmp is a symlink to /etc; runc would mount on /etc instead")
    assert violation.location == Location(path="/tmp", layer="sha256:layer1")


def test_every_mount_target_is_checked_writable_paths_volumes_and_the_launchers() -> None:
    tree = _tree(("/data", "symlink", "/etc"), ("/cache", "other", ""),
                 ("/workspace", "symlink", "usr/local/bin"), ("/scratch", "symlink", "/usr"))
    policy = controls(root_filesystem={"writable_paths": ["/scratch/x"]})
    found = messages("PG206", image(image_tree=tree, volumes=["/data", "/cache"]), policy)
    assert [m.split(":")[0] for m in found] == [
        "mount target /cache", "mount target /data", "mount target /scratch/x",
        "mount target /workspace"]


def test_real_or_missing_directories_pass_and_images_without_a_tree_are_skipped() -> None:
    assert check("PG206", image(image_tree=_tree(("/tmp", "dir", "")))) == []
    assert check("PG206", image()) == []
