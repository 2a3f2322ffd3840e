"""The door to the engine: connecting, resolving without pulling, streaming a save."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from paracle_guard.docker_client import (
    ChunkStream,
    Engine,
    _imported_id,
    open_save_stream,
    resolve_image,
)
from paracle_guard.engine_protocol import ContainerEngine, EngineNotFound
from paracle_guard.errors import EngineUnavailable, GuardError, ImageNotFound, InputError
from tests.docker_images import TestImages


def test_unreachable_socket_is_one_clear_line(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    host = f"unix://{tmp_path}/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(EngineUnavailable) as caught:
        Engine.connect()
    assert str(caught.value) == (
        f"cannot reach the Docker Engine at {host}: No such file or directory; "
        "start it or set DOCKER_HOST"
    )


def test_refused_tcp_port_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(EngineUnavailable, match=r"at tcp://127\.0\.0\.1:9: Connection refused"):
        resolve_image("anything")


def test_malformed_docker_host_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "bogus://nowhere")
    with pytest.raises(EngineUnavailable, match="cannot reach the Docker Engine at bogus://"):
        Engine.connect()


def test_importing_the_module_does_not_import_the_sdk() -> None:
    code = (
        "import sys, paracle_guard.docker_client, paracle_guard.sources.image\n"
        "print('docker' in sys.modules, 'requests' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "False False"


def test_chunk_stream_reads_across_chunk_boundaries() -> None:
    chunks: Iterator[bytes] = iter([b"ab", b"", b"cde", b"f"])
    stream = io.BufferedReader(ChunkStream(chunks), buffer_size=4)
    assert stream.read(3) == b"abc"
    assert stream.read() == b"def"
    assert stream.read(1) == b""


def test_resolve_image_by_tag_and_short_id(test_images: TestImages, engine: Engine) -> None:
    built = test_images.get("runtime-config")
    info = engine.resolve_image(built.ref)
    assert info.id == built.id
    assert info.tags == (built.ref,)
    assert info.repo_digests == ()
    assert (info.os, info.architecture) == ("linux", "amd64")
    assert info.config["User"] == "1000"
    assert info.config["ExposedPorts"] == {"22/tcp": {}, "8080/udp": {}}
    # busybox, the ADDed layer, and the directory WORKDIR creates
    assert len(info.diff_ids) == 3 and all(d.startswith("sha256:") for d in info.diff_ids)
    assert info.size > 0
    assert engine.resolve_image(built.id.removeprefix("sha256:")[:12]).id == built.id


def test_missing_image_is_not_pulled(engine: Engine, docker_client: object) -> None:
    with pytest.raises(ImageNotFound) as caught:
        engine.resolve_image("paracle-guard-test/never-built:nope")
    assert str(caught.value) == (
        "image paracle-guard-test/never-built:nope is not present locally; build or pull it "
        "first (paracle-guard never pulls)"
    )


def test_invalid_reference_is_an_input_error(engine: Engine) -> None:
    with pytest.raises(InputError, match="is not a usable image reference"):
        engine.resolve_image("UPPER/Case::bad")


def test_save_stream_is_the_images_docker_save_archive(test_images: TestImages,
                                                       engine: Engine) -> None:
    built = test_images.get("minimal")
    with open_save_stream(engine, built.id) as stream, \
            tarfile.open(fileobj=stream, mode="r|") as archive:
        names = [member.name for member in archive]
    assert "manifest.json" in names
    assert built.id.removeprefix("sha256:") + ".json" in names
    assert sum(name.endswith("/layer.tar") for name in names) == 2


def test_a_failed_save_is_one_line_with_the_engines_reason(engine: Engine) -> None:
    with pytest.raises(GuardError) as caught:
        next(engine.save_image("sha256:" + "0" * 64))
    message = str(caught.value)
    assert message.startswith("the Docker Engine at ")
    assert "could not save image sha256:000" in message and "\n" not in message


def test_the_imported_image_id_in_the_engines_answer() -> None:
    answer = b'{"status":"sha256:' + b"a" * 64 + b'"}\r\n'
    assert _imported_id(answer) == "sha256:" + "a" * 64
    with pytest.raises(GuardError, match="did not say"):
        _imported_id(b'{"status":"working"}')


def test_the_docker_engine_is_a_container_engine(engine: Engine) -> None:
    typed: ContainerEngine = engine  # mypy checks the whole protocol here
    assert typed.version()["ApiVersion"]
    assert typed.find_container("paracle-guard-no-such-container") is None
    with pytest.raises(EngineNotFound, match="could not remove container"):
        typed.remove_container("paracle-guard-no-such-container")
    typed.kill("paracle-guard-no-such-container")  # gone already: not an error
