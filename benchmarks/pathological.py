"""Time `paracle-guard lint` on a 2 MB Dockerfile built to make backtracking patterns explode.

Run by hand (never as a test), from the repository root, after installing:

    python benchmarks/pathological.py --size-mb 2 --runs 3

Every line of the file is a worst case: long digit runs on RUN lines (next to
redirects, the shape that made a sudoers pattern quadratic), long runs of blanks in
ignore comments, directives and instructions, deeply nested $(...), ${...:-...},
subshells, quotes, wrappers and heredocs, and a very long continued instruction.
Goal (issue 13): under 2 s on a 2-core machine; before the fix, patterns quadratic in
these runs took minutes.
tests/test_pathological_input.py lints the same file without timing it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def pathological_dockerfile(size: int = 2 * 1024 * 1024) -> str:
    """A Dockerfile of about ``size`` characters, every line of it a worst case."""
    unit = size // 64  # every section below is a few units long
    digits = "1" * unit
    blanks = " " * unit
    depth = unit // 8  # each level of nesting is several characters
    sections = [
        "# syntax=" + blanks + "x\n",
        "FROM alpine:3.20\n",
        # Digit runs where a redirect is expected, and beside real ones.
        f"RUN echo {digits}>/etc/{digits} {digits}\n",
        f"RUN {digits}> /etc/sudoers.d/{digits}\n",
        f"RUN echo {digits}2>&1{digits}<<{digits}\n",
        # Blanks inside and after an ignore comment, its reason, and instructions.
        f"# paracle-guard ignore=PG101{blanks}, PG102{blanks}reason={blanks}x{blanks}y\n",
        f"# paracle-guard ignore=PG101 reason=\"{blanks}\n",
        f"RUN apk add{blanks}curl{blanks}\n",
        f"LABEL a=\"{blanks}\" b={blanks}c\n",
        # Deep nesting: substitutions, subshells, quotes, parameter defaults, wrappers.
        f"ENV X={'${X:-' * depth}v{'}' * depth}\n",
        f"RUN echo {'$(' * depth}x{')' * depth}\n",
        f"RUN {'(' * depth}true{')' * depth}\n",
        "RUN echo \"" + '$(echo "' * depth + "x" + '")' * depth + '"\n',
        f"RUN echo {'${A:-' * depth}x{'}' * depth}\n",
        f"RUN sh -c {'sh -c ' * depth}'apk add x'\n",
        f"RUN {'eval ' * depth}apk add x\n",
        f"RUN {'sudo env A=1 nice ' * depth}apk add x\n",
        f"RUN echo {'`' * depth}\n",
        f"RUN echo {'<(' * depth}\n",
        f"RUN curl https://x/{'/a' * depth} | {'tee x | ' * depth}sh\n",
        "RUN cat " + " ".join(f"<<E{i}" for i in range(depth // 4)) + "\n"
        + "".join(f"x\nE{i}\n" for i in range(depth // 4)),
        # One instruction continued over many lines, with comments between.
        "RUN apk add \\\n" + "    pkg \\\n    # note\n" * depth + "    last\n",
        "USER 1000\n",
    ]
    text = "".join(sections)
    # Top up with more digit runs, so the file is as big as promised.
    missing = max(0, size - len(text))
    return text + f"RUN echo {'9' * missing}\n" if missing else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    executable = Path(sys.executable).parent / "paracle-guard"
    text = pathological_dockerfile(int(args.size_mb * 1024 * 1024))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "Dockerfile"
        path.write_text(text)
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            completed = subprocess.run(
                [str(executable), "lint", str(path), "--format", "json"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
            )
            times.append(time.perf_counter() - started)
            if completed.returncode not in (0, 1):
                sys.exit(f"lint failed: {completed.stderr.decode().strip()}")
    print(f"{len(text.encode()) / 1024 / 1024:.2f} MB pathological Dockerfile, whole process, "
          f"{args.runs} runs: median {statistics.median(times):.2f} s, min {min(times):.2f} s")


if __name__ == "__main__":
    main()
