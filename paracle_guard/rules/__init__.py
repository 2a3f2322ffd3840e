"""Rules, one module per control family. See ``base.py`` for what a rule is."""

from paracle_guard.rules.base import Rule, Violation, all_rules, find_rule, rule

__all__ = ["Rule", "Violation", "all_rules", "find_rule", "rule"]
