"""Host paths for binds: no symlink on the way, and nobody else able to swap them."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from paracle_guard.errors import InputError
from paracle_guard.launcher.hostpath import (
    acl_writers,
    check_host_path,
    open_no_follow,
    trusted_uids,
)
from paracle_guard.launcher.refusal import PolicyViolation

OTHER = 2000  # a uid that is neither root nor the invoking user


def check(path: Path | str, **options: str) -> object:
    return check_host_path(str(path), option="--workspace", **options)  # type: ignore[arg-type]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project" / "job"
    folder.mkdir(parents=True)
    return folder


def needs_root() -> None:
    if os.getuid() != 0:
        pytest.skip("making folders of another uid needs root")


def test_a_folder_whose_parents_only_root_or_i_can_change_passes(project: Path) -> None:
    checked = check_host_path(str(project), option="--workspace")
    assert checked.real == str(project)
    assert checked.identity == (project.stat().st_dev, project.stat().st_ino)
    assert checked.is_dir
    # The folder itself may be anyone's and world-writable: only its parents can swap it.
    project.chmod(0o777)
    assert check_host_path(str(project), option="--workspace").real == str(project)


def test_a_parent_owned_by_another_user_is_refused(project: Path) -> None:
    needs_root()
    os.chown(project.parent, OTHER, OTHER)
    with pytest.raises(PolicyViolation) as refused:
        check(project)
    message = str(refused.value)
    assert f"{project.parent} belongs to uid {OTHER}" in message
    assert "another user could swap" in message
    assert refused.value.key == "--workspace"


@pytest.mark.parametrize(("mode", "who"), [(0o775, "its group"), (0o757, "others"),
                                           (0o777, "group and others")])
def test_a_parent_writable_by_group_or_others_is_refused(project: Path, mode: int,
                                                         who: str) -> None:
    project.parent.chmod(mode)
    with pytest.raises(PolicyViolation, match=f"writable by {who} \\(mode 0{mode:o}\\)"):
        check(project)


def test_a_sticky_shared_parent_is_fine_while_the_entry_is_mine(project: Path) -> None:
    needs_root()
    project.parent.chmod(0o1777)  # like /tmp: others may add entries, not rename mine
    assert check_host_path(str(project), option="--workspace").real == str(project)
    os.chown(project, OTHER, OTHER)  # but now OTHER owns the entry, so OTHER may rename it
    with pytest.raises(PolicyViolation, match=f"belongs to uid {OTHER} inside the shared"):
        check(project)


def test_a_symlink_anywhere_on_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real" / "job").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(PolicyViolation, match=f"{tmp_path / 'link'} is a symlink"):
        check(tmp_path / "link" / "job")
    (tmp_path / "last").symlink_to(tmp_path / "real" / "job")
    with pytest.raises(PolicyViolation, match="last is a symlink"):
        check(tmp_path / "last")


def test_problems_are_one_line_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"{tmp_path / 'missing'}: No such file"):
        check(tmp_path / "missing" / "job")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=f"{tmp_path / 'file'}: not a folder"):
        check(tmp_path / "file" / "job")
    with pytest.raises(InputError, match=r"not a folder$"):
        check(tmp_path / "file")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputError, match="not a folder or a regular file"):
        check_host_path(str(tmp_path / "fifo"), option="--mount", want="dir-or-file")
    assert not check_host_path(str(tmp_path / "file"), option="--mount",
                               want="dir-or-file").is_dir


def test_a_relative_path_from_a_deleted_folder_is_one_line(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with pytest.raises(InputError, match="job: No such file"):
        check("job")


def test_posix_acls_that_let_another_user_write_are_refused() -> None:
    trusted = frozenset({0, 1234})

    def acl(*entries: tuple[int, int, int]) -> bytes:
        return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)

    base = [(0x01, 7, 0xFFFFFFFF), (0x04, 5, 0xFFFFFFFF), (0x20, 5, 0xFFFFFFFF)]
    assert acl_writers(acl(*base), trusted) is None
    assert acl_writers(acl(*base, (0x02, 7, 1234), (0x10, 7, 0xFFFFFFFF)), trusted) is None
    assert acl_writers(acl(*base, (0x02, 7, OTHER), (0x10, 7, 0xFFFFFFFF)),
                       trusted) == f"an ACL lets uid {OTHER} write it"
    assert acl_writers(acl(*base, (0x08, 6, 50), (0x10, 7, 0xFFFFFFFF)),
                       trusted) == "an ACL lets gid 50 write it"
    # A mask without write takes it from every named entry.
    assert acl_writers(acl(*base, (0x02, 7, OTHER), (0x10, 5, 0xFFFFFFFF)), trusted) is None


def test_the_invoking_user_and_root_are_the_trusted_owners() -> None:
    assert trusted_uids() == {0, os.getuid()}


def test_open_no_follow_stops_at_any_symlink(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "s").symlink_to(tmp_path / "a")
    root = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = open_no_follow(root, "/a/b")
        assert os.fstat(fd).st_ino == (tmp_path / "a" / "b").stat().st_ino
        os.close(fd)
        with pytest.raises(OSError, match="symlink"):
            open_no_follow(root, "s")
        with pytest.raises(OSError):
            open_no_follow(root, "s/b")
    finally:
        os.close(root)
