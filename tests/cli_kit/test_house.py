"""The house style, through the real console script: help, -h, -V, usage errors."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from paracle_guard import __version__
from paracle_guard.cli import app
from paracle_guard.cli_kit.house import GuardCommand, GuardGroup, iter_commands
from tests.cli_process import EXECUTABLE, clean_env, run_cli

SNAPSHOTS = Path(__file__).parent / "snapshots"
# Set to rewrite the snapshots after a deliberate change of the help.
UPDATE = os.environ.get("PARACLE_GUARD_UPDATE_SNAPSHOTS") == "1"


@pytest.mark.parametrize(
    ("args", "snapshot"),
    [
        (["--help"], "root.txt"),
        (["lint", "--help"], "lint.txt"),
        (["policy", "validate", "-h"], "policy-validate.txt"),
    ],
)
def test_help_matches_its_snapshot(args: list[str], snapshot: str) -> None:
    ran = run_cli(*args)
    assert ran.code == 0, ran.stderr
    path = SNAPSHOTS / snapshot
    if UPDATE:
        path.write_text(ran.stdout)
    assert ran.stdout == path.read_text(), f"help changed; rerun with UPDATE to accept: {args}"


def test_help_shows_readable_metavars_not_python_types() -> None:
    ran = run_cli("lint", "--help")
    assert "Usage: paracle-guard lint [OPTIONS] PATH..." in ran.stdout
    for shown in ("-p, --policy FILE|NAME", "-f, --format FORMAT", "-o, --output FILE",
                  "--fail-on SEVERITY", "--color WHEN", "--baseline FILE"):
        assert shown in ran.stdout
    for python_type in ("<str>", "<bool>", "list[str]", "<path>", "{paths}"):
        assert python_type not in ran.stdout


def test_every_command_and_option_follows_the_house_style() -> None:
    """Every command is a house class, and every option that takes a value has a readable
    metavar: a command added anywhere in the package inherits the style, but its options'
    metavars are its author's to give."""
    root = get_command(app)
    assert isinstance(root, GuardGroup)
    missing = []
    for path, command in iter_commands(root):
        assert isinstance(command, (GuardCommand, GuardGroup)), path
        for param in command.params:
            if param.param_type_name == "option" and not getattr(param, "is_flag", False):
                # A word in capitals (FILE, NAME[=VALUE], HOST:CONTAINER:ro) or a choice of
                # numbers (1|2): never empty, never a Python type.
                metavar = param.metavar or ""
                if not re.search(r"[A-Z]{2,}|^[0-9]", metavar) or "<" in metavar:
                    missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert missing == []


def test_a_command_declared_with_plain_typer_is_adopted() -> None:
    extra = typer.Typer(help="A group someone adds later.")

    @extra.command("hello")
    def hello(name: str = typer.Option("x", "--name", metavar="NAME")) -> None:
        """Say hello."""
        typer.echo(f"hello {name}")

    host = typer.Typer(cls=GuardGroup)
    host.add_typer(extra, name="extra")

    @host.callback()
    def main() -> None:
        """Host."""

    runner = CliRunner()
    shown = runner.invoke(host, ["extra", "hello", "-h"], prog_name="paracle-guard")
    assert shown.exit_code == 0
    assert "--name NAME" in shown.output
    wrong = runner.invoke(host, ["extra", "hello", "--nmae", "y"], prog_name="paracle-guard")
    assert wrong.exit_code == 2
    assert wrong.output.splitlines() == [
        "paracle-guard: error: no such option: --nmae (did you mean '--name'?)",
        "See 'paracle-guard extra hello --help'.",
    ]


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_dash_h_is_help_everywhere(flag: str) -> None:
    for args in ([], ["lint"], ["rules"], ["rules", "explain"], ["sandbox", "test"]):
        ran = run_cli(*args, flag)
        assert ran.code == 0, (args, ran.stderr)
        assert ran.stdout.startswith(f"Usage: paracle-guard {' '.join(args)}".rstrip())


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag: str) -> None:
    ran = run_cli(flag)
    assert (ran.code, ran.stdout, ran.stderr) == (0, f"paracle-guard {__version__}\n", "")


def test_no_arguments_shows_the_help_and_succeeds() -> None:
    ran = run_cli()
    assert ran.code == 0
    assert ran.stdout.startswith("Usage: paracle-guard [OPTIONS] COMMAND [ARGS]...")
    group = run_cli("policy")
    assert group.code == 0 and "validate" in group.stdout


@pytest.mark.parametrize(
    ("args", "line", "help_of"),
    [
        (["lint"], "missing argument PATH...", "paracle-guard lint"),
        (["lint", "Dockerfile", "--frobnicate"], "no such option: --frobnicate",
         "paracle-guard lint"),
        (["lint", "Dockerfile", "--polcy", "x"],
         "no such option: --polcy (did you mean '--policy'?)", "paracle-guard lint"),
        (["lint", "Dockerfile", "--policy"], "--policy needs a value", "paracle-guard lint"),
        (["lnt"], "no such command 'lnt' (did you mean 'lint'?)", "paracle-guard"),
        (["policy", "valdate"], "no such command 'valdate' (did you mean 'validate'?)",
         "paracle-guard policy"),
        (["lint", "Dockerfile", "-f", "xml"],
         "--format xml: expected text, json, sarif, github or junit", "paracle-guard lint"),
        (["lint", "Dockerfile", "-f", "jsn"],
         "--format jsn: expected text, json, sarif, github or junit (did you mean 'json'?)",
         "paracle-guard lint"),
        (["run", "--image", "x", "--timeout", "soon", "--", "true"],
         "--timeout: input should be a valid number, unable to parse string as a number",
         "paracle-guard run"),
        (["run", "--image", "x", "--dry-run", "--", "true"],
         "--dry-run, --as and --namespace are for --backend kubernetes", "paracle-guard run"),
        (["image"], "name an image (paracle-guard image REF) or an archive (--input FILE)",
         "paracle-guard image"),
        (["doctor", "--format", "yaml"], "--format yaml: expected text or json",
         "paracle-guard doctor"),
        (["completion", "tcsh"], "SHELL tcsh: expected bash, zsh or fish",
         "paracle-guard completion"),
    ],
)
def test_a_usage_error_is_one_line_and_a_hint_with_exit_2(
    args: list[str], line: str, help_of: str, tmp_path: Path
) -> None:
    ran = run_cli(*args, cwd=tmp_path)
    assert ran.code == 2
    assert ran.stdout == ""
    assert ran.error_lines == [f"paracle-guard: error: {line}", f"See '{help_of} --help'."]


def test_a_user_error_is_one_line_without_a_hint(tmp_path: Path) -> None:
    ran = run_cli("lint", "nowhere/Dockerfile", cwd=tmp_path)
    assert ran.code == 2
    assert ran.error_lines == ["paracle-guard: error: nowhere/Dockerfile: no such file or "
                               "directory"]


def test_every_error_line_in_the_package_uses_the_house_prefix() -> None:
    """No module prints its own "paracle-guard: ..." error line past the house's printer."""
    package = Path(__file__).resolve().parents[2] / "paracle_guard"
    offenders = []
    for source in package.rglob("*.py"):
        text = source.read_text()
        for number, line in enumerate(text.splitlines(), 1):
            prints_its_own = '"paracle-guard: ' in line and ("write(" in line or "echo(" in line)
            levelled = any(level in line for level in ("error:", "warning:", "note:"))
            if prints_its_own and not levelled:
                offenders.append(f"{source.relative_to(package)}:{number}: {line.strip()}")
    assert offenders == []


def test_a_removed_working_folder_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    command = f"cd {gone} && rmdir {gone} && exec {EXECUTABLE} lint Dockerfile"
    completed = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                               env=clean_env(), timeout=120, check=False)
    assert completed.returncode == 2
    assert completed.stderr == ("paracle-guard: error: the working folder was removed or "
                                "cannot be read (No such file or directory)\n")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_on_a_full_disk_is_one_line_not_a_traceback() -> None:
    with open("/dev/full", "wb") as full:
        completed = subprocess.run([str(EXECUTABLE), "policy", "show", "sandbox"],
                                   stdout=full, stderr=subprocess.PIPE, text=True,
                                   env=clean_env(), timeout=120, check=False)
    assert completed.returncode == 2
    assert completed.stderr == "paracle-guard: error: No space left on device\n"
