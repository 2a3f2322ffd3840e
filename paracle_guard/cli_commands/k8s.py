"""``paracle-guard k8s``: every container of Kubernetes workloads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from paracle_guard.cli_commands.scan import folders_of, read_stdin, run_scan
from paracle_guard.cli_kit.house import command_app, fails_cleanly
from paracle_guard.cli_kit.options import (
    BaselineOption,
    ColorOption,
    FailOnOption,
    FormatOption,
    IgnoreOption,
    OutputOption,
    PolicyOption,
    StdinNameOption,
    WriteBaselineOption,
)
from paracle_guard.errors import InputError

if TYPE_CHECKING:
    from paracle_guard.subject import Subject

app = command_app()


@app.command("k8s")
@fails_cleanly
def k8s_command(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH", help="Manifest files (multi-document YAML and List "
                       "kinds; Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, "
                       "CronJobs, and Agent Sandbox Sandboxes, SandboxTemplates, "
                       "SandboxWarmPools and SandboxClaims), or folders searched for *.yaml, "
                       "*.yml and *.json; - reads standard input."),
    ],
    policy: PolicyOption = None,
    output_format: FormatOption = None,
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    ignore: IgnoreOption = None,
    stdin_filename: StdinNameOption = "stdin.yaml",
    folders: Annotated[
        bool, typer.Option("--folders", help="Read the folder of each PATH (for pre-commit, "
                           "which passes the changed files): the NetworkPolicies and volumes "
                           "beside a pod count for it.")
    ] = False,
    color: ColorOption = None,
    baseline: BaselineOption = None,
    write_baseline: WriteBaselineOption = None,
) -> None:
    """Check every container of Kubernetes workloads against the policy, each Pod once."""
    if folders:
        paths = folders_of(p for p in paths if p != "-") + (["-"] if "-" in paths else [])
    run_scan(_workloads(paths, stdin_filename), policy=policy, ignore=ignore, fail_on=fail_on)


def _workloads(paths: list[str], stdin_filename: str) -> Iterator[Subject]:
    from paracle_guard.sources.discovery import find_manifests
    from paracle_guard.sources.k8s import load_manifests

    stdin = None
    if "-" in paths:
        stdin = (stdin_filename, read_stdin("a manifest", "paracle-guard k8s - < pod.yaml"))
    files = list(find_manifests(p for p in paths if p != "-"))
    if not files and stdin is None:
        raise InputError(f"no manifests (*.yaml, *.yml, *.json) found in: {', '.join(paths)}")
    yield from load_manifests(files, stdin=stdin)
