"""The Dockerfile source: a Dockerfile becomes a Subject.

Three layers, each in its own module:

1. ``dockerfile_text``: bytes to raw instructions with exact lines. It wraps
   dockerfile-parse with a pre-pass for what that library gets wrong (BOM,
   CRLF, directives, heredocs, blank lines in continuations, binary input).
2. ``dockerfile_words``: Docker's word lexer and ``$VAR`` substitution.
3. This module: Docker's build semantics on top, helped by ``shell`` (RUN
   scripts to pipelines of argv lists), ``commands`` (package installs and
   useradd/adduser in those argv lists) and ``image_ref`` (image references).

The semantics follow Docker. Global ``ARG`` s before the first ``FROM`` feed
only ``FROM`` lines; each stage has its own ARG/ENV scope; ``--build-arg``
overrides declared ARGs only; a stage built ``FROM`` another stage inherits
its ENV, USER and WORKDIR; the target stage (default: the last) needs its FROM
chain plus every stage it copies or mounts from, transitively. Facts come only
from needed stages, and are ``final`` when their stage is in the target's FROM
chain. ONBUILD instructions are kept as instructions only: they act on child
images, not on this one.

Nothing here raises for any content: input Docker would reject becomes a
``ParseProblem`` (reported as PG901). Only a ``--target`` naming no stage is
the caller's error (``InputError``).
"""

from __future__ import annotations

import bisect
import json
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from paracle_guard.errors import InputError
from paracle_guard.location import Location
from paracle_guard.sources.account_book import AccountBook
from paracle_guard.sources.dockerfile_copy import (
    chmod_changes,
    destination_path,
    remote_sources,
)
from paracle_guard.sources.dockerfile_text import (
    DockerfileText,
    RawInstruction,
    read_dockerfile_text,
)
from paracle_guard.sources.dockerfile_words import (
    ExpansionTooLarge,
    Mode,
    expand,
    expand_word,
    json_array,
    split_flags,
    split_words,
    unterminated_quote,
)
from paracle_guard.sources.image_ref import parse_image_ref
from paracle_guard.sources.run_facts import read_run
from paracle_guard.sources.shell import SHELLS, shell_c_script
from paracle_guard.sources.shell_words import EXPANSION_BUDGET, ExpansionBudget
from paracle_guard.sources.suppressions import parse_ignore_comment
from paracle_guard.sources.wrappers import unwrap
from paracle_guard.subject import (
    BaseImage,
    EnvVar,
    ExposedPort,
    Instruction,
    Package,
    ParseProblem,
    RunStep,
    Subject,
    Suppression,
    UserFact,
)

__all__ = ["load_dockerfile", "parse_dockerfile"]

_T = TypeVar("_T")

KNOWN_INSTRUCTIONS = frozenset({
    "FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
    "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
    "HEALTHCHECK", "SHELL",
})
# Instructions whose arguments may start with --flags.
_FLAGGED = frozenset({"FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"})
# Instructions whose words BuildKit's lexer expands, refusing an unterminated quote.
_EXPANDED = frozenset({
    "ENV", "LABEL", "ARG", "COPY", "ADD", "WORKDIR", "USER", "VOLUME", "EXPOSE", "STOPSIGNAL",
})
# Instructions Docker refuses without arguments.
_NEEDS_ARGUMENTS = frozenset({
    "FROM", "RUN", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "SHELL", "HEALTHCHECK",
})
_NOT_ONBUILD = frozenset({"ONBUILD", "FROM", "MAINTAINER"})
# Defined by BuildKit in the global scope with values of the build machine, which
# a linter cannot know: they stay "$TARGETARCH" rather than becoming "".
_AUTOMATIC_ARGS = (
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
)
_STAGE_NAME = re.compile(r"[a-z][a-z0-9._-]*")
_PORT = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?(?:/([A-Za-z]+))?")
_NUMBER = re.compile(r"[0-9]+")
_WINDOWS_PATH = re.compile(r"[A-Za-z]:")
# A flood of problems helps nobody: a binary-ish file would report every line.
_MAX_PROBLEMS = 20


def load_dockerfile(
    path: str | os.PathLike[str],
    *,
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
) -> Subject:
    """Read and parse one Dockerfile; ``InputError`` when the file cannot be read."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            content = handle.read()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a Dockerfile") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return parse_dockerfile(content, name, target=target, build_args=build_args)


def parse_dockerfile(
    content: str | bytes,
    path: str,
    *,
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
) -> Subject:
    """The Subject of one Dockerfile, for the ``target`` stage (default: the last)."""
    text = read_dockerfile_text(content)
    return _DockerfileSubjectBuilder(path, text, dict(build_args or {})).build(target)


@dataclass(frozen=True)
class _Unknown:
    """A value that depends on variables without a known value.

    ``roots`` are those variables: ``arg``, an ARG given no value (Docker then uses
    ""), or ``base``, a name the Dockerfile does not declare in the stage, which
    the base image's environment may set. ``assumed`` is the value with every
    ``arg`` root unset; None when a ``base`` root decides it.
    """

    roots: tuple[tuple[str, str], ...]
    assumed: str | None


@dataclass
class _Stage:
    index: int
    name: str | None
    location: Location
    from_value: str  # the FROM arguments after flags, substituted
    flags: dict[str, str]
    image: str
    parent: _Stage | None
    external: str | None  # the external image it starts from (never a stage, never scratch)
    # Global ARGs the FROM image uses with no value: (all of them, those not declared).
    unresolved: tuple[list[str], list[str]]
    # The FROM chain starts from an external image, whose ENV we cannot see: a
    # variable this file does not declare may still be set there.
    on_image: bool
    body: list[RawInstruction] = field(default_factory=list)
    final: bool = False
    # Build state while the stage is evaluated. ENV, USER and WORKDIR pass on to
    # child stages; ARGs do not.
    variables: dict[str, str | None] = field(default_factory=dict)
    env: dict[str, str | None] = field(default_factory=dict)
    # Why each variable whose value is None is not known (ENV and ARG values built from
    # unknown variables are unknown too).
    unknowns: dict[str, _Unknown] = field(default_factory=dict)
    # The last USER: its spec as substituted (unknown variables kept as written), its
    # line, and what the spec depends on when it is not known.
    user: tuple[str, Location, _Unknown | None] | None = None
    workdir: str | None = None
    shell: list[str] | None = None  # SHELL ["bash", "-c"]; None: /bin/sh -c
    # Facts, kept until we know whether the stage is needed.
    instructions: list[Instruction] = field(default_factory=list)
    run_steps: list[RunStep] = field(default_factory=list)
    env_facts: list[EnvVar] = field(default_factory=list)
    ports: list[ExposedPort] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    sources: list[tuple[str, Location]] = field(default_factory=list)  # --from references
    # COPY/ADD that may write /etc/passwd or /etc/group ("COPY passwd /etc/passwd").
    account_copies: list[str] = field(default_factory=list)
    # How facts name the stage: its name, or its index when it has none.
    label: str = field(init=False)

    def __post_init__(self) -> None:
        self.label = self.name if self.name is not None else str(self.index)


class _DockerfileSubjectBuilder:
    def __init__(self, path: str, text: DockerfileText, build_args: dict[str, str]) -> None:
        self.path = path
        self.text = text
        self.escape = text.escape
        self.build_args = build_args
        self.budget = ExpansionBudget(EXPANSION_BUDGET)
        self.problems: list[ParseProblem] = []
        self.dropped_problems = 0
        for line, message, fix in text.problems:
            self._problem(line, message, fix)
        self.global_args: dict[str, str | None] = {
            name: build_args.get(name) for name in _AUTOMATIC_ARGS
        }
        self.global_facts: list[EnvVar] = []
        self.arg_declarations: dict[str, Location] = {}
        self.stages: list[_Stage] = []
        # The first stage of each name: stages look each other up by name, and a file
        # of 20,000 stages must not cost 20,000 squared comparisons.
        self.stage_names: dict[str, _Stage] = {}

    # -- the whole file ------------------------------------------------------

    def build(self, target: str | None) -> Subject:
        self._split_stages()
        subject = Subject(kind="dockerfile", target=self.path)
        subject.suppressions = self._suppressions()
        subject.metadata = {"stages": [stage.label for stage in self.stages]}
        if not self.stages:
            subject.parse_problems = self._finished_problems()
            return subject

        chosen = self._target_stage(target)
        chain = _chain(chosen)
        for stage in chain:
            stage.final = True
        for stage in self.stages:
            self._evaluate(stage)
        needed = self._needed(chosen)

        subject.metadata["stage"] = chosen.label
        subject.user = self._user(chosen, chain)
        subject.workdir = chosen.workdir
        subject.base_images = self._base_images(needed)
        subject.env = self._env_facts(needed)
        for stage in needed:
            subject.instructions.extend(stage.instructions)
            subject.run_steps.extend(stage.run_steps)
        subject.packages = _packages(subject.run_steps)
        for stage in reversed(chain):
            subject.exposed_ports.extend(stage.ports)
            subject.volumes.extend(stage.volumes)
        subject.parse_problems = self._finished_problems()
        return subject

    def _split_stages(self) -> None:
        instructions = self.text.instructions
        if not instructions:
            if not self.problems:
                self._problem(1, "empty Dockerfile: no instructions (it needs at least a FROM)")
            return
        has_from = any(raw.keyword == "FROM" for raw in instructions)
        if not has_from:
            self._problem(
                instructions[0].start_line,
                "no FROM instruction: a Dockerfile must start a build stage with FROM",
            )
        for raw in instructions:
            if raw.keyword == "FROM":
                stage = self._within_budget(raw, self._stage, raw)
                if stage is not None:
                    self.stages.append(stage)
                    if stage.name is not None:
                        self.stage_names.setdefault(stage.name, stage)
            elif self.stages:
                self.stages[-1].body.append(raw)
            elif raw.keyword == "ARG":
                self._within_budget(raw, self._global_arg, raw)
            elif raw.keyword not in KNOWN_INSTRUCTIONS:
                self._problem(raw.start_line, f"unknown instruction {raw.keyword!r}")
            elif has_from:
                self._problem(
                    raw.start_line,
                    f"{raw.keyword} before the first FROM: only ARG may come before FROM",
                )

    def _target_stage(self, target: str | None) -> _Stage:
        if target is None:
            return self.stages[-1]
        if target.lower() in self.stage_names:
            return self.stage_names[target.lower()]
        named = [stage.name for stage in self.stages if stage.name is not None]
        listing = ", ".join(named) if named else "none has a name"
        raise InputError(
            f"{self.path}: --target {target}: no stage of that name (stages: {listing})"
        )

    def _needed(self, target: _Stage) -> list[_Stage]:
        """The target, its FROM chain and every stage they copy or mount from, in file order."""
        seen: set[int] = set()
        pending = [target]
        while pending:
            stage = pending.pop()
            if stage.index in seen:
                continue
            seen.add(stage.index)
            if stage.parent is not None:
                pending.append(stage.parent)
            for reference, _ in stage.sources:
                source = self._stage_named(reference, stage)
                if source is not None:
                    pending.append(source)
        return [stage for stage in self.stages if stage.index in seen]

    def _stage_named(self, reference: str, user: _Stage) -> _Stage | None:
        """The stage a ``--from`` names (by name, or by index like BuildKit), if any."""
        wanted = reference.lower()
        named = self.stage_names.get(wanted)
        if named is not None and named is not user:
            return named
        if named is user:  # a later stage of the same name (a duplicate, itself a problem)
            for stage in self.stages:
                if stage.name == wanted and stage is not user:
                    return stage
        if _NUMBER.fullmatch(reference) and int(reference) < len(self.stages):
            return self.stages[int(reference)]
        return None

    # -- FROM and global ARGs ---------------------------------------------------

    def _global_arg(self, raw: RawInstruction) -> None:
        location = self._location(raw)
        for name, value in self._declare_args(raw, None):
            self.arg_declarations.setdefault(name, location)
            self.global_facts.append(
                EnvVar(name=name, value=value, origin="ARG", final=False, location=location)
            )

    def _stage(self, raw: RawInstruction) -> _Stage:
        location = self._location(raw)
        raw_flags, rest = split_flags(raw.value, self.escape)
        self._check_quotes(raw, "FROM", rest)
        flags = {name: expand_word(value, self.global_args, self.escape, budget=self.budget)
                 for name, value in raw_flags}
        raw_words = split_words(rest, self.escape)
        words = [expand_word(word, self.global_args, self.escape, budget=self.budget)
                 for word, _, _ in raw_words]
        name: str | None = None
        if len(words) == 3 and words[1].lower() == "as":
            name = words[2].lower()
        elif len(words) != 1:
            self._problem(raw.start_line, "FROM takes an image, optionally followed by AS name")
        image = words[0] if words else ""
        if not image:
            self._problem(raw.start_line, "FROM names no image (empty after substitution?)")
        shown, unresolved = self._from_reference(raw_words[0][0] if raw_words else "")
        if name is not None:
            if not _STAGE_NAME.fullmatch(name):
                self._problem(raw.start_line, f"invalid stage name {name!r}")
            if name in self.stage_names:
                self._problem(raw.start_line, f"duplicate stage name {name!r}")
        parent = self.stage_names.get(image.lower())
        external = None if parent is not None or image.lower() in ("scratch", "") else image
        if external is not None and unresolved[0]:
            external = shown  # "gcr.io/$PROJECT_ID/app", not Docker's "gcr.io//app"
        on_image = parent.on_image if parent is not None else external is not None
        return _Stage(
            index=len(self.stages),
            name=name,
            location=location,
            from_value=expand(rest, self.global_args, self.escape, Mode.DOCKER,
                              budget=self.budget),
            flags=flags,
            image=image,
            parent=parent,
            external=external,
            unresolved=unresolved,
            on_image=on_image,
        )

    def _from_reference(self, word: str) -> tuple[str, tuple[list[str], list[str]]]:
        """The FROM image as written where ARGs have no value, and those ARGs' names."""
        unknown: list[str] = []
        shown = expand(word, self.global_args, self.escape, Mode.DOCKER_WORD, unknown,
                       undeclared_empty=False, budget=self.budget) if word else ""
        undeclared = [name for name in unknown if name not in self.global_args]
        return shown, (unknown, undeclared)

    # -- one stage ---------------------------------------------------------------

    def _evaluate(self, stage: _Stage) -> None:
        if stage.parent is not None:
            stage.env = dict(stage.parent.env)
            stage.unknowns = {name: unknown for name, unknown in stage.parent.unknowns.items()
                              if name in stage.env}
            stage.workdir = stage.parent.workdir
            stage.shell = stage.parent.shell
        stage.variables = dict(stage.env)
        stage.instructions.append(self._instruction("FROM", stage.from_value, stage.flags,
                                                    stage, stage.location))
        for raw in stage.body:
            self._within_budget(raw, self._dispatch, stage, raw)

    def _within_budget(self, raw: RawInstruction, read: Callable[..., _T], *args: Any) -> _T | None:
        """``read(*args)``, or a problem on ``raw``'s line when substitution outgrows the
        file's budget (the instruction is then left out, as docker build cannot run it)."""
        try:
            return read(*args)
        except ExpansionTooLarge as exc:
            self._problem(raw.start_line, f"{raw.keyword}: {exc}, which docker build cannot "
                                          "finish either",
                          "Do not build values by substituting a variable into itself")
            return None

    def _dispatch(self, stage: _Stage, raw: RawInstruction) -> None:
        keyword = raw.keyword
        location = self._location(raw)
        if keyword not in KNOWN_INSTRUCTIONS:
            self._problem(raw.start_line, f"unknown instruction {keyword!r}")
            stage.instructions.append(self._instruction(keyword, raw.value, {}, stage, location))
            return
        raw_flags, rest = (
            split_flags(raw.value, self.escape) if keyword in _FLAGGED else ([], raw.value)
        )
        if not rest.strip() and not raw.heredocs and keyword in _NEEDS_ARGUMENTS:
            self._problem(raw.start_line, f"{keyword} requires at least one argument")
        flags = {name: self._expand(stage, value) for name, value in raw_flags}
        facts: dict[str, Any] = {}
        if keyword in _EXPANDED:
            self._check_quotes(raw, keyword, rest)
        if keyword == "RUN":
            value = self._run(stage, raw, rest, raw_flags, location)
        elif keyword == "ENV":
            value = self._expand(stage, rest, Mode.DOCKER)
            self._env(stage, raw, rest, location)
        elif keyword == "ARG":
            value = self._expand(stage, rest, Mode.DOCKER)
            for name, arg_value in self._declare_args(raw, stage):
                self.arg_declarations.setdefault(name, location)
                stage.env_facts.append(EnvVar(name=name, value=arg_value, origin="ARG",
                                              final=stage.final, location=location))
        elif keyword in ("COPY", "ADD"):
            value, facts = self._copy(stage, raw, rest, flags, location)
        elif keyword == "ONBUILD":
            value = rest + _heredoc_sections(raw, None)
            self._check_onbuild(raw, rest)
        elif keyword in ("USER", "WORKDIR", "EXPOSE", "VOLUME", "LABEL", "STOPSIGNAL"):
            value = self._expand(stage, rest, Mode.DOCKER)
            self._image_setting(stage, keyword, raw, rest, location)
        else:  # CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER: Docker substitutes nothing
            value = rest
            if keyword == "SHELL" and rest.strip():
                shell = json_array(rest)
                if shell is None:
                    self._problem(raw.start_line,
                                  'SHELL needs the JSON form: SHELL ["/bin/sh", "-c"]')
                elif shell:
                    stage.shell = shell
        stage.instructions.append(
            self._instruction(keyword, value, flags, stage, location, **facts))

    def _run(
        self,
        stage: _Stage,
        raw: RawInstruction,
        rest: str,
        raw_flags: list[tuple[str, str]],
        location: Location,
    ) -> str:
        mounts = [self._expand(stage, value) for name, value in raw_flags if name == "mount"]
        for mount in mounts:
            for option in mount.split(","):
                key, _, value = option.partition("=")
                if key.strip().lower() == "from" and value:
                    stage.sources.append((value.strip(), location))
        argv = None if raw.heredocs else json_array(rest)
        variables = {name: val for name, val in stage.variables.items() if val is not None}
        if argv is not None:
            # Exec form: no shell, no substitution; "sh -c" in it is read as a script.
            value = rest
            step = self._read_run(stage, location, mounts, display=rest, argv=argv,
                                  variables=variables, exec_form=True)
        else:
            value = self._expand(stage, rest, Mode.SHELL) + _heredoc_sections(
                raw, lambda body: self._expand(stage, body, Mode.SHELL)
            )
            if len(raw.heredocs) == 1 and len(split_words(rest, self.escape)) == 1:
                # "RUN <<EOF": BuildKit runs the body itself as the script.
                heredoc = raw.heredocs[0]
                body = heredoc.body
                display = self._expand(stage, body, Mode.SHELL) if heredoc.expand else body
                script = "" if _runs_non_shell(body) else body
            else:
                # "RUN python3 <<EOF": the shell gets the command line and the bodies as
                # here-documents, data for python3 but a script for "bash <<EOF".
                display, script = value, rest + _heredoc_sections(raw, None)
            step = self._read_run(stage, location, mounts, display=display, script=script,
                                  variables=variables)
        if step.truncated:
            self._problem(raw.start_line, f"RUN {step.unread}; the commands beyond are not "
                                          "checked",
                          "Run the commands directly in the RUN: docker build runs them, but "
                          "a checker that stops reading cannot vouch for them")
        stage.run_steps.append(step)
        return value

    def _read_run(
        self,
        stage: _Stage,
        location: Location,
        mounts: list[str],
        *,
        display: str,
        variables: dict[str, str],
        script: str | None = None,
        argv: list[str] | None = None,
        exec_form: bool = False,
    ) -> RunStep:
        """The shell reader on one RUN, through the stage's SHELL."""
        if argv is None and stage.shell is not None and shell_c_script(
                [*stage.shell, script or ""]) is None:
            # SHELL ["/usr/bin/env", "bash", "-c"]: read through its wrappers, as an argv.
            argv = [*stage.shell, script or ""]
            unwrapped = unwrap(argv)
            if unwrapped.script is None and shell_c_script(unwrapped.argv) is None:
                # SHELL ["powershell", "-Command"]: nothing here reads its scripts, so the
                # RUN is not checked, and a denied package would pass unseen. Say so.
                self._problem(location.line, f"RUN runs through SHELL {json.dumps(stage.shell)}"
                              ", which is not a shell paracle-guard reads; its commands are "
                              "not checked",
                              "Use a POSIX shell in SHELL (sh, bash, ash...), or check the "
                              "built image with paracle-guard image")
        return read_run(
            None if argv is not None else script,
            argv=argv,
            budget=self.budget,
            variables=variables,
            cwd=stage.workdir or "/",
            display=display,
            exec_form=exec_form,
            mounts=mounts,
            stage=stage.label,
            final=stage.final,
            location=location,
        )

    def _env(self, stage: _Stage, raw: RawInstruction, rest: str, location: Location) -> None:
        words = split_words(rest, self.escape)
        if not words:
            return
        pairs: list[tuple[str, str]] = []
        first, _, first_end = words[0]
        if "=" not in first:
            # Legacy "ENV NAME value with spaces": the rest of the line is the value.
            remainder = rest[first_end:].strip()
            if not remainder:
                self._problem(raw.start_line, f"ENV {first} has no value (use ENV {first}=value)")
                return
            pairs.append((first, remainder))
        else:
            for word, _, _ in words:
                name, equals, value = word.partition("=")
                if not equals or not name:
                    self._problem(raw.start_line, f"ENV {word!r} is not NAME=value")
                    continue
                pairs.append((name, value))
        # Docker substitutes every value of one ENV line with the environment before it.
        resolved = [(name, *self._value(stage, value)) for name, value in pairs]
        for name, value, unknown in resolved:
            self._set(stage, name, value, unknown, env=True)
            stage.env_facts.append(EnvVar(name=name, value=value, origin="ENV",
                                          final=stage.final, location=location))

    def _declare_args(
        self, raw: RawInstruction, stage: _Stage | None
    ) -> list[tuple[str, str | None]]:
        """Declare the ARGs of one instruction in the stage (None: global); return their values.

        The value is the --build-arg when one is given, else the default, else (in a
        stage) the global ARG's value; None when nothing gives one.
        """
        declared = []
        for word, _, _ in split_words(raw.value, self.escape):
            name, equals, default = word.partition("=")
            if not name:
                self._problem(raw.start_line, f"ARG {word!r} has no name")
                continue
            value: str | None
            unknown: _Unknown | None = None
            if name in self.build_args:
                value = self.build_args[name]
            elif stage is None:
                value = (expand_word(default, self.global_args, self.escape, budget=self.budget)
                         if equals else None)
            elif equals:
                value, unknown = self._value(stage, default)
            else:
                value = self.global_args.get(name)
            if stage is None:
                self.global_args[name] = value
            elif name not in stage.env:  # ENV wins over an ARG of the same name
                if value is None and unknown is None:
                    assumed = None if name in _AUTOMATIC_ARGS else ""
                    unknown = _Unknown(((name, "arg"),), assumed)
                self._set(stage, name, value if unknown is None else None, unknown, env=False)
            declared.append((name, value if unknown is None else None))
        return declared

    def _set(self, stage: _Stage, name: str, value: str | None, unknown: _Unknown | None, *,
             env: bool) -> None:
        """Give a variable its value, or mark it unknown."""
        known = value if unknown is None else None
        stage.variables[name] = known
        if env:
            stage.env[name] = known
        if unknown is None:
            stage.unknowns.pop(name, None)
        else:
            stage.unknowns[name] = unknown

    def _value(self, stage: _Stage, text: str,
               mode: Mode = Mode.DOCKER_WORD) -> tuple[str, _Unknown | None]:
        """``text`` substituted, and what it depends on when some variable has no value."""
        names: list[str] = []
        value = self._expand(stage, text, mode, names)
        if not names:
            return value, None
        roots: dict[tuple[str, str], None] = {}
        for name in names:
            if name in stage.unknowns:
                roots.update(dict.fromkeys(stage.unknowns[name].roots))
            else:
                roots[(name, "base" if name not in stage.variables else "arg")] = None
        # The reading Docker makes when no build argument is given: ARGs without a
        # value are "", and values built from them follow.
        assumed_variables = dict(stage.variables)
        for name, unknown in stage.unknowns.items():
            assumed_variables[name] = unknown.assumed
        missing: list[str] = []
        assumed = expand(text, assumed_variables, self.escape, mode, missing,
                         undeclared_empty=not stage.on_image, budget=self.budget)
        return value, _Unknown(tuple(roots), None if missing else assumed)

    def _copy(
        self,
        stage: _Stage,
        raw: RawInstruction,
        rest: str,
        flags: dict[str, str],
        location: Location,
    ) -> tuple[str, dict[str, Any]]:
        """The instruction's value, and its facts (sources, destination, downloads, modes)."""
        source = flags.get("from")
        if source:
            stage.sources.append((source, location))
            if (
                _NUMBER.fullmatch(source)
                and int(source) >= len(self.stages)
                and source not in self.stage_names
            ):
                self._problem(raw.start_line, f"--from={source}: no stage has that index")
        arguments = json_array(rest)
        words = arguments if arguments is not None else [
            word for word, _, _ in split_words(rest, self.escape)]
        if rest.strip() and len(words) < 2:
            self._problem(raw.start_line, f"{raw.keyword} needs a source and a destination")
        elif len(words) >= 2:
            destination = destination_path(self._expand(stage, words[-1]), stage.workdir)
            if destination.rstrip("/") in ("", "/etc", "/etc/passwd", "/etc/group"):
                stage.account_copies.append(f"{raw.keyword} to {destination}")
        # BuildKit expands an unquoted COPY heredoc with the build's variables.
        value = self._expand(stage, rest, Mode.DOCKER) + _heredoc_sections(
            raw, lambda body: self._expand(stage, body, Mode.DOCKER)
        )
        return value, self._copy_facts(stage, raw.keyword, words, flags)

    def _check_quotes(self, raw: RawInstruction, keyword: str, rest: str) -> None:
        # Quotes group words, so an open quote runs to the end of the instruction: one
        # scan of the whole text finds it, and the word it opens is the last word.
        found = unterminated_quote(rest, self.escape)
        if found is None or json_array(rest) is not None:
            return
        kind, start = found
        word = rest[max(rest.rfind(" ", 0, start), rest.rfind("\t", 0, start)) + 1:].rstrip()
        self._problem(raw.start_line, f"{keyword} {word}: the {kind} quote is never closed, "
                                      "so docker build refuses this line")

    def _copy_facts(
        self, stage: _Stage, keyword: str, words: list[str], flags: dict[str, str]
    ) -> dict[str, Any]:
        """Sources, destination, remote sources and --chmod of a COPY or ADD."""
        operands = [self._expand(stage, word) for word in words]
        if len(operands) < 2:
            return {}
        sources = operands[:-1]
        destination = destination_path(operands[-1], stage.workdir)
        facts: dict[str, Any] = {"sources": sources, "destination": destination}
        if keyword == "ADD":
            facts["downloads"] = remote_sources(sources, flags)
        if flags.get("chmod"):
            facts["mode_changes"] = chmod_changes(keyword, sources, destination, flags["chmod"])
        return facts

    def _check_onbuild(self, raw: RawInstruction, rest: str) -> None:
        inner = rest.split(None, 1)
        if not inner:
            return
        keyword = inner[0].upper()
        if keyword not in KNOWN_INSTRUCTIONS:
            self._problem(raw.start_line, f"ONBUILD: unknown instruction {inner[0]!r}")
        elif keyword in _NOT_ONBUILD:
            self._problem(raw.start_line, f"ONBUILD {keyword} is not allowed")

    def _image_setting(
        self, stage: _Stage, keyword: str, raw: RawInstruction, rest: str, location: Location
    ) -> None:
        escape = self.escape
        if keyword == "USER":
            if len(split_words(rest, escape)) > 1:
                self._problem(raw.start_line, "USER takes exactly one argument: user[:group]")
            spec, unknown = self._value(stage, rest.strip())
            stage.user = (spec, location, unknown)
        elif keyword == "WORKDIR":
            stage.workdir = _join_workdir(stage.workdir, self._expand(stage, rest.strip()))
        elif keyword == "EXPOSE":
            for word, _, _ in split_words(rest, escape):
                self._expose(stage, self._expand(stage, word), raw, location)
        elif keyword == "VOLUME":
            paths = json_array(rest)
            if paths is None:
                paths = [self._expand(stage, word) for word, _, _ in split_words(rest, escape)]
            stage.volumes.extend(path for path in paths if path)

    def _expose(self, stage: _Stage, word: str, raw: RawInstruction, location: Location) -> None:
        match = _PORT.fullmatch(word)
        if match is None:
            if "$" not in word:  # an ARG without value: not wrong, just unknown
                self._problem(raw.start_line, f"EXPOSE {word!r} is not a port[/protocol]")
            return
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        protocol = (match.group(3) or "tcp").lower()
        if not 0 < first <= last <= 65535 or protocol not in ("tcp", "udp", "sctp"):
            self._problem(raw.start_line, f"EXPOSE {word!r} is not a valid port range")
            return
        stage.ports.extend(
            ExposedPort(port=port, protocol=protocol, location=location)
            for port in range(first, last + 1)
        )

    def _expand(
        self,
        stage: _Stage,
        text: str,
        mode: Mode = Mode.DOCKER_WORD,
        unknown: list[str] | None = None,
    ) -> str:
        """Substitute the stage's ARG and ENV values into ``text``."""
        return expand(text, stage.variables, self.escape, mode, unknown,
                      undeclared_empty=not stage.on_image, budget=self.budget)

    # -- facts -------------------------------------------------------------------

    def _instruction(
        self, keyword: str, value: str, flags: dict[str, str], stage: _Stage,
        location: Location, **facts: Any,
    ) -> Instruction:
        return Instruction(keyword=keyword, value=value, flags=flags, stage=stage.label,
                           final=stage.final, location=location, **facts)

    def _base_images(self, needed: list[_Stage]) -> list[BaseImage]:
        images = []
        for stage in needed:
            if stage.external is not None:
                image = _base_image(stage.external, stage.flags.get("platform"), stage,
                                    stage.final, stage.location)
                image.unresolved, image.undeclared = stage.unresolved
                images.append(image)
            for reference, location in stage.sources:
                if (
                    self._stage_named(reference, stage) is None
                    and reference.lower() != "scratch"
                    and not _NUMBER.fullmatch(reference)
                ):
                    images.append(_base_image(reference, None, stage, False, location))
        return images

    def _env_facts(self, needed: list[_Stage]) -> list[EnvVar]:
        facts = list(self.global_facts)
        for stage in needed:
            facts.extend(stage.env_facts)
        final_names = {fact.name for fact in facts if fact.origin == "ARG" and fact.final}
        for name, value in self.build_args.items():
            declared_at = self.arg_declarations.get(name)
            facts.append(EnvVar(
                name=name,
                value=value,
                origin="build-arg",
                final=name in final_names,
                location=declared_at or Location(path=self.path),
            ))
        return facts

    def _user(self, target: _Stage, chain: list[_Stage]) -> UserFact:
        """The effective USER of the target, following stages it is built FROM."""
        origin = chain[-1]
        setter = next((stage for stage in chain if stage.user is not None), None)
        if setter is None or setter.user is None:
            return UserFact(spec=None, location=target.location, inherited_from=origin.external)
        spec, location, unknown = setter.user
        book = self._account_book(list(reversed(chain)))
        if unknown is None:
            fact = book.resolve(spec, location)
        elif unknown.assumed is None:
            fact = UserFact(spec=spec, location=location, may_be_root=True,
                            unresolved_reason=self._base_variable_reason(spec, unknown, origin))
        else:
            fact = self._unset_arguments(spec, unknown, book, location)
        fact.inherited_from = None if setter is target else setter.label
        return fact

    def _base_variable_reason(self, spec: str, unknown: _Unknown, origin: _Stage) -> str:
        names = [name for name, kind in unknown.roots if kind == "base"]
        listed = ", ".join("$" + name for name in names)
        reason = (f"USER {spec} uses {listed}, which this stage neither declares with ARG nor "
                  f"sets with ENV: the value comes from the environment of the base image "
                  f"{origin.external}, which lint cannot see; run paracle-guard image on the "
                  "built image to prove the user")
        hoisted = [name for name in names if name in self.arg_declarations
                   and name in self.global_args]
        if hoisted:
            reason += (f". ${hoisted[0]} is an ARG declared only before the first FROM: the "
                       f"stage must redeclare ARG {hoisted[0]} for --build-arg "
                       f"{hoisted[0]}=... to reach it")
        return reason

    def _unset_arguments(self, spec: str, unknown: _Unknown, book: AccountBook,
                         location: Location) -> UserFact:
        """USER built from ARGs without a value: what Docker uses when none is given."""
        assumed = unknown.assumed or ""
        names = [name for name, _ in unknown.roots]
        listed = ", ".join("$" + name for name in names)
        fact = book.resolve(assumed, location)
        fact.spec = spec
        if fact.is_root:
            fact.unresolved_reason = (f"USER {spec} becomes {assumed!r}, which is root, unless "
                                      f"{listed} is given a value (--build-arg {names[0]}=...)")
            return fact
        return UserFact(spec=spec, location=location,
                        unresolved_reason=f"USER {spec} depends on {listed}, which this "
                                          f"Dockerfile gives no value; pass --build-arg "
                                          f"{names[0]}=...")

    def _account_book(self, stages: list[_Stage]) -> AccountBook:
        """The account changes of a FROM chain, base stage first."""
        book = AccountBook(stages[0].external)
        for stage in stages:
            for step in stage.run_steps:
                # The shell reader's facts: account commands, and files the step writes.
                for change in step.accounts:
                    book.apply(change)
                for write in step.writes:
                    book.file_write(write)
            for written in stage.account_copies:
                book.file_edit(written)
        return book

    def _suppressions(self) -> list[Suppression]:
        comments = self.text.comments
        spans = [(raw.start_line, raw.end_line) for raw in self.text.instructions]
        starts = [start for start, _ in spans]
        found = []
        for line, comment in comments.items():
            found_comment = parse_ignore_comment(comment)
            if found_comment is None:
                continue
            scope, rules, reason = found_comment
            location = Location(path=self.path, line=line)
            if scope == "ignore-file":
                found.append(Suppression(rules=rules, reason=reason, scope="file",
                                         location=location))
                continue
            first, last = _covered_span(line, spans, starts, comments)
            found.append(Suppression(rules=rules, reason=reason, scope="line",
                                     first_line=first, last_line=last, location=location))
        return found

    # -- problems ------------------------------------------------------------------

    def _problem(self, line: int | None, message: str, fix: str | None = None) -> None:
        if len(self.problems) >= _MAX_PROBLEMS:
            self.dropped_problems += 1
            return
        self.problems.append(
            ParseProblem(message=message, location=Location(path=self.path, line=line), fix=fix)
        )

    def _finished_problems(self) -> list[ParseProblem]:
        problems = sorted(self.problems, key=lambda problem: problem.location.line or 0)
        if self.dropped_problems:
            problems.append(ParseProblem(
                message=f"{self.dropped_problems} more problems not shown",
                location=Location(path=self.path),
            ))
        return problems

    def _location(self, raw: RawInstruction) -> Location:
        return Location(path=self.path, line=raw.start_line, end_line=raw.end_line)


# -- helpers ---------------------------------------------------------------------


def _chain(stage: _Stage) -> list[_Stage]:
    """The stage and those it is built FROM, nearest first."""
    chain = [stage]
    while chain[-1].parent is not None:
        chain.append(chain[-1].parent)  # parents come earlier in the file: no cycles
    return chain


def _heredoc_sections(raw: RawInstruction, expand_body: Callable[[str], str] | None) -> str:
    """The heredocs as written after the command line: newline, body, terminator.

    ``expand_body`` substitutes variables in bodies whose delimiter is unquoted.
    """
    sections = []
    for heredoc in raw.heredocs:
        body = heredoc.body
        if expand_body is not None and heredoc.expand:
            body = expand_body(body)
        sections.append("\n" + body + heredoc.name)
    return "".join(sections)


def _runs_non_shell(script: str) -> bool:
    """True for a heredoc script whose shebang names a non-shell (``#!/usr/bin/env python3``)."""
    if not script.startswith("#!"):
        return False
    words = script[2:].split("\n", 1)[0].split()
    if words and words[0].rsplit("/", 1)[-1] == "env":
        words = [word for word in words[1:] if not word.startswith("-")]
    return bool(words) and words[0].rsplit("/", 1)[-1] not in SHELLS


def _join_workdir(current: str | None, path: str) -> str:
    if not path or path.startswith("/") or _WINDOWS_PATH.match(path):
        return path or current or "/"
    return posixpath.normpath(posixpath.join(current or "/", path))


def _base_image(
    ref: str, platform: str | None, stage: _Stage, final: bool, location: Location
) -> BaseImage:
    parsed = parse_image_ref(ref)
    first = ref.split("/", 1)[0]
    # "$REGISTRY/app": the registry is whatever the variable holds, unknown here.
    registry = first if "$" in first and "/" in ref else parsed.registry
    return BaseImage(
        ref=ref,
        registry=registry,
        repository=parsed.repository,
        tag=parsed.tag,
        digest=parsed.digest,
        platform=platform,
        stage=stage.label,
        final=final,
        location=location,
    )


def _packages(steps: Iterable[RunStep]) -> list[Package]:
    return [
        Package(name=package.name, manager=call.manager, version=package.version,
                final=step.final, location=step.location)
        for step in steps
        for call in step.package_calls
        if call.action == "install"
        for package in call.packages
    ]


def _covered_span(
    line: int,
    spans: list[tuple[int, int]],
    starts: list[int],
    comments: Mapping[int, str],
) -> tuple[int | None, int | None]:
    """The instruction an ignore comment on ``line`` covers; (None, None) if none.

    Like hadolint: the comment sits directly above the instruction, other
    comment lines may come between, a blank line may not. A comment inside an
    instruction's continuation lines covers that instruction.
    """
    position = bisect.bisect_right(starts, line)
    if position > 0:
        start, end = spans[position - 1]
        if start <= line <= end:
            return start, end
    if position < len(spans):
        start, end = spans[position]
        if all(between in comments for between in range(line + 1, start)):
            return start, end
    return None, None
