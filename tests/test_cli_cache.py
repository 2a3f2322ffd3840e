"""`paracle-guard cache info|clear`, `--no-cache`, and no progress where nobody watches."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from paracle_guard.cli import app
from tests.docker_images import TestImages

runner = CliRunner()


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "paracle-guard" / "facts"


def info() -> str:
    result = runner.invoke(app, ["cache", "info"])
    assert result.exit_code == 0, result.output
    return result.output


def test_info_says_where_how_big_and_what(cache_home: Path) -> None:
    text = info()
    assert f"location:  {cache_home}" in text
    assert "state:     on" in text
    assert "of 512MiB" in text and "PARACLE_GUARD_CACHE_SIZE" in text
    assert "0 images, 0 layers" in text
    assert "policies:  0 resolved policies in" in text


def test_a_checked_image_is_cached_until_cleared(cache_home: Path,
                                                 test_images: TestImages) -> None:
    built = test_images.get("packages")
    result = runner.invoke(app, ["image", built.ref, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    assert '"PG' in result.stdout and "reading" not in result.output  # no progress in JSON
    assert "1 images, 2 layers" in info() and "1 resolved policies" in info()
    cleared = runner.invoke(app, ["cache", "clear"])
    assert cleared.exit_code == 0
    assert cleared.output.startswith("removed 3 entries (")
    assert "0 images, 0 layers" in info() and "0 resolved policies" in info()


def test_no_cache_neither_reads_nor_fills_the_cache(cache_home: Path,
                                                     test_images: TestImages) -> None:
    built = test_images.get("minimal")
    result = runner.invoke(app, ["image", built.ref, "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "0 images, 0 layers" in info()


def test_a_cache_folder_others_can_write_is_off(cache_home: Path) -> None:
    cache_home.mkdir(parents=True)
    cache_home.chmod(0o777)
    assert "state:     off (" in info() and "can be written by other users" in info()
    cleared = runner.invoke(app, ["cache", "clear"])
    assert cleared.exit_code == 2
    assert cleared.output.startswith("paracle-guard: error: the cache is off:")
