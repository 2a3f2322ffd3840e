"""Reading engine images through the facts cache, on the real engine.

Each test has a cache folder of its own. ``Recorder`` keeps what the loader
reported (how many layers it read, how many came from the cache), which is how
"read once" and "reads everything" are observed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paracle_guard.disk_cache import DiskCache
from paracle_guard.docker_client import Engine
from paracle_guard.progress import ImageRead
from paracle_guard.sources import image_layers
from paracle_guard.sources.facts_store import namespace, open_cache
from paracle_guard.sources.image import load_image
from tests.docker_images import ACCOUNTS, IMAGES, ImageSpec, TestImages, file
from tests.identity_images import CASES

BASE_LAYER = (*ACCOUNTS, file("/usr/bin/shared-tool", b"\x7fELF shared", 0o4755))
ON_BASE_A = ImageSpec("cache-base-a", layers=(BASE_LAYER, (file("/srv/a.txt", "a"),)),
                      instructions=("USER app",))
ON_BASE_B = ImageSpec("cache-base-b", layers=(BASE_LAYER, (file("/srv/.env", "TOKEN=b\n"),)),
                      instructions=("USER root",))


class Recorder:
    """A ReadProgress that keeps the last report."""

    def __init__(self) -> None:
        self.read: ImageRead | None = None

    def update(self, read: ImageRead) -> None:
        self.read = read

    def done(self, read: ImageRead) -> None:
        self.read = read


def load(ref: str, engine: Engine, cache: DiskCache | None) -> tuple[Any, ImageRead]:
    recorder = Recorder()
    subject = load_image(ref, engine, cache=cache, progress=recorder)
    assert recorder.read is not None
    return subject, recorder.read


def entry(root: Path, kind: str, key: str) -> Path:
    digest = key.removeprefix("sha256:")
    return root / namespace() / kind / digest[:2] / digest


def test_an_unchanged_image_is_read_once(test_images: TestImages, engine: Engine,
                                         tmp_path: Path) -> None:
    built = test_images.get("packages")
    with open_cache(tmp_path) as cache:
        first, cold = load(built.ref, engine, cache)
        again, warm = load(built.ref, engine, cache)
    assert cold.read_layers == cold.layers > 0 and not cold.image_cached
    assert warm.image_cached and warm.read_layers == 0 and warm.bytes_read == 0
    assert again == first
    assert first == load_image(built.ref, engine)  # the same facts as with no cache at all


def test_a_layer_shared_by_two_images_is_read_once(test_images: TestImages, engine: Engine,
                                                   tmp_path: Path) -> None:
    a, b = test_images.get(ON_BASE_A), test_images.get(ON_BASE_B)
    layers_a = engine.resolve_image(a.ref).diff_ids
    layers_b = engine.resolve_image(b.ref).diff_ids
    shared = [diff for diff in layers_b if diff in layers_a]
    assert len(shared) == len(layers_b) - 1  # busybox and the base layer
    with open_cache(tmp_path) as cache:
        _, first = load(a.ref, engine, cache)
        subject_b, second = load(b.ref, engine, cache)
    assert first.read_layers == len(layers_a)
    assert (second.cached_layers, second.read_layers) == (len(shared), 1)
    # Facts merged from cached and fresh layers are those of a full read.
    assert subject_b == load_image(b.ref, engine)
    assert {f.path for f in subject_b.files} == {"/srv/.env", "/usr/bin/shared-tool"}


def test_a_retagged_image_is_never_served_another_images_facts(
    test_images: TestImages, engine: Engine, docker_client: Any, tmp_path: Path
) -> None:
    a, b = test_images.get(ON_BASE_A), test_images.get(ON_BASE_B)
    tag = a.ref.replace("cache-base-a", "cache-retagged")
    docker_client.api.tag(a.id, tag)
    with open_cache(tmp_path) as cache:
        before, _ = load(tag, engine, cache)
        docker_client.api.tag(b.id, tag, force=True)  # the same name, another image
        after, read = load(tag, engine, cache)
    assert before.metadata["id"] == a.id and after.metadata["id"] == b.id
    assert not read.image_cached
    assert before.user.name == "app" and after.user.name == "root"
    assert "/srv/.env" in {f.path for f in after.files}
    assert after == load_image(tag, engine)


def test_a_corrupted_entry_is_ignored_and_rewritten(test_images: TestImages, engine: Engine,
                                                    tmp_path: Path) -> None:
    built = test_images.get("privileged-files")
    info = engine.resolve_image(built.ref)
    with open_cache(tmp_path) as cache:
        truth, _ = load(built.ref, engine, cache)
    # Flip the facts themselves: the setuid sudo becomes a harmless file in both entries.
    for kind, key in (("image", info.id), ("layer", info.diff_ids[-1])):
        path = entry(tmp_path, kind, key)
        path.write_bytes(path.read_bytes().replace(b"/usr/bin/sudo", b"/usr/bin/sudx"))
    with open_cache(tmp_path) as cache:
        subject, read = load(built.ref, engine, cache)
        assert cache.stats.ignored == 2
        assert read.read_layers == 1 and not read.image_cached
        assert subject == truth
        # Rewritten: the next read trusts the entries again.
        _, warm = load(built.ref, engine, cache)
        assert warm.image_cached


def test_without_a_cache_every_layer_is_read(test_images: TestImages, engine: Engine,
                                             tmp_path: Path) -> None:
    built = test_images.get("whiteouts")
    with open_cache(tmp_path) as cache:
        load(built.ref, engine, cache)
    _, read = load(built.ref, engine, None)
    assert read.read_layers == read.layers and read.cached_layers == 0


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_the_layer_store_and_docker_save_give_the_same_facts(
    name: str, test_images: TestImages, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = test_images.get(name)
    direct, read = load(built.ref, engine, None)
    assert read.method == "layer store"  # the test engine is local, overlay2, and we are root
    monkeypatch.setattr(image_layers, "find_layers", lambda *args: "not in this test")
    saved, read = load(built.ref, engine, None)
    assert read.method == "docker save"
    assert direct == saved


def test_the_layer_store_can_be_turned_off(test_images: TestImages, engine: Engine,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(image_layers.NO_LAYER_STORE, "1")
    _, read = load(test_images.get("minimal").ref, engine, None)
    assert read.method == "docker save"


@pytest.mark.parametrize("name", ["symlinked-passwd", "hardlinked-passwd"])
def test_account_files_behind_links_resolve_from_cached_facts_too(
    name: str, test_images: TestImages, engine: Engine, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cache holds the usual account paths; a link elsewhere is read again, every time."""
    built = test_images.get(CASES[name][0])
    with open_cache(tmp_path) as cache:
        cold, _ = load(built.ref, engine, cache)
        warm, read = load(built.ref, engine, cache)
    assert read.image_cached
    monkeypatch.setattr(image_layers, "find_layers", lambda *args: "not in this test")
    saved, _ = load(built.ref, engine, None)
    for subject in (cold, warm, saved):
        assert subject.user is not None
        assert (subject.user.name, subject.user.uid, subject.user.is_root) == ("toor", 0, True)
    assert cold == warm == saved
