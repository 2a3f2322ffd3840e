"""Write a corpus of varied, realistic Dockerfiles for the lint benchmark.

No registry or code host is reachable from the benchmark machine, so the corpus is
generated: a seeded mix of the shapes real Dockerfiles take (single and multi-stage
builds, apt/apk/yum/pip installs, heredocs, continuations with comments, ARG-driven
bases, USER in every spelling, ONBUILD, CRLF, escape directives). The same seed
always writes the same files.

    python benchmarks/make_corpus.py benchmarks/corpus --count 1000
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

BASES = [
    "python:3.12-slim", "python:3.10-slim-bookworm", "node:20-alpine", "golang:1.22",
    "debian:bookworm-slim", "ubuntu:22.04", "alpine:3.20", "nginx:latest", "redis",
    "ghcr.io/acme/base:1.4.2", "registry.example.com:5000/team/app@sha256:" + "ab" * 32,
    "eclipse-temurin:21-jre", "rust:1.79", "mcr.microsoft.com/dotnet/aspnet:8.0",
]
APT_PACKAGES = ["curl", "ca-certificates", "git", "gcc", "libpq-dev", "tini", "jq",
                "build-essential", "netcat-openbsd", "sudo", "vim", "locales", "tzdata"]
APK_PACKAGES = ["curl", "bash", "ca-certificates", "tini", "su-exec", "git", "openssl"]
PIP_PACKAGES = ["requests==2.32.3", "flask", "gunicorn==22.0.0", "numpy", "pydantic>=2",
                "uvicorn[standard]", "boto3", "psycopg2-binary==2.9.9"]
USERS = ["1000", "1000:1000", "app", "nobody", "root", "0:0", "${UID}", "appuser:appgroup"]


def apt_run(rng: random.Random) -> str:
    packages = " ".join(rng.sample(APT_PACKAGES, rng.randint(1, 5)))
    recommends = rng.choice(["--no-install-recommends ", ""])
    clean = rng.choice([" \\\n    && rm -rf /var/lib/apt/lists/*", ""])
    return (
        "RUN apt-get update \\\n"
        "    # fetch what the app needs\n"
        f"    && apt-get install -y {recommends}{packages}{clean}\n"
    )


def apk_run(rng: random.Random) -> str:
    packages = " ".join(rng.sample(APK_PACKAGES, rng.randint(1, 4)))
    return f"RUN apk add {rng.choice(['--no-cache ', ''])}{packages}\n"


def pip_run(rng: random.Random) -> str:
    packages = " ".join(rng.sample(PIP_PACKAGES, rng.randint(1, 4)))
    return f"RUN pip install {rng.choice(['--no-cache-dir ', ''])}{packages}\n"


def heredoc_run(rng: random.Random) -> str:
    return (
        "RUN <<EOF\n"
        "set -eux\n"
        f"apt-get update && apt-get install -y --no-install-recommends {rng.choice(APT_PACKAGES)}\n"
        "rm -rf /var/lib/apt/lists/*\n"
        "EOF\n"
    )


def stage(rng: random.Random, name: str | None, base: str) -> str:
    lines = [f"FROM {base}{' AS ' + name if name else ''}\n"]
    if rng.random() < 0.3:
        lines.append("ARG UID=1000\n")
    lines.append(rng.choice(["ENV LANG=C.UTF-8\n", "ENV APP_HOME=/app PORT=8080\n", ""]))
    if rng.random() < 0.1:
        lines.append("ENV API_TOKEN=changeme\n")
    lines.append("WORKDIR /app\n")
    for _ in range(rng.randint(1, 4)):
        lines.append(rng.choice([apt_run, apk_run, pip_run, heredoc_run])(rng))
    lines.append(rng.choice([
        "COPY . /app\n",
        "COPY --chown=1000:1000 requirements.txt /app/\n",
        "ADD https://example.com/tool.tar.gz /opt/\n",
        'COPY ["src", "/app/src"]\n',
    ]))
    if rng.random() < 0.15:
        lines.append("RUN curl -fsSL https://get.example.com/install.sh | sh\n")
    if rng.random() < 0.1:
        lines.append("ONBUILD RUN make\n")
    lines.append("EXPOSE 8080\n")
    return "".join(lines)


def dockerfile(rng: random.Random) -> str:
    parts = []
    if rng.random() < 0.1:
        parts.append("# escape=\\\n")
    parts.append("# syntax=docker/dockerfile:1\n")
    if rng.random() < 0.3:
        parts.append(f"ARG BASE_IMAGE={rng.choice(BASES)}\n")
        final_base = "${BASE_IMAGE}"
    else:
        final_base = rng.choice(BASES)
    if rng.random() < 0.5:
        parts.append(stage(rng, "builder", rng.choice(BASES)))
        parts.append("RUN make build\n\n")
        parts.append(stage(rng, "final", final_base))
        parts.append("COPY --from=builder /app/dist /app\n")
    else:
        parts.append(stage(rng, None, final_base))
    if rng.random() < 0.8:
        parts.append(f"USER {rng.choice(USERS)}\n")
    parts.append(rng.choice(['CMD ["python", "app.py"]\n', "ENTRYPOINT [\"/app/run\"]\n",
                             "CMD gunicorn app:app\n"]))
    text = "".join(parts)
    return text.replace("\n", "\r\n") if rng.random() < 0.05 else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    args.folder.mkdir(parents=True, exist_ok=True)
    for index in range(args.count):
        (args.folder / f"{index:04d}.Dockerfile").write_bytes(dockerfile(rng).encode())
    print(f"wrote {args.count} Dockerfiles to {args.folder}")


if __name__ == "__main__":
    main()
