"""The rule registry: every built-in rule is complete, stable and findable."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import paracle_guard.rules
from paracle_guard.rules import base
from paracle_guard.rules.base import NOT_FAMILIES, all_rules, family_modules, find_rule, rule
from paracle_guard.severity import Severity

EXPECTED = {
    "PG101": ("root-user", {"dockerfile", "image", "container", "compose", "k8s"}),
    "PG102": ("uid-not-allowed", {"dockerfile", "image", "container", "compose", "k8s"}),
    "PG103": ("sudo", {"dockerfile", "image"}),
    "PG104": ("root-group", {"dockerfile", "image", "container", "compose", "k8s"}),
    "PG105": ("gid-not-allowed", {"dockerfile", "image", "container", "compose", "k8s"}),
    "PG201": ("writable-rootfs", {"container", "compose", "k8s"}),
    "PG202": ("writable-path", {"container", "compose", "k8s"}),
    "PG203": ("image-volume", {"image", "container"}),
    "PG204": ("unsafe-workdir", {"dockerfile", "image", "container", "compose", "k8s"}),
    "PG205": ("world-writable", {"image"}),
    "PG301": ("capabilities-not-dropped", {"container", "compose", "k8s"}),
    "PG302": ("capability-added", {"container", "compose", "k8s"}),
    "PG303": ("privileged", {"container", "compose", "k8s"}),
    "PG304": ("new-privileges-allowed", {"container", "compose", "k8s"}),
    "PG305": ("host-namespace", {"container", "compose", "k8s"}),
    "PG306": ("setuid-file", {"image", "dockerfile"}),
    "PG307": ("sensitive-mount", {"container", "compose", "k8s"}),
    "PG308": ("device-access", {"container", "compose", "k8s"}),
    "PG309": ("unsafe-sysctl", {"container", "compose", "k8s"}),
    "PG310": ("exposed-ssh", {"dockerfile", "image"}),
    "PG311": ("published-port", {"container", "compose", "k8s"}),
    "PG312": ("unconfined-profile", {"container", "compose", "k8s"}),
    "PG313": ("runtime-not-allowed", {"container", "compose", "k8s"}),
    "PG401": ("install-recommends", {"dockerfile"}),
    "PG402": ("package-cache", {"dockerfile"}),
    "PG403": ("denied-package", {"dockerfile", "image"}),
    "PG404": ("too-many-packages", {"image"}),
    "PG501": ("unpinned-base-image", {"dockerfile", "compose", "k8s"}),
    "PG502": ("untrusted-registry", {"dockerfile", "compose", "k8s"}),
    "PG503": ("remote-code", {"dockerfile"}),
    "PG601": ("secret-in-env", {"dockerfile", "image", "container", "compose", "k8s"}),
    "PG602": ("secret-file", {"image"}),
    "PG701": ("missing-limits", {"container", "compose", "k8s"}),
    "PG702": ("network-not-isolated", {"container", "compose", "k8s"}),
    "PG801": ("service-account-token", {"k8s"}),
    "PG802": ("run-as-non-root-not-set", {"k8s"}),
    "PG803": ("unprovable-user", {"k8s"}),
    "PG804": ("seccomp-not-set", {"k8s"}),
    "PG805": ("restricted-volume-type", {"k8s"}),
    "PG806": ("host-port", {"k8s"}),
    "PG808": ("pids-limit-not-in-manifest", {"k8s"}),
    "PG810": ("secret-as-env", {"k8s"}),
    "PG811": ("supplemental-groups-merged", {"k8s"}),
    "PG901": ("parse-error", {"dockerfile", "image", "container", "compose", "k8s"}),
    "PG902": ("suppression-without-reason", {"dockerfile", "image", "container", "compose", "k8s"}),
}


def test_codes_names_and_kinds_are_stable() -> None:
    registered = {r.code: (r.name, set(r.kinds)) for r in all_rules()}
    for code, expected in EXPECTED.items():
        assert registered.get(code) == expected, code


def test_rules_are_ordered_by_code_and_unique() -> None:
    codes = [r.code for r in all_rules()]
    names = [r.name for r in all_rules()]
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_every_rule_explains_itself(code: str) -> None:
    found = find_rule(code)
    assert found is not None
    assert re.fullmatch(r"PG[0-9]{3}", found.code)
    assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", found.name)
    # Shown by "rules explain" and in SARIF help: they must say something.
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


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_every_fix_speaks_the_language_of_its_input(code: str) -> None:
    found = find_rule(code)
    assert found is not None
    for kind, foreign in FOREIGN_WORDS.items():
        if kind not in found.kinds:
            continue
        fix = found.fix_for(kind)
        assert not [word for word in foreign if word in fix], (kind, fix)
