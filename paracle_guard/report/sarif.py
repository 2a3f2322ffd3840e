"""The SARIF 2.1.0 report, shaped for GitHub code scanning and other SARIF viewers.

One run. ``tool.driver.rules`` describes each rule that appears in the results
(from ``Report.rules``); each result points at its rule by id and index.
Suppressed findings stay in as results carrying ``suppressions``, so viewers
show them as dismissed rather than silently missing; notices become the
invocation's tool notifications.

GitHub rejects a whole upload when any result lacks a physical location, so
every result has one: a ``%SRCROOT%``-relative URI for files in the checkout,
a ``file://`` URI for absolute paths, and for paths inside an image a URI
under the ``IMAGES`` base whose first segment is the image reference (a file
inside an image is not a file beside the checkout and must not pose as one).
"""

from __future__ import annotations

from pathlib import PureWindowsPath
from typing import Any
from urllib.parse import quote

from paracle_guard.report.json_format import dumps
from paracle_guard.report.models import Finding, Report, Result, RuleInfo
from paracle_guard.severity import Severity

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://pypi.org/project/paracle-guard/"
SRCROOT = "%SRCROOT%"
IMAGES = "IMAGES"

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}

# GitHub ranks security alerts by this score (as a string, CVSS-like): 9.0 and
# over critical, 7.0 high, 4.0 medium, 0.1 low. No rule of ours is "critical"
# by itself; an error is high, a warning medium, an info low.
SECURITY_SEVERITY = {Severity.ERROR: "8.0", Severity.WARNING: "5.0", Severity.INFO: "2.0"}

# SARIF knows "inSource" (a comment in the analysed file) and "external" (a
# decision recorded elsewhere: the policy's exceptions, the command line).
SUPPRESSION_KINDS = {"inline": "inSource", "waiver": "external", "cli": "external",
                     "baseline": "external"}
# The name of the finding fingerprint (Finding.fingerprint) among partialFingerprints.
FINGERPRINT = "paracleGuardFinding/v1"

JSON = dict[str, Any]


def render_sarif(report: Report) -> str:
    return dumps(sarif_document(report))


def sarif_document(report: Report) -> JSON:
    # The first finding of each rule stands in for the rule if Report.rules lacks it.
    examples: dict[str, Finding] = {}
    for result in report.results:
        for finding in (*result.findings, *result.suppressed):
            examples.setdefault(finding.rule, finding)
    codes = sorted(examples)
    index = {code: position for position, code in enumerate(codes)}
    results = [
        _result(result, finding, index[finding.rule])
        for result in report.results
        for finding in (*result.findings, *result.suppressed)
    ]

    invocation: JSON = {"executionSuccessful": True}
    if report.notices:
        invocation["toolExecutionNotifications"] = [
            {"level": "note", "message": {"text": notice}} for notice in report.notices
        ]

    run: JSON = {
        "tool": {
            "driver": {
                "name": report.tool.name,
                "version": report.tool.version,
                "semanticVersion": report.tool.version,
                "informationUri": INFORMATION_URI,
                "rules": [_rule(code, report.rules.get(code), examples[code]) for code in codes],
            }
        },
        "invocations": [invocation],
        "results": results,
        "properties": {
            "policy": {"name": report.policy.name, "sha256": report.policy.sha256},
            "failOn": report.fail_on.value,
        },
    }
    if any(result.in_image for result in report.results):
        run["originalUriBaseIds"] = {
            IMAGES: {
                "description": {
                    "text": "The images and containers checked: the first segment of a URI "
                    "under this base is the image reference, the rest the path inside it."
                }
            }
        }
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def _rule(code: str, info: RuleInfo | None, example: Finding) -> JSON:
    if info is None:
        # A finding whose rule the caller did not describe: still a valid,
        # indexable rule, named as the finding names it.
        return {
            "id": code,
            "name": example.name,
            "shortDescription": {"text": example.name},
            "defaultConfiguration": {"level": LEVELS[example.severity]},
            "properties": {
                "tags": ["security"],
                "security-severity": SECURITY_SEVERITY[example.severity],
            },
        }
    descriptor: JSON = {
        "id": code,
        "name": info.name,
        "shortDescription": {"text": info.summary},
    }
    if info.rationale:
        descriptor["fullDescription"] = {"text": info.rationale}
    descriptor["help"] = {"text": _help_text(info), "markdown": _help_markdown(info)}
    descriptor["defaultConfiguration"] = {"level": LEVELS[info.severity]}
    descriptor["properties"] = {
        "tags": ["security"],
        "security-severity": SECURITY_SEVERITY[info.severity],
    }
    return descriptor


# How help texts name the kinds a rule words its fix for.
KIND_NAMES = {"dockerfile": "Dockerfile", "image": "image", "container": "container",
              "compose": "compose", "k8s": "Kubernetes"}


def _help_text(info: RuleInfo) -> str:
    parts = [f"Fix: {info.fix}"]
    parts.extend(f"Fix ({KIND_NAMES.get(kind, kind)}): {fix}" for kind, fix in info.fixes.items())
    if info.rationale:
        parts.append(f"Why: {info.rationale}")
    if info.references:
        parts.append("References: " + "; ".join(info.references))
    return "\n\n".join(parts)


def _help_markdown(info: RuleInfo) -> str:
    parts = [f"**Fix:** {info.fix}"]
    parts.extend(f"**Fix ({KIND_NAMES.get(kind, kind)}):** {fix}"
                 for kind, fix in info.fixes.items())
    if info.rationale:
        parts.append(f"**Why:** {info.rationale}")
    if info.references:
        items = [
            f"- <{ref}>" if ref.startswith(("https://", "http://")) else f"- {ref}"
            for ref in info.references
        ]
        parts.append("**References**\n\n" + "\n".join(items))
    return "\n\n".join(parts)


def _result(result: Result, finding: Finding, rule_index: int) -> JSON:
    out: JSON = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": finding.message},
        "locations": [_location(result, finding)],
    }
    if finding.suppression is not None:
        suppression: JSON = {"kind": SUPPRESSION_KINDS[finding.suppression.kind]}
        if finding.suppression.reason:
            suppression["justification"] = finding.suppression.reason
        out["suppressions"] = [suppression]
    if finding.fingerprint:
        # The same hash --baseline matches on: it survives lines added above the finding,
        # so code scanning keeps tracking one alert instead of closing and reopening it.
        out["partialFingerprints"] = {FINGERPRINT: finding.fingerprint}
    properties: JSON = {"name": finding.name, "target": finding.target or result.target,
                        "kind": result.kind}
    if finding.fix:
        properties["fix"] = finding.fix
    out["properties"] = properties
    return out


def _location(result: Result, finding: Finding) -> JSON:
    location = finding.location
    if result.in_image:
        artifact, logical = _image_artifact(result.target, location.path)
    else:
        artifact, logical = _file_artifact(location.path), None
    physical: JSON = {"artifactLocation": artifact}
    if location.line is not None:
        region: JSON = {"startLine": location.line}
        if location.end_line is not None and location.end_line >= location.line:
            region["endLine"] = location.end_line
        physical["region"] = region
    out: JSON = {"physicalLocation": physical}
    if logical is None and result.label is not None:
        # A compose service or a Kubernetes workload (or one of its containers): the
        # thing to fix, which a line of a file does not name by itself.
        named = finding.target or result.target
        logical = {"name": result.parts.get(named, result.label), "fullyQualifiedName": named}
    if logical is not None:
        out["logicalLocations"] = [logical]
    if location.layer:
        out["properties"] = {"layer": location.layer}
    return out


def _file_artifact(path: str) -> JSON:
    windows = PureWindowsPath(path)
    if windows.is_absolute():
        posix = windows.as_posix()  # C:/x, or //server/share/x for UNC
        prefix = "file:" if posix.startswith("//") else "file:///"
        return {"uri": prefix + _quote(posix, safe="/:")}
    posix = path.replace("\\", "/")
    if posix.startswith("/"):
        return {"uri": "file://" + _quote(posix)}
    while posix.startswith("./"):
        posix = posix[2:]
    return {"uri": _quote(posix), "uriBaseId": SRCROOT}


def _image_artifact(target: str, path: str) -> tuple[JSON, JSON]:
    # The image reference is one segment ("/" and ":" encoded): registry paths
    # and tags inside it must not read as directories or a URI scheme.
    image = _quote(target, safe="")
    if path == target:  # a finding about the image as a whole
        return {"uri": image, "uriBaseId": IMAGES}, {"name": target, "fullyQualifiedName": target}
    inner = _quote(path.lstrip("/"))
    return (
        {"uri": f"{image}/{inner}", "uriBaseId": IMAGES},
        {"name": path, "fullyQualifiedName": f"{target}:{path}"},
    )


def _quote(text: str, safe: str = "/") -> str:
    # File names are bytes: undecodable ones arrive as surrogate escapes and
    # go back to the original bytes; other lone surrogates cannot, and are
    # passed through as their own (odd but valid) UTF-8 sequences.
    try:
        return quote(text, safe=safe, errors="surrogateescape")
    except UnicodeEncodeError:
        return quote(text, safe=safe, errors="surrogatepass")
