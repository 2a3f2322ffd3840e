"""Image facts as cache entries: every field survives the trip, and nothing else is accepted."""

from __future__ import annotations

import dataclasses
import json

import pytest

from paracle_guard import __version__
from paracle_guard.image_tree import ImageTree, LayerTree, path_key
from paracle_guard.sources.facts_store import FACTS_SCHEMA, namespace
from paracle_guard.sources.image_archive import FinalFile
from paracle_guard.sources.image_content import KeptFile
from paracle_guard.sources.image_facts import (
    KEPT_FIELDS,
    PACKAGE_FIELDS,
    SCAN_FIELDS,
    TREE_FIELDS,
    ImageFacts,
    decode_image,
    decode_layer,
    encode_image,
    encode_layer,
)
from paracle_guard.sources.layer_scan import LayerScan
from paracle_guard.sources.package_db import PackageRecord

PASSWD = KeptFile(path="/etc/passwd", mode=0o644, kind="file", uid=0, gid=0, size=9,
                  capabilities=False, tags=(), reported=False, content=b"root:\xff\n")
DPKG = KeptFile(path="/var/lib/dpkg/status", mode=0o644, kind="file", uid=0, gid=0, size=99,
                capabilities=False, tags=(), reported=False, manager="dpkg",
                packages=(PackageRecord("sudo", "dpkg", "1.9", 6144000, 1),
                          PackageRecord("odd", "dpkg", None, None, 9)))
KEY = KeptFile(path="/root/.ssh/id_rsa", mode=0o4600, kind="file", uid=1000, gid=1000, size=3,
               capabilities=True, tags=("private-key",), reported=True)
TREE = LayerTree()
for entry, kind, target in (("/etc", "dir", ""), ("/tmp", "symlink", "/etc"),
                            ("/etc/passwd", "other", "")):
    TREE.record(entry, kind, target)  # type: ignore[arg-type]
TREE.whiteouts.add("/etc/old")
TREE.opaque_dirs.add("/var/cache")
SCAN = LayerScan(
    kept={kept.path: kept for kept in (PASSWD, DPKG, KEY)},
    whiteouts={"/etc/old", "/tmp/x"},
    opaque_dirs={"/var/cache"},
    written={path_key(p) for p in ("/etc", "/etc/passwd", "/root/.ssh/id_rsa")},
    dirs={path_key("/etc")},
    tree=TREE,
)


def test_a_layer_scan_survives_the_trip() -> None:
    decoded = decode_layer(encode_layer(SCAN))
    assert decoded == SCAN
    assert decoded is not None and decoded.hides("/etc/passwd") and not decoded.hides("/srv")


@pytest.mark.parametrize(("record", "stored"), [
    (LayerScan, SCAN_FIELDS), (KeptFile, KEPT_FIELDS), (PackageRecord, PACKAGE_FIELDS),
])
def test_every_field_of_the_facts_is_stored(record: type, stored: tuple[str, ...]) -> None:
    """A field added to a record and not to the codec would vanish on every cache hit."""
    assert tuple(field.name for field in dataclasses.fields(record)) == stored


def test_every_field_of_a_layer_skeleton_is_stored() -> None:
    assert tuple(field.name for field in dataclasses.fields(LayerTree)) == TREE_FIELDS


def test_path_keys_are_the_same_in_every_process() -> None:
    # A fixed value: hash() of a str changes from one process to the next, this must not.
    assert path_key("/etc/passwd") == 0xCCCF4F8309316D53
    assert path_key("/etc/passwd") != path_key("/etc/group")


def test_merged_image_files_survive_the_trip() -> None:
    files = [FinalFile(file=KEY, layer="sha256:" + "1" * 64),
             FinalFile(file=DPKG, layer="sha256:" + "2" * 64)]
    diff_ids = ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
    facts = ImageFacts(files=files, tree=ImageTree(layers=[TREE, LayerTree()],
                                                   layer_ids=diff_ids))
    decoded = decode_image(encode_image(diff_ids, facts), diff_ids)
    assert decoded == facts
    assert decoded is not None and decoded.tree.resolve("/tmp/x") == "/etc/x"
    # Facts merged from other layers are not this image's, whatever its ID says.
    assert decode_image(encode_image(diff_ids, facts), diff_ids[:1]) is None


@pytest.mark.parametrize("payload", [
    b"", b"null", b"[]", b'{"kept": []}',
    json.dumps({"kept": [["/x", "0644", "file", 0, 0, 1, False, [], True, None, [], None]],
                "whiteouts": [], "opaque_dirs": [], "written": "", "dirs": "",
                "tree": {}}).encode(),
    json.dumps({"kept": [["/x", 420, "fifo", 0, 0, 1, False, [], True, None, [], None]],
                "whiteouts": [], "opaque_dirs": [], "written": "", "dirs": "",
                "tree": {}}).encode(),
    json.dumps({"kept": [], "whiteouts": [], "opaque_dirs": [], "written": "!!",
                "dirs": ""}).encode(),
    json.dumps({"kept": [], "whiteouts": [1], "opaque_dirs": [], "written": "",
                "dirs": ""}).encode(),
])
def test_anything_else_is_not_a_layer(payload: bytes) -> None:
    assert decode_layer(payload) is None


def test_the_namespace_names_schema_version_and_code() -> None:
    schema, version, digest = namespace().split("-", 2)
    assert schema == str(FACTS_SCHEMA) and version == __version__ and len(digest) == 16
