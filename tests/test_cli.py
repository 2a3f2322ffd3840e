"""The command line, through Typer's runner and as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paracle_guard import __version__
from paracle_guard.cli import app

REPO_ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

CLEAN = textwrap.dedent(
    """\
    FROM python:3.10-slim
    RUN pip install --no-cache-dir requests==2.32.3
    USER 1000:1000
    """
)
ROOT_ONLY = "FROM python:3.10-slim\n"
WARNING_ONLY = "FROM python:latest\nUSER 1000\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_clean_dockerfile_exits_0(workdir: Path) -> None:
    write(workdir, "Dockerfile", CLEAN)
    result = runner.invoke(app, ["lint", "Dockerfile"])
    assert result.exit_code == 0, result.output
    assert "no findings in 1 file" in result.output


def test_findings_exit_1_with_path_line_and_code(workdir: Path) -> None:
    write(workdir, "Dockerfile", ROOT_ONLY)
    result = runner.invoke(app, ["lint", "Dockerfile"])
    assert result.exit_code == 1
    assert "Dockerfile:1: PG101 root-user [error]" in result.output


def test_fail_on_error_lets_warnings_pass(workdir: Path) -> None:
    write(workdir, "Dockerfile", WARNING_ONLY)
    assert runner.invoke(app, ["lint", "Dockerfile"]).exit_code == 1
    result = runner.invoke(app, ["lint", "Dockerfile", "--fail-on", "error"])
    assert result.exit_code == 0, result.output
    assert "PG501" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lint", "missing.Dockerfile"], "missing.Dockerfile: no such file or directory"),
        (["lint", "Dockerfile", "--ignore", "PG999"], "--ignore PG999"),
        (["lint", "Dockerfile", "--policy", "no-such-policy"], "no-such-policy"),
        (["lint", "Dockerfile", "--target", "nowhere"], "--target nowhere"),
        (["lint", "empty-folder"], "no Dockerfiles found"),
        (["rules", "explain", "PG000"], "PG000"),
    ],
)
def test_input_errors_exit_2_with_one_line(workdir: Path, args: list[str], message: str) -> None:
    write(workdir, "Dockerfile", CLEAN)
    (workdir / "empty-folder").mkdir()
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("paracle-guard: error: ")
    assert message in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lint", "Dockerfile", "--format", "xml"],
         "--format xml: expected text, json, sarif, github or junit"),
        (["lint", "Dockerfile", "--fail-on", "fatal"],
         "--fail-on fatal: expected error, warning or info"),
        (["lint"], "missing argument PATH..."),
        (["lint", "Dockerfile", "--frobnicate"], "no such option: --frobnicate"),
        (["lnt", "Dockerfile"], "no such command 'lnt' (did you mean 'lint'?)"),
    ],
)
def test_usage_errors_exit_2_with_one_line_and_a_hint(
    workdir: Path, args: list[str], message: str
) -> None:
    write(workdir, "Dockerfile", CLEAN)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0] == f"paracle-guard: error: {message}", result.output
    command = "paracle-guard lint" if args[0] == "lint" else "paracle-guard"
    assert lines[1:] == [f"See '{command} --help'."]


def test_bad_policy_file_names_file_path_and_line(workdir: Path) -> None:
    write(workdir, "Dockerfile", CLEAN)
    write(
        workdir,
        "policy.yaml",
        "apiVersion: paracle-guard/v1\nkind: Policy\ncontrols:\n  user:\n    allowed_uids: [abc]\n",
    )
    result = runner.invoke(app, ["lint", "Dockerfile", "--policy", "policy.yaml"])
    assert result.exit_code == 2
    assert "policy.yaml:5" in result.output
    assert "controls.user.allowed_uids[0]" in result.output


def test_json_output_to_file(workdir: Path) -> None:
    write(workdir, "Dockerfile", ROOT_ONLY)
    result = runner.invoke(app, ["lint", "Dockerfile", "--format", "json", "--output", "out.json"])
    assert result.exit_code == 1
    assert result.output == ""
    report = json.loads((workdir / "out.json").read_text())
    assert report["policy"]["name"] == "sandbox"
    assert [f["rule"] for f in report["results"][0]["findings"]] == ["PG101"]
    assert report["summary"] == {"error": 1, "warning": 0, "info": 0}


def test_unwritable_output_is_an_error_and_leaves_no_temporary(workdir: Path) -> None:
    write(workdir, "Dockerfile", CLEAN)
    result = runner.invoke(app, ["lint", "Dockerfile", "--output", "no/such/dir/out.txt"])
    assert result.exit_code == 2
    assert "--output" in result.output
    assert not list(workdir.glob("**/*.tmp"))


def test_ignore_moves_findings_to_suppressed(workdir: Path) -> None:
    write(workdir, "Dockerfile", ROOT_ONLY)
    result = runner.invoke(app, ["lint", "Dockerfile", "--ignore", "root-user", "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["results"][0]["findings"] == []
    assert report["results"][0]["suppressed"][0]["suppression"]["kind"] == "cli"


def test_build_arg_and_target(workdir: Path) -> None:
    write(
        workdir,
        "Dockerfile",
        textwrap.dedent(
            """\
            FROM python:3.10-slim AS builder
            RUN pip install --no-cache-dir build==1.2.1
            FROM python:3.10-slim AS runtime
            ARG UID=1000
            USER ${UID}
            """
        ),
    )
    assert runner.invoke(app, ["lint", "Dockerfile"]).exit_code == 0
    as_root = runner.invoke(app, ["lint", "Dockerfile", "--build-arg", "UID=0"])
    assert as_root.exit_code == 1
    assert "PG101" in as_root.output
    builder = runner.invoke(app, ["lint", "Dockerfile", "--target", "builder"])
    assert builder.exit_code == 1
    assert "Dockerfile:1: PG101" in builder.output


def test_folders_are_searched_for_every_dockerfile_name(workdir: Path) -> None:
    for name in ["Dockerfile", "svc/Dockerfile.prod", "svc/api.Dockerfile", "x/y.dockerfile",
                 "Containerfile", "node_modules/Dockerfile", ".hidden/Dockerfile",
                 "svc/README.md"]:
        write(workdir, name, ROOT_ONLY)
    result = runner.invoke(app, ["lint", ".", "--format", "json"])
    targets = sorted(r["target"] for r in json.loads(result.output)["results"])
    assert targets == sorted(
        ["./Containerfile", "./Dockerfile", "./svc/Dockerfile.prod", "./svc/api.Dockerfile",
         "./x/y.dockerfile"]
    )


def test_repository_policy_is_discovered(workdir: Path) -> None:
    write(workdir, "Dockerfile", ROOT_ONLY)
    write(
        workdir,
        ".paracle-guard.yaml",
        "apiVersion: paracle-guard/v1\nkind: Policy\nmetadata: {name: ours}\n"
        "extends: [sandbox]\ncontrols:\n  user: {allow_root: true}\n",
    )
    result = runner.invoke(app, ["lint", "Dockerfile"])
    assert result.exit_code == 0, result.output
    assert "policy ours" in result.output


def test_rules_table_and_explain() -> None:
    table = runner.invoke(app, ["rules"])
    assert table.exit_code == 0
    assert "PG101" in table.output and "root-user" in table.output
    explained = runner.invoke(app, ["rules", "explain", "root-user"])
    assert explained.exit_code == 0
    assert explained.output.startswith("PG101 root-user [error]")
    assert "Fix:" in explained.output


def test_policy_commands(workdir: Path) -> None:
    shown = runner.invoke(app, ["policy", "show", "sandbox"])
    assert shown.exit_code == 0
    assert "allowed_uids" in shown.output
    schema = runner.invoke(app, ["policy", "schema"])
    assert json.loads(schema.output)["$schema"].endswith("2020-12/schema")
    write(workdir, "good.yaml", "apiVersion: paracle-guard/v1\nkind: Policy\nextends: [sandbox]\n")
    assert runner.invoke(app, ["policy", "validate", "good.yaml"]).exit_code == 0
    write(workdir, "bad.yaml", "apiVersion: paracle-guard/v1\nkind: Policy\nrules:\n  nope: {}\n")
    invalid = runner.invoke(app, ["policy", "validate", "bad.yaml"])
    assert invalid.exit_code == 2
    assert "rules.nope" in invalid.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"paracle-guard {__version__}"


def test_real_process_lints_the_sandbox_image_without_heavy_imports() -> None:
    """The console script, as users and pre-commit run it: exit 0 on our own image.

    It must not import the Docker SDK, rich (stdout is a pipe) or jsonschema (a
    built-in policy needs no validation at run time).
    """
    probe = textwrap.dedent(
        """\
        import sys
        from paracle_guard.cli import main
        sys.argv = ["paracle-guard", "lint", "docker/Dockerfile.sandbox", "--policy", "sandbox"]
        try:
            main()
        finally:
            loaded = {m.split(".")[0] for m in sys.modules}
            heavy = sorted(loaded & {"docker", "rich", "jsonschema"})
            print("HEAVY:", ",".join(heavy))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, env=env
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "no findings in 1 file" in completed.stdout
    assert "HEAVY: \n" in completed.stdout
    assert "\x1b[" not in completed.stdout


def test_console_script_exit_codes(tmp_path: Path) -> None:
    executable = Path(sys.executable).parent / "paracle-guard"
    bad = write(tmp_path, "Dockerfile", ROOT_ONLY)
    failing = subprocess.run([str(executable), "lint", str(bad)], capture_output=True, text=True)
    assert failing.returncode == 1
    missing = subprocess.run(
        [str(executable), "lint", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1
    assert "Traceback" not in missing.stderr


def test_standard_input_is_linted_under_the_given_name(workdir: Path) -> None:
    result = runner.invoke(app, ["lint", "-", "--stdin-filename", "svc/Dockerfile"],
                           input=ROOT_ONLY)
    assert result.exit_code == 1
    assert "svc/Dockerfile:1: PG101 root-user" in result.output
    clean = runner.invoke(app, ["lint", "-"], input=CLEAN)
    assert clean.exit_code == 0, clean.output
    assert "no findings in 1 file" in clean.output


def test_output_into_a_fifo_writes_into_it_and_keeps_it(workdir: Path) -> None:
    """A special file (a FIFO, /dev/stdout) is written into, never renamed over."""
    import stat
    import threading

    write(workdir, "Dockerfile", ROOT_ONLY)
    fifo = workdir / "report.pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = runner.invoke(app, ["lint", "Dockerfile", "-f", "json", "--output", str(fifo)])
    reader.join(timeout=30)
    assert result.exit_code == 1, result.output
    assert json.loads(received[0])["summary"]["error"] == 1
    assert stat.S_ISFIFO(fifo.stat().st_mode)
