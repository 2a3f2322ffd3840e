"""Report models and one module per output format.

``render(report, fmt)`` is the one entry point. It imports only the module of
the format asked for, so a JSON run never loads rich and a text run in a pipe
never loads anything but the standard library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paracle_guard.report.models import Report

FORMATS: tuple[str, ...] = ("text", "json", "sarif", "github", "junit")


def render(report: Report, fmt: str, *, color: bool = False, width: int | None = None) -> str:
    """``report`` in format ``fmt``, ending with a newline, ready to write out.

    ``color`` and ``width`` concern only the text format: ``color`` asks for
    terminal styling (the caller decides: a TTY without NO_COLOR), ``width``
    wraps long lines (None: never wrap). Machine formats ignore both.
    """
    if fmt == "text":
        from paracle_guard.report.text import render_text

        return render_text(report, color=color, width=width)
    if fmt == "json":
        from paracle_guard.report.json_format import render_json

        return render_json(report)
    if fmt == "sarif":
        from paracle_guard.report.sarif import render_sarif

        return render_sarif(report)
    if fmt == "github":
        from paracle_guard.report.github import render_github

        return render_github(report)
    if fmt == "junit":
        from paracle_guard.report.junit import render_junit

        return render_junit(report)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
