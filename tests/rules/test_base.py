"""The rule registry: every built-in rule is complete, stable and findable."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import paracle_guard.rules
from paracle_guard.rules import base
from paracle_guard.rules.base import (
    NOT_FAMILIES,
    Admission,
    all_rules,
    family_modules,
    find_rule,
    rule,
)
from paracle_guard.severity import Severity

# Every rule, by code: the tests below iterate over the registry, so a new rule meets
# them without being listed here (its inputs go in tests/rules/test_every_rule.py).
CODES = [r.code for r in all_rules()]


def test_rules_are_ordered_by_code_and_unique() -> None:
    codes = [r.code for r in all_rules()]
    names = [r.name for r in all_rules()]
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("code", CODES)
def test_every_rule_explains_itself(code: str) -> None:
    found = find_rule(code)
    assert found is not None
    assert re.fullmatch(r"PG[0-9]{3}", found.code)
    assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", found.name)
    # Shown by "rules explain" and in SARIF help: they must say something.
    assert found.kinds, "a rule judges at least one kind of input"
    assert len(found.summary) > 15
    assert len(found.fix) > 15
    assert len(found.rationale) > 40
    assert not found.summary.endswith(".")
    known_sources = ("CIS Docker Benchmark v1.6.0 ", "Kubernetes Pod Security", "CVE-")
    for reference in found.references:
        assert reference.startswith(known_sources)


def test_find_rule_by_code_or_name_in_any_case() -> None:
    assert find_rule("pg101") is find_rule("PG101") is find_rule("root-user")
    assert find_rule("ROOT-USER") is find_rule("root-user")
    assert find_rule(" PG403 ") is not None
    assert find_rule("PG999") is None


def test_retired_codes_and_names_find_their_successor() -> None:
    assert find_rule("PG807") is find_rule("unpinned-image") is find_rule("PG501")
    assert find_rule("pg809") is find_rule("untrusted-image-registry") is find_rule("PG502")


def test_a_fix_worded_for_a_kind_the_rule_never_judges_is_refused() -> None:
    decorate = rule(code="PG990", name="wording-test", severity=Severity.INFO,
                    kinds=("dockerfile",), summary="a test rule", fix="generic",
                    fixes={"k8s": "kubernetes"})
    with pytest.raises(RuntimeError, match="never judges"):
        decorate(lambda subject, controls: iter(()))


def test_every_module_that_declares_a_rule_is_discovered() -> None:
    # The registry finds family modules by listing the package: each one it finds
    # declares rules, and every rule's check lives in a module it finds.
    package = Path(paracle_guard.rules.__file__).parent
    on_disk = {path.stem for path in package.glob("*.py")} - {"__init__"} - NOT_FAMILIES
    assert set(family_modules()) == on_disk
    declaring = {r.check.__module__.rsplit(".", 1)[1] for r in all_rules()}
    assert declaring == on_disk


def test_a_new_family_module_registers_without_a_list(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # A module dropped into the package is found by name, as a contributor adds one.
    family = tmp_path / "zz_probe_family.py"
    family.write_text(
        "from paracle_guard.rules.base import rule\n"
        "from paracle_guard.severity import Severity\n"
        "@rule(code='PG989', name='probe-family', severity=Severity.INFO, kinds=('k8s',),\n"
        "      summary='a probe', fix='none')\n"
        "def probe(subject, controls):\n"
        "    return iter(())\n")
    monkeypatch.setattr(paracle_guard.rules, "__path__", [*paracle_guard.rules.__path__,
                                                          str(tmp_path)])
    family_modules.cache_clear()
    try:
        assert "zz_probe_family" in family_modules()
        assert find_rule("probe-family") is not None
    finally:
        family_modules.cache_clear()
        base._REGISTRY.pop("PG989", None)
        sys.modules.pop("paracle_guard.rules.zz_probe_family", None)


def test_registering_a_code_or_name_twice_fails() -> None:
    all_rules()
    decorate = rule(
        code="PG101",
        name="another-name",
        severity=Severity.INFO,
        kinds=("dockerfile",),
        summary="a duplicate",
        fix="none",
    )
    with pytest.raises(RuntimeError, match="registered twice"):
        decorate(lambda subject, controls: iter(()))


# Words of one kind of input that must not appear in a fix meant for another.
FOREIGN_WORDS = {
    "k8s": ("docker run", "--", "compose", "cap_drop", "cap_add", "security_opt", "USER "),
    "compose": ("docker run", "--cap", "--read-only", "securityContext", "USER "),
    "container": ("compose", "securityContext", "cap_drop:", "read_only:"),
}


@pytest.mark.parametrize("code", CODES)
def test_every_fix_speaks_the_language_of_its_input(code: str) -> None:
    found = find_rule(code)
    assert found is not None
    for kind, foreign in FOREIGN_WORDS.items():
        if kind not in found.kinds:
            continue
        fix = found.fix_for(kind)
        assert not [word for word in foreign if word in fix], (kind, fix)


def test_an_admission_translation_needs_a_rule_that_judges_pods() -> None:
    decorate = rule(code="PG991", name="admission-test", severity=Severity.INFO,
                    kinds=("dockerfile",), summary="a test rule", fix="generic",
                    admission=Admission(pod=lambda controls: None))
    with pytest.raises(RuntimeError, match="never judges k8s"):
        decorate(lambda subject, controls: iter(()))
