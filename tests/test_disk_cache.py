"""The private on-disk store: integrity, privacy, bounds, sharing between processes."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from paracle_guard.disk_cache import DiskCache

KEY_A = "sha256:" + "a" * 64
KEY_B = "sha256:" + "b" * 64
NAMESPACE = "1-0.1.0-test"
LIMIT = 1 << 20
KINDS = ("image", "layer")


def entry_path(root: Path, kind: str, key: str, namespace: str = NAMESPACE) -> Path:
    digest = key.removeprefix("sha256:")
    return root / namespace / kind / digest[:2] / digest


def test_a_stored_payload_comes_back(tmp_path: Path) -> None:
    with DiskCache.open(tmp_path / "facts", NAMESPACE, LIMIT, KINDS) as cache:
        assert cache.enabled
        assert cache.get("layer", KEY_A) is None
        cache.put("layer", KEY_A, b'{"facts": 1}')
        assert cache.get("layer", KEY_A) == b'{"facts": 1}'
        # The kind is part of the key: a layer's facts are not an image's.
        assert cache.get("image", KEY_A) is None
        assert (cache.stats.hits, cache.stats.misses, cache.stats.writes) == (1, 2, 1)


def test_the_folder_is_private_to_the_user(tmp_path: Path) -> None:
    root = tmp_path / "facts"
    with DiskCache.open(root, NAMESPACE, LIMIT, KINDS) as cache:
        cache.put("image", KEY_A, b"x")
    assert root.stat().st_mode & 0o777 == 0o700
    assert entry_path(root, "image", KEY_A).stat().st_mode & 0o777 == 0o600


def test_kinds_are_plain_words(tmp_path: Path) -> None:
    with DiskCache.open(tmp_path / "facts", NAMESPACE, LIMIT, KINDS) as cache:
        cache.put("../image", KEY_A, b"x")
        cache.put("Image", KEY_A, b"x")
        assert cache.stats.writes == 0


@pytest.mark.parametrize("key", ["sha256:" + "A" * 64, "sha256:abc", "md5:" + "a" * 64,
                                 "sha256:" + "a" * 64 + "/../x", "../../etc/passwd"])
def test_keys_that_are_not_digests_are_never_stored(tmp_path: Path, key: str) -> None:
    with DiskCache.open(tmp_path / "facts", NAMESPACE, LIMIT, KINDS) as cache:
        cache.put("layer", key, b"x")
        assert cache.get("layer", key) is None
        assert cache.stats.writes == 0
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_a_corrupt_entry_is_ignored_and_rewritten(tmp_path: Path) -> None:
    root = tmp_path / "facts"
    with DiskCache.open(root, NAMESPACE, LIMIT, KINDS) as cache:
        cache.put("layer", KEY_A, b'{"user": "app"}')
    path = entry_path(root, "layer", KEY_A)
    path.write_bytes(path.read_bytes().replace(b"app", b"bad"))
    with DiskCache.open(root, NAMESPACE, LIMIT, KINDS) as cache:
        assert cache.get("layer", KEY_A) is None
        assert cache.stats.ignored == 1
        cache.put("layer", KEY_A, b'{"user": "app"}')
        assert cache.get("layer", KEY_A) == b'{"user": "app"}'


@pytest.mark.parametrize("damage", ["truncated", "empty", "no header", "longer"])
def test_a_torn_entry_is_ignored(tmp_path: Path, damage: str) -> None:
    root = tmp_path / "facts"
    with DiskCache.open(root, NAMESPACE, LIMIT, KINDS) as cache:
        cache.put("layer", KEY_A, b'{"user": "app"}')
    path = entry_path(root, "layer", KEY_A)
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:-3], "empty": b"", "no header": data[data.index(b"\n"):],
                      "longer": data + b" "}[damage])
    with DiskCache.open(root, NAMESPACE, LIMIT, KINDS) as cache:
        assert cache.get("layer", KEY_A) is None


def test_an_entry_copied_from_another_key_or_version_is_ignored(tmp_path: Path) -> None:
    root = tmp_path / "facts"
    with DiskCache.open(root, NAMESPACE, LIMIT, KINDS) as cache:
        cache.put("image", KEY_A, b'{"user": "root"}')
    # A whole, valid entry, but for another image: the header names the key it was written for.
    foreign = entry_path(root, "image", KEY_B)
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(entry_path(root, "image", KEY_A).read_bytes())
    # And one written by another version of the facts, moved into this version's folder.
    with DiskCache.open(root, "2-9.9.9-other", LIMIT, KINDS) as other:
        other.put("layer", KEY_A, b'{"old": true}')
    moved = entry_path(root, "layer", KEY_A)
    moved.parent.mkdir(parents=True, exist_ok=True)
    moved.write_bytes(entry_path(root, "layer", KEY_A, "2-9.9.9-other").read_bytes())
    with DiskCache.open(root, NAMESPACE, LIMIT, KINDS) as cache:
        assert cache.get("image", KEY_B) is None
        assert cache.get("layer", KEY_A) is None
        assert cache.get("image", KEY_A) == b'{"user": "root"}'
        assert cache.stats.ignored == 2


def test_a_folder_others_can_write_is_not_used(tmp_path: Path) -> None:
    root = tmp_path / "facts"
    root.mkdir(mode=0o700)
    root.chmod(0o777)
    with DiskCache.open(root, NAMESPACE, LIMIT, KINDS) as cache:
        assert not cache.enabled
        assert "can be written by other users" in (cache.reason or "")
        cache.put("layer", KEY_A, b"x")
        assert cache.get("layer", KEY_A) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the folder away")
def test_a_folder_of_another_user_is_not_used(tmp_path: Path) -> None:
    root = tmp_path / "facts"
    root.mkdir(mode=0o700)
    os.chown(root, 4242, 4242)
    with DiskCache.open(root, NAMESPACE, LIMIT, KINDS) as cache:
        assert not cache.enabled
        assert "belongs to uid 4242" in (cache.reason or "")


def test_a_symlinked_folder_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    (tmp_path / "facts").symlink_to(real)
    with DiskCache.open(tmp_path / "facts", NAMESPACE, LIMIT, KINDS) as cache:
        assert not cache.enabled
        assert cache.reason is not None


def test_least_recently_used_entries_are_evicted_first(tmp_path: Path) -> None:
    root = tmp_path / "facts"
    payload = b"x" * 1000
    with DiskCache.open(root, NAMESPACE, 3500, KINDS) as cache:
        keys = ["sha256:" + str(n) * 64 for n in range(1, 5)]
        for age, key in enumerate(keys[:3]):
            cache.put("layer", key, payload)
            os.utime(entry_path(root, "layer", key), (1000 + age, 1000 + age))
        assert cache.get("layer", keys[0]) == payload  # used now: the newest
        cache.put("layer", keys[3], payload)
        cache.evict()
        assert cache.stats.evicted == 2
        assert cache.get("layer", keys[0]) == payload
        assert cache.get("layer", keys[3]) == payload
        assert cache.get("layer", keys[1]) is None
        assert cache.get("layer", keys[2]) is None
        assert cache.info().size <= 3500


def test_info_and_clear(tmp_path: Path) -> None:
    root = tmp_path / "facts"
    with DiskCache.open(root, "0-old", LIMIT, KINDS) as old:
        old.put("layer", KEY_A, b"old")
    with DiskCache.open(root, NAMESPACE, LIMIT, KINDS) as cache:
        cache.put("layer", KEY_A, b"layer")
        cache.put("layer", KEY_B, b"layer")
        cache.put("image", KEY_A, b"image")
        info = cache.info()
        assert info.entries == {"layer": 2, "image": 1}
        assert info.other_entries == 1
        assert info.size > 0
        removed, freed = cache.clear()
        assert removed == 4 and freed == info.size
        assert cache.info().entries == {"layer": 0, "image": 0}
        assert cache.get("layer", KEY_A) is None


def _writer_and_reader(root: str, index: int, rounds: int) -> list[str]:
    """Write this process's payload and read what is there, many times; report bad reads."""
    mine = (b'{"writer": %d, "pad": "' % index) + b"y" * 20000 + b'"}'
    bad = []
    with DiskCache.open(Path(root), NAMESPACE, LIMIT, KINDS) as cache:
        for _ in range(rounds):
            cache.put("image", KEY_A, mine)
            seen = cache.get("image", KEY_A)
            if seen is None or not seen.startswith(b'{"writer": ') or not seen.endswith(b'"}'):
                bad.append(repr(seen[:40] if seen else seen))
    return bad


def test_twenty_processes_share_one_store_without_a_torn_entry(tmp_path: Path) -> None:
    root = tmp_path / "facts"
    context = multiprocessing.get_context("fork")
    with context.Pool(20) as pool:
        results = pool.starmap(_writer_and_reader, [(str(root), n, 20) for n in range(20)])
    assert [bad for bad in results if bad] == []
    leftovers = [p.name for p in root.rglob(".tmp-*")]
    assert leftovers == []
