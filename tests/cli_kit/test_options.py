"""Shell completion, through the real console script: the scripts, and what they complete."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from paracle_guard.cli_kit.options import complete_rule_list, complete_rules
from tests.cli_process import EXECUTABLE, clean_env, run_cli

VAR = "_PARACLE_GUARD_COMPLETE"


def bash(words: str) -> list[str]:
    """What bash would offer after ``words`` (a trailing space: a new word)."""
    parts = words.split(" ")
    env = clean_env(**{VAR: "complete_bash", "COMP_WORDS": words,
                       "COMP_CWORD": str(len(parts) - 1)})
    return run_cli(env=env).stdout.split()


def zsh(words: str) -> str:
    return run_cli(env=clean_env(**{VAR: "complete_zsh", "_TYPER_COMPLETE_ARGS": words})).stdout


def fish(words: str) -> list[str]:
    env = clean_env(**{VAR: "complete_fish", "_TYPER_COMPLETE_ARGS": words,
                       "_TYPER_COMPLETE_FISH_ACTION": "get-args"})
    return [line.split("\t")[0] for line in run_cli(env=env).stdout.splitlines()]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_command_prints_the_script_for_each_shell(shell: str) -> None:
    ran = run_cli("completion", shell)
    assert ran.code == 0, ran.stderr
    assert f"{VAR}=complete_{shell}" in ran.stdout
    assert "paracle-guard" in ran.stdout


def test_show_completion_gives_the_script_of_the_shell_it_runs_in() -> None:
    # typer's --show-completion detects the shell from the parent processes.
    shown = run_cli("--show-completion")
    assert shown.code == 0, shown.stderr
    scripts = [run_cli("completion", shell).stdout.strip() for shell in ("bash", "zsh", "fish")]
    assert shown.stdout.strip() in scripts


def test_the_bash_script_is_valid_bash() -> None:
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    script = run_cli("completion", "bash").stdout
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    loaded = subprocess.run(["bash", "-c", script + "\ncomplete -p paracle-guard"],
                            text=True, capture_output=True)
    assert "_paracle_guard_completion" in loaded.stdout


def test_bash_completes_commands_options_and_values() -> None:
    assert bash("paracle-guard li") == ["lint"]
    assert set(bash("paracle-guard ")) >= {"lint", "image", "container", "compose", "k8s",
                                           "run", "rules", "policy", "completion"}
    assert bash("paracle-guard lint --po") == ["--policy"]
    assert bash("paracle-guard lint --format ") == ["text", "json", "sarif", "github", "junit"]
    assert bash("paracle-guard lint --color a") == ["always", "auto"] or \
        sorted(bash("paracle-guard lint --color a")) == ["always", "auto"]
    assert bash("paracle-guard lint --fail-on w") == ["warning"]
    assert set(bash("paracle-guard lint --policy ")) >= {"sandbox", "baseline", "sandbox-gvisor"}
    assert bash("paracle-guard policy show sand") == ["sandbox", "sandbox-gvisor"]
    assert bash("paracle-guard policy show sandbox-") == ["sandbox-gvisor"]
    assert bash("paracle-guard rules explain root") == ["root-user", "root-group"]
    assert "PG101" in bash("paracle-guard lint --ignore PG10")
    assert bash("paracle-guard doctor --format ") == ["text", "json"]
    assert bash("paracle-guard completion ") == ["bash", "zsh", "fish"]


def test_zsh_and_fish_complete_with_descriptions() -> None:
    assert '"root-user":"The container runs as root"' in zsh("paracle-guard rules explain root")
    assert fish("paracle-guard lint --format ") == ["text", "json", "sarif", "github", "junit"]
    assert "sandbox" in fish("paracle-guard policy validate ")


def test_rule_completion_covers_codes_and_names_and_comma_lists() -> None:
    words = [word for word, _ in complete_rules("")]
    assert "PG101" in words and "root-user" in words
    assert [word for word, _ in complete_rules("pg10")][:1] == ["PG101"]
    assert ("PG101,root-user", "The container runs as root") in complete_rule_list("PG101,root")


def test_completion_never_runs_a_command() -> None:
    # A completion request for `run` must only list candidates, never launch anything.
    words = bash("paracle-guard run --image x -- tr")
    assert words == [] or all(not word.startswith("paracle") for word in words)
    assert EXECUTABLE.exists()
