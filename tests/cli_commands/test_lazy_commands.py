"""Each command is imported only when it runs: lint pays for nothing of the others."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from paracle_guard.cli import COMMANDS
from tests.cli_process import run_cli

REPO_ROOT = Path(__file__).resolve().parents[2]

# What only other commands need: the engine client and the Docker SDK, the launcher, the
# authz plugin, the readers of images, containers, compose and k8s and the facts only they
# make (how a container runs, an image's layers), and PyYAML (a policy already resolved
# is remembered; rich only colours a terminal).
OTHERS_ONLY = (
    "docker", "rich", "jsonschema", "yaml",
    "paracle_guard.docker_client", "paracle_guard.launcher", "paracle_guard.authz",
    "paracle_guard.sources.image", "paracle_guard.sources.container",
    "paracle_guard.sources.compose", "paracle_guard.sources.k8s",
    "paracle_guard.subject_runtime", "paracle_guard.image_tree",
    "paracle_guard.admission",
)


def _after(args: tuple[str, ...], report: str, setup: str = "") -> list[str]:
    """Run the command line ``args`` in a fresh interpreter; then the JSON list the
    expression ``report`` gives (``setup`` defines what it needs before the run)."""
    probe = textwrap.dedent(
        f"""\
        import json, sys
        from paracle_guard.cli import main
        {setup}
        sys.argv = ["paracle-guard", *{list(args)!r}]
        try:
            main()
        except SystemExit:
            pass
        finally:
            print("AFTER:" + json.dumps(sorted({report})))
        """
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True,
                         text=True)
    line = next(line for line in ran.stdout.splitlines() if line.startswith("AFTER:"))
    found: list[str] = json.loads(line.removeprefix("AFTER:"))
    return found


def _modules_after(*args: str) -> list[str]:
    return _after(args, "sys.modules")


# The pydantic models of ours, each as module.name, and whether its validator is built.
_OUR_MODELS = (
    "import pydantic; "
    "ours = lambda model: [m for sub in model.__subclasses__() for m in "
    "([sub] if sub.__module__.startswith('paracle_guard.') else []) + ours(sub)]"
)


def _models_built_after(*args: str) -> list[str]:
    """The pydantic models of ours whose validators a run of ``args`` built."""
    return _after(args, "{f'{m.__module__}.{m.__qualname__}' for m in ours(pydantic.BaseModel) "
                        "if m.__pydantic_complete__}", setup=_OUR_MODELS)


def test_lint_imports_no_module_of_another_command() -> None:
    lint = ("lint", "docker/Dockerfile.sandbox", "--policy", "sandbox")
    _modules_after(*lint)  # the first run resolves the policy (PyYAML) and remembers it
    loaded = _modules_after(*lint)
    assert "paracle_guard.cli_commands.lint" in loaded
    other_commands = {module for name, module in COMMANDS.items() if name != "lint"}
    assert sorted(other_commands & set(loaded)) == []
    heavy = [module for module in loaded
             if any(module == name or module.startswith(name + ".") for name in OTHERS_ONLY)]
    assert heavy == []


def test_lint_builds_no_validator_it_does_not_need() -> None:
    """A remembered policy is rebuilt as it was stored, the engine builds a text report from
    values it made, and Subjects are dataclasses: none needs pydantic to build validators,
    which costs a short run as much as its own work. Location, in every fact and finding,
    is the one model lint validates."""
    lint = ("lint", "docker/Dockerfile.sandbox", "--policy", "sandbox")
    _models_built_after(*lint)  # the first run validates the policy and remembers it
    built = _models_built_after(*lint)
    assert built == ["paracle_guard.location.Location"]
    # JSON output serializes the report, so it builds what it needs then.
    as_json = _models_built_after(*lint, "--format", "json")
    assert "paracle_guard.report.models.Report" in as_json


def test_a_command_imports_its_own_module_only() -> None:
    loaded = set(_modules_after("policy", "list"))
    assert "paracle_guard.cli_commands.policy" in loaded
    assert sorted(loaded & set(COMMANDS.values())) == ["paracle_guard.cli_commands.policy"]


def test_help_lists_every_command_with_its_help() -> None:
    shown = run_cli("--help").stdout
    listed = shown.split("Commands:")[1].split("Options:")[0]
    names = [line.split()[0] for line in listed.splitlines()
             if line.startswith("  ") and not line.startswith("   ")]
    assert names == list(COMMANDS)
    for line in listed.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            assert len(line.split(maxsplit=1)) == 2, line  # a name and its help


def test_every_module_declares_the_command_it_is_named_for() -> None:
    for name in COMMANDS:
        ran = run_cli(name, "--help")
        assert ran.code == 0, ran.stderr
        assert ran.stdout.startswith(f"Usage: paracle-guard {name} ")
