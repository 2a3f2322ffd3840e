"""The Subject's facts from a Dockerfile's evaluated stages.

Facts come only from the stages the target needs, and are ``final`` when their
stage is in the target's FROM chain: the base images, the ENV/ARG values, the
packages installed, the effective USER (resolved through the account changes
of the FROM chain) and the ignore comments.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping

from paracle_guard.location import Location
from paracle_guard.sources.account_book import AccountBook
from paracle_guard.sources.dockerfile_stages import (
    STAGE_INDEX,
    DockerfileBuild,
    Stage,
    Unknown,
)
from paracle_guard.sources.image_ref import parse_image_ref
from paracle_guard.sources.suppressions import parse_ignore_comment
from paracle_guard.subject import (
    BaseImage,
    EnvVar,
    Package,
    RunStep,
    Suppression,
    UserFact,
)


def base_images(build: DockerfileBuild, needed: list[Stage]) -> list[BaseImage]:
    images = []
    for stage in needed:
        if stage.external is not None:
            image = _base_image(stage.external, stage.flags.get("platform"), stage,
                                stage.final, stage.location)
            image.unresolved, image.undeclared = stage.unresolved
            images.append(image)
        for reference, location in stage.sources:
            if (
                build.stage_named(reference, stage) is None
                and reference.lower() != "scratch"
                and not STAGE_INDEX.fullmatch(reference)
            ):
                images.append(_base_image(reference, None, stage, False, location))
    return images


def env_facts(build: DockerfileBuild, needed: list[Stage]) -> list[EnvVar]:
    facts = list(build.global_facts)
    for stage in needed:
        facts.extend(stage.env_facts)
    final_names = {fact.name for fact in facts if fact.origin == "ARG" and fact.final}
    for name, value in build.build_args.items():
        declared_at = build.arg_declarations.get(name)
        facts.append(EnvVar(
            name=name,
            value=value,
            origin="build-arg",
            final=name in final_names,
            location=declared_at or Location(path=build.path),
        ))
    return facts


def target_user(build: DockerfileBuild, target: Stage, chain: list[Stage]) -> UserFact:
    """The effective USER of the target, following stages it is built FROM."""
    origin = chain[-1]
    setter = next((stage for stage in chain if stage.user is not None), None)
    if setter is None or setter.user is None:
        return UserFact(spec=None, location=target.location, inherited_from=origin.external)
    spec, location, unknown = setter.user
    book = _account_book(list(reversed(chain)))
    if unknown is None:
        fact = book.resolve(spec, location)
    elif unknown.assumed is None:
        fact = UserFact(spec=spec, location=location, may_be_root=True,
                        unresolved_reason=_base_variable_reason(build, spec, unknown, origin))
    else:
        fact = _unset_arguments(spec, unknown, book, location)
    fact.inherited_from = None if setter is target else setter.label
    return fact


def _base_variable_reason(
    build: DockerfileBuild, spec: str, unknown: Unknown, origin: Stage
) -> str:
    names = [name for name, kind in unknown.roots if kind == "base"]
    listed = ", ".join("$" + name for name in names)
    reason = (f"USER {spec} uses {listed}, which this stage neither declares with ARG nor "
              f"sets with ENV: the value comes from the environment of the base image "
              f"{origin.external}, which lint cannot see; run paracle-guard image on the "
              "built image to prove the user")
    hoisted = [name for name in names if name in build.arg_declarations
               and name in build.global_args]
    if hoisted:
        reason += (f". ${hoisted[0]} is an ARG declared only before the first FROM: the "
                   f"stage must redeclare ARG {hoisted[0]} for --build-arg "
                   f"{hoisted[0]}=... to reach it")
    return reason


def _unset_arguments(spec: str, unknown: Unknown, book: AccountBook,
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


def _account_book(stages: list[Stage]) -> AccountBook:
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


def suppressions(build: DockerfileBuild) -> list[Suppression]:
    comments = build.text.comments
    spans = [(raw.start_line, raw.end_line) for raw in build.text.instructions]
    starts = [start for start, _ in spans]
    found = []
    for line, comment in comments.items():
        found_comment = parse_ignore_comment(comment)
        if found_comment is None:
            continue
        scope, rules, reason = found_comment
        location = Location(path=build.path, line=line)
        if scope == "ignore-file":
            found.append(Suppression(rules=rules, reason=reason, scope="file",
                                     location=location))
            continue
        first, last = _covered_span(line, spans, starts, comments)
        found.append(Suppression(rules=rules, reason=reason, scope="line",
                                 first_line=first, last_line=last, location=location))
    return found


def _base_image(
    ref: str, platform: str | None, stage: Stage, final: bool, location: Location
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


def packages(steps: Iterable[RunStep]) -> list[Package]:
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
