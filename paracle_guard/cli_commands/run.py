"""``paracle-guard run``: a command in a sandbox the policy makes and the rules verify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paracle_guard.cli_commands.scan import progress
from paracle_guard.cli_kit import options
from paracle_guard.cli_kit.house import command_app
from paracle_guard.cli_kit.options import NoCacheOption, PolicyOption
from paracle_guard.errors import UsageError
from paracle_guard.report import DOCUMENT

app = command_app()

BACKENDS = {"docker": "the local Docker Engine",
            "kubernetes": "the current kubeconfig context (the image by digest)"}
WORKLOADS = {"pod": "a bare Pod", "job": "a Job",
             # Agent Sandbox resources, printed with --dry-run (launcher/k8s_sandbox.py)
             "sandbox": "a Sandbox (--dry-run)",
             "sandbox-template": "a SandboxTemplate (--dry-run)",
             "sandbox-claim": "a SandboxTemplate, a SandboxWarmPool and a SandboxClaim "
                              "(--dry-run)"}


# Long only in its declarations: each of docker run's options it takes, with its help.
@app.command("run", context_settings={"allow_interspersed_args": False})
def run_command(
    command: Annotated[
        list[str], typer.Argument(metavar="COMMAND", help="The command and its arguments, "
                                  "after --.")
    ],
    image: Annotated[
        str, typer.Option("--image", metavar="IMAGE",
                          help="Local image: tag, ID or digest (never pulled).")
    ],
    policy: PolicyOption = None,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", metavar="DIR", help="Host folder mounted at /workspace "
                     "(its real path: no symlinks, no system or home folder itself)."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", metavar="SECONDS",
                     help="Seconds before the command is killed (exit 124)."),
    ] = None,
    memory: Annotated[
        str | None, typer.Option("--memory", metavar="SIZE",
                                 help="Memory limit (256m, 1g), at most the policy's.")
    ] = None,
    cpus: Annotated[
        float | None, typer.Option("--cpus", metavar="CPUS",
                                   help="CPU limit, at most the policy's.")
    ] = None,
    pids: Annotated[
        int | None, typer.Option("--pids", metavar="COUNT",
                                 help="Process limit, at most the policy's.")
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", metavar="NAME[=VALUE]",
                     help="An environment variable; NAME alone passes the host's value "
                     "(repeatable). Nothing else from the host's environment is passed; "
                     "secret-looking names are refused here (use --env-file)."),
    ] = None,
    env_file: Annotated[
        list[Path] | None,
        typer.Option("--env-file", metavar="FILE",
                     help="A file of NAME=VALUE lines, as docker run reads it (repeatable); "
                     "secret-looking names only from a file only you can read (chmod 600)."),
    ] = None,
    mount: Annotated[
        list[str] | None,
        typer.Option("--mount", metavar="HOST:CONTAINER:ro",
                     help="A host folder or file mounted read-only (repeatable); the same "
                     "checks as --workspace."),
    ] = None,
    strict_env: Annotated[
        bool, typer.Option("--strict-env", help="Refuse an --env NAME that is not set here "
                           "(by default it is passed as nothing, with a warning).")
    ] = False,
    network: Annotated[
        str | None,
        typer.Option("--network", metavar="MODE",
                     help="Network mode: none, or the policy's (the default)."),
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option("--runtime", metavar="NAME",
                     help="Engine runtime (runsc for gVisor), one of the policy's "
                     "controls.runtime.allowed (default: the first of them)."),
    ] = None,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Feed standard input to the command.")
    ] = False,
    report_format: Annotated[
        str, options.format_option(DOCUMENT, names=("--report",),
                                   what="Format of the report on refusal")
    ] = "text",
    keep: Annotated[
        bool, typer.Option("--keep", help="Do not remove the container when the command ends.")
    ] = False,
    audit_log: Annotated[
        str | None,
        typer.Option("--audit-log", metavar="FILE",
                     help="Append one JSON line per launch to FILE (default: the policy's "
                     "audit_log)."),
    ] = None,
    backend: Annotated[
        str, options.choice_option("--backend", choices=BACKENDS, metavar="BACKEND",
                                   what="Where to run", default="docker")
    ] = "docker",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="kubernetes: print the verified manifests "
                           "instead of submitting them.")
    ] = False,
    workload: Annotated[
        str, options.choice_option("--as", choices=WORKLOADS, metavar="KIND",
                                   what="kubernetes: what to run the command as",
                                   default="pod")
    ] = "pod",
    namespace: Annotated[
        str | None, typer.Option("--namespace", metavar="NAME",
                                 help="kubernetes: namespace to run in (default: the "
                                 "kubeconfig context's).")
    ] = None,
    no_cache: NoCacheOption = False,
) -> None:
    """Run COMMAND in a sandbox that the policy makes and the rules verify before it starts.

    Exits with the command's exit code; 124 when it ran past --timeout (said on
    stderr); 127 when the command is not in the image (checked before anything is
    created).
    Exits 125 when the launch is refused or fails (the reason is on stderr), and
    128+N when interrupted by signal N (the sandbox is removed first).
    """
    if backend == "docker" and (dry_run or workload != "pod" or namespace is not None):
        raise UsageError("--dry-run, --as and --namespace are for --backend kubernetes")
    from paracle_guard.launcher.cli_run import run_cli

    raise typer.Exit(run_cli(
        image=image, command=command, policy=policy, workspace=workspace, timeout=timeout,
        memory=memory, cpus=cpus, pids=pids, env=env or [], env_files=env_file or [],
        mounts=mount or [], network=network, runtime=runtime, stdin=stdin,
        report_format=report_format,
        keep=keep, audit_log=audit_log, backend=backend, dry_run=dry_run, workload=workload,
        namespace=namespace, strict_env=strict_env, cache=not no_cache,
        progress=progress([report_format]),
    ))

