"""The command line: parses arguments, calls the layers, maps the Report to an exit code.

Exit codes: 0 nothing at or above ``fail_on``; 1 findings; 2 usage, policy or I/O
errors (one clear line on stderr). Heavy modules are imported inside the
commands that need them: ``lint`` never imports the Docker SDK, and imports
rich only to colour a terminal.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from paracle_guard import __version__
from paracle_guard.errors import GuardError, InputError

if TYPE_CHECKING:
    from paracle_guard.engine import Plan
    from paracle_guard.policy.models import Policy
    from paracle_guard.report.models import Report
    from paracle_guard.severity import Severity
    from paracle_guard.sources.compose_engine import EngineDefaults

app = typer.Typer(
    name="paracle-guard",
    help="Policy-as-code compliance scanner and enforcer for container sandboxes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(help="Validate, show and describe policies.", no_args_is_help=True)
rules_app = typer.Typer(
    help="List the rules, or explain one.", invoke_without_command=True
)
app.add_typer(policy_app, name="policy")
app.add_typer(rules_app, name="rules")
sandbox_app = typer.Typer(help="Self-tests of sandbox images.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
authz_app = typer.Typer(help="Guard the Docker Engine itself: an authorization plugin.",
                        no_args_is_help=True)
app.add_typer(authz_app, name="authz")

F = TypeVar("F", bound=Callable[..., Any])

FORMAT_HELP = "Output format: text, json, sarif, github or junit."
SEVERITIES = ("error", "warning", "info")


def fails_cleanly(command: F) -> F:
    """Turn a GuardError into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except GuardError as error:
            typer.echo(f"paracle-guard: error: {error}", err=True)
            raise typer.Exit(error.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"paracle-guard {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Policy-as-code compliance scanner and enforcer for container sandboxes."""


PolicyOption = Annotated[
    str | None,
    typer.Option(
        "--policy",
        "-p",
        help="Policy file or built-in name. Default: .paracle-guard.yaml here or at the "
        "git root, else the built-in 'sandbox'.",
    ),
]
FormatOption = Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write the report to this file.")
]
FailOnOption = Annotated[
    str | None,
    typer.Option(
        "--fail-on",
        help="Lowest severity that fails the run (error, warning, info). Default: the policy's.",
    ),
]
IgnoreOption = Annotated[
    list[str] | None,
    typer.Option(
        "--ignore", help="Rule code or name to leave out (repeatable, or comma-separated)."
    ),
]


@app.command()
@fails_cleanly
def lint(
    paths: Annotated[
        list[str],
        typer.Argument(help="Dockerfiles, or folders searched for Dockerfile, Dockerfile.*, "
                       "*.Dockerfile, *.dockerfile and Containerfile; - reads standard input."),
    ],
    policy: PolicyOption = None,
    output_format: FormatOption = "text",
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Build stage to check (default: the last).")
    ] = None,
    build_arg: Annotated[
        list[str] | None,
        typer.Option("--build-arg", help="NAME=VALUE, as given to docker build (repeatable)."),
    ] = None,
    ignore: IgnoreOption = None,
    stdin_filename: Annotated[
        str, typer.Option("--stdin-filename",
                          help="The name findings and waivers use for - (standard input).")
    ] = "Dockerfile",
) -> None:
    """Check Dockerfiles against the policy."""
    from paracle_guard.sources.discovery import find_dockerfiles
    from paracle_guard.sources.dockerfile import load_dockerfile, parse_dockerfile

    _check_format(output_format)
    args = _build_args(build_arg or [])
    plan, report = _plan_and_report(policy, ignore, fail_on)
    checked = 0
    if "-" in paths:
        # Editors and pipes hand over an unsaved buffer this way.
        content = sys.stdin.buffer.read()
        report.add(plan.evaluate(
            parse_dockerfile(content, stdin_filename, target=target, build_args=args)))
        checked += 1
    for path in find_dockerfiles(p for p in paths if p != "-"):
        report.add(plan.evaluate(load_dockerfile(path, target=target, build_args=args)))
        checked += 1
    if checked == 0:
        raise InputError(f"no Dockerfiles found in: {', '.join(paths)}")
    _emit(report, output_format, output)


@app.command()
@fails_cleanly
def image(
    refs: Annotated[
        list[str] | None,
        typer.Argument(help="Local image references or IDs (never pulled)."),
    ] = None,
    input_archive: Annotated[
        Path | None,
        typer.Option("--input", "-i", help="Check a `docker save` archive instead; no daemon "
                     "needed. REF then picks an image inside it."),
    ] = None,
    policy: PolicyOption = None,
    output_format: FormatOption = "text",
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    ignore: IgnoreOption = None,
) -> None:
    """Check built images without running them: user, packages, setuid files, secrets."""
    from paracle_guard.sources.image import load_image, load_image_archive

    _check_format(output_format)
    if not refs and input_archive is None:
        raise InputError("name an image (paracle-guard image REF) or an archive (--input FILE)")
    plan, report = _plan_and_report(policy, ignore, fail_on)
    if input_archive is not None:
        picks: list[str | None] = list(refs) if refs else [None]
        for ref in picks:
            report.add(plan.evaluate(load_image_archive(input_archive, ref)))
    else:
        from paracle_guard.docker_client import Engine

        engine = Engine.connect()
        for ref in refs or []:
            report.add(plan.evaluate(load_image(ref, engine)))
    _emit(report, output_format, output)


@rules_app.callback()
@fails_cleanly
def rules_table(ctx: typer.Context) -> None:
    """List every rule with its code, name, default severity and what it checks."""
    if ctx.invoked_subcommand is not None:
        return
    from paracle_guard.rules.base import all_rules

    rows = [(r.code, r.name, r.severity.value, ",".join(sorted(r.kinds)), r.summary)
            for r in all_rules()]
    if _wants_color(None):
        from rich.console import Console
        from rich.table import Table

        table = Table("code", "name", "severity", "applies to", "what it finds")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        typer.echo("  ".join([*cells, row[4]]))


@rules_app.command("explain")
@fails_cleanly
def rules_explain(rule_id: Annotated[str, typer.Argument(help="Rule code or name.")]) -> None:
    """Explain one rule: what it finds, why it matters, how to fix it."""
    from paracle_guard.rules.base import find_rule

    found = find_rule(rule_id)
    if found is None:
        raise InputError(f"{rule_id}: no rule has this code or name (see `paracle-guard rules`)")
    lines = [
        f"{found.code} {found.name} [{found.severity.value}]",
        f"applies to: {', '.join(sorted(found.kinds))}",
        "",
        found.summary,
    ]
    if found.rationale:
        lines += ["", "Why: " + found.rationale]
    lines += ["", "Fix: " + found.fix]
    names = {"container": "container", "compose": "compose", "k8s": "Kubernetes",
             "image": "image", "dockerfile": "Dockerfile"}
    lines += [f"Fix ({names[kind]}): {fix}" for kind, fix in found.fixes.items()]
    if found.references:
        lines += ["", "References: " + "; ".join(found.references)]
    typer.echo("\n".join(lines))


@policy_app.command("validate")
@fails_cleanly
def policy_validate(
    files: Annotated[list[Path], typer.Argument(help="Policy files to validate.")],
) -> None:
    """Validate policy files against the schema (and their extends chain)."""
    from paracle_guard.engine import Plan
    from paracle_guard.policy.loader import PolicyValidationError, validate_policy_file

    invalid = 0
    for file in files:
        try:
            loaded = validate_policy_file(file)
            # Compiling resolves rule names in rules/exceptions/custom_rules.
            Plan.compile(loaded)
        except PolicyValidationError as error:
            # Here, unlike in lint, the user asked for every problem at once.
            for problem in error.problems:
                typer.echo(f"paracle-guard: error: {problem}", err=True)
            invalid += 1
            continue
        typer.echo(f"{file}: valid (policy {loaded.metadata.name}, sha256 {loaded.sha256[:12]})")
    if invalid:
        raise typer.Exit(2)


@policy_app.command("show")
@fails_cleanly
def policy_show(
    name: Annotated[
        str | None, typer.Argument(help="Policy file or built-in name (default: as lint finds it).")
    ] = None,
) -> None:
    """Print the effective policy, after extends and defaults."""
    from paracle_guard.policy.loader import effective_policy_yaml, load_policy

    typer.echo(effective_policy_yaml(load_policy(name)), nl=False)


@policy_app.command("export")
@fails_cleanly
def policy_export(
    name: Annotated[
        str | None, typer.Argument(help="Policy file or built-in name (default: as lint finds it).")
    ] = None,
    export_format: Annotated[
        str, typer.Option("--format", "-f", help="Export format: kubernetes.")
    ] = "kubernetes",
    namespace: Annotated[
        str, typer.Option("--namespace", help="The namespace the exported objects guard.")
    ] = "paracle-sandboxes",
    output: OutputOption = None,
) -> None:
    """Export the policy for a cluster: PSA labels, NetworkPolicy, ValidatingAdmissionPolicy."""
    from paracle_guard.launcher.k8s_backend import render
    from paracle_guard.policy.export import export_kubernetes
    from paracle_guard.policy.loader import load_policy

    if export_format != "kubernetes":
        raise InputError(f"--format {export_format}: expected kubernetes")
    try:
        objects = export_kubernetes(load_policy(name), namespace)
    except ValueError as error:
        raise InputError(f"--namespace {namespace}: {error}") from None
    if output is None:
        typer.echo(render(objects), nl=False)
    else:
        _write_atomically(output, render(objects))


@policy_app.command("schema")
@fails_cleanly
def policy_schema() -> None:
    """Print the JSON Schema of the policy file."""
    from paracle_guard.policy.loader import policy_schema_text

    typer.echo(policy_schema_text(), nl=False)


@policy_app.command("list")
@fails_cleanly
def policy_list() -> None:
    """List the built-in policies."""
    from paracle_guard.policy.loader import builtin_policy_names

    for name in builtin_policy_names():
        typer.echo(name)


# --- shared plumbing -------------------------------------------------------------


def _plan_and_report(
    policy_spec: str | None, ignore: Iterable[str] | None, fail_on: str | None
) -> tuple[Plan, Report]:
    """The compiled policy, and the empty report its results will go into."""
    from paracle_guard.engine import Plan
    from paracle_guard.policy.loader import load_policy
    from paracle_guard.report.models import PolicyRef, Report, ToolInfo

    plan = Plan.compile(load_policy(policy_spec), ignore=list(ignore or []))
    policy: Policy = plan.policy
    report = Report(
        tool=ToolInfo(version=__version__),
        policy=PolicyRef(name=policy.metadata.name, sha256=policy.sha256),
        fail_on=_severity(fail_on) if fail_on else policy.fail_on,
        rules=plan.rule_info(),
    )
    return plan, report


def _severity(value: str) -> Severity:
    from paracle_guard.severity import Severity

    if value.lower() not in SEVERITIES:
        raise InputError(f"--fail-on {value}: expected one of {', '.join(SEVERITIES)}")
    return Severity(value.lower())


def _check_format(output_format: str) -> None:
    from paracle_guard.report import FORMATS

    if output_format not in FORMATS:
        raise InputError(f"--format {output_format}: expected one of {', '.join(FORMATS)}")


def _build_args(pairs: list[str]) -> dict[str, str]:
    """NAME=VALUE pairs; a bare NAME takes its value from the environment, as docker build does."""
    args: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not name.strip():
            raise InputError(f"--build-arg {pair!r}: expected NAME=VALUE")
        if not sep:
            if name not in os.environ:
                continue
            value = os.environ[name]
        args[name.strip()] = value
    return args


def _wants_color(output: Path | None) -> bool:
    return output is None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _emit(report: Report, output_format: str, output: Path | None) -> None:
    from paracle_guard.report import render

    color = output_format == "text" and _wants_color(output)
    rendered = render(report, output_format, color=color)
    if output is None:
        sys.stdout.write(rendered)
        sys.stdout.flush()
    else:
        _write_atomically(output, rendered)
    raise typer.Exit(1 if report.failed else 0)


def _write_atomically(path: Path, text: str) -> None:
    """Write next to the target, then rename: a failed run never leaves half a report.

    A target that exists but is not a regular file (/dev/stdout, a FIFO, a device)
    is written into as it is: renaming over it would replace it.
    """
    try:
        if path.exists() and not path.is_file():
            with path.open("w", encoding="utf-8") as stream:
                stream.write(text)
            return
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as error:
        raise InputError(f"--output {path}: cannot write: {error.strerror or error}") from None


# --- containers and compose files (issue 4) -----------------------------------------


@app.command("container")
@fails_cleanly
def container_command(
    containers: Annotated[
        list[str] | None, typer.Argument(help="Containers to check, by name or ID.")
    ] = None,
    all_containers: Annotated[
        bool, typer.Option("--all", help="Also check every container on the engine, any state.")
    ] = False,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="Also check the containers with this label, KEY or "
                     "KEY=VALUE (repeatable: all must match; narrows --all)."),
    ] = None,
    policy: PolicyOption = None,
    output_format: FormatOption = "text",
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    ignore: IgnoreOption = None,
) -> None:
    """Check created or running containers (their docker inspect) against the policy."""
    from paracle_guard.sources.container import load_containers

    _check_format(output_format)
    if not containers and not all_containers and not label:
        raise InputError("name at least one container, or use --all or --label")
    plan, report = _plan_and_report(policy, ignore, fail_on)
    subjects = load_containers(containers or [], all=all_containers, labels=label or [])
    if not subjects:
        raise InputError("no container on the engine matches")
    for subject in subjects:
        report.add(plan.evaluate(subject))
    _emit(report, output_format, output)


@app.command("compose")
@fails_cleanly
def compose_command(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Compose files (each read alone, as docker compose -f FILE) or "
                       "folders (read as docker compose run there: COMPOSE_FILE, or the default "
                       "file and its override). Default: this folder."),
    ] = None,
    file: Annotated[
        list[str] | None,
        typer.Option("--file", "-f", help="Compose file of one project, merged in order like "
                     "docker compose -f A -f B (repeatable)."),
    ] = None,
    folders: Annotated[
        bool, typer.Option("--folders", help="Check the project of each PATH's folder (for "
                           "pre-commit, which passes the changed files).")
    ] = False,
    cgroup_version: Annotated[
        int | None,
        typer.Option("--cgroup-version", help="The checked hosts' cgroup version (1 or 2), for "
                     "services without cgroup:. Default: ask the Docker Engine; assume 1 "
                     "without one."),
    ] = None,
    with_dockerfiles: Annotated[
        bool, typer.Option("--with-dockerfiles",
                           help="Also lint the Dockerfiles the services are built from.")
    ] = False,
    policy: PolicyOption = None,
    output_format: Annotated[
        str, typer.Option("--format", help=FORMAT_HELP + " (-f names a compose file here, "
                          "as in docker compose.)")
    ] = "text",
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    ignore: IgnoreOption = None,
) -> None:
    """Check each service of compose projects against the policy, as Compose merges them."""
    from paracle_guard.sources.compose import load_compose, load_compose_files
    from paracle_guard.sources.dockerfile import load_dockerfile

    _check_format(output_format)
    if cgroup_version not in (None, 1, 2):
        raise InputError(f"--cgroup-version {cgroup_version}: expected 1 or 2")
    if file and paths:
        raise InputError("give one project's files with -f, or paths to check, not both")
    _check_compose_files(file or [])
    engine = _engine_defaults(cgroup_version)
    plan, report = _plan_and_report(policy, ignore, fail_on)
    if file:
        projects = [load_compose_files(file, engine=engine)]
    else:
        targets = paths or ["."]
        if folders:
            targets = list(dict.fromkeys(os.path.dirname(p) or "." for p in targets))
        projects = [load_compose(target, engine=engine) for target in targets]
    linted: set[tuple[str, str, tuple[str, ...]]] = set()
    for subject in (subject for project in projects for subject in project):
        report.add(plan.evaluate(subject))
        dockerfile = subject.metadata.get("dockerfile")
        if not with_dockerfiles or not isinstance(dockerfile, str):
            continue
        target = str(subject.metadata.get("build_target") or "")
        args = subject.metadata.get("build_args") or []
        key = (dockerfile, target, tuple(args))
        if key in linted:  # services sharing one build are linted once
            continue
        linted.add(key)
        try:
            built = load_dockerfile(dockerfile, target=target or None,
                                    build_args=_build_args(list(args)))
        except InputError as error:
            raise InputError(f"{subject.target}: build: {error}") from None
        report.add(plan.evaluate(built))
    _emit(report, output_format, output)


def _check_compose_files(files: list[str]) -> None:
    from paracle_guard.report import FORMATS

    for name in files:
        if name in FORMATS and not os.path.exists(name):
            raise InputError(f"-f {name}: no such compose file (-f names a compose file, as in "
                             f"docker compose; the report format is --format {name})")


def _engine_defaults(cgroup_version: int | None) -> Callable[[], EngineDefaults]:
    """What the checked host's engine fills in: told by --cgroup-version, else asked of
    the engine (only when a service leaves something to its default)."""
    from paracle_guard.sources.compose_engine import (
        ASSUMED_CGROUP_V1,
        defaults_from_info,
        engine_defaults,
    )

    if cgroup_version is not None:
        return lambda: engine_defaults(cgroup_version)

    def ask() -> EngineDefaults:
        from paracle_guard.docker_client import Engine

        try:
            with Engine.connect() as engine:
                return defaults_from_info(engine.info())
        except GuardError:
            return ASSUMED_CGROUP_V1

    return ask


# --- Kubernetes manifests (issue 7) ---------------------------------------------------


@app.command("k8s")
@fails_cleanly
def k8s_command(
    paths: Annotated[
        list[str],
        typer.Argument(help="Manifest files (multi-document YAML and List kinds; Pods, "
                       "Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs), "
                       "or folders searched for *.yaml, *.yml and *.json; - reads standard "
                       "input."),
    ],
    policy: PolicyOption = None,
    output_format: FormatOption = "text",
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    ignore: IgnoreOption = None,
    stdin_filename: Annotated[
        str, typer.Option("--stdin-filename",
                          help="The name findings and waivers use for - (standard input).")
    ] = "stdin.yaml",
    folders: Annotated[
        bool, typer.Option("--folders", help="Read the folder of each PATH (for pre-commit, "
                           "which passes the changed files): the NetworkPolicies and volumes "
                           "beside a pod count for it.")
    ] = False,
) -> None:
    """Check every container of Kubernetes workloads against the policy, each Pod once."""
    from paracle_guard.sources.discovery import find_manifests
    from paracle_guard.sources.k8s import load_manifests

    _check_format(output_format)
    plan, report = _plan_and_report(policy, ignore, fail_on)
    stdin = None
    if "-" in paths:
        stdin = (stdin_filename, sys.stdin.buffer.read())
    if folders:
        paths = list(dict.fromkeys(os.path.dirname(p) or "." for p in paths if p != "-"))
    files = list(find_manifests(p for p in paths if p != "-"))
    if not files and stdin is None:
        raise InputError(f"no manifests (*.yaml, *.yml, *.json) found in: {', '.join(paths)}")
    for subject in load_manifests(files, stdin=stdin):
        report.add(plan.evaluate(subject))
    _emit(report, output_format, output)


# --- the enforced launcher (issue 5) -------------------------------------------------


@app.command("run", context_settings={"allow_interspersed_args": False})
def run_command(
    command: Annotated[
        list[str], typer.Argument(help="The command and its arguments, after --.")
    ],
    image: Annotated[
        str, typer.Option("--image", help="Local image: tag, ID or digest (never pulled).")
    ],
    policy: PolicyOption = None,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", help="Host folder mounted at /workspace (its real path: "
                     "no symlinks, no system or home folder itself)."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Seconds before the command is killed (exit 124)."),
    ] = None,
    memory: Annotated[
        str | None, typer.Option("--memory", help="Memory limit (256m, 1g), at most the policy's.")
    ] = None,
    cpus: Annotated[
        float | None, typer.Option("--cpus", help="CPU limit, at most the policy's.")
    ] = None,
    pids: Annotated[
        int | None, typer.Option("--pids", help="Process limit, at most the policy's.")
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", help="NAME=VALUE, or NAME to pass the host's value "
                     "(repeatable). Nothing else from the host's environment is passed; "
                     "secret-looking names are refused here (use --env-file)."),
    ] = None,
    env_file: Annotated[
        list[Path] | None,
        typer.Option("--env-file", help="A file of NAME=VALUE lines, as docker run reads it "
                     "(repeatable); secret-looking names only from a file only you can read "
                     "(chmod 600)."),
    ] = None,
    mount: Annotated[
        list[str] | None,
        typer.Option("--mount", help="HOST:CONTAINER:ro, a host folder or file mounted "
                     "read-only (repeatable); the same checks as --workspace."),
    ] = None,
    network: Annotated[
        str | None,
        typer.Option("--network", help="Network mode: none, or the policy's (the default)."),
    ] = None,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Feed standard input to the command.")
    ] = False,
    report_format: Annotated[
        str, typer.Option("--report", help="Format of the report on refusal: text or json.")
    ] = "text",
    keep: Annotated[
        bool, typer.Option("--keep", help="Do not remove the container when the command ends.")
    ] = False,
    audit_log: Annotated[
        str | None,
        typer.Option("--audit-log", help="Append one JSON line per launch to this file "
                     "(default: the policy's audit_log)."),
    ] = None,
    backend: Annotated[
        str, typer.Option("--backend", help="Where to run: docker, or kubernetes (the "
                          "current kubeconfig context; image by digest).")
    ] = "docker",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="kubernetes: print the verified manifests "
                           "instead of submitting them.")
    ] = False,
    workload: Annotated[
        str, typer.Option("--as", help="kubernetes: run as a pod or a job.")
    ] = "pod",
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="kubernetes: namespace to run in "
                                 "(default: the kubeconfig context's).")
    ] = None,
) -> None:
    """Run COMMAND in a sandbox that the policy makes and the rules verify before it starts.

    Exits with the command's exit code, or 124 when the command timed out.
    Exits 125 when the launch is refused or fails (the reason is on stderr), and
    128+N when interrupted by signal N (the sandbox is removed first).
    """
    if backend not in ("docker", "kubernetes"):
        typer.echo(f"paracle-guard: error: --backend {backend}: expected docker or kubernetes",
                   err=True)
        raise typer.Exit(2)
    if backend == "docker" and (dry_run or workload != "pod" or namespace is not None):
        typer.echo("paracle-guard: error: --dry-run, --as and --namespace are for "
                   "--backend kubernetes", err=True)
        raise typer.Exit(2)
    from paracle_guard.launcher.cli_run import run_cli

    raise typer.Exit(run_cli(
        image=image, command=command, policy=policy, workspace=workspace, timeout=timeout,
        memory=memory, cpus=cpus, pids=pids, env=env or [], env_files=env_file or [],
        mounts=mount or [], network=network, stdin=stdin, report_format=report_format,
        keep=keep, audit_log=audit_log, backend=backend, dry_run=dry_run, workload=workload,
        namespace=namespace,
    ))


@app.command("doctor")
@fails_cleanly
def doctor_command(
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="Output format: text or json.")
    ] = "text",
) -> None:
    """Check that the Docker Engine can enforce the default policy (exit 0), else exit 1."""
    from paracle_guard.launcher.doctor import diagnose

    if output_format not in ("text", "json"):
        raise InputError(f"--format {output_format}: expected text or json")
    diagnosis = diagnose()
    typer.echo(diagnosis.render_json() if output_format == "json" else diagnosis.render_text(),
               nl=False)
    raise typer.Exit(0 if diagnosis.ok else 1)


@sandbox_app.command("test")
@fails_cleanly
def sandbox_test_command(
    image: Annotated[
        str, typer.Option("--image", help="Local image to test: tag, ID or digest (never pulled).")
    ] = "paracle/sandbox:latest",
    policy: PolicyOption = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="Output format: text or json.")
    ] = "text",
) -> None:
    """Launch IMAGE through the enforced launcher and prove its promises from inside.

    Exits 0 when every promise holds, 1 when one is broken or could not be checked.
    """
    from paracle_guard.launcher.probe import check_format, render, run_probe

    check_format(output_format)
    report = run_probe(image, policy=policy)
    typer.echo(render(report, output_format), nl=False)
    raise typer.Exit(0 if report.ok else 1)


@authz_app.command("serve")
@fails_cleanly
def authz_serve_command(
    policy: PolicyOption = None,
    socket_path: Annotated[
        str, typer.Option("--socket", help="Where to listen; the file name (less .sock) is the "
                          "plugin's name for dockerd --authorization-plugin.")
    ] = "/run/docker/plugins/paracle-guard.sock",
    audit_log: Annotated[
        str | None,
        typer.Option("--audit-log", help="Append one JSON line per allow and deny here "
                     "(default: the policy's audit_log, else standard output)."),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="The engine being guarded, read for image configs and "
                     "containers (default: DOCKER_HOST, else unix:///var/run/docker.sock)."),
    ] = None,
    decision_timeout: Annotated[
        float, typer.Option("--decision-timeout", help="Seconds a decision may take; past "
                            "them the request is refused.")
    ] = 10.0,
) -> None:
    """Serve the Docker authorization plugin: the policy, enforced for every client."""
    from paracle_guard.authz import run_serve

    raise typer.Exit(run_serve(
        policy=policy, socket_path=socket_path, audit_log=audit_log, engine_host=engine,
        deadline=decision_timeout,
    ))


def main() -> None:
    app()
