"""Resolved policies remembered between runs: the same Policy, and never a stale one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from paracle_guard.policy import remembered
from paracle_guard.policy.loader import builtin_policy_names, load_policy

BASE = """\
apiVersion: paracle-guard/v1
kind: Policy
metadata: {name: base}
extends: [sandbox]
fail_on: warning
exceptions:
  - rule: PG101
    target: "legacy/*"
    reason: moving off root
    expires: "2099-01-01"
"""
TOP = """\
apiVersion: paracle-guard/v1
kind: Policy
metadata: {name: team}
extends: [./base.yaml]
controls:
  packages:
    deny: {curl: error}
"""


@pytest.fixture
def store_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "paracle-guard" / "policies"


def entries(store_home: Path) -> int:
    with remembered.open_store() as store:
        return store.info().entries[remembered.KIND]


@pytest.mark.parametrize("name", builtin_policy_names())
def test_a_remembered_builtin_is_the_policy_read_afresh(name: str, store_home: Path) -> None:
    fresh = load_policy(name)
    assert entries(store_home) == 1
    again = load_policy(name)
    assert again == fresh  # the private origins (file and line of each value) included
    assert (again.source, again.sha256) == (fresh.source, fresh.sha256)
    assert again.model_fields_set == fresh.model_fields_set
    assert again.locate(("controls", "user")) == fresh.locate(("controls", "user"))
    assert again.locate(("controls", "user"))[1] is not None


def test_an_edited_base_policy_is_read_again(tmp_path: Path, store_home: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "team.yaml").write_text(TOP)
    first = load_policy(str(tmp_path / "team.yaml"))
    assert load_policy(str(tmp_path / "team.yaml")) == first
    assert first.fail_on.value == "warning" and len(first.exceptions) == 1
    (tmp_path / "base.yaml").write_text(BASE.replace("fail_on: warning", "fail_on: error"))
    edited = load_policy(str(tmp_path / "team.yaml"))
    assert edited.fail_on.value == "error"
    assert edited.sha256 != first.sha256


def test_a_tampered_entry_is_not_used(tmp_path: Path, store_home: Path) -> None:
    fresh = load_policy("sandbox")
    for entry in store_home.rglob("*"):
        if entry.is_file():
            entry.write_bytes(entry.read_bytes().replace(b'"fail_on": "error"',
                                                         b'"fail_on": "info"'))
    assert load_policy("sandbox") == fresh


def test_without_a_private_store_policies_still_load(store_home: Path) -> None:
    store_home.mkdir(parents=True)
    store_home.chmod(0o777)
    assert load_policy("sandbox") == load_policy("sandbox")
    store_home.chmod(0o700)
    assert entries(store_home) == 0


def test_a_remembered_policy_is_loaded_without_yaml(tmp_path: Path) -> None:
    code = ("import sys; from paracle_guard.policy.loader import load_policy; "
            "load_policy('sandbox'); print('yaml' in sys.modules)")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, check=True).stdout.strip() for _ in range(2)]
    assert runs == ["True", "False"]
