"""The local layer store, on a synthetic overlay2 layout: when it is used, and what it replays.

A layer is written as the engine keeps it: its files in ``overlay2/<id>/diff``
and a tar-split record (the tar's headers and padding as raw segments, each
file as a name and a size) under ``image/overlay2/layerdb``. The real engine's
store is covered by test_image_layers.py.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from paracle_guard.sources.layer_scan import scan_layer
from paracle_guard.sources.layer_store import (
    LAYERDB,
    LayerStoreError,
    ReplayedLayer,
    StoredLayer,
    chain_ids,
    find_layers,
)
from paracle_guard.sources.tar_stream import open_tar

PASSWD = b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"


def layer_tar(files: dict[str, bytes], setuid: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o4755 if name == setuid else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tar_split(tar: bytes) -> bytes:
    """The tar-split record of ``tar``: raw segments, with each file's bytes left out."""
    lines = []
    position = 0
    cursor = 0
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.size:
                segment = tar[cursor:member.offset_data]
                lines.append({"type": 2, "payload": base64.b64encode(segment).decode(),
                              "position": position})
                lines.append({"type": 1, "name": member.name, "size": member.size,
                              "payload": None, "position": position + 1})
                position += 2
                cursor = member.offset_data + member.size
    lines.append({"type": 2, "payload": base64.b64encode(tar[cursor:]).decode(),
                  "position": position})
    return gzip.compress("".join(json.dumps(line) + "\n" for line in lines).encode())


def make_store(root: Path, layers: list[dict[str, bytes]]) -> tuple[list[str], dict[str, str]]:
    """Write ``layers`` into an overlay2 layout under ``root``; (diff IDs, GraphDriver data)."""
    import hashlib

    tars = [layer_tar(files, setuid="usr/bin/tool") for files in layers]
    diff_ids = ["sha256:" + hashlib.sha256(tar).hexdigest() for tar in tars]
    folders = []
    for index, (files, tar, chain) in enumerate(zip(layers, tars, chain_ids(diff_ids),
                                                    strict=True)):
        cache_id = f"{index:064x}"
        diff = root / "overlay2" / cache_id / "diff"
        for name, data in files.items():
            (diff / name).parent.mkdir(parents=True, exist_ok=True)
            (diff / name).write_bytes(data)
        record = root / LAYERDB / chain.removeprefix("sha256:")
        record.mkdir(parents=True)
        (record / "diff").write_text(diff_ids[index])
        (record / "cache-id").write_text(cache_id)
        (record / "size").write_text(str(sum(len(d) for d in files.values())))
        (record / "tar-split.json.gz").write_bytes(tar_split(tar))
        folders.append(str(diff))
    data = {"UpperDir": folders[-1], "LowerDir": ":".join(reversed(folders[:-1])),
            "MergedDir": "unused", "WorkDir": "unused"}
    return diff_ids, data


LAYERS = [{"etc/passwd": PASSWD, "usr/bin/tool": b"\x7fELF" + b"x" * 5000},
          {"srv/big.bin": b"y" * 300_000, "etc/group": b"root:x:0:\n"}]


def test_a_replayed_layer_is_byte_for_byte_the_layer_tar(tmp_path: Path) -> None:
    diff_ids, data = make_store(tmp_path, LAYERS)
    layers = find_layers("unix:///var/run/docker.sock", "overlay2", data, diff_ids)
    assert not isinstance(layers, str)
    for layer, files in zip(layers, LAYERS, strict=True):
        replayed = bytearray()
        with ReplayedLayer(layer) as replay:
            buffer = memoryview(bytearray(7000))
            while count := replay.readinto(buffer):
                replayed += buffer[:count]
        assert bytes(replayed) == layer_tar(files, setuid="usr/bin/tool")


def test_only_the_files_a_scan_wants_are_read(tmp_path: Path) -> None:
    diff_ids, data = make_store(tmp_path, LAYERS)
    layers = find_layers("unix:///run/docker.sock", "overlay2", data, diff_ids)
    assert not isinstance(layers, str)
    # The big file the scanner skips may go: it is never opened.
    (layers[1].files / "srv/big.bin").unlink()
    passed: list[int] = []
    with ReplayedLayer(layers[1], on_bytes=passed.append) as replay:
        scan = scan_layer(replay, source="test", member=diff_ids[1])
    assert scan.kept["/etc/group"].content == b"root:x:0:\n"
    assert sum(passed) > 300_000  # its bytes went past, as a count
    with ReplayedLayer(layers[0]) as replay:
        first = scan_layer(replay, source="test", member=diff_ids[0])
    assert first.kept["/etc/passwd"].content == PASSWD
    assert first.kept["/usr/bin/tool"].mode == 0o4755


def test_a_file_that_differs_from_its_record_is_an_error(tmp_path: Path) -> None:
    diff_ids, data = make_store(tmp_path, LAYERS)
    layers = find_layers("unix:///run/docker.sock", "overlay2", data, diff_ids)
    assert not isinstance(layers, str)
    (layers[0].files / "etc/passwd").write_bytes(PASSWD + b"root2:x:0:0::/:/bin/sh\n")
    with ReplayedLayer(layers[0]) as replay, pytest.raises(LayerStoreError, match="byte file"):
        scan_layer(replay, source="test", member=diff_ids[0])


def test_a_symlink_on_the_way_to_a_file_is_an_error(tmp_path: Path) -> None:
    diff_ids, data = make_store(tmp_path, LAYERS)
    layers = find_layers("unix:///run/docker.sock", "overlay2", data, diff_ids)
    assert not isinstance(layers, str)
    etc = layers[0].files / "etc"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "passwd").write_bytes(PASSWD)
    (etc / "passwd").unlink()
    etc.rmdir()
    etc.symlink_to(tmp_path / "elsewhere")
    with ReplayedLayer(layers[0]) as replay, pytest.raises(LayerStoreError, match="symlink"):
        scan_layer(replay, source="test", member=diff_ids[0])


def test_a_data_root_behind_a_symlink_is_fine(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    diff_ids, data = make_store(tmp_path / "real", LAYERS)
    (tmp_path / "docker").symlink_to(tmp_path / "real")
    data = {key: value.replace(str(tmp_path / "real"), str(tmp_path / "docker"))
            for key, value in data.items()}
    layers = find_layers("unix:///run/docker.sock", "overlay2", data, diff_ids)
    assert not isinstance(layers, str)
    with ReplayedLayer(layers[0]) as replay:
        assert scan_layer(replay, source="test", member=diff_ids[0]).kept["/etc/passwd"].content \
            == PASSWD


def test_a_broken_record_is_an_error(tmp_path: Path) -> None:
    layer = StoredLayer(diff_id="sha256:" + "0" * 64, tar_split=tmp_path / "record.gz",
                        files=tmp_path, size=0)
    layer.tar_split.write_bytes(gzip.compress(b'{"type": 2, "payload": "!!!"}\n'))
    with ReplayedLayer(layer) as replay, pytest.raises(LayerStoreError):
        open_tar(replay)
    layer.tar_split.write_bytes(b"not gzip at all")
    with ReplayedLayer(layer) as replay, pytest.raises(LayerStoreError):
        open_tar(replay)


@pytest.mark.parametrize("change, reason", [
    ("remote", "not on this machine"),
    ("driver", "not overlay2"),
    ("count", "do not match the image's layers"),
    ("diff", "does not match layer"),
    ("cache-id", "does not match layer"),
    ("upper", "not an overlay2 layer folder"),
    ("missing", "cannot read the engine's layer record"),
])
def test_the_store_is_used_only_when_it_is_the_engines(tmp_path: Path, change: str,
                                                       reason: str) -> None:
    diff_ids, data = make_store(tmp_path, LAYERS)
    host, driver = "unix:///var/run/docker.sock", "overlay2"
    record = tmp_path / LAYERDB / chain_ids(diff_ids)[1].removeprefix("sha256:")
    if change == "remote":
        host = "tcp://10.0.0.1:2376"
    elif change == "driver":
        driver = "btrfs"
    elif change == "count":
        diff_ids = diff_ids[:1]
    elif change == "diff":
        (record / "diff").write_text("sha256:" + "f" * 64)
    elif change == "cache-id":
        (record / "cache-id").write_text("0" * 64)  # the bottom layer's folder
    elif change == "upper":
        data["UpperDir"] = str(tmp_path / "elsewhere")
    elif change == "missing":
        (record / "cache-id").unlink()
    found = find_layers(host, driver, data, diff_ids)
    assert isinstance(found, str) and reason in found
