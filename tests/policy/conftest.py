"""Fixtures for the policy tests: an isolated validation cache and a policy writer."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

HEADER = "apiVersion: paracle-guard/v1\nkind: Policy\n"


@pytest.fixture(autouse=True)
def cache_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own validation cache, so no test sees another's remembered files."""
    home = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write a policy file under tmp_path; ``header=True`` prepends apiVersion and kind."""

    def _write(name: str, body: str, *, header: bool = True) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = textwrap.dedent(body).lstrip("\n")
        path.write_text((HEADER if header else "") + text, encoding="utf-8")
        return path

    return _write
