"""Where image facts are kept: the user's private store, and the namespace of their code.

The namespace names the code that wrote an entry: ``FACTS_SCHEMA`` (raised by
hand when the shape of the facts changes), the paracle-guard version, and a
digest of the readers' source, so a change to how facts are read never meets
facts read the old way. Light on purpose: ``paracle-guard cache info`` imports
this and nothing of the readers.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from paracle_guard import __version__
from paracle_guard.disk_cache import CacheInfo, DiskCache, cache_folder, code_digest
from paracle_guard.units import format_size, parse_size

FACTS_SCHEMA = 2
KINDS = ("image", "layer")
DEFAULT_LIMIT = 512 << 20
LIMIT_VARIABLE = "PARACLE_GUARD_CACHE_SIZE"
# The modules whose code decides what the facts are, relative to this folder.
READERS = ("image.py", "image_archive.py", "image_content.py", "image_facts.py",
           "image_layers.py", "layer_scan.py", "layer_store.py", "package_db.py", "tar_headers.py",
           "tar_stream.py", "../image_tree.py", "../subject.py")


@functools.cache
def namespace() -> str:
    """``<schema>-<version>-<digest of the readers' source>``: the folder entries live in."""
    return f"{FACTS_SCHEMA}-{__version__}-{code_digest(Path(__file__).parent, READERS)}"


def open_cache(root: Path | None = None) -> DiskCache:
    """The user's facts cache (off, with a reason, when it cannot be used safely)."""
    return DiskCache.open(root or cache_folder("facts"), namespace(), size_limit(), KINDS)


def size_limit() -> int:
    """PARACLE_GUARD_CACHE_SIZE (``512m``, ``2g``, bytes); 512 MiB when unset or unreadable."""
    configured = os.environ.get(LIMIT_VARIABLE, "").strip()
    try:
        return parse_size(configured) if configured else DEFAULT_LIMIT
    except ValueError:
        return DEFAULT_LIMIT


def render_info(info: CacheInfo) -> str:
    """``paracle-guard cache info``: where, how big, what it holds."""
    state = "on" if info.enabled else f"off ({info.reason})"
    lines = [
        f"location:  {info.root}",
        f"state:     {state}",
        f"size:      {format_size(info.size) if info.size else '0 bytes'} "
        f"of {format_size(info.limit)} "
        f"(set {LIMIT_VARIABLE} to change; least recently used entries go first)",
        f"entries:   {info.entries.get('image', 0)} images, "
        f"{info.entries.get('layer', 0)} layers",
    ]
    if info.other_entries:
        lines.append(f"stale:     {info.other_entries} entries of other versions")
    lines.append(f"facts of:  {info.namespace}")
    return "\n".join(lines) + "\n"
