"""Supply-chain rules: where the image's code comes from.

Base images and remote code matter in every stage, not only the final one: a
builder stage that pipes a script from the internet into a shell compiles the
binaries the final stage copies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from paracle_guard.cel import CelCheck, cel, every_container
from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Admission, ByKind, Violation, rule, worded
from paracle_guard.severity import Severity
from paracle_guard.subject import IMAGE_NAMING_KINDS, BaseImage, Download, Subject

# A Dockerfile's images are base images (FROM); a compose service or a Kubernetes
# container names the image it runs, judged by the same rules.
_IMAGE: ByKind = {"compose": "image", "k8s": "image"}

# --- PG501 ------------------------------------------------------------------------

# Each finding spells IMAGE:VERSION with the image it is about (_pin_fix).
_PIN_FIX = ("Pin the base image to a version tag and, for reproducible builds, a digest: "
            "FROM IMAGE:VERSION@sha256:...")
_PIN_FIXES: ByKind = {
    "compose": "Pin the service's image to a version tag and a digest: "
               "image: IMAGE:VERSION@sha256:...",
    "k8s": "Pin the container's image to a version tag and a digest, so every node runs "
           "the same image: image: IMAGE:VERSION@sha256:...",
}


def _unresolved_problem(image: BaseImage, what: str) -> str:
    names = ", ".join("$" + name for name in image.unresolved)
    message = (
        f"{what} {image.ref} depends on {names}, which has no value here: the image "
        "is chosen at build time, so lint cannot tell whether it is pinned"
    )
    if image.undeclared:
        undeclared = ", ".join(image.undeclared)
        return message + (
            f"; no ARG before FROM declares {undeclared}, so docker build substitutes an "
            f"empty string (declare ARG {image.undeclared[0]} before FROM)"
        )
    return message + f" (pass --build-arg {image.unresolved[0]}=... to check it)"


def _pinning_problem(image: BaseImage, controls: Controls, what: str = "base image") -> str | None:
    rules = controls.base_image
    if rules.forbid_latest and image.digest is None:
        if image.tag is None:
            return f"{what} {image.ref} has no tag or digest, so it means :latest"
        if image.tag == "latest":
            return f"{what} {image.ref} uses the moving tag :latest"
    if rules.require_digest and image.digest is None:
        return f"{what} {image.ref} is not pinned by digest (@sha256:...)"
    return None


def _pinned_on_admission(controls: Controls) -> CelCheck | None:
    digest = "c.image.matches('@sha256:[0-9a-f]{64}$')"
    if controls.base_image.require_digest:
        return CelCheck(every_container(digest), "images must be pinned by digest (@sha256:...)")
    if controls.base_image.forbid_latest:
        return CelCheck(
            every_container(f"{digest} || (c.image.matches(':[A-Za-z0-9_][A-Za-z0-9_.-]*$') && "
                            "!c.image.endsWith(':latest'))"),
            "images must have a tag other than latest, or a digest")
    return None


@rule(
    code="PG501",
    name="unpinned-base-image",
    severity=Severity.WARNING,
    kinds=IMAGE_NAMING_KINDS,
    summary="An image is not pinned: no tag, :latest, or no digest when the policy wants one "
            "(FROM, a compose image:, a container's image)",
    fix=_PIN_FIX,
    fixes=_PIN_FIXES,
    rationale=(
        "A moving tag means a different image on every build or pull: builds stop being "
        "reproducible, two hosts (or two nodes of one Deployment) run different code, a "
        "compromised or broken upstream push lands silently, and what was reviewed is not "
        "what runs. A digest names exactly one image."
    ),
    references=("CIS Docker Benchmark v1.6.0 4.2",),
    admission=Admission(pod=_pinned_on_admission, listed_after="PG805"),
)
def unpinned_base_image(subject: Subject, controls: Controls) -> Iterator[Violation]:
    what = worded(subject.kind, _IMAGE, "base image")
    for image in subject.base_images:
        if image.unresolved:
            # Unknown is not latest: fail closed only where the policy demands a digest.
            if controls.base_image.forbid_latest or controls.base_image.require_digest:
                yield Violation(
                    message=_unresolved_problem(image, what),
                    location=image.location,
                    severity=None if controls.base_image.require_digest else Severity.INFO,
                )
            continue
        problem = _pinning_problem(image, controls, what)
        if problem is not None:
            yield Violation(message=problem, location=image.location,
                            fix=_pin_fix(image, _PIN_FIXES.get(subject.kind, _PIN_FIX)))


def _pin_fix(image: BaseImage, generic: str) -> str:
    """The rule's fix with its example spelled for this image: FROM alpine:<version>@..."""
    name = image.ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:  # a tag, not a registry's port: that would be before a "/"
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    tag = image.tag if image.tag and image.tag != "latest" else "<version>"
    return generic.replace("IMAGE:VERSION", f"{name}:{tag}")


# --- PG502 ------------------------------------------------------------------------


def _names(image: BaseImage) -> set[str]:
    """Every way to spell the image's repository: python, library/python."""
    registry = image.registry.lower()
    repository = image.repository.lower()
    names = {f"{registry}/{repository}"}
    if registry == "docker.io":
        # Official images are docker.io/library/NAME; users write either form.
        if "/" not in repository:
            names.add(f"docker.io/library/{repository}")
        elif repository.startswith("library/"):
            names.add(f"docker.io/{repository.removeprefix('library/')}")
    return names


def registry_allowed(image: BaseImage, allowed: list[str]) -> bool:
    """An entry with a "/" is a repository prefix, matched on whole path components."""
    for entry in allowed:
        wanted = entry.strip().lower().rstrip("/")
        if "/" not in wanted:
            if image.registry.lower() == wanted:
                return True
            continue
        if any(name == wanted or name.startswith(wanted + "/") for name in _names(image)):
            return True
    return False


def _image_names(entry: str) -> list[str]:
    """Ways an image reference can start and still be under ``entry`` (a registry or prefix)."""
    wanted = entry.strip().lower().rstrip("/")
    if "/" not in wanted:
        return [wanted + "/"]
    names = [wanted]
    if wanted.startswith("docker.io/"):
        short = wanted.removeprefix("docker.io/")
        names.append(short)
        if short.startswith("library/"):
            names.append(short.removeprefix("library/"))
    return names


def _registry_test(allowed: Sequence[str]) -> str:
    alternatives: list[str] = []
    for entry in allowed:
        wanted = entry.strip().lower().rstrip("/")
        if wanted == "docker.io":
            # A reference with no registry part is docker.io's, as the runtimes read it.
            alternatives.append("!c.image.matches('^[^/]*[.:][^/]*/') && "
                                "!c.image.startsWith('localhost/')")
            alternatives.append("c.image.matches('^(index\\\\.|registry-1\\\\.)?docker\\\\.io/')")
            continue
        for name in _image_names(entry):
            if name.endswith("/"):
                alternatives.append(f"c.image.startsWith({cel(name)})")
            else:
                alternatives.append(f"c.image.matches({cel('^' + re.escape(name) + '([/:@]|$)')})")
    return " || ".join(f"({alternative})" for alternative in alternatives)


def _registry_on_admission(controls: Controls) -> CelCheck | None:
    allowed = controls.base_image.allowed_registries
    if not allowed:
        return None
    return CelCheck(every_container(_registry_test(allowed)),
                    "images must come from " + ", ".join(allowed))


@rule(
    code="PG502",
    name="untrusted-registry",
    severity=Severity.ERROR,
    kinds=IMAGE_NAMING_KINDS,
    summary="An image comes from a registry the policy does not allow (FROM, a compose "
            "image:, a container's image)",
    fix="Build from an image in one of the policy's allowed_registries (mirror it there first)",
    fixes={
        "compose": "Run an image from one of the policy's allowed_registries (mirror it "
                   "there first)",
        "k8s": "Run an image from one of the policy's allowed_registries (mirror it there "
               "first)",
    },
    rationale=(
        "Whoever controls the registry controls the image. Restricting builds and runs to "
        "registries the organisation trusts (its own mirror, a vetted vendor) keeps "
        "typosquatted and unreviewed images out."
    ),
    references=("CIS Docker Benchmark v1.6.0 4.2",),
    admission=Admission(pod=_registry_on_admission, listed_after="PG805"),
)
def untrusted_registry(subject: Subject, controls: Controls) -> Iterator[Violation]:
    allowed = controls.base_image.allowed_registries
    if not allowed:
        return
    what = worded(subject.kind, _IMAGE, "base image")
    for image in subject.base_images:
        if image.unresolved and "$" in image.registry:
            yield Violation(
                message=(
                    f"{what} {image.ref} takes its registry from "
                    f"{', '.join('$' + n for n in image.unresolved)}, which has no value "
                    "here, so it cannot be checked against allowed_registries"
                ),
                location=image.location,
            )
        elif not registry_allowed(image, allowed):
            yield Violation(
                message=(
                    f"{what} {image.ref} comes from {image.registry}, which is not in "
                    f"allowed_registries ({', '.join(allowed)})"
                ),
                location=image.location,
            )


# --- PG503 ------------------------------------------------------------------------


def _run_finding(download: Download) -> str:
    if download.into == "pipe":
        return f"RUN pipes {download.tool} output into {download.consumer}"
    return f"RUN runs {download.tool} output with {download.consumer}"


def _add_finding(download: Download) -> str:
    if download.kind == "git":
        return (f"ADD {download.url} fetches a git repository by a moving ref; pin a commit "
                "(#<commit id>) or give --checksum")
    return f"ADD {download.url} downloads without --checksum"


@rule(
    code="PG503",
    name="remote-code",
    severity=Severity.WARNING,
    kinds=("dockerfile",),
    summary="Code downloaded at build time is run or added without being verified",
    fix=(
        "Download to a file, check its sha256 (sha256sum -c), then run it; give ADD of a "
        "URL a --checksum=sha256:... and ADD of a git repository a commit id"
    ),
    rationale=(
        "curl | sh runs whatever the server (or anyone in between) sends at build time, and "
        "leaves no record of what that was. A checksum turns 'whatever is at this URL today' "
        "into one reviewed artefact; a git branch or tag can move, a commit id cannot."
    ),
    references=("CIS Docker Benchmark v1.6.0 4.9", "CIS Docker Benchmark v1.6.0 4.11"),
)
def remote_code(subject: Subject, controls: Controls) -> Iterator[Violation]:
    for step in subject.run_steps:
        for download in step.downloads:
            if download.runs_as_code:
                yield Violation(message=_run_finding(download), location=step.location)
                break  # one finding per step: the first fetch that runs
    for instruction in subject.instructions:
        for download in instruction.downloads:
            if not download.verified:
                yield Violation(message=_add_finding(download), location=instruction.location)
