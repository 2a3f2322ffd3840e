"""The Dockerfiles compose services are built from, read beside the services.

``compose --with-dockerfiles`` checks each service and the Dockerfile its ``build:``
names; services that share one build (the same Dockerfile, target and arguments)
share one Dockerfile subject, so its findings are reported once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from paracle_guard.errors import InputError
from paracle_guard.subject import Subject


def services_and_builds(services: Iterable[Subject], *, with_dockerfiles: bool) -> Iterator[
    Subject
]:
    """Each service subject, followed (when asked) by the first subject of its build."""
    from paracle_guard.sources.build_args import parse_build_args
    from paracle_guard.sources.dockerfile import load_dockerfile

    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    for service in services:
        yield service
        dockerfile = service.metadata.get("dockerfile")
        if not with_dockerfiles or not isinstance(dockerfile, str):
            continue
        target = str(service.metadata.get("build_target") or "")
        args = tuple(service.metadata.get("build_args") or [])
        if (dockerfile, target, args) in seen:
            continue
        seen.add((dockerfile, target, args))
        try:
            built = load_dockerfile(dockerfile, target=target or None,
                                    build_args=parse_build_args(args))
        except InputError as error:
            raise InputError(f"{service.target}: build: {error}") from None
        yield built
