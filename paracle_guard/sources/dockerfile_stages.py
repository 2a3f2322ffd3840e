"""The stage model of a Dockerfile, and the state one reading of the file shares.

``Stage`` holds one build stage: its FROM, its instructions, its ARG/ENV scope
and the facts it yields. ``DockerfileBuild`` holds what the whole file shares
while it is read (the build arguments, the global ARGs, the stages so far, the
problems found) and Docker's ARG/ENV substitution rules over a stage's scope:
each stage has its own ARG/ENV scope, ``--build-arg`` overrides declared ARGs
only, and a value built from a variable without a value is ``Unknown``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from paracle_guard.location import Location
from paracle_guard.sources.dockerfile_text import DockerfileText, RawInstruction
from paracle_guard.sources.dockerfile_words import (
    ExpansionTooLarge,
    Mode,
    expand,
    expand_word,
    json_array,
    split_words,
    unterminated_quote,
)
from paracle_guard.sources.shell_words import EXPANSION_BUDGET, ExpansionBudget
from paracle_guard.subject import (
    EnvVar,
    ExposedPort,
    Instruction,
    ParseProblem,
    RunStep,
)

_T = TypeVar("_T")

KNOWN_INSTRUCTIONS = frozenset({
    "FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
    "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
    "HEALTHCHECK", "SHELL",
})
# Defined by BuildKit in the global scope with values of the build machine, which
# a linter cannot know: they stay "$TARGETARCH" rather than becoming "".
AUTOMATIC_ARGS = (
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
)
# A stage index, as ``--from=0`` names one.
STAGE_INDEX = re.compile(r"[0-9]+")
# A flood of problems helps nobody: a binary-ish file would report every line.
_MAX_PROBLEMS = 20

@dataclass(frozen=True)
class Unknown:
    """A value that depends on variables without a known value.

    ``roots`` are those variables: ``arg``, an ARG given no value (Docker then uses
    ""), or ``base``, a name the Dockerfile does not declare in the stage, which
    the base image's environment may set. ``assumed`` is the value with every
    ``arg`` root unset; None when a ``base`` root decides it.
    """

    roots: tuple[tuple[str, str], ...]
    assumed: str | None


@dataclass
class Stage:
    index: int
    name: str | None
    location: Location
    from_value: str  # the FROM arguments after flags, substituted
    flags: dict[str, str]
    image: str
    parent: Stage | None
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
    unknowns: dict[str, Unknown] = field(default_factory=dict)
    # The last USER: its spec as substituted (unknown variables kept as written), its
    # line, and what the spec depends on when it is not known.
    user: tuple[str, Location, Unknown | None] | None = None
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


def from_chain(stage: Stage) -> list[Stage]:
    """The stage and those it is built FROM, nearest first."""
    chain = [stage]
    while chain[-1].parent is not None:
        chain.append(chain[-1].parent)  # parents come earlier in the file: no cycles
    return chain


class DockerfileBuild:
    """What every part of one Dockerfile's reading shares, and its substitution rules."""

    def __init__(self, path: str, text: DockerfileText, build_args: dict[str, str]) -> None:
        self.path = path
        self.text = text
        self.escape = text.escape
        self.build_args = build_args
        self.budget = ExpansionBudget(EXPANSION_BUDGET)
        self.problems: list[ParseProblem] = []
        self.dropped_problems = 0
        for line, message, fix in text.problems:
            self.problem(line, message, fix)
        self.global_args: dict[str, str | None] = {
            name: build_args.get(name) for name in AUTOMATIC_ARGS
        }
        self.global_facts: list[EnvVar] = []
        self.arg_declarations: dict[str, Location] = {}
        self.stages: list[Stage] = []
        # The first stage of each name: stages look each other up by name, and a file
        # of 20,000 stages must not cost 20,000 squared comparisons.
        self.stage_names: dict[str, Stage] = {}

    def stage_named(self, reference: str, user: Stage) -> Stage | None:
        """The stage a ``--from`` names (by name, or by index like BuildKit), if any."""
        wanted = reference.lower()
        named = self.stage_names.get(wanted)
        if named is not None and named is not user:
            return named
        if named is user:  # a later stage of the same name (a duplicate, itself a problem)
            for stage in self.stages:
                if stage.name == wanted and stage is not user:
                    return stage
        if STAGE_INDEX.fullmatch(reference) and int(reference) < len(self.stages):
            return self.stages[int(reference)]
        return None

    def within_budget(self, raw: RawInstruction, read: Callable[..., _T], *args: Any) -> _T | None:
        """``read(*args)``, or a problem on ``raw``'s line when substitution outgrows the
        file's budget (the instruction is then left out, as docker build cannot run it)."""
        try:
            return read(*args)
        except ExpansionTooLarge as exc:
            self.problem(raw.start_line, f"{raw.keyword}: {exc}, which docker build cannot "
                                         "finish either",
                         "Do not build values by substituting a variable into itself")
            return None

    # -- ARG and ENV -------------------------------------------------------------

    def declare_args(
        self, raw: RawInstruction, stage: Stage | None
    ) -> list[tuple[str, str | None]]:
        """Declare the ARGs of one instruction in the stage (None: global); return their values.

        The value is the --build-arg when one is given, else the default, else (in a
        stage) the global ARG's value; None when nothing gives one.
        """
        declared = []
        for word, _, _ in split_words(raw.value, self.escape):
            name, equals, default = word.partition("=")
            if not name:
                self.problem(raw.start_line, f"ARG {word!r} has no name")
                continue
            value: str | None
            unknown: Unknown | None = None
            if name in self.build_args:
                value = self.build_args[name]
            elif stage is None:
                value = (expand_word(default, self.global_args, self.escape, budget=self.budget)
                         if equals else None)
            elif equals:
                value, unknown = self.value_of(stage, default)
            else:
                value = self.global_args.get(name)
            if stage is None:
                self.global_args[name] = value
            elif name not in stage.env:  # ENV wins over an ARG of the same name
                if value is None and unknown is None:
                    assumed = None if name in AUTOMATIC_ARGS else ""
                    unknown = Unknown(((name, "arg"),), assumed)
                known = value if unknown is None else None
                self.set_variable(stage, name, known, unknown, env=False)
            declared.append((name, value if unknown is None else None))
        return declared

    def set_variable(self, stage: Stage, name: str, value: str | None,
                     unknown: Unknown | None, *, env: bool) -> None:
        """Give a variable its value, or mark it unknown."""
        known = value if unknown is None else None
        stage.variables[name] = known
        if env:
            stage.env[name] = known
        if unknown is None:
            stage.unknowns.pop(name, None)
        else:
            stage.unknowns[name] = unknown

    def value_of(self, stage: Stage, text: str,
                 mode: Mode = Mode.DOCKER_WORD) -> tuple[str, Unknown | None]:
        """``text`` substituted, and what it depends on when some variable has no value."""
        names: list[str] = []
        value = self.expand(stage, text, mode, names)
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
        return value, Unknown(tuple(roots), None if missing else assumed)

    def expand(
        self,
        stage: Stage,
        text: str,
        mode: Mode = Mode.DOCKER_WORD,
        unknown: list[str] | None = None,
    ) -> str:
        """Substitute the stage's ARG and ENV values into ``text``."""
        return expand(text, stage.variables, self.escape, mode, unknown,
                      undeclared_empty=not stage.on_image, budget=self.budget)

    def check_quotes(self, raw: RawInstruction, keyword: str, rest: str) -> None:
        # Quotes group words, so an open quote runs to the end of the instruction: one
        # scan of the whole text finds it, and the word it opens is the last word.
        found = unterminated_quote(rest, self.escape)
        if found is None or json_array(rest) is not None:
            return
        kind, start = found
        word = rest[max(rest.rfind(" ", 0, start), rest.rfind("\t", 0, start)) + 1:].rstrip()
        self.problem(raw.start_line, f"{keyword} {word}: the {kind} quote is never closed, "
                                     "so docker build refuses this line")

    # -- problems ------------------------------------------------------------------

    def problem(self, line: int | None, message: str, fix: str | None = None) -> None:
        if len(self.problems) >= _MAX_PROBLEMS:
            self.dropped_problems += 1
            return
        self.problems.append(
            ParseProblem(message=message, location=Location(path=self.path, line=line), fix=fix)
        )

    def finished_problems(self) -> list[ParseProblem]:
        problems = sorted(self.problems, key=lambda problem: problem.location.line or 0)
        if self.dropped_problems:
            problems.append(ParseProblem(
                message=f"{self.dropped_problems} more problems not shown",
                location=Location(path=self.path),
            ))
        return problems

    def location(self, raw: RawInstruction) -> Location:
        return Location(path=self.path, line=raw.start_line, end_line=raw.end_line)
