"""sources/account_files.py: /etc/passwd and /etc/group found as the engine finds them."""

from __future__ import annotations

import pytest

from paracle_guard.sources.account_files import FileFact, find_account_file


class Files:
    """A FileView over a dict: path -> fact (missing when absent)."""

    def __init__(self, facts: dict[str, FileFact]) -> None:
        self.facts = facts

    def entry(self, path: str) -> FileFact:
        return self.facts.get(path, FileFact("missing"))


def _file(data: bytes) -> FileFact:
    return FileFact("file", content=data)


@pytest.mark.parametrize(
    ("facts", "where"),
    [
        ({"/etc": FileFact("dir"), "/etc/passwd": _file(b"x")}, "/etc/passwd"),
        ({"/etc": FileFact("dir"), "/etc/passwd": FileFact("symlink", target="../usr/p"),
          "/usr": FileFact("dir"), "/usr/p": _file(b"x")}, "/usr/p"),
        # Absolute targets and ".." stay inside the root.
        ({"/etc": FileFact("symlink", target="/../../usr/etc"), "/usr": FileFact("dir"),
          "/usr/etc": FileFact("dir"), "/usr/etc/passwd": _file(b"x")}, "/usr/etc/passwd"),
        ({"/etc": FileFact("dir"), "/etc/passwd": FileFact("symlink", target="../../../p"),
          "/p": _file(b"x")}, "/p"),
    ],
)
def test_links_are_followed_inside_the_root(facts: dict[str, FileFact], where: str) -> None:
    found = find_account_file(Files(facts), "/etc/passwd")
    assert (found.status, found.path, found.data) == ("present", where, b"x")


def test_link_loops_files_in_the_way_and_unknown_paths() -> None:
    loop = Files({"/etc": FileFact("dir"), "/etc/passwd": FileFact("symlink", target="passwd")})
    assert "too many symlinks" in find_account_file(loop, "/etc/passwd").refused
    not_a_dir = Files({"/etc": _file(b"")})
    assert "not a directory" in find_account_file(not_a_dir, "/etc/passwd").refused
    dangling = Files({"/etc": FileFact("dir"), "/etc/passwd": FileFact("symlink", target="/x")})
    assert find_account_file(dangling, "/etc/passwd").status == "absent"
    unknown = Files({"/etc": FileFact("dir"), "/etc/passwd": FileFact(
        "symlink", target="/opt/p"), "/opt": FileFact("dir"),
        "/opt/p": FileFact("unknown", note="not kept", need="/opt/p")})
    found = find_account_file(unknown, "/etc/passwd")
    assert (found.status, found.need) == ("unknown", frozenset({"/opt/p"}))
    directory = Files({"/etc": FileFact("dir"), "/etc/passwd": FileFact("dir")})
    assert find_account_file(directory, "/etc/passwd").status == "absent"


