"""COPY and ADD as BuildKit reads them: sources, destination, remote sources, --chmod.

BuildKit's ADD fetches two kinds of remote source (dockerfile2llb/convert_copy.go,
dfgitutil/git_ref.go, gitutil/git_url.go):

- a git repository: a ``git://`` or ``ssh://`` URL, an ``http(s)://`` URL whose
  path ends in ``.git``, or an scp-style ``user@host:path``; a ``#ref`` fragment
  and ``?ref=``/``?checksum=``/``?commit=`` queries choose what is checked out;
- any other ``http://`` or ``https://`` URL (these two prefixes are matched
  case-sensitively): a file download.

``--checksum`` pins an HTTP download or a git commit; a git ref that is a full
commit id pins one too.
"""

from __future__ import annotations

import posixpath
import re
from typing import Literal

from paracle_guard.sources.file_commands import mode_change
from paracle_guard.subject import Download, ModeChange

_PROTOCOL = re.compile(r"[a-zA-Z0-9]+://")
_GIT_PROTOCOLS = frozenset({"http", "https", "ssh", "git"})
# The start of an scp-style git URL: "git@github.com:"; what follows is the path.
_SCP_STYLE = re.compile(r"[a-zA-Z0-9_-]+@[a-zA-Z0-9.-]+:")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def destination_path(destination: str, workdir: str | None) -> str:
    """A COPY/ADD destination made absolute against WORKDIR, keeping a trailing "/"."""
    if destination.startswith("/"):
        return destination
    joined = posixpath.normpath(posixpath.join(workdir or "/", destination))
    return joined + "/" if destination.endswith(("/", "/.")) or destination == "." else joined


def remote_sources(sources: list[str], flags: dict[str, str]) -> list[Download]:
    """The sources of an ADD that BuildKit fetches from the network."""
    found = []
    for source in sources:
        kind = source_kind(source)
        if kind is None:
            continue
        verified = "checksum" in flags or (kind == "git" and _git_pinned(source))
        found.append(Download(tool="ADD", url=source, kind=kind, verified=verified))
    return found


def source_kind(source: str) -> Literal["git", "http"] | None:
    """"git", "http" or None (a local path), as BuildKit decides for an ADD source."""
    if source.startswith(("./", "../")):
        return None
    protocol = _PROTOCOL.match(source)
    if protocol is not None:
        scheme = protocol.group()[:-3].lower()
        if scheme not in _GIT_PROTOCOLS:
            return None
        if scheme in ("http", "https"):
            path = source[protocol.end():].split("#", 1)[0].split("?", 1)[0]
            if path.endswith(".git"):
                return "git"
            return "http" if source.startswith(("http://", "https://")) else None
        return "git"
    return "git" if _SCP_STYLE.match(source) else None


def _git_pinned(source: str) -> bool:
    rest, _, fragment = source.partition("#")
    _, _, query = rest.partition("?")
    # ?ref=, ?checksum=, ?commit= (a commit id needs no URL decoding).
    values = dict(pair.partition("=")[::2] for pair in query.split("&") if pair)
    if values.get("checksum") or values.get("commit"):
        return True
    ref = fragment.split(":", 1)[0] or values.get("ref", "")
    return bool(_COMMIT.fullmatch(ref))


def chmod_changes(keyword: str, sources: list[str], destination: str,
                  mode: str) -> list[ModeChange]:
    """The files ``COPY --chmod=MODE`` gives that mode."""
    if not destination.endswith("/") and len(sources) == 1:
        return [mode_change(destination, mode, keyword, None)]
    names = [posixpath.basename(source.rstrip("/")) or source for source in sources]
    return [mode_change(posixpath.join(destination, name), mode, keyword, None)
            for name in names]
