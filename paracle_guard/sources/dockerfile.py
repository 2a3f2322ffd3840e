"""The Dockerfile source: a Dockerfile becomes a Subject.

Five layers, each in its own module:

1. ``dockerfile_text``: bytes to raw instructions with exact lines. It wraps
   dockerfile-parse with a pre-pass for what that library gets wrong (BOM,
   CRLF, directives, heredocs, blank lines in continuations, binary input).
2. ``dockerfile_words``: Docker's word lexer and ``$VAR`` substitution.
3. ``dockerfile_stages``: the stage model, the state one reading shares, and
   the ARG/ENV scoping on top of substitution.
4. ``dockerfile_instructions``: each instruction of a stage as docker build
   runs it, helped by ``shell`` (RUN scripts to pipelines of argv lists),
   ``commands`` (package installs and useradd/adduser in those argv lists)
   and ``dockerfile_copy`` (COPY and ADD).
5. This module splits the file into stages and picks the needed ones;
   ``dockerfile_facts`` turns them into the Subject's facts.

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

import os
import re
from collections.abc import Mapping

from paracle_guard.errors import InputError
from paracle_guard.sources.dockerfile_facts import (
    base_images,
    env_facts,
    packages,
    suppressions,
    target_user,
)
from paracle_guard.sources.dockerfile_instructions import StageReader
from paracle_guard.sources.dockerfile_stages import (
    KNOWN_INSTRUCTIONS,
    DockerfileBuild,
    Stage,
    from_chain,
)
from paracle_guard.sources.dockerfile_text import RawInstruction, read_dockerfile_text
from paracle_guard.sources.dockerfile_words import (
    Mode,
    expand,
    expand_word,
    split_flags,
    split_words,
)
from paracle_guard.subject import EnvVar, Subject

__all__ = ["load_dockerfile", "parse_dockerfile"]

_STAGE_NAME = re.compile(r"[a-z][a-z0-9._-]*")


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
    build = DockerfileBuild(path, text, dict(build_args or {}))
    return _DockerfileSubjectBuilder(build).subject(target)


class _DockerfileSubjectBuilder:
    """Splits the file into stages, reads them, and builds the target's Subject."""

    def __init__(self, build: DockerfileBuild) -> None:
        self.build = build
        self.stages = build.stages
        self.stage_names = build.stage_names

    # -- the whole file ------------------------------------------------------

    def subject(self, target: str | None) -> Subject:
        self._split_stages()
        subject = Subject(kind="dockerfile", target=self.build.path)
        subject.suppressions = suppressions(self.build)
        subject.metadata = {"stages": [stage.label for stage in self.stages]}
        if not self.stages:
            subject.parse_problems = self.build.finished_problems()
            return subject

        chosen = self._target_stage(target)
        chain = from_chain(chosen)
        for stage in chain:
            stage.final = True
        reader = StageReader(self.build)
        for stage in self.stages:
            reader.evaluate(stage)
        needed = self._needed(chosen)

        subject.metadata["stage"] = chosen.label
        subject.user = target_user(self.build, chosen, chain)
        subject.workdir = chosen.workdir
        subject.base_images = base_images(self.build, needed)
        subject.env = env_facts(self.build, needed)
        for stage in needed:
            subject.instructions.extend(stage.instructions)
            subject.run_steps.extend(stage.run_steps)
        subject.packages = packages(subject.run_steps)
        for stage in reversed(chain):
            subject.exposed_ports.extend(stage.ports)
            subject.volumes.extend(stage.volumes)
        subject.parse_problems = self.build.finished_problems()
        return subject

    def _split_stages(self) -> None:
        instructions = self.build.text.instructions
        if not instructions:
            if not self.build.problems:
                self.build.problem(
                    1, "empty Dockerfile: no instructions (it needs at least a FROM)"
                )
            return
        has_from = any(raw.keyword == "FROM" for raw in instructions)
        if not has_from:
            self.build.problem(
                instructions[0].start_line,
                "no FROM instruction: a Dockerfile must start a build stage with FROM",
            )
        for raw in instructions:
            if raw.keyword == "FROM":
                stage = self.build.within_budget(raw, self._stage, raw)
                if stage is not None:
                    self.stages.append(stage)
                    if stage.name is not None:
                        self.stage_names.setdefault(stage.name, stage)
            elif self.stages:
                self.stages[-1].body.append(raw)
            elif raw.keyword == "ARG":
                self.build.within_budget(raw, self._global_arg, raw)
            elif raw.keyword not in KNOWN_INSTRUCTIONS:
                self.build.problem(raw.start_line, f"unknown instruction {raw.keyword!r}")
            elif has_from:
                self.build.problem(
                    raw.start_line,
                    f"{raw.keyword} before the first FROM: only ARG may come before FROM",
                )

    def _target_stage(self, target: str | None) -> Stage:
        if target is None:
            return self.stages[-1]
        if target.lower() in self.stage_names:
            return self.stage_names[target.lower()]
        named = [stage.name for stage in self.stages if stage.name is not None]
        listing = ", ".join(named) if named else "none has a name"
        raise InputError(
            f"{self.build.path}: --target {target}: no stage of that name (stages: {listing})"
        )

    def _needed(self, target: Stage) -> list[Stage]:
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
                source = self.build.stage_named(reference, stage)
                if source is not None:
                    pending.append(source)
        return [stage for stage in self.stages if stage.index in seen]

    # -- FROM and global ARGs ---------------------------------------------------

    def _global_arg(self, raw: RawInstruction) -> None:
        location = self.build.location(raw)
        for name, value in self.build.declare_args(raw, None):
            self.build.arg_declarations.setdefault(name, location)
            self.build.global_facts.append(
                EnvVar(name=name, value=value, origin="ARG", final=False, location=location)
            )

    def _stage(self, raw: RawInstruction) -> Stage:
        build = self.build
        location = build.location(raw)
        raw_flags, rest = split_flags(raw.value, build.escape)
        build.check_quotes(raw, "FROM", rest)
        flags = {name: expand_word(value, build.global_args, build.escape, budget=build.budget)
                 for name, value in raw_flags}
        raw_words = split_words(rest, build.escape)
        words = [expand_word(word, build.global_args, build.escape, budget=build.budget)
                 for word, _, _ in raw_words]
        name: str | None = None
        if len(words) == 3 and words[1].lower() == "as":
            name = words[2].lower()
        elif len(words) != 1:
            build.problem(raw.start_line, "FROM takes an image, optionally followed by AS name")
        image = words[0] if words else ""
        if not image:
            build.problem(raw.start_line, "FROM names no image (empty after substitution?)")
        shown, unresolved = self._from_reference(raw_words[0][0] if raw_words else "")
        if name is not None:
            if not _STAGE_NAME.fullmatch(name):
                build.problem(raw.start_line, f"invalid stage name {name!r}")
            if name in self.stage_names:
                build.problem(raw.start_line, f"duplicate stage name {name!r}")
        parent = self.stage_names.get(image.lower())
        external = None if parent is not None or image.lower() in ("scratch", "") else image
        if external is not None and unresolved[0]:
            external = shown  # "gcr.io/$PROJECT_ID/app", not Docker's "gcr.io//app"
        on_image = parent.on_image if parent is not None else external is not None
        return Stage(
            index=len(self.stages),
            name=name,
            location=location,
            from_value=expand(rest, build.global_args, build.escape, Mode.DOCKER,
                              budget=build.budget),
            flags=flags,
            image=image,
            parent=parent,
            external=external,
            unresolved=unresolved,
            on_image=on_image,
        )

    def _from_reference(self, word: str) -> tuple[str, tuple[list[str], list[str]]]:
        """The FROM image as written where ARGs have no value, and those ARGs' names."""
        build = self.build
        unknown: list[str] = []
        shown = expand(word, build.global_args, build.escape, Mode.DOCKER_WORD, unknown,
                       undeclared_empty=False, budget=build.budget) if word else ""
        undeclared = [name for name in unknown if name not in build.global_args]
        return shown, (unknown, undeclared)

    # -- one stage ---------------------------------------------------------------
