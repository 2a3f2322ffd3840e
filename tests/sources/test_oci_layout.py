"""OCI image layouts (a directory or a tar of one) through ``image --input``: the same findings
as the image's ``docker save``, and every hostile layout refused with one line."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any, Literal

import pytest
from typer.testing import CliRunner

from paracle_guard.cli import app
from paracle_guard.errors import InputError
from paracle_guard.sources.image import load_archive_images
from paracle_guard.sources.oci_layout import MAX_ENTRIES, MAX_NESTING, host_platform_name
from tests.cli_process import run_cli
from tests.docker_images import TestImages, file, layer_tar
from tests.oci_layouts import INDEX, MANIFEST, Layout, from_docker_save

runner = CliRunner()
Form = Literal["dir", "tar", "tar-gzip-layers"]


def _json_report(args: list[str]) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


def _comparable(report: dict[str, Any]) -> list[tuple[str, str, str | None, str | None]]:
    result = report["results"][0]
    return sorted((f["rule"], f["message"], f["location"]["layer"],
                   None if f["location"]["path"] == result["target"] else f["location"]["path"])
                  for f in result["findings"])


def _stored(layout: Layout, form: Form, tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    if form == "dir":
        return layout.write(tmp_path / "layout")
    return layout.tar(tmp_path / "layout.tar")


@pytest.mark.parametrize("name", ["privileged-files", "whiteouts", "secrets"])
@pytest.mark.parametrize("form", ["dir", "tar", "tar-gzip-layers"])
def test_a_layout_gives_the_findings_of_its_docker_save(
    name: str, form: Form, test_images: TestImages, tmp_path: Path
) -> None:
    saved = test_images.archive(name)
    layout = from_docker_save(saved, gzip_layers=form == "tar-gzip-layers",
                              name=test_images.get(name).ref)
    stored = _stored(layout, form, tmp_path)
    from_save = _json_report(["image", "--input", str(saved)])
    from_layout = _json_report(["image", "--input", str(stored)])
    assert _comparable(from_save), "the image must have findings to compare"
    assert _comparable(from_layout) == _comparable(from_save)
    assert (from_layout["results"][0]["metadata"]["id"]
            == from_save["results"][0]["metadata"]["id"] == test_images.get(name).id)


# --- layouts built from parts ------------------------------------------------------------------

def _config(layers: list[bytes], **config: Any) -> bytes:
    import hashlib

    return json.dumps({"architecture": "amd64", "os": "linux", "config": config,
                       "rootfs": {"type": "layers", "diff_ids": [
                           "sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]},
                       }).encode()


SECRET_LAYER = layer_tar((file("/app/.env", "API_TOKEN=abc\n"),))


def _one_image(*, gzip_layers: bool = False, **extra: Any) -> Layout:
    layout = Layout()
    layout.index([layout.image(_config([SECRET_LAYER]), [SECRET_LAYER],
                               gzip_layers=gzip_layers, **extra)])
    return layout


def _platform(spec: str) -> dict[str, Any]:
    os_name, arch, *variant = spec.split("/")
    return {"platform": {"os": os_name, "architecture": arch,
                         **({"variant": variant[0]} if variant else {})}}


def _multi_platform(platforms: list[str], *, nested: bool = True) -> Layout:
    layout = Layout()
    manifests = []
    for number, spec in enumerate(platforms):
        layer = layer_tar((file(f"/{spec.replace('/', '-')}/.env", f"A={number}\n"),))
        manifests.append(layout.image(_config([layer]), [layer], **_platform(spec)))
    attestation = layout.document({"schemaVersion": 2}, MANIFEST, **_platform("unknown/unknown"))
    manifests.append(attestation)
    if nested:
        layout.index([layout.document({"schemaVersion": 2, "mediaType": INDEX,
                                       "manifests": manifests}, INDEX)])
    else:
        layout.index(manifests)
    return layout


def _env_files(path: Path, **options: Any) -> list[str]:
    subjects = load_archive_images(str(path), **options)
    return [f.path for subject in subjects for f in subject.files]


@pytest.mark.parametrize("form", ["dir", "tar"])
def test_a_layout_from_parts_is_read(form: Form, tmp_path: Path) -> None:
    for gzip_layers in (False, True):
        stored = _stored(_one_image(gzip_layers=gzip_layers), form, tmp_path / str(gzip_layers))
        assert _env_files(stored) == ["/app/.env"]


@pytest.mark.parametrize("nested", [True, False])
def test_the_platform_of_this_machine_is_picked_from_a_multi_platform_index(
    nested: bool, tmp_path: Path
) -> None:
    here = host_platform_name()
    other = "linux/s390x" if here != "linux/s390x" else "linux/amd64"
    stored = _multi_platform([other, here], nested=nested).tar(tmp_path / "multi.tar")
    assert _env_files(stored) == [f"/{here.replace('/', '-')}/.env"]
    assert _env_files(stored, platform=other) == [f"/{other.replace('/', '-')}/.env"]
    # linux/arm64 asked for takes linux/arm64/v8
    stored = _multi_platform(["linux/arm64/v8", "linux/ppc64le"]).tar(tmp_path / "arm.tar")
    assert _env_files(stored, platform="linux/arm64") == ["/linux-arm64-v8/.env"]


def test_the_cli_picks_a_platform_and_says_which_ones_a_layout_holds(tmp_path: Path) -> None:
    stored = _multi_platform(["linux/ppc64le", "linux/s390x"]).tar(tmp_path / "multi.tar")
    ran = run_cli("image", "--input", str(stored), "--platform", "linux/s390x", "-f", "json")
    assert ran.code == 1, ran.stderr
    (result,) = json.loads(ran.stdout)["results"]
    assert "/linux-s390x/.env" in {f["location"]["path"] for f in result["findings"]}
    ran = run_cli("image", "--input", str(stored), "--platform", "linux/riscv64")
    assert ran.code == 2 and len(ran.error_lines) == 1, ran.stderr
    assert "(it holds: linux/ppc64le, linux/s390x)" in ran.stderr
    ran = run_cli("image", "busybox", "--platform", "linux/s390x")
    assert ran.code == 2 and "use it with --input" in ran.stderr


def test_several_platforms_and_none_for_this_machine_is_refused(tmp_path: Path) -> None:
    stored = _multi_platform(["linux/ppc64le", "linux/s390x"]).write(tmp_path / "layout")
    with pytest.raises(InputError, match=r"holds no image manifest for linux/riscv64 \(it "
                                         r"holds: linux/ppc64le, linux/s390x\)"):
        load_archive_images(str(stored), platform="linux/riscv64")


def test_two_manifests_for_one_platform_are_refused(tmp_path: Path) -> None:
    stored = _multi_platform(["linux/s390x", "linux/s390x"]).tar(tmp_path / "twice.tar")
    with pytest.raises(InputError, match="2 image manifests for linux/s390x; cannot tell"):
        load_archive_images(str(stored), platform="linux/s390x")


def test_each_named_image_of_a_layout_is_its_own_target(tmp_path: Path) -> None:
    layout = Layout()
    layout.index([
        layout.image(_config([SECRET_LAYER]), [SECRET_LAYER],
                     annotations={"org.opencontainers.image.ref.name": "one:1"}),
        layout.image(_config([SECRET_LAYER], User="app"), [SECRET_LAYER],
                     annotations={"io.containerd.image.name": "docker.io/library/two:2"}),
    ])
    subjects = load_archive_images(str(layout.write(tmp_path / "layout")))
    assert [s.target for s in subjects] == ["one:1", "docker.io/library/two:2"]
    picked = load_archive_images(str(layout.tar(tmp_path / "l.tar")), ["two:2"])
    assert picked[0].user.spec == "app"


# --- hostile layouts: one clear line, exit 2 ----------------------------------------------------

def _tamper_layer(layout: Layout) -> None:
    name = next(n for n, data in layout.files.items() if data == SECRET_LAYER)
    layout.files[name] = layer_tar((file("/app/innocent", "x"),))


def _first_layer_descriptor(layout: Layout, **change: Any) -> None:
    """Rewrites the manifest's first layer descriptor, and the index to the new manifest."""
    index = json.loads(layout.files["index.json"])
    old = index["manifests"][0]
    manifest = json.loads(layout.files.pop("blobs/sha256/" + old["digest"][7:]))
    manifest["layers"][0].update(change)
    index["manifests"][0] = layout.document(manifest, MANIFEST)
    layout.index(index["manifests"])


def _huge_fan_out() -> Layout:
    layout = Layout()
    leaf = layout.image(_config([SECRET_LAYER]), [SECRET_LAYER], **_platform("linux/s390x"))
    inner = layout.document({"manifests": [leaf] * 100, "mediaType": INDEX}, INDEX)
    layout.index([layout.document({"manifests": [inner] * (MAX_ENTRIES // 100 + 1)}, INDEX)])
    return layout


def _deep_chain() -> Layout:
    layout = Layout()
    entry = layout.image(_config([SECRET_LAYER]), [SECRET_LAYER])
    for _ in range(MAX_NESTING + 1):
        entry = layout.document({"mediaType": INDEX, "manifests": [entry]}, INDEX)
    layout.index([entry])
    return layout


def _self_listing_index() -> Layout:
    layout = Layout()
    claimed = "sha256:" + "ab" * 32
    index = {"mediaType": INDEX, "manifests": [{"mediaType": INDEX, "digest": claimed,
                                                "size": 10}]}
    layout.files["blobs/sha256/" + "ab" * 32] = json.dumps(index).encode()
    layout.files["index.json"] = json.dumps(index).encode()
    return layout


def _case(name: str) -> tuple[Layout, str]:
    layout = _one_image()
    if name == "layer digest mismatch":
        _tamper_layer(layout)
        return layout, r"does not hash to its digest .*refused"
    if name == "config digest mismatch":
        config = next(n for n, d in layout.files.items() if d.startswith(b'{"architecture"'))
        layout.files[config] = _config([SECRET_LAYER], User="root")
        return layout, r"config: blob blobs/sha256/\w+ does not hash to its digest"
    if name == "missing layer blob":
        del layout.files[next(n for n, d in layout.files.items() if d == SECRET_LAYER)]
        return layout, r"layers\[0\]: blob sha256:\w+ is missing from the layout"
    if name == "missing index":
        del layout.files["index.json"]
        return layout, "index.json is missing"
    if name == "size mismatch":
        _first_layer_descriptor(layout, size=1)
        return layout, r"is \d+ bytes, its descriptor says 1; refused"
    if name == "path traversal":
        _first_layer_descriptor(layout, digest="sha256/../../../etc/passwd")
        return layout, r"digest 'sha256/../../../etc/passwd' is not sha256: and 64 lowercase"
    if name == "zstd layer":
        _first_layer_descriptor(layout, mediaType="application/vnd.oci.image.layer.v1.tar+zstd")
        return layout, r"layer media type '.*tar\+zstd' is not supported"
    if name == "artifact":
        index = json.loads(layout.files["index.json"])
        manifest = json.loads(layout.files["blobs/sha256/" + index["manifests"][0]["digest"][7:]])
        manifest["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
        layout.index([layout.document(manifest, MANIFEST)])
        return layout, r"config media type 'application/vnd.cncf.helm.config.v1\+json' is not"
    if name == "index loop":
        return _self_listing_index(), r"does not hash to its digest"
    if name == "deep nesting":
        return _deep_chain(), f"indexes nested more than {MAX_NESTING} deep; refused"
    if name == "huge fan-out":
        return _huge_fan_out(), f"list over {MAX_ENTRIES} entries in all; refused"
    if name == "huge index":
        layout.files["index.json"] = b'{"manifests": [' + b" " * (5 << 20) + b"]}"
        return layout, r"index.json is \d+ bytes, over the 4 MiB paracle-guard reads; refused"
    if name == "layout version":
        layout.files["oci-layout"] = b'{"imageLayoutVersion": "2.0.0"}'
        return layout, "imageLayoutVersion '2.0.0'; only '1.0.0' is an OCI image layout"
    if name == "duplicate keys":
        layout.files["index.json"] = b'{"manifests": [], "Manifests": []}'
        return layout, r"'manifests' and 'Manifests' both set manifests"
    raise AssertionError(name)


HOSTILE = ["layer digest mismatch", "config digest mismatch", "missing layer blob",
           "missing index", "size mismatch", "path traversal", "zstd layer", "artifact",
           "index loop", "deep nesting", "huge fan-out", "huge index", "layout version",
           "duplicate keys"]


@pytest.mark.parametrize("form", ["dir", "tar"])
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_layouts_are_refused(name: str, form: Form, tmp_path: Path) -> None:
    layout, message = _case(name)
    with pytest.raises(InputError, match=message):
        load_archive_images(str(_stored(layout, form, tmp_path)))


@pytest.mark.parametrize("form", ["dir", "tar"])
def test_the_cli_refuses_a_tampered_layout_with_one_line(form: Form, tmp_path: Path) -> None:
    layout = _one_image()
    _tamper_layer(layout)
    ran = run_cli("image", "--input", str(_stored(layout, form, tmp_path)))
    assert ran.code == 2
    assert len(ran.error_lines) == 1, ran.stderr
    assert "does not hash to its digest" in ran.stderr and "Traceback" not in ran.stderr


def test_a_fifo_named_like_a_blob_is_refused_without_waiting(tmp_path: Path) -> None:
    layout = _one_image()
    root = layout.write(tmp_path / "layout")
    blob = next(n for n, d in layout.files.items() if d == SECRET_LAYER)
    (root / blob).unlink()
    os.mkfifo(root / blob)
    with pytest.raises(InputError, match="is not a regular file; refused"):
        load_archive_images(str(root))


def test_a_gzip_layer_is_verified_by_its_compressed_bytes(tmp_path: Path) -> None:
    layout = _one_image(gzip_layers=True)
    name = next(n for n, d in layout.files.items() if d[:2] == b"\x1f\x8b")
    # Same content, compressed differently: a different blob, refused by its name.
    layout.files[name] = gzip.compress(SECRET_LAYER, compresslevel=1, mtime=1)
    with pytest.raises(InputError, match="does not hash to its digest"):
        load_archive_images(str(layout.tar(tmp_path / "l.tar")))


def test_a_docker_save_archive_keeps_its_manifest_json_reading(tmp_path: Path) -> None:
    # docker save of Engine 25+ writes manifest.json beside the layout: docker load reads it.
    layout = _one_image()
    layout.files["manifest.json"] = json.dumps([{"Config": "missing.json", "Layers": []}]).encode()
    with pytest.raises(InputError, match=r"config missing\.json is missing from the archive"):
        load_archive_images(str(layout.tar(tmp_path / "both.tar")))

