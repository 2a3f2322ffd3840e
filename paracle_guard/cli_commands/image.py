"""``paracle-guard image``: built images, from the engine, a ``docker save`` archive or an OCI
image layout."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from paracle_guard.cli_commands.scan import facts_cache, progress, run_scan
from paracle_guard.cli_kit.house import command_app, fails_cleanly
from paracle_guard.cli_kit.options import (
    BaselineOption,
    ColorOption,
    FailOnOption,
    FormatOption,
    IgnoreOption,
    NoCacheOption,
    OutputOption,
    PolicyOption,
    WriteBaselineOption,
)
from paracle_guard.errors import UsageError

if TYPE_CHECKING:
    from paracle_guard.subject import Subject

app = command_app()


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
                     help="Check a `docker save` archive or an OCI image layout (a directory or a "
                     "tar of one) instead (plain or gzip; - reads standard input); no daemon "
                     "needed. Each image in it is its own target."),
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option("--platform", metavar="OS/ARCH[/VARIANT]",
                     help="With --input, the platform to check in an OCI layout that holds "
                     "several (default: this machine's)."),
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
    if not refs and input_archive is None:
        raise UsageError("name an image (paracle-guard image REF) or an archive (--input FILE)")
    if platform is not None and input_archive is None:
        raise UsageError("--platform picks among an OCI layout's platforms: use it with --input "
                         "(a local image is already one platform)")
    subjects = (_archive_images(input_archive, refs or [], platform)
                if input_archive is not None
                else _engine_images(refs or [], no_cache, output_format))
    run_scan(subjects, policy=policy, ignore=ignore, fail_on=fail_on)


def _archive_images(archive: str, refs: list[str], platform: str | None) -> Iterator[Subject]:
    from paracle_guard.sources.image import load_archive_images

    yield from load_archive_images(archive, refs, platform=platform)


def _engine_images(refs: list[str], no_cache: bool,
                   formats: list[str] | None) -> Iterator[Subject]:
    from paracle_guard.docker_client import Engine
    from paracle_guard.sources.image import load_image

    engine = Engine.connect()
    cache = facts_cache(no_cache)
    shown = progress(formats)
    for ref in refs:
        yield load_image(ref, engine, cache=cache, progress=shown)
