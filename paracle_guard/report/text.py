"""The text report: one line per finding, for people.

Plain text for pipes, files and ``NO_COLOR``; rich styling only when the caller
asks for colour. Both come from the same list of styled segments, so a
terminal and a log file always carry the same information. rich is imported
only on the colour path: ``paracle-guard lint`` in a pipe must not pay for it.

A target that a file's path does not name by itself (a compose service, a
Kubernetes workload) gets a header line, and its findings are indented under
it: the pod's own first, then each container's under the container's name.
Every finding line still starts with ``path:line:``.

The helpers ``printable``, ``location_label``, ``summary_line``,
``suppressed_line``, ``about`` and ``fix_lines`` are shared by the other
line-oriented formats (github, junit).
"""

from __future__ import annotations

import io
import textwrap
import unicodedata

from paracle_guard.report.models import TARGET_NOUNS, Finding, Report, Result
from paracle_guard.severity import Severity

# A segment is (text, rich style); "" leaves the text unstyled.
Segment = tuple[str, str]
Line = list[Segment]

SEVERITY_COLORS = {
    Severity.ERROR: "red",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
}

# Explicit bidi formatting characters: in a message they could make a terminal
# display text in an order other than the bytes say ("Trojan Source").
# U+FFFE and U+FFFF are not characters at all, and XML (JUnit) rejects them.
_ESCAPED = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufffe\uffff"
)


def printable(text: str) -> str:
    """``text`` with control, bidi and lone-surrogate characters shown as escapes.

    Messages quote untrusted input (a Dockerfile line, a file name in an image);
    raw, an ESC could restyle or rewrite the user's terminal, a newline could
    forge a finding line, and a lone surrogate (from undecodable bytes) could
    not even be written out as UTF-8.
    """
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char in _ESCAPED or unicodedata.category(char) in ("Cc", "Cs"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def location_label(result: Result, finding: Finding) -> str:
    """Where a finding is, as people and editors read it: ``path:line`` on disk;
    ``image:/path/inside`` (the ``docker cp`` spelling) inside an image."""
    location = finding.location
    where = location.path
    if result.in_image and location.path != result.target:
        where = f"{result.target}:{location.path}"
    if location.line is not None:
        where = f"{where}:{location.line}"
    return printable(where)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summary_line(report: Report) -> str:
    """``2 errors, 1 warning, 0 info in 1 file, 4 services (policy sandbox)``."""
    return "".join(text for text, _ in _summary_segments(report))


def _checked(report: Report) -> str:
    """``1 file, 4 services``: the files read, then the targets in them, each counted once."""
    files = dict.fromkeys(path for result in report.results for path in result.files)
    counts: dict[str, int] = {}
    for result in report.results:
        noun = TARGET_NOUNS.get(result.kind)
        if noun is not None:
            counts[noun] = counts.get(noun, 0) + (result.counted_as is not None)
    parts = [_plural(count, noun) for noun, count in counts.items()]
    if files or not parts:
        parts.insert(0, _plural(len(files), "file"))
    return ", ".join(parts)


def _summary_segments(report: Report) -> Line:
    scope = f" in {_checked(report)} (policy {printable(report.policy.name)})"
    summary = report.summary
    if not (summary.error or summary.warning or summary.info):
        return [("no findings", "bold green"), (scope, "")]
    counts = (
        (_plural(summary.error, "error"), summary.error, Severity.ERROR),
        (_plural(summary.warning, "warning"), summary.warning, Severity.WARNING),
        (f"{summary.info} info", summary.info, Severity.INFO),
    )
    segments: Line = []
    for text, count, severity in counts:
        if segments:
            segments.append((", ", ""))
        segments.append((text, f"bold {SEVERITY_COLORS[severity]}" if count else ""))
    segments.append((scope, ""))
    return segments


# How the suppressed line counts each kind of suppression: (one, several).
SUPPRESSION_NOUNS = {
    "inline": ("inline ignore", "inline ignores"),
    "waiver": ("waiver", "waivers"),
    "cli": ("--ignore", "--ignore"),
    "baseline": ("in the baseline", "in the baseline"),
}


def suppressed_line(report: Report) -> str | None:
    """``4 suppressed (1 inline ignore, 2 waivers, 1 --ignore)``, or None when nothing was."""
    total = report.suppressed_total
    if not total:
        return None
    kinds = ", ".join(
        f"{count} {SUPPRESSION_NOUNS[kind][count != 1]}"
        for kind, count in report.suppressed_counts.items()
    )
    return f"{total} suppressed ({kinds})" if kinds else f"{total} suppressed"


def ordered_findings(result: Result) -> list[Finding]:
    """A result's findings by path then line; findings about the whole target first."""
    return sorted(
        result.findings,
        key=lambda f: (
            f.location.path != result.target,
            f.location.path,
            f.location.line or 0,
            f.rule,
            f.message,
        ),
    )


def about(result: Result, finding: Finding) -> str | None:
    """What the finding is about when the path does not say: ``container app``,
    ``service web``; None for a file or an image."""
    if finding.target is not None:
        return result.parts.get(finding.target, finding.target)
    return result.label


def fix_lines(fix: str) -> list[str]:
    """A fix as lines to print (a snippet spans several), each made printable."""
    return [printable(line) for line in fix.split("\n")]


def _finding_lines(result: Result, finding: Finding, indent: str = "") -> list[Line]:
    color = SEVERITY_COLORS[finding.severity]
    lines: list[Line] = [
        [
            (indent, ""),
            (location_label(result, finding), "bold"),
            (": ", ""),
            (finding.rule, f"bold {color}"),
            (" ", ""),
            (finding.name, "bold"),
            (" ", ""),
            (f"[{finding.severity.value}]", color),
            (" ", ""),
            (printable(finding.message), ""),
        ]
    ]
    if finding.location.layer:
        lines.append([(indent + "    layer: ", "dim"), (printable(finding.location.layer), "")])
    if finding.fix:
        first, *more = fix_lines(finding.fix)
        lines.append([(indent + "    fix: ", "green"), (first, "")])
        lines.extend([(indent + "         " + line, "")] for line in more)
    return lines


def _grouped_lines(result: Result) -> list[Line]:
    """A labelled target's findings under its header; its parts' under theirs."""
    where = result.metadata.get("file")
    header = f"{where}: {result.label}" if isinstance(where, str) else str(result.label)
    lines: list[Line] = [[(printable(header), "bold underline")]]
    ordered = ordered_findings(result)
    for finding in ordered:
        if finding.target is None:
            lines.extend(_finding_lines(result, finding, "  "))
    for part, label in result.parts.items():
        own = [finding for finding in ordered if finding.target == part]
        if own:
            lines.append([("  " + printable(label), "bold")])
            for finding in own:
                lines.extend(_finding_lines(result, finding, "    "))
    return lines


def identity_line(result: Result) -> str | None:
    """What a reference resolved to: ``REF: image sha256:..., tags ..., digests ...`` for
    an image; ``NAME: container 0123abcd4567 (running), image REF sha256:...`` for a
    container."""
    own_id = result.metadata.get("id")
    if not result.in_image or not own_id:
        return None

    def listed(key: str) -> str:
        value = result.metadata.get(key) or []
        return ", ".join(value) if isinstance(value, list) and value else "none"

    if result.kind == "container":
        state = result.metadata.get("state")
        image = " ".join(str(part) for part in (result.metadata.get("image"),
                                                 result.metadata.get("image_id")) if part)
        return (f"{result.target}: container {str(own_id)[:12]}"
                f"{f' ({state})' if state else ''}, image {image or 'unknown'}")
    return (f"{result.target}: image {own_id}, tags {listed('tags')}, "
            f"digests {listed('repo_digests')}")


def _report_lines(report: Report) -> list[Line]:
    lines: list[Line] = []
    for result in report.results:
        identity = identity_line(result)
        if not result.findings and identity is None:
            continue
        if lines:
            lines.append([])  # a blank line between targets
        if identity is not None:
            lines.append([(printable(identity), "dim")])
        if result.label is not None:
            lines.extend(_grouped_lines(result))
            continue
        for finding in ordered_findings(result):
            lines.extend(_finding_lines(result, finding))

    tail: list[Line] = [[("note: ", "bold magenta"), (printable(n), "")] for n in report.notices]
    suppressed = suppressed_line(report)
    if suppressed:
        tail.append([(suppressed, "dim")])
    tail.append(_summary_segments(report))
    if lines:
        lines.append([])
    return lines + tail


def render_text(report: Report, *, color: bool = False, width: int | None = None) -> str:
    """The text report; ``width`` wraps long lines (None: never wrap)."""
    lines = _report_lines(report)
    if color:
        return _render_rich(lines, width)
    out = []
    for line in lines:
        plain = "".join(text for text, _ in line)
        if width is None or len(plain) <= width:
            out.append(plain)
            continue
        # Continuations sit deeper than the line they continue, so the
        # "path:line:" at the left edge still starts each finding.
        indent = " " * (len(plain) - len(plain.lstrip(" ")) + 4)
        out.extend(
            textwrap.wrap(
                plain,
                width=width,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(out) + "\n"


def _render_rich(lines: list[Line], width: int | None) -> str:
    from rich.console import Console
    from rich.text import Text

    buffer = io.StringIO()
    # Everything explicit: the caller already decided this output wants colour,
    # and the result must not depend on the environment (NO_COLOR, COLUMNS,
    # TERM) of whoever renders it.
    console = Console(
        file=buffer,
        force_terminal=True,
        color_system="standard",
        no_color=False,
        width=width or 80,
        soft_wrap=width is None,
        highlight=False,
        markup=False,
        emoji=False,
        legacy_windows=False,
    )
    for line in lines:
        console.print(Text.assemble(*line))
    return buffer.getvalue()
