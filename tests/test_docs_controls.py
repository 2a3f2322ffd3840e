"""docs/controls.md maps every rule: a rule added without its row fails here."""

from __future__ import annotations

import re
from pathlib import Path

from paracle_guard.rules.base import all_rules

CONTROLS = Path(__file__).resolve().parents[1] / "docs" / "controls.md"
ROW = re.compile(r"^\| (PG[0-9]{3}) \| ([a-z0-9-]+) \| ([^|]+) \| ([^|]+) \|", re.MULTILINE)
KIND_LETTERS = {"dockerfile": "D", "image": "I", "container": "C", "compose": "Y", "k8s": "K"}


def test_every_rule_has_a_row_with_its_name_and_kinds() -> None:
    rows = {code: (name, kinds.strip(), cis.strip())
            for code, name, kinds, cis in ROW.findall(CONTROLS.read_text())}
    for rule in all_rules():
        assert rule.code in rows, f"{rule.code} is missing from docs/controls.md"
        name, kinds, cis = rows[rule.code]
        assert name == rule.name
        if kinds != "all":
            letters = " ".join(KIND_LETTERS[k] for k in KIND_LETTERS if k in rule.kinds)
            assert kinds == letters, rule.code
        # The CIS column names the same controls as the rule's references.
        referenced = sorted(
            ref.rsplit(" ", 1)[1] for ref in rule.references
            if ref.startswith("CIS Docker Benchmark v1.6.0 ")
        )
        documented = sorted(re.findall(r"\b[45]\.[0-9]+\b", cis))
        assert documented == referenced, rule.code
    assert set(rows) == {rule.code for rule in all_rules()}
