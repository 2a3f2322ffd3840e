"""What `paracle-guard run` tells the user on stderr, through the real command line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.docker_images import BuiltImage
from tests.launcher.conftest import audit_lines, marked, run_cli

pytestmark = pytest.mark.docker


def lines(done: Any) -> list[str]:
    return [line for line in done.stderr.decode().splitlines() if line]


def test_a_timeout_says_so(probe_image: BuiltImage) -> None:
    done = run_cli("run", "--image", probe_image.ref, "--timeout", "1", *marked(), "--",
                   "sleep", "60")
    assert done.returncode == 124
    assert lines(done) == ["paracle-guard: error: the command ran past --timeout 1s and was "
                           "killed (exit 124)"]


def test_keep_names_the_kept_container(probe_image: BuiltImage, docker_client: Any) -> None:
    done = run_cli("run", "--image", probe_image.ref, "--keep", *marked(), "--", "true")
    assert done.returncode == 0, done.stderr
    (note,) = lines(done)
    assert note.startswith("paracle-guard: note: kept the sandbox ")
    container_id = note.removeprefix("paracle-guard: note: kept the sandbox ").split()[0]
    try:
        assert docker_client.containers.get(container_id).status == "exited"
        assert note.endswith(f"(--keep); docker rm -f {container_id} removes it")
    finally:
        docker_client.api.remove_container(container_id, force=True)


def test_a_missing_command_is_not_found_with_127_and_nothing_is_created(
    probe_image: BuiltImage, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    for command in ("nosuchcmd", "/opt/nosuch"):
        done = run_cli("run", "--image", probe_image.ref, "--audit-log", str(audit), *marked(),
                       "--", command, "arg")
        assert done.returncode == 127
        where = (" (PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)"
                 if command == "nosuchcmd" else "")
        assert lines(done) == [f"paracle-guard: error: {command}: command not found in the "
                               f"image{where}; nothing was run"]
        assert b"tini" not in done.stderr
    records = audit_lines(audit)
    assert [(r["exit_code"], r["container_id"]) for r in records] == [(127, None), (127, None)]


def test_an_unset_env_name_is_a_warning_or_with_strict_env_an_error(
    probe_image: BuiltImage,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PG_TEST_UNSET"}
    import subprocess

    from tests.launcher.conftest import cli_command

    warned = subprocess.run(cli_command("run", "--image", probe_image.ref, "--env",
                                        "PG_TEST_UNSET", *marked(), "--", "env"),
                            capture_output=True, env=env, check=False, timeout=120)
    assert warned.returncode == 0, warned.stderr
    assert lines(warned) == ["paracle-guard: warning: --env PG_TEST_UNSET: PG_TEST_UNSET is not "
                             "set in this environment, so the sandbox does not get it "
                             "(--strict-env makes this an error)"]
    assert b"PG_TEST_UNSET" not in warned.stdout
    strict = subprocess.run(cli_command("run", "--image", probe_image.ref, "--strict-env",
                                        "--env", "PG_TEST_UNSET", *marked(), "--", "env"),
                            capture_output=True, env=env, check=False, timeout=120)
    assert strict.returncode == 125
    assert lines(strict) == ["paracle-guard: error: --env PG_TEST_UNSET: PG_TEST_UNSET is not "
                             "set in this environment (--strict-env)"]


def test_the_audit_log_records_absolute_paths(probe_image: BuiltImage, tmp_path: Path) -> None:
    workspace = tmp_path / "job"
    workspace.mkdir()
    os.chown(workspace, 1000, 1000)
    (tmp_path / "inputs").mkdir()
    done = run_cli("run", "--image", probe_image.ref, "--workspace", "job", "--mount",
                   "inputs:/inputs:ro", "--audit-log", "audit.jsonl", *marked(), "--", "true",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (record,) = audit_lines(tmp_path / "audit.jsonl")
    assert record["workspace"] == str(workspace.resolve())
    assert record["mounts"] == [f"{(tmp_path / 'inputs').resolve()}:/inputs"]
    assert json.dumps(record).count(str(tmp_path.resolve())) == 2


def test_a_refusal_is_in_the_house_style(test_images: Any) -> None:
    root = test_images.get("root-default")
    done = run_cli("run", "--image", root.ref, *marked(), "--", "true")
    assert done.returncode == 125
    assert lines(done)[-1].startswith("paracle-guard: error: refused: ")
