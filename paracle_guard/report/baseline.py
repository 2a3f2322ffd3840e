"""Baselines: the findings of an earlier run, taken out of this run's count.

A baseline is a JSON report (``--format json``, or ``--write-baseline``). A
finding of this run is *known* when the baseline holds a finding with the same
rule, target and fingerprint (``models.finding_fingerprint``: the rule, target,
path and message, line numbers left out, so a finding keeps matching when lines
are added above it). Each baseline finding matches at most one finding now: when
a second copy of the same problem appears, it is new.

Known findings move to ``Result.suppressed`` with the suppression kind
``baseline``: reports still show them as suppressed, and only new findings fail
the run.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from paracle_guard.errors import InputError
from paracle_guard.report.models import Report, SuppressionInfo, finding_fingerprint

Key = tuple[str, str, str]  # rule, target, fingerprint


@dataclass
class Baseline:
    known: Counter[Key]

    @classmethod
    def parse(cls, data: bytes, source: str) -> Baseline:
        """Read a JSON report; ``source`` names it in errors (``--baseline FILE``)."""
        try:
            document = json.loads(data)
        except ValueError as error:
            raise InputError(f"{source}: not JSON ({error})") from None
        results = document.get("results") if isinstance(document, dict) else None
        if not isinstance(results, list):
            raise InputError(f"{source}: not a paracle-guard JSON report (it has no results "
                             "list; write one with --format json or --write-baseline)")
        known: Counter[Key] = Counter()
        for index, result in enumerate(results):
            known.update(_keys(result, f"{source}: results[{index}]"))
        return cls(known)

    def apply(self, report: Report, name: str) -> None:
        """Move every finding of ``report`` that the baseline knows to ``suppressed``."""
        left = Counter(self.known)
        reason = f"in the baseline {name}" if name else "in the baseline"
        for result in report.results:
            new = []
            for finding in result.findings:
                key = (finding.rule, result.target, _fingerprint(finding.rule, result.target,
                                                                 finding.location.path,
                                                                 finding.message))
                if left[key] > 0:
                    left[key] -= 1
                    suppression = SuppressionInfo(kind="baseline", reason=reason)
                    result.suppressed.append(finding.model_copy(update={"suppression":
                                                                        suppression}))
                else:
                    new.append(finding)
            result.findings = new


def _fingerprint(rule: str, target: str, path: str, message: str) -> str:
    # Recomputed from the fields rather than read from the file, so a baseline from
    # any version of the report, or edited by hand, matches the same way.
    return finding_fingerprint(rule, target, path, message)


def _keys(result: Any, where: str) -> list[Key]:
    if not isinstance(result, dict) or not isinstance(result.get("target"), str):
        raise InputError(f"{where}: expected an object with a target")
    target = result["target"]
    findings = result.get("findings")
    if not isinstance(findings, list):
        raise InputError(f"{where}: expected a findings list")
    keys = []
    for index, finding in enumerate(findings):
        try:
            rule, message = finding["rule"], finding["message"]
            path = finding["location"]["path"]
        except (TypeError, KeyError):
            raise InputError(f"{where}.findings[{index}]: expected rule, message and "
                             "location.path") from None
        if not all(isinstance(value, str) for value in (rule, message, path)):
            raise InputError(f"{where}.findings[{index}]: rule, message and location.path "
                             "must be text")
        keys.append((rule, target, _fingerprint(rule, target, path, message)))
    return keys
