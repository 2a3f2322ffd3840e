"""One Dockerfile stage read instruction by instruction, as docker build runs it.

Each instruction of a stage's body updates the stage's build state (ARG/ENV
scope, USER, WORKDIR, SHELL) and records its facts on the stage: the
``Instruction`` itself, RUN steps through the shell reader, COPY/ADD sources
and destinations, exposed ports and volumes. Whether the facts count is decided
later, when the target's needed stages are known.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from typing import Any

from paracle_guard.location import Location
from paracle_guard.sources.dockerfile_copy import (
    chmod_changes,
    destination_path,
    remote_sources,
)
from paracle_guard.sources.dockerfile_stages import (
    KNOWN_INSTRUCTIONS,
    STAGE_INDEX,
    DockerfileBuild,
    Stage,
)
from paracle_guard.sources.dockerfile_text import RawInstruction
from paracle_guard.sources.dockerfile_words import (
    Mode,
    json_array,
    split_flags,
    split_words,
)
from paracle_guard.sources.run_facts import read_run
from paracle_guard.sources.shell import SHELLS, shell_c_script
from paracle_guard.sources.wrappers import unwrap
from paracle_guard.subject import EnvVar, ExposedPort, Instruction, RunStep

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
_PORT = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?(?:/([A-Za-z]+))?")
_WINDOWS_PATH = re.compile(r"[A-Za-z]:")


class StageReader:
    """Reads the body of one stage after another, sharing one ``DockerfileBuild``."""

    def __init__(self, build: DockerfileBuild) -> None:
        self.build = build

    def evaluate(self, stage: Stage) -> None:
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
            self.build.within_budget(raw, self._dispatch, stage, raw)

    def _dispatch(self, stage: Stage, raw: RawInstruction) -> None:
        keyword = raw.keyword
        location = self.build.location(raw)
        if keyword not in KNOWN_INSTRUCTIONS:
            self.build.problem(raw.start_line, f"unknown instruction {keyword!r}")
            stage.instructions.append(self._instruction(keyword, raw.value, {}, stage, location))
            return
        raw_flags, rest = (
            split_flags(raw.value, self.build.escape) if keyword in _FLAGGED else ([], raw.value)
        )
        if not rest.strip() and not raw.heredocs and keyword in _NEEDS_ARGUMENTS:
            self.build.problem(raw.start_line, f"{keyword} requires at least one argument")
        flags = {name: self.build.expand(stage, value) for name, value in raw_flags}
        facts: dict[str, Any] = {}
        if keyword in _EXPANDED:
            self.build.check_quotes(raw, keyword, rest)
        if keyword == "RUN":
            value = self._run(stage, raw, rest, raw_flags, location)
        elif keyword == "ENV":
            value = self.build.expand(stage, rest, Mode.DOCKER)
            self._env(stage, raw, rest, location)
        elif keyword == "ARG":
            value = self.build.expand(stage, rest, Mode.DOCKER)
            for name, arg_value in self.build.declare_args(raw, stage):
                self.build.arg_declarations.setdefault(name, location)
                stage.env_facts.append(EnvVar(name=name, value=arg_value, origin="ARG",
                                              final=stage.final, location=location))
        elif keyword in ("COPY", "ADD"):
            value, facts = self._copy(stage, raw, rest, flags, location)
        elif keyword == "ONBUILD":
            value = rest + _heredoc_sections(raw, None)
            self._check_onbuild(raw, rest)
        elif keyword in ("USER", "WORKDIR", "EXPOSE", "VOLUME", "LABEL", "STOPSIGNAL"):
            value = self.build.expand(stage, rest, Mode.DOCKER)
            self._image_setting(stage, keyword, raw, rest, location)
        else:  # CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER: Docker substitutes nothing
            value = rest
            if keyword == "SHELL" and rest.strip():
                shell = json_array(rest)
                if shell is None:
                    self.build.problem(raw.start_line,
                                       'SHELL needs the JSON form: SHELL ["/bin/sh", "-c"]')
                elif shell:
                    stage.shell = shell
        stage.instructions.append(
            self._instruction(keyword, value, flags, stage, location, **facts))

    def _run(
        self,
        stage: Stage,
        raw: RawInstruction,
        rest: str,
        raw_flags: list[tuple[str, str]],
        location: Location,
    ) -> str:
        mounts = [self.build.expand(stage, value) for name, value in raw_flags if name == "mount"]
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
            value = self.build.expand(stage, rest, Mode.SHELL) + _heredoc_sections(
                raw, lambda body: self.build.expand(stage, body, Mode.SHELL)
            )
            if len(raw.heredocs) == 1 and len(split_words(rest, self.build.escape)) == 1:
                # "RUN <<EOF": BuildKit runs the body itself as the script.
                heredoc = raw.heredocs[0]
                body = heredoc.body
                display = self.build.expand(stage, body, Mode.SHELL) if heredoc.expand else body
                script = "" if _runs_non_shell(body) else body
            else:
                # "RUN python3 <<EOF": the shell gets the command line and the bodies as
                # here-documents, data for python3 but a script for "bash <<EOF".
                display, script = value, rest + _heredoc_sections(raw, None)
            step = self._read_run(stage, location, mounts, display=display, script=script,
                                  variables=variables)
        if step.truncated:
            self.build.problem(raw.start_line, f"RUN {step.unread}; the commands beyond are not "
                                               "checked",
                               "Run the commands directly in the RUN: docker build runs them, but "
                               "a checker that stops reading cannot vouch for them")
        stage.run_steps.append(step)
        return value

    def _read_run(
        self,
        stage: Stage,
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
                self.build.problem(location.line,
                                   f"RUN runs through SHELL {json.dumps(stage.shell)}, which "
                                   "is not a shell paracle-guard reads; its commands are "
                                   "not checked",
                                   "Use a POSIX shell in SHELL (sh, bash, ash...), or check the "
                                   "built image with paracle-guard image")
        return read_run(
            None if argv is not None else script,
            argv=argv,
            budget=self.build.budget,
            variables=variables,
            cwd=stage.workdir or "/",
            display=display,
            exec_form=exec_form,
            mounts=mounts,
            stage=stage.label,
            final=stage.final,
            location=location,
        )

    def _env(self, stage: Stage, raw: RawInstruction, rest: str, location: Location) -> None:
        words = split_words(rest, self.build.escape)
        if not words:
            return
        pairs: list[tuple[str, str]] = []
        first, _, first_end = words[0]
        if "=" not in first:
            # Legacy "ENV NAME value with spaces": the rest of the line is the value.
            remainder = rest[first_end:].strip()
            if not remainder:
                self.build.problem(raw.start_line,
                                   f"ENV {first} has no value (use ENV {first}=value)")
                return
            pairs.append((first, remainder))
        else:
            for word, _, _ in words:
                name, equals, value = word.partition("=")
                if not equals or not name:
                    self.build.problem(raw.start_line, f"ENV {word!r} is not NAME=value")
                    continue
                pairs.append((name, value))
        # Docker substitutes every value of one ENV line with the environment before it.
        resolved = [(name, *self.build.value_of(stage, value)) for name, value in pairs]
        for name, value, unknown in resolved:
            self.build.set_variable(stage, name, value, unknown, env=True)
            stage.env_facts.append(EnvVar(name=name, value=value, origin="ENV",
                                          final=stage.final, location=location))

    def _copy(
        self,
        stage: Stage,
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
                STAGE_INDEX.fullmatch(source)
                and int(source) >= len(self.build.stages)
                and source not in self.build.stage_names
            ):
                self.build.problem(raw.start_line, f"--from={source}: no stage has that index")
        arguments = json_array(rest)
        words = arguments if arguments is not None else [
            word for word, _, _ in split_words(rest, self.build.escape)]
        if rest.strip() and len(words) < 2:
            self.build.problem(raw.start_line, f"{raw.keyword} needs a source and a destination")
        elif len(words) >= 2:
            destination = destination_path(self.build.expand(stage, words[-1]), stage.workdir)
            if destination.rstrip("/") in ("", "/etc", "/etc/passwd", "/etc/group"):
                stage.account_copies.append(f"{raw.keyword} to {destination}")
        # BuildKit expands an unquoted COPY heredoc with the build's variables.
        value = self.build.expand(stage, rest, Mode.DOCKER) + _heredoc_sections(
            raw, lambda body: self.build.expand(stage, body, Mode.DOCKER)
        )
        return value, self._copy_facts(stage, raw.keyword, words, flags)

    def _copy_facts(
        self, stage: Stage, keyword: str, words: list[str], flags: dict[str, str]
    ) -> dict[str, Any]:
        """Sources, destination, remote sources and --chmod of a COPY or ADD."""
        operands = [self.build.expand(stage, word) for word in words]
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
            self.build.problem(raw.start_line, f"ONBUILD: unknown instruction {inner[0]!r}")
        elif keyword in _NOT_ONBUILD:
            self.build.problem(raw.start_line, f"ONBUILD {keyword} is not allowed")

    def _image_setting(
        self, stage: Stage, keyword: str, raw: RawInstruction, rest: str, location: Location
    ) -> None:
        escape = self.build.escape
        if keyword == "USER":
            if len(split_words(rest, escape)) > 1:
                self.build.problem(raw.start_line, "USER takes exactly one argument: user[:group]")
            spec, unknown = self.build.value_of(stage, rest.strip())
            stage.user = (spec, location, unknown)
        elif keyword == "WORKDIR":
            stage.workdir = _join_workdir(stage.workdir, self.build.expand(stage, rest.strip()))
        elif keyword == "EXPOSE":
            for word, _, _ in split_words(rest, escape):
                self._expose(stage, self.build.expand(stage, word), raw, location)
        elif keyword == "VOLUME":
            paths = json_array(rest)
            if paths is None:
                paths = [self.build.expand(stage, word) for word, _, _ in split_words(rest, escape)]
            stage.volumes.extend(path for path in paths if path)

    def _expose(self, stage: Stage, word: str, raw: RawInstruction, location: Location) -> None:
        match = _PORT.fullmatch(word)
        if match is None:
            if "$" not in word:  # an ARG without value: not wrong, just unknown
                self.build.problem(raw.start_line, f"EXPOSE {word!r} is not a port[/protocol]")
            return
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        protocol = (match.group(3) or "tcp").lower()
        if not 0 < first <= last <= 65535 or protocol not in ("tcp", "udp", "sctp"):
            self.build.problem(raw.start_line, f"EXPOSE {word!r} is not a valid port range")
            return
        stage.ports.extend(
            ExposedPort(port=port, protocol=protocol, location=location)
            for port in range(first, last + 1)
        )

    # -- facts -------------------------------------------------------------------

    def _instruction(
        self, keyword: str, value: str, flags: dict[str, str], stage: Stage,
        location: Location, **facts: Any,
    ) -> Instruction:
        return Instruction(keyword=keyword, value=value, flags=flags, stage=stage.label,
                           final=stage.final, location=location, **facts)

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
