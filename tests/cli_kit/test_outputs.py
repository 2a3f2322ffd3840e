"""Where reports go, through the real console script: pairs, symlinks, modes, inputs, colour."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli_process import EXECUTABLE, clean_env, run_cli

ROOT_ONLY = "FROM python:3.10-slim\n"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()  # stop the policy search here: the built-in sandbox applies
    (tmp_path / "Dockerfile").write_text(ROOT_ONLY)
    return tmp_path


def test_several_format_output_pairs_come_from_one_run(work: Path) -> None:
    ran = run_cli("lint", "Dockerfile", "-f", "sarif", "-o", "out.sarif", "-f", "text",
                  "--format", "junit", "--output", "out.xml", "-o", "out.json", "-f", "json",
                  cwd=work)
    assert ran.code == 1, ran.stderr
    # text had no --output after it: it went to the terminal.
    assert "Dockerfile:1: PG101 root-user [error]" in ran.stdout
    assert json.loads((work / "out.sarif").read_text())["version"] == "2.1.0"
    assert (work / "out.xml").read_text().startswith('<?xml version="1.0"')
    # An --output before its --format belongs to the --format after it.
    report = json.loads((work / "out.json").read_text())
    assert report["summary"]["error"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "json", "-f", "sarif"],
         "--format json and --format sarif would both go to standard output; give one of "
         "them --output FILE"),
        (["-f", "json", "-o", "a.json", "-o", "b.json"],
         "--output b.json: no --format is left for it (give each --output after its --format)"),
        (["-f", "json", "-o", "a.json", "-f", "sarif", "-o", "./a.json"],
         "--output ./a.json is given twice (for --format json and --format sarif)"),
    ],
)
def test_pairs_that_cannot_work_are_usage_errors_before_the_run(
    work: Path, args: list[str], message: str
) -> None:
    ran = run_cli("lint", "Dockerfile", *args, cwd=work)
    assert ran.code == 2
    assert ran.error_lines == [f"paracle-guard: error: {message}",
                               "See 'paracle-guard lint --help'."]
    assert not (work / "a.json").exists()


def test_output_writes_through_a_symlink_and_keeps_it(work: Path) -> None:
    reports = work / "reports"
    reports.mkdir()
    (reports / "lint.json").write_text("stale")
    (work / "latest.json").symlink_to("reports/lint.json")
    ran = run_cli("lint", "Dockerfile", "-f", "json", "-o", "latest.json", cwd=work)
    assert ran.code == 1, ran.stderr
    assert (work / "latest.json").is_symlink()
    assert json.loads((reports / "lint.json").read_text())["summary"]["error"] == 1


def test_a_dangling_symlink_creates_its_target(work: Path) -> None:
    (work / "out.txt").symlink_to("made-by-the-run.txt")
    ran = run_cli("lint", "Dockerfile", "-o", "out.txt", cwd=work)
    assert ran.code == 1, ran.stderr
    assert "PG101" in (work / "made-by-the-run.txt").read_text()


def test_an_existing_report_keeps_its_mode(work: Path) -> None:
    existing = work / "report.txt"
    existing.write_text("old")
    existing.chmod(0o640)
    ran = run_cli("lint", "Dockerfile", "-o", "report.txt", cwd=work)
    assert ran.code == 1, ran.stderr
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    assert "PG101" in existing.read_text()


def test_a_new_report_gets_the_umask_mode(work: Path) -> None:
    ran = run_cli("lint", "Dockerfile", "-o", "new.txt", cwd=work)
    assert ran.code == 1
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((work / "new.txt").stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("output", ["Dockerfile", "./Dockerfile", "link-to-dockerfile",
                                    "policy.yaml"])
def test_an_input_of_the_run_is_never_overwritten(work: Path, output: str) -> None:
    (work / "link-to-dockerfile").symlink_to("Dockerfile")
    (work / "policy.yaml").write_text("apiVersion: paracle-guard/v1\nkind: Policy\n"
                                      "extends: [sandbox]\n")
    before = {name: (work / name).read_text() for name in ("Dockerfile", "policy.yaml")}
    ran = run_cli("lint", "Dockerfile", "--policy", "policy.yaml", "-f", "json", "-o", output,
                  cwd=work)
    assert ran.code == 2
    assert ran.error_lines[0].startswith(f"paracle-guard: error: --output {output}: this run "
                                         "reads that file")
    assert {name: (work / name).read_text() for name in before} == before


def test_a_dockerfile_found_in_a_folder_is_an_input_too(work: Path) -> None:
    (work / "svc").mkdir()
    (work / "svc" / "Dockerfile").write_text(ROOT_ONLY)
    ran = run_cli("lint", "svc", "-o", "svc/Dockerfile", cwd=work)
    assert ran.code == 2
    assert (work / "svc" / "Dockerfile").read_text() == ROOT_ONLY


def test_a_symlink_another_user_planted_in_tmp_is_not_followed(tmp_path: Path) -> None:
    """The kernel's protected_symlinks rule, applied to the report: a link in a sticky
    world-writable folder is followed only when it is ours or the folder owner's."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make a link owned by another user")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = shared / "report.txt"
    link.symlink_to(victim)
    os.lchown(link, 12345, 12345)
    (tmp_path / "Dockerfile").write_text(ROOT_ONLY)
    ran = run_cli("lint", "Dockerfile", "-o", str(link), cwd=tmp_path)
    assert ran.code == 2
    assert "a symlink another user owns, in a shared folder" in ran.stderr
    assert victim.read_text() == "precious"


@pytest.mark.parametrize(
    ("args", "env", "colored"),
    [
        ([], {}, False),  # a pipe
        (["--color", "always"], {}, True),
        (["--color", "never"], {"FORCE_COLOR": "1"}, False),
        ([], {"FORCE_COLOR": "1"}, True),
        ([], {"FORCE_COLOR": ""}, False),  # empty means unset, as rich reads it
        ([], {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
        (["--color", "always"], {"NO_COLOR": "1"}, True),  # the flag is explicit
    ],
)
def test_colour_follows_the_flag_then_no_color_then_force_color(
    work: Path, args: list[str], env: dict[str, str], colored: bool
) -> None:
    ran = run_cli("lint", "Dockerfile", *args, cwd=work, env=clean_env(**env))
    assert ran.code == 1
    assert ("\x1b[" in ran.stdout) is colored


def test_colour_never_reaches_a_file_unless_asked(work: Path) -> None:
    run_cli("lint", "Dockerfile", "-o", "plain.txt", cwd=work, env=clean_env(FORCE_COLOR="1"))
    assert "\x1b[" not in (work / "plain.txt").read_text()
    run_cli("lint", "Dockerfile", "-o", "styled.txt", "--color", "always", cwd=work)
    assert "\x1b[" in (work / "styled.txt").read_text()


def test_machine_formats_are_never_coloured(work: Path) -> None:
    ran = run_cli("lint", "Dockerfile", "-f", "json", "--color", "always", cwd=work)
    assert json.loads(ran.stdout)["summary"]["error"] == 1


def test_dev_stdout_into_a_pipe_carries_the_report(work: Path) -> None:
    ran = run_cli("lint", "Dockerfile", "-f", "json", "-o", "/dev/stdout", cwd=work)
    assert ran.code == 1, ran.stderr
    assert json.loads(ran.stdout)["results"][0]["findings"]


@pytest.mark.parametrize("name", ["/dev/stdout", "/proc/self/fd/1"])
def test_a_file_the_shell_opened_is_written_into_not_replaced(work: Path, name: str) -> None:
    """``{ lint -o /dev/stdout; echo END; } > out``: replacing out by a new file would leave
    the shell writing END into the old one, which nothing names any more."""
    script = f"{{ '{EXECUTABLE}' lint Dockerfile -f json -o {name}; echo END; }} > out"
    subprocess.run(["sh", "-c", script], cwd=work, env=clean_env(), check=False, timeout=120)
    written = (work / "out").read_text()
    assert written.endswith("}\nEND\n")
    assert json.loads(written.removesuffix("END\n"))["results"][0]["findings"]


def test_a_process_substitution_gets_the_report(work: Path) -> None:
    script = f"'{EXECUTABLE}' lint Dockerfile -f json -o >(cat > copy.json); wait"
    subprocess.run(["bash", "-c", script], cwd=work, env=clean_env(), check=False,
                   timeout=120)
    deadline = time.monotonic() + 30
    while not (work / "copy.json").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads((work / "copy.json").read_text())["results"][0]["findings"]
