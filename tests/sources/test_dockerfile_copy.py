"""sources/dockerfile_copy.py: which ADD sources BuildKit fetches, and how they are pinned."""

from __future__ import annotations

import pytest

from paracle_guard.sources.dockerfile_copy import destination_path, remote_sources, source_kind


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("https://example.com/tool.tar.gz", "http"),
        ("http://example.com/x", "http"),
        ("HTTP://example.com/x", None),  # BuildKit matches the http prefixes case-sensitively
        ("https://github.com/org/repo.git", "git"),
        ("https://github.com/org/repo.git#main:sub/dir", "git"),
        ("git@github.com:org/repo.git", "git"),
        ("deploy-bot@git.example.com:team/repo", "git"),
        ("ssh://git@github.com/org/repo.git", "git"),
        ("SSH://git@github.com/org/repo.git", "git"),
        ("git://example.com/repo.git", "git"),
        ("ftp://example.com/x", None),
        ("github.com/org/repo", None),
        ("./git@host:repo", None),
        ("app.tar.gz", None),
        ("<<EOF", None),
    ],
)
def test_source_kind(source: str, kind: str | None) -> None:
    assert source_kind(source) == kind


@pytest.mark.parametrize(
    ("source", "flags", "verified"),
    [
        ("https://example.com/x.tgz", {}, False),
        ("https://example.com/x.tgz", {"checksum": "sha256:" + "a" * 64}, True),
        ("git@github.com:org/repo.git", {}, False),
        ("git@github.com:org/repo.git#v1.2.3", {}, False),
        ("git@github.com:org/repo.git#" + "a" * 40, {}, True),
        ("https://github.com/org/repo.git?commit=" + "b" * 40, {}, True),
        ("https://github.com/org/repo.git?ref=" + "c" * 64, {}, True),
    ],
)
def test_pinned_or_not(source: str, flags: dict[str, str], verified: bool) -> None:
    (download,) = remote_sources([source], flags)
    assert download.verified is verified


@pytest.mark.parametrize(
    ("destination", "workdir", "path"),
    [
        ("/opt/x", "/srv", "/opt/x"),
        ("x", "/srv", "/srv/x"),
        ("conf/", "/srv", "/srv/conf/"),
        (".", "/srv", "/srv/"),
        ("../etc/sudoers.d/", "/srv", "/etc/sudoers.d/"),
        ("x", None, "/x"),
    ],
)
def test_destination_path(destination: str, workdir: str | None, path: str) -> None:
    assert destination_path(destination, workdir) == path
