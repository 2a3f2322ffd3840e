"""The command line: parses arguments, calls the layers, maps the Report to an exit code.

Exit codes: 0 nothing at or above ``fail_on``; 1 findings; 2 usage, policy or I/O
errors (one line on stderr, ``paracle-guard: error: ...``). How commands look and
fail, and the options they share, live in ``cli_kit``. Heavy modules are imported
inside the commands that need them: ``lint`` never imports the Docker SDK, and
imports rich only to colour a terminal.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from paracle_guard import __version__
from paracle_guard.cli_kit import options
from paracle_guard.cli_kit.click_api import Context, get_current_context
from paracle_guard.cli_kit.house import (
    CONTEXT_SETTINGS,
    PROG,
    GuardGroup,
    print_error,
    print_warning,
    report_guard_error,
)
from paracle_guard.cli_kit.outputs import (
    STDOUT,
    Destination,
    destinations,
    refuse_inputs,
    wants_color,
    write_file,
    write_stdout,
)
from paracle_guard.errors import GuardError, InputError, UsageError, did_you_mean
from paracle_guard.report import FORMATS

if TYPE_CHECKING:
    from paracle_guard.disk_cache import DiskCache
    from paracle_guard.engine import CatalogueEntry, Plan
    from paracle_guard.policy.models import Policy
    from paracle_guard.progress import ReadProgress
    from paracle_guard.report.baseline import Baseline
    from paracle_guard.report.models import Report
    from paracle_guard.sources.compose_engine import EngineDefaults

app = typer.Typer(
    name=PROG,
    cls=GuardGroup,
    context_settings=CONTEXT_SETTINGS,
    help="Policy-as-code compliance scanner and enforcer for container sandboxes.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
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
cache_app = typer.Typer(help="The cache of image facts: where it is, how big, clear it.",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")

F = TypeVar("F", bound=Callable[..., Any])


def fails_cleanly(command: F) -> F:
    """Turn a GuardError into the house's one line on stderr and its exit code (2).

    Every command's class does this too; the decorator keeps the handling inside
    the function for callers that invoke it directly.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except GuardError as error:
            context = get_current_context(silent=True)
            raise typer.Exit(report_guard_error(error, context)) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True,
                     help="Show the version and exit."),
    ] = False,
) -> None:
    """Policy-as-code compliance scanner and enforcer for container sandboxes."""


# The options every report command shares. _plan_and_report and _emit read them
# from the command's context by these parameter names.
PolicyOption = Annotated[str | None, options.policy_option()]
FormatOption = Annotated[list[str] | None, options.format_option(FORMATS, repeatable=True)]
OutputOption = Annotated[list[str] | None, options.output_option()]
FailOnOption = Annotated[str | None, options.fail_on_option()]
IgnoreOption = Annotated[list[str] | None, options.ignore_option()]
ColorOption = Annotated[str | None, options.color_option()]
BaselineOption = Annotated[str | None, options.baseline_option()]
WriteBaselineOption = Annotated[str | None, options.write_baseline_option()]
TextOrJsonOption = Annotated[str, options.format_option(options.TEXT_OR_JSON)]
NoCacheOption = Annotated[
    bool,
    typer.Option("--no-cache", help="Read every layer of the image again; neither use nor "
                 "fill the cache of image facts."),
]


@app.command()
@fails_cleanly
def lint(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH", help="Dockerfiles, or folders searched for Dockerfile, "
                       "Dockerfile.*, *.Dockerfile, *.dockerfile and Containerfile; - reads "
                       "standard input."),
    ],
    policy: PolicyOption = None,
    output_format: FormatOption = None,
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    target: Annotated[
        str | None, typer.Option("--target", metavar="STAGE",
                                 help="Build stage to check (default: the last).")
    ] = None,
    build_arg: Annotated[
        list[str] | None,
        typer.Option("--build-arg", metavar="NAME[=VALUE]",
                     help="A build argument, as given to docker build (repeatable)."),
    ] = None,
    ignore: IgnoreOption = None,
    stdin_filename: Annotated[
        str, typer.Option("--stdin-filename", metavar="NAME",
                          help="The name findings and waivers use for - (standard input).")
    ] = "Dockerfile",
    color: ColorOption = None,
    baseline: BaselineOption = None,
    write_baseline: WriteBaselineOption = None,
) -> None:
    """Check Dockerfiles against the policy."""
    from paracle_guard.sources.discovery import find_dockerfiles
    from paracle_guard.sources.dockerfile import load_dockerfile, parse_dockerfile

    args = _build_args(build_arg or [])
    plan, report = _plan_and_report(policy, ignore, fail_on)
    checked = 0
    if "-" in paths:
        # Editors and pipes hand over an unsaved buffer this way.
        content = _read_stdin()
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
        typer.Argument(metavar="IMAGE", help="Local image references or IDs (never pulled); "
                       "with --input, the images of the archive to check (default: all)."),
    ] = None,
    input_archive: Annotated[
        str | None,
        typer.Option("--input", "-i", metavar="FILE",
                     help="Check a `docker save` archive instead (plain or gzip; - reads "
                     "standard input); no daemon needed. Each image in it is its own target."),
    ] = None,
    policy: PolicyOption = None,
    output_format: FormatOption = None,
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    ignore: IgnoreOption = None,
    color: ColorOption = None,
    baseline: BaselineOption = None,
    write_baseline: WriteBaselineOption = None,
    no_cache: NoCacheOption = False,
) -> None:
    """Check built images without running them: user, packages, setuid files, secrets."""
    from paracle_guard.sources.image import load_archive_images, load_image

    if not refs and input_archive is None:
        raise UsageError("name an image (paracle-guard image REF) or an archive (--input FILE)")
    plan, report = _plan_and_report(policy, ignore, fail_on)
    if input_archive is not None:
        for subject in load_archive_images(input_archive, refs or []):
            report.add(plan.evaluate(subject))
    else:
        from paracle_guard.docker_client import Engine

        engine = Engine.connect()
        cache = _facts_cache(no_cache)
        progress = _progress(output_format)
        for ref in refs or []:
            report.add(plan.evaluate(load_image(ref, engine, cache=cache, progress=progress)))
    _emit(report, output_format, output)


RulesPolicyOption = Annotated[str | None, options.policy_option(
    help="Show the rules as this policy (file or built-in name) has them: its custom rules "
    "too, and each rule's severity there. Default: the built-in rules at their default "
    "severities.")]


@rules_app.callback()
@fails_cleanly
def rules_table(
    ctx: typer.Context,
    policy: RulesPolicyOption = None,
    output_format: TextOrJsonOption = "text",
    color: ColorOption = None,
) -> None:
    """List every rule with its code, name, severity and what it checks."""
    if ctx.invoked_subcommand is not None:
        return
    from paracle_guard.cli_kit.outputs import wants_color
    from paracle_guard.cli_kit.rule_listing import render_json, render_table

    entries, policy_name = _rule_catalogue(policy)
    if output_format == "json":
        typer.echo(render_json(entries, policy_name), nl=False)
    else:
        typer.echo(render_table(entries, color=wants_color(color, _stdout_is_tty())), nl=False)


@rules_app.command("explain")
@fails_cleanly
def rules_explain(
    rule_id: Annotated[str, typer.Argument(metavar="RULE", help="Rule code or name.",
                                           autocompletion=options.complete_rules)],
    policy: RulesPolicyOption = None,
    output_format: TextOrJsonOption = "text",
) -> None:
    """Explain one rule: what it finds, why it matters, how to fix it."""
    import json

    from paracle_guard.cli_kit.rule_listing import as_json, explain
    from paracle_guard.rules.base import find_rule

    entries, policy_name = _rule_catalogue(policy)
    found = find_rule(rule_id, [entry.rule for entry in entries])
    if found is None:
        words = [word for entry in entries for word in (entry.rule.code, entry.rule.name)]
        raise InputError(f"{rule_id}: no rule has this code or name"
                         f"{did_you_mean(rule_id, words)} (see 'paracle-guard rules')")
    entry = next(entry for entry in entries if entry.rule is found)
    if output_format == "json":
        typer.echo(json.dumps(as_json(entry), indent=2, ensure_ascii=False))
    else:
        typer.echo(explain(entry, policy_name), nl=False)


def _rule_catalogue(policy: str | None) -> tuple[list[CatalogueEntry], str | None]:
    """The rules as ``policy`` sees them; without one, every built-in rule as it ships."""
    from paracle_guard.engine import CatalogueEntry, Plan
    from paracle_guard.policy.loader import load_policy
    from paracle_guard.rules.base import all_rules

    if policy is None:
        return [CatalogueEntry(rule, rule.severity.value, custom=False)
                for rule in all_rules()], None
    plan = Plan.compile(load_policy(policy))
    return plan.catalogue, plan.policy.metadata.name


@policy_app.command("validate")
@fails_cleanly
def policy_validate(
    specs: Annotated[
        list[str],
        typer.Argument(metavar="FILE|NAME", help="Policy files or built-in names to validate.",
                       autocompletion=options.complete_policies),
    ],
    strict: Annotated[
        bool, typer.Option("--strict", help="Treat warnings (an expired exception) as errors.")
    ] = False,
) -> None:
    """Validate policies against the schema, their extends chain and the rules they name.

    Every problem is reported as FILE:LINE: PATH: what is wrong. Exits 2 when any
    policy is invalid (or, with --strict, has a warning).
    """
    from paracle_guard.engine import Plan
    from paracle_guard.policy.loader import PolicyValidationError, validate_policy

    invalid = 0
    for spec in specs:
        try:
            loaded = validate_policy(spec)
            # Compiling resolves rule names in rules/exceptions/custom_rules.
            warnings = Plan.compile(loaded).policy_warnings()
        except PolicyValidationError as error:
            # Here, unlike in lint, the user asked for every problem at once.
            for problem in error.problems:
                print_error(str(problem))
            invalid += 1
            continue
        for warning in warnings:
            (print_error if strict else print_warning)(str(warning))
        if strict and warnings:
            invalid += 1
            continue
        noted = f", {len(warnings)} warning{'s' * (len(warnings) != 1)}" if warnings else ""
        typer.echo(f"{loaded.source}: valid (policy {loaded.metadata.name}, "
                   f"sha256 {loaded.sha256[:12]}{noted})")
    if invalid:
        raise typer.Exit(2)


PolicyArgument = Annotated[
    str | None,
    typer.Argument(metavar="FILE|NAME", help="Policy file or built-in name (default: as lint "
                   "finds it).", autocompletion=options.complete_policies),
]
EXPORT_FORMATS = {"kubernetes": "Namespace with PSA labels, NetworkPolicy, "
                  "ValidatingAdmissionPolicy and its binding"}


@policy_app.command("show")
@fails_cleanly
def policy_show(
    name: PolicyArgument = None,
) -> None:
    """Print the effective policy, after extends and defaults."""
    from paracle_guard.policy.loader import effective_policy_yaml, load_policy

    typer.echo(effective_policy_yaml(load_policy(name)), nl=False)


@policy_app.command("export")
@fails_cleanly
def policy_export(
    name: PolicyArgument = None,
    export_format: Annotated[str, options.format_option(EXPORT_FORMATS, default="kubernetes")]
    = "kubernetes",
    namespace: Annotated[
        str, typer.Option("--namespace", metavar="NAME",
                          help="The namespace the exported objects guard.")
    ] = "paracle-sandboxes",
    output: Annotated[str | None, options.output_option(
        help="Write the objects to FILE instead of standard output.")] = None,
) -> None:
    """Export the policy for a cluster: PSA labels, NetworkPolicy, ValidatingAdmissionPolicy."""
    from paracle_guard.launcher.k8s_backend import render
    from paracle_guard.policy.export import export_kubernetes
    from paracle_guard.policy.loader import load_policy

    loaded = load_policy(name)
    try:
        objects = export_kubernetes(loaded, namespace)
    except ValueError as error:
        raise InputError(f"--namespace {namespace}: {error}") from None
    if output is None or output == STDOUT:
        typer.echo(render(objects), nl=False)
    else:
        refuse_inputs([output], [loaded.source or ""], "--output")
        write_file(output, render(objects))


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
#
# Every report command calls _plan_and_report before it reads anything and _emit at
# the end. Both read the shared options (--format/--output pairs, --color,
# --baseline, --write-baseline) from the command's context by their parameter
# names, so a command only has to declare them.

_REQUEST = "paracle_guard.report_request"


@dataclass
class _ReportRequest:
    """What the command line asked of the report, checked before the run starts."""

    destinations: list[Destination]
    color: str | None
    policy_source: str | None
    baseline: str | None = None
    known: Baseline | None = None
    write_baseline: str | None = None


def _plan_and_report(
    policy_spec: str | None, ignore: Iterable[str] | None, fail_on: str | None
) -> tuple[Plan, Report]:
    """The compiled policy, and the empty report its results will go into."""
    from paracle_guard.engine import Plan
    from paracle_guard.policy.loader import load_policy
    from paracle_guard.report.models import PolicyRef, Report, ToolInfo
    from paracle_guard.severity import Severity

    ctx = get_current_context()
    params = ctx.params
    # Usage errors first: a wrong --output must not wait for a ten-minute scan.
    chosen = destinations(ctx, params.get("output_format"), params.get("output"))
    plan = Plan.compile(load_policy(policy_spec), ignore=list(ignore or []))
    policy: Policy = plan.policy
    request = _ReportRequest(chosen, params.get("color"), policy.source,
                             write_baseline=params.get("write_baseline"))
    if params.get("baseline"):
        request.baseline = str(params["baseline"])
        request.known = _read_baseline(request.baseline)
    ctx.meta[_REQUEST] = request
    report = Report(
        tool=ToolInfo(version=__version__),
        policy=PolicyRef(name=policy.metadata.name, sha256=policy.sha256),
        fail_on=Severity(fail_on) if fail_on else policy.fail_on,
        rules=plan.rule_info(),
    )
    return plan, report


def _read_baseline(path: str) -> Baseline:
    from paracle_guard.report.baseline import Baseline

    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as error:
        raise InputError(f"--baseline {path}: cannot read: {error.strerror or error}") from None
    return Baseline.parse(data, f"--baseline {path}")


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


def _read_stdin(what: str = "a Dockerfile",
                example: str = "paracle-guard lint - < Dockerfile") -> bytes:
    """Standard input, for ``-``; a terminal there would wait forever, so it is refused."""
    if sys.stdin.isatty():
        raise UsageError(f"-: standard input is a terminal; pipe {what} in ({example})")
    return sys.stdin.buffer.read()


def _facts_cache(no_cache: bool) -> DiskCache | None:
    if no_cache:
        return None
    from paracle_guard.sources.facts_store import open_cache

    return open_cache()


def _progress(formats: Sequence[str] | None) -> ReadProgress | None:
    """A progress line for long image reads: on a terminal only, never with machine output."""
    if any(fmt != "text" for fmt in formats or []) or not sys.stderr.isatty():
        return None
    from paracle_guard.progress import TerminalProgress

    return TerminalProgress()


def _stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def _emit(report: Report, output_format: Any = None, output: Any = None) -> NoReturn:
    """Write every report the command line asked for, and exit 1 on findings, else 0.

    ``output_format`` and ``output`` are read from the context; the parameters stay
    for callers that pass them.
    """
    from paracle_guard.report import render

    ctx = get_current_context()
    request: _ReportRequest = ctx.meta[_REQUEST]
    inputs = _inputs(ctx, report, request)
    refuse_inputs([d.path for d in request.destinations], inputs, "--output")
    baseline_text = None
    if request.write_baseline:
        # Written from the findings before --baseline takes any out: the new baseline
        # holds everything this run found.
        refuse_inputs([request.write_baseline],
                      [i for i in inputs if i != request.baseline], "--write-baseline")
        baseline_text = render(report, "json")
    if request.known is not None:
        request.known.apply(report, request.baseline or "")
    for destination in request.destinations:
        if destination.path is None:
            color = wants_color(request.color, _stdout_is_tty())
            write_stdout(render(report, destination.format,
                                color=color and destination.format == "text"))
        else:
            color = request.color == "always" and destination.format == "text"
            write_file(destination.path, render(report, destination.format, color=color))
    if request.write_baseline and baseline_text is not None:
        write_file(request.write_baseline, baseline_text, option="--write-baseline")
    raise typer.Exit(1 if report.failed else 0)


def _inputs(ctx: Context, report: Report, request: _ReportRequest) -> list[str]:
    """Every file this run read, as far as the command line and the results say."""
    outputs = {"output", "write_baseline"}
    named: list[str] = []
    for name, value in ctx.params.items():
        if name in outputs:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, (str, Path)):
                named.append(str(item))
    for result in report.results:
        if result.in_image:
            continue
        named.append(result.target)
        for key in ("file", "files"):
            value = result.metadata.get(key)
            named.extend([value] if isinstance(value, str) else value or [])
    if request.policy_source and not request.policy_source.startswith("builtin:"):
        named.append(request.policy_source)
    return named


# --- containers and compose files (issue 4) -----------------------------------------


@app.command("container")
@fails_cleanly
def container_command(
    containers: Annotated[
        list[str] | None,
        typer.Argument(metavar="CONTAINER", help="Containers to check, by name or ID."),
    ] = None,
    all_containers: Annotated[
        bool, typer.Option("--all", help="Also check every container on the engine, any state.")
    ] = False,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", metavar="KEY[=VALUE]",
                     help="Also check the containers with this label (repeatable: all must "
                     "match; narrows --all)."),
    ] = None,
    policy: PolicyOption = None,
    output_format: FormatOption = None,
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    ignore: IgnoreOption = None,
    color: ColorOption = None,
    baseline: BaselineOption = None,
    write_baseline: WriteBaselineOption = None,
) -> None:
    """Check created or running containers (their docker inspect) against the policy."""
    from paracle_guard.sources.container import load_containers

    if not containers and not all_containers and not label:
        raise UsageError("name at least one container, or use --all or --label")
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
        typer.Argument(metavar="PATH", help="Compose files (each read alone, as docker compose "
                       "-f FILE) or folders (read as docker compose run there: COMPOSE_FILE, "
                       "or the default file and its override). Default: this folder."),
    ] = None,
    file: Annotated[
        list[str] | None,
        typer.Option("--file", "-f", metavar="FILE",
                     help="Compose file of one project, merged in order like docker compose "
                     "-f A -f B (repeatable)."),
    ] = None,
    folders: Annotated[
        bool, typer.Option("--folders", help="Check the project of each PATH's folder (for "
                           "pre-commit, which passes the changed files).")
    ] = False,
    cgroup_version: Annotated[
        int | None,
        typer.Option("--cgroup-version", metavar="1|2",
                     help="The checked hosts' cgroup version, for services without cgroup:. "
                     "Default: ask the Docker Engine; assume 1 without one."),
    ] = None,
    with_dockerfiles: Annotated[
        bool, typer.Option("--with-dockerfiles",
                           help="Also lint the Dockerfiles the services are built from.")
    ] = False,
    policy: PolicyOption = None,
    # -f names a compose file here, as in docker compose: --format has no short form.
    output_format: Annotated[list[str] | None, options.format_option(
        FORMATS, names=("--format",), repeatable=True)] = None,
    output: OutputOption = None,
    fail_on: FailOnOption = None,
    ignore: IgnoreOption = None,
    color: ColorOption = None,
    baseline: BaselineOption = None,
    write_baseline: WriteBaselineOption = None,
) -> None:
    """Check each service of compose projects against the policy, as Compose merges them."""
    from paracle_guard.sources.compose import load_compose, load_compose_files
    from paracle_guard.sources.dockerfile import load_dockerfile

    if cgroup_version not in (None, 1, 2):
        raise UsageError(f"--cgroup-version {cgroup_version}: expected 1 or 2")
    if file and paths:
        raise UsageError("give one project's files with -f, or paths to check, not both")
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
            raise UsageError(f"-f {name}: no such compose file (-f names a compose file, as in "
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
    stdin_filename: Annotated[
        str, typer.Option("--stdin-filename", metavar="NAME",
                          help="The name findings and waivers use for - (standard input).")
    ] = "stdin.yaml",
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
    from paracle_guard.sources.discovery import find_manifests
    from paracle_guard.sources.k8s import load_manifests

    plan, report = _plan_and_report(policy, ignore, fail_on)
    stdin = None
    if "-" in paths:
        stdin = (stdin_filename, _read_stdin("a manifest", "paracle-guard k8s - < pod.yaml"))
    if folders:
        paths = list(dict.fromkeys(os.path.dirname(p) or "." for p in paths if p != "-"))
    files = list(find_manifests(p for p in paths if p != "-"))
    if not files and stdin is None:
        raise InputError(f"no manifests (*.yaml, *.yml, *.json) found in: {', '.join(paths)}")
    for subject in load_manifests(files, stdin=stdin):
        report.add(plan.evaluate(subject))
    _emit(report, output_format, output)


# --- the enforced launcher (issue 5) -------------------------------------------------

BACKENDS = {"docker": "the local Docker Engine",
            "kubernetes": "the current kubeconfig context (the image by digest)"}
WORKLOADS = {"pod": "a bare Pod", "job": "a Job",
             # Agent Sandbox resources, printed with --dry-run (launcher/k8s_sandbox.py)
             "sandbox": "a Sandbox (--dry-run)",
             "sandbox-template": "a SandboxTemplate (--dry-run)",
             "sandbox-claim": "a SandboxTemplate, a SandboxWarmPool and a SandboxClaim "
                              "(--dry-run)"}


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
        str, options.format_option(options.TEXT_OR_JSON, names=("--report",),
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
        progress=_progress([report_format]),
    ))


@app.command("doctor")
@fails_cleanly
def doctor_command(
    policy: PolicyOption = None,
    probe: Annotated[
        bool, typer.Option("--probe", help="Also run a trivial container under each sandboxed "
                           "runtime the policy allows (or, with no runtime control, each "
                           "registered one).")
    ] = False,
    output_format: TextOrJsonOption = "text",
) -> None:
    """Check that the Docker Engine can enforce the policy (exit 0), else exit 1."""
    from paracle_guard.launcher.doctor import diagnose
    from paracle_guard.policy.loader import load_policy

    loaded = load_policy(policy)
    diagnosis = diagnose(runtime=loaded.controls.runtime, policy_name=loaded.metadata.name,
                         probe=probe)
    typer.echo(diagnosis.render_json() if output_format == "json" else diagnosis.render_text(),
               nl=False)
    raise typer.Exit(0 if diagnosis.ok else 1)


@sandbox_app.command("test")
@fails_cleanly
def sandbox_test_command(
    image: Annotated[
        str, typer.Option("--image", metavar="IMAGE",
                          help="Local image to test: tag, ID or digest (never pulled).")
    ] = "paracle/sandbox:latest",
    policy: PolicyOption = None,
    output_format: TextOrJsonOption = "text",
    no_cache: NoCacheOption = False,
) -> None:
    """Launch IMAGE through the enforced launcher and prove its promises from inside.

    Exits 0 when every promise holds, 1 when one is broken or could not be checked.
    """
    from paracle_guard.launcher.probe import render, run_probe

    report = run_probe(image, policy=policy, cache=not no_cache,
                       progress=_progress([output_format]))
    typer.echo(render(report, output_format), nl=False)
    raise typer.Exit(0 if report.ok else 1)


@authz_app.command("serve")
@fails_cleanly
def authz_serve_command(
    policy: PolicyOption = None,
    socket_path: Annotated[
        str, typer.Option("--socket", metavar="PATH",
                          help="Where to listen; the file name (less .sock) is the plugin's "
                          "name for dockerd --authorization-plugin.")
    ] = "/run/docker/plugins/paracle-guard.sock",
    audit_log: Annotated[
        str | None,
        typer.Option("--audit-log", metavar="FILE",
                     help="Append one JSON line per allow and deny to FILE (default: the "
                     "policy's audit_log, else standard output)."),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option("--engine", metavar="HOST",
                     help="The engine being guarded, read for image configs and containers "
                     "(default: DOCKER_HOST, else unix:///var/run/docker.sock)."),
    ] = None,
    decision_timeout: Annotated[
        float, typer.Option("--decision-timeout", metavar="SECONDS",
                            help="Seconds a decision may take; past them the request is "
                            "refused.")
    ] = 10.0,
) -> None:
    """Serve the Docker authorization plugin: the policy, enforced for every client."""
    from paracle_guard.authz import run_serve

    raise typer.Exit(run_serve(
        policy=policy, socket_path=socket_path, audit_log=audit_log, engine_host=engine,
        deadline=decision_timeout,
    ))


# --- shell completion -------------------------------------------------------------------

SHELLS = {"bash": "bash 4.4 or later", "zsh": "zsh", "fish": "fish"}
COMPLETE_VAR = "_PARACLE_GUARD_COMPLETE"


@app.command("completion")
@fails_cleanly
def completion_command(
    shell: Annotated[str, typer.Argument(
        metavar="SHELL", help="bash, zsh or fish.",
        autocompletion=options.complete_from(SHELLS),
        callback=options.check_choice("SHELL", SHELLS))],
) -> None:
    """Print the completion script for a shell: commands, options, formats, rule codes
    and names, built-in policies.

    bash: paracle-guard completion bash > ~/.local/share/bash-completion/completions/paracle-guard
    zsh:  paracle-guard completion zsh > "${fpath[1]}/_paracle-guard"
    fish: paracle-guard completion fish > ~/.config/fish/completions/paracle-guard.fish
    (--install-completion does the same for the current shell.)
    """
    from typer._completion_shared import get_completion_script

    typer.echo(get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell))


# --- the cache of image facts (issue 14) ---------------------------------------------


@cache_app.command("info")
@fails_cleanly
def cache_info() -> None:
    """Where the cache of image facts is, how big it is and may grow, what it holds."""
    from paracle_guard.policy.remembered import KIND, open_store
    from paracle_guard.sources.facts_store import open_cache, render_info

    with open_cache() as cache, open_store() as policies:
        remembered = policies.info().entries[KIND]
        typer.echo(render_info(cache.info()), nl=False)
    typer.echo(f"policies:  {remembered} resolved policies in {policies.root}")


@cache_app.command("clear")
@fails_cleanly
def cache_clear() -> None:
    """Remove every cached image fact and resolved policy (the next check reads them again)."""
    from paracle_guard.policy.remembered import open_store
    from paracle_guard.sources.facts_store import open_cache
    from paracle_guard.units import format_size

    with open_cache() as cache, open_store() as policies:
        if not cache.enabled:
            raise InputError(f"the cache is off: {cache.reason}")
        removed, freed = cache.clear()
        policies.clear()
    typer.echo(f"removed {removed} entries ({format_size(freed) if freed else '0 bytes'}) "
               f"from {cache.root}, and the resolved policies")


def main() -> None:
    # pydantic looks for plugins (the entry points of every installed distribution) when
    # it builds the first model: ~10 ms of each run for plugins a command line never
    # uses. A user who sets the variable keeps their choice.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    app()
