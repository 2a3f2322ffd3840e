"""The loader: resolution, extends, merging, errors with file:line: path, digests, cache."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from paracle_guard.errors import PolicyError
from paracle_guard.policy import loader, validation
from paracle_guard.policy.loader import (
    PolicyValidationError,
    builtin_policy_names,
    effective_policy_yaml,
    find_policy_file,
    load_policy,
    policy_digest,
    policy_schema_text,
    validate_policy_file,
)
from paracle_guard.policy.models import Policy

BUILTINS = "baseline, sandbox, sandbox-gvisor"
WritePolicy = Callable[..., Path]  # the `write` fixture of conftest.py


def error_of(spec: str | None, cwd: Path) -> str:
    with pytest.raises(PolicyError) as caught:
        load_policy(spec, cwd=cwd)
    return str(caught.value)


# --- resolution -----------------------------------------------------------------------------


def test_builtin_names() -> None:
    assert builtin_policy_names() == ["baseline", "sandbox", "sandbox-gvisor"]


def test_explicit_file_relative_to_cwd(write: WritePolicy, tmp_path: Path) -> None:
    write("conf/team.yaml", "fail_on: error\n")
    policy = load_policy("conf/team.yaml", cwd=tmp_path)
    assert policy.source == "conf/team.yaml"
    assert policy.fail_on == "error"


def test_explicit_absolute_file(write: WritePolicy, tmp_path: Path) -> None:
    path = write("team.yml", "fail_on: info\n")
    policy = load_policy(str(path), cwd=tmp_path / "elsewhere")
    assert policy.source == str(path)
    assert policy.fail_on == "info"


def test_existing_file_without_suffix_is_a_file(write: WritePolicy, tmp_path: Path) -> None:
    write("strict", "fail_on: info\n")
    assert load_policy("strict", cwd=tmp_path).source == "strict"


def test_name_is_a_builtin(tmp_path: Path) -> None:
    policy = load_policy("baseline", cwd=tmp_path)
    assert policy.source == "builtin:baseline"
    assert policy.metadata.name == "baseline"
    assert load_policy("builtin:sandbox", cwd=tmp_path).source == "builtin:sandbox"


def test_directory_named_like_a_builtin_does_not_shadow_it(tmp_path: Path) -> None:
    (tmp_path / "sandbox").mkdir()
    assert load_policy("sandbox", cwd=tmp_path).source == "builtin:sandbox"


def test_unknown_builtin_lists_the_builtins(tmp_path: Path) -> None:
    assert error_of("sandbx", tmp_path) == (
        f"unknown built-in policy 'sandbx'; built-in policies: {BUILTINS} "
        "(a policy file needs a path with / or a .yaml/.yml suffix)"
    )


def test_missing_file(tmp_path: Path) -> None:
    assert error_of("nope.yaml", tmp_path) == "nope.yaml: policy file not found"
    assert error_of("dir/nope", tmp_path) == "dir/nope: policy file not found"


def test_directory_is_not_a_policy(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    assert error_of("conf/", tmp_path) == "conf/: is a directory, not a policy file"


def test_default_is_sandbox(tmp_path: Path) -> None:
    assert find_policy_file(tmp_path) is None
    assert load_policy(cwd=tmp_path).source == "builtin:sandbox"


def test_project_file_in_cwd(write: WritePolicy, tmp_path: Path) -> None:
    write(".paracle-guard.yaml", "fail_on: error\n")
    policy = load_policy(cwd=tmp_path)
    assert policy.source == ".paracle-guard.yaml"
    assert policy.metadata.name == "paracle-guard"  # unnamed: called after the file


def test_yml_spelling_and_yaml_first(write: WritePolicy, tmp_path: Path) -> None:
    write(".paracle-guard.yml", "fail_on: info\n")
    assert load_policy(cwd=tmp_path).source == ".paracle-guard.yml"
    write(".paracle-guard.yaml", "fail_on: error\n")
    assert load_policy(cwd=tmp_path).source == ".paracle-guard.yaml"


def test_project_file_in_git_root(write: WritePolicy, tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(".paracle-guard.yaml", "fail_on: error\n")
    deep = tmp_path / "src" / "app"
    deep.mkdir(parents=True)
    policy = load_policy(cwd=deep)
    assert policy.source == os.path.join("..", "..", ".paracle-guard.yaml")
    assert policy.fail_on == "error"


def test_git_file_marks_a_root_too(write: WritePolicy, tmp_path: Path) -> None:
    (tmp_path / ".git").write_text("gitdir: /elsewhere\n")  # a worktree or submodule
    write(".paracle-guard.yml", "fail_on: error\n")
    (tmp_path / "sub").mkdir()
    assert load_policy(cwd=tmp_path / "sub").fail_on == "error"


def test_cwd_file_wins_over_git_root(write: WritePolicy, tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(".paracle-guard.yaml", "fail_on: error\n")
    write("svc/.paracle-guard.yaml", "fail_on: info\n")
    assert load_policy(cwd=tmp_path / "svc").fail_on == "info"


def test_search_stops_at_git_root(write: WritePolicy, tmp_path: Path) -> None:
    write(".paracle-guard.yaml", "fail_on: error\n")  # above the repository: not ours
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    assert load_policy(cwd=repo).source == "builtin:sandbox"


def test_explicit_spec_beats_project_file(write: WritePolicy, tmp_path: Path) -> None:
    write(".paracle-guard.yaml", "fail_on: error\n")
    assert load_policy("baseline", cwd=tmp_path).source == "builtin:baseline"


# --- extends and merging ---------------------------------------------------------------------


def test_extends_builtin_merges_mappings_and_replaces_lists(
    write: WritePolicy, tmp_path: Path
) -> None:
    write(
        "team.yaml",
        """
        extends: [sandbox]
        controls:
          user: {allowed_uids: [1000, 1001]}
          packages:
            deny: {vim: warning, curl: "off"}
        """,
    )
    policy = load_policy("team.yaml", cwd=tmp_path)
    sandbox = load_policy("sandbox")
    assert policy.extends == ["sandbox"]
    assert policy.controls.user.allowed_uids == [1000, 1001]
    deny = policy.controls.packages.deny
    assert deny["vim"] == "warning"
    assert deny["curl"] == "off"
    assert deny["sudo"] == "error"  # inherited key by key
    assert policy.controls.root_filesystem == sandbox.controls.root_filesystem
    assert policy.fail_on == sandbox.fail_on
    assert policy.controls.packages.max_installed == 250


def test_later_base_wins_and_file_wins_last(write: WritePolicy, tmp_path: Path) -> None:
    write("a.yaml", "fail_on: info\ncontrols: {network: {mode: a-net}, resources: {pids: 10}}\n")
    write("b.yaml", "fail_on: error\ncontrols: {network: {mode: b-net}}\n")
    write("top.yaml", "extends: [a.yaml, b.yaml]\ncontrols: {resources: {cpus: 2}}\n")
    policy = load_policy("top.yaml", cwd=tmp_path)
    assert policy.fail_on == "error"
    assert policy.controls.network.mode == "b-net"
    assert policy.controls.resources.pids == 10
    assert policy.controls.resources.cpus == 2.0
    assert policy.controls.resources.memory == "512m"  # model default: no file says otherwise


def test_relative_paths_resolve_beside_each_file(write: WritePolicy, tmp_path: Path) -> None:
    write("org/common.yaml", "controls: {network: {mode: corp}}\n")
    write("org/base.yaml", "extends: [baseline, ./common.yaml]\nfail_on: warning\n")
    write("project/.paracle-guard.yaml", "extends: [../org/base.yaml]\n")
    policy = load_policy(cwd=tmp_path / "project")
    assert policy.source == ".paracle-guard.yaml"
    assert policy.extends == ["../org/base.yaml"]
    assert policy.controls.network.mode == "corp"
    assert policy.fail_on == "warning"
    assert policy.controls.root_filesystem.read_only is False  # from baseline


def test_metadata_is_never_inherited(write: WritePolicy, tmp_path: Path) -> None:
    write("base.yaml", "metadata: {name: org, description: the org's policy}\n")
    write("team.yaml", "extends: [base.yaml]\n")
    policy = load_policy("team.yaml", cwd=tmp_path)
    assert policy.metadata.name == "team"
    assert policy.metadata.description == ""
    named = write("named.yaml", "metadata: {name: payments}\nextends: [sandbox]\n")
    assert load_policy(str(named)).metadata.name == "payments"


def test_exceptions_and_custom_rules_accumulate(write: WritePolicy, tmp_path: Path) -> None:
    write(
        "base.yaml",
        """
        exceptions:
          - {rule: PG101, target: "legacy/*", reason: migrating}
        custom_rules:
          - {code: ORG100, name: no-upgrade, message: no apt-get upgrade, pattern: "upgrade"}
        """,
    )
    write(
        "team.yaml",
        """
        extends: [base.yaml]
        exceptions:
          - {rule: denied-package, target: Dockerfile.dev, reason: dev tools}
        custom_rules:
          - {code: TEAM1, name: no-add, message: use COPY, pattern: ".", instruction: ADD}
        """,
    )
    policy = load_policy("team.yaml", cwd=tmp_path)
    assert [w.rule for w in policy.exceptions] == ["PG101", "denied-package"]
    assert [r.code for r in policy.custom_rules] == ["ORG100", "TEAM1"]


def test_diamond_applies_a_shared_base_once(write: WritePolicy, tmp_path: Path) -> None:
    write("d.yaml", "exceptions: [{rule: PG101, reason: shared}]\n")
    write("b.yaml", "extends: [d.yaml]\n")
    write("c.yaml", "extends: [d.yaml]\n")
    write("a.yaml", "extends: [b.yaml, c.yaml]\n")
    assert len(load_policy("a.yaml", cwd=tmp_path).exceptions) == 1


def test_custom_rule_clash_names_both_places(write: WritePolicy, tmp_path: Path) -> None:
    write(
        "base.yaml",
        """
        custom_rules:
          - {code: ORG100, name: no-upgrade, message: m, pattern: upgrade}
        """,
    )
    write(
        "team.yaml",
        """
        extends: [base.yaml]
        custom_rules:
          - {code: ORG100, name: other, message: m, pattern: x}
        """,
    )
    assert error_of("team.yaml", tmp_path) == (
        "team.yaml:5: custom_rules[0]: code 'ORG100' is already used by the custom rule "
        "at base.yaml:4"
    )


def test_extends_cycle_names_the_chain(write: WritePolicy, tmp_path: Path) -> None:
    write("a.yaml", "extends: [sub/b.yaml]\n")
    write("sub/b.yaml", "extends: [../a.yaml]\n")
    assert error_of("a.yaml", tmp_path) == (
        "sub/b.yaml:3: extends[0]: extends cycle: a.yaml -> sub/b.yaml -> a.yaml"
    )


def test_self_extension_is_a_cycle(write: WritePolicy, tmp_path: Path) -> None:
    write("a.yaml", "extends: [./a.yaml]\n")
    assert error_of("a.yaml", tmp_path) == "a.yaml:3: extends[0]: extends cycle: a.yaml -> a.yaml"


def test_missing_base_names_the_chain(write: WritePolicy, tmp_path: Path) -> None:
    write("a.yaml", "extends: [sandbox, sub/b.yaml]\n")
    write("sub/b.yaml", "fail_on: info\nextends:\n  - gone.yaml\n")
    assert error_of("a.yaml", tmp_path) == (
        f"sub/b.yaml:5: extends[0]: base policy 'gone.yaml' not found at "
        f"{tmp_path / 'sub' / 'gone.yaml'} (chain: a.yaml -> sub/b.yaml)"
    )


def test_unknown_builtin_base(write: WritePolicy, tmp_path: Path) -> None:
    write("a.yaml", "extends: [sandbx]\n")
    assert error_of("a.yaml", tmp_path) == (
        f"a.yaml:3: extends[0]: unknown built-in policy 'sandbx'; built-in policies: {BUILTINS} "
        "(a policy file needs a path with / or a .yaml/.yml suffix)"
    )


def test_errors_in_a_base_name_the_base(write: WritePolicy, tmp_path: Path) -> None:
    write("base.yaml", "controls:\n  network: {mode: 'container:db'}\n")
    write("top.yaml", "extends: [base.yaml]\n")
    assert error_of("top.yaml", tmp_path) == (
        "base.yaml:4: controls.network.mode: 'container:db': must be none, bridge, host or "
        "a network name; container:<id> is not allowed"
    )


# --- one clear line per error -----------------------------------------------------------------


def test_type_error_names_file_line_and_path(write: WritePolicy, tmp_path: Path) -> None:
    write(
        "policy.yaml",
        """
        metadata: {name: t}
        controls:
          user:
            allow_root: false
            allowed_uids: [abc]
        """,
    )
    assert error_of("policy.yaml", tmp_path) == (
        "policy.yaml:7: controls.user.allowed_uids[0]: 'abc' is not of type 'integer'"
    )


def test_yaml_syntax_error(write: WritePolicy, tmp_path: Path) -> None:
    write("p.yaml", "controls:\n  user: {allow_root: false\nfail_on: error\n")
    message = error_of("p.yaml", tmp_path)
    assert message.startswith("p.yaml:5: invalid YAML: ")
    assert "\n" not in message


def test_tab_indentation_is_a_syntax_error(write: WritePolicy, tmp_path: Path) -> None:
    write("p.yaml", "controls:\n\tuser: {}\n")
    assert error_of("p.yaml", tmp_path).startswith("p.yaml:4: invalid YAML: ")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(write: WritePolicy, tmp_path: Path, text: str) -> None:
    write("p.yaml", text, header=False)
    assert error_of("p.yaml", tmp_path) == (
        "p.yaml:1: the file is empty; a policy needs at least "
        "'apiVersion: paracle-guard/v1' and 'kind: Policy'"
    )


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- a\n- b\n", "a list"), ("just words\n", "a piece of text"), ("42\n", "a number")],
)
def test_top_level_must_be_a_mapping(
    write: WritePolicy, tmp_path: Path, text: str, kind: str
) -> None:
    write("p.yaml", "# comment\n" + text, header=False)
    assert error_of("p.yaml", tmp_path) == (
        f"p.yaml:2: a policy is a mapping of keys (apiVersion, kind, controls...), not {kind}"
    )


def test_wrong_api_version(write: WritePolicy, tmp_path: Path) -> None:
    write("p.yaml", "apiVersion: paracle-guard/v2\nkind: Policy\n", header=False)
    assert error_of("p.yaml", tmp_path) == (
        "p.yaml:1: apiVersion: expected 'paracle-guard/v1', got 'paracle-guard/v2'"
    )


def test_wrong_kind(write: WritePolicy, tmp_path: Path) -> None:
    write("p.yaml", "apiVersion: paracle-guard/v1\nkind: Rule\n", header=False)
    assert error_of("p.yaml", tmp_path) == "p.yaml:2: kind: expected 'Policy', got 'Rule'"


def test_missing_api_version_and_kind(write: WritePolicy, tmp_path: Path) -> None:
    write("p.yaml", "# team policy\nfail_on: error\n", header=False)
    with pytest.raises(PolicyValidationError) as caught:
        load_policy("p.yaml", cwd=tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        "p.yaml:2: missing required key 'apiVersion'",
        "p.yaml:2: missing required key 'kind'",
    ]
    assert str(caught.value) == (
        "p.yaml:2: missing required key 'apiVersion' (and 1 more problems)"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "controls:\n  user: {allow_rot: true}\n",
            "p.yaml:4: controls.user.allow_rot: unknown key 'allow_rot' "
            "(did you mean 'allow_root'?)",
        ),
        (
            "polcy: x\n",
            "p.yaml:3: polcy: unknown key 'polcy' (expected one of: apiVersion, kind, "
            "metadata, extends, fail_on, audit_log, sandbox_test, controls, rules, exceptions, "
            "custom_rules, authz)",
        ),
        (
            "exceptions:\n  - {rule: PG101, reason: ok, expire: 2027-01-01}\n",
            "p.yaml:4: exceptions[0].expire: unknown key 'expire' (did you mean 'expires'?)",
        ),
        (
            "rules:\n  PG503: {severity: critical}\n",
            "p.yaml:4: rules.PG503.severity: 'critical' is not one of 'error', 'warning', "
            "'info', 'off', null",
        ),
        (
            "fail_on: critical\n",
            "p.yaml:3: fail_on: 'critical' is not one of 'error', 'warning', 'info'",
        ),
        (
            "controls:\n  packages:\n    deny: {vim: fatal}\n",
            "p.yaml:5: controls.packages.deny.vim: 'fatal' is not one of 'error', 'warning', "
            "'info', 'off'",
        ),
        (
            "controls:\n  packages:\n    deny:\n      'vim tiny': error\n",
            "p.yaml:6: controls.packages.deny['vim tiny']: 'vim tiny': a package name or glob "
            "has no spaces",
        ),
        (
            "controls:\n  secrets:\n    env_name_patterns: ['(unclosed']\n",
            "p.yaml:5: controls.secrets.env_name_patterns[0]: '(unclosed' is not a valid "
            "regular expression: missing ), unterminated subpattern at position 0",
        ),
        (
            "custom_rules:\n  - {code: X1, name: x, message: m, pattern: '[a-'}\n",
            "p.yaml:4: custom_rules[0].pattern: '[a-' is not a valid regular expression: "
            "unterminated character set at position 0",
        ),
        (
            "exceptions:\n  - rule: PG101\n    reason: old\n    expires: 2027-02-30\n",
            "p.yaml:6: exceptions[0].expires: '2027-02-30' is not a date (expected YYYY-MM-DD)",
        ),
        (
            "exceptions:\n  - {rule: PG101, reason: old, expires: next year}\n",
            "p.yaml:4: exceptions[0].expires: 'next year' is not a date (expected YYYY-MM-DD)",
        ),
        (
            "exceptions:\n  - {rule: PG101, reason: '  '}\n",
            "p.yaml:4: exceptions[0].reason: '  ': a reason cannot be blank",
        ),
        (
            "exceptions:\n  - rule: PG101\n",
            "p.yaml:4: exceptions[0]: missing required key 'reason'",
        ),
        (
            "controls:\n  user:\n",
            "p.yaml:4: controls.user: null is not of type 'object'",
        ),
        (
            "fail_on: true\n",
            "p.yaml:3: fail_on: true is not of type 'string'",
        ),
        (
            "controls:\n  user: {allow_root: no}\n",
            "p.yaml:4: controls.user.allow_root: 'no' is not of type 'boolean'",
        ),
        (
            "controls:\n  resources: {memory: 1.5 GB}\n",
            "p.yaml:4: controls.resources.memory: '1.5 GB': must be a memory size such as "
            "512m or 2g: digits and an optional unit b, k, m or g",
        ),
        (
            "controls:\n  resources: {cpus: 0}\n",
            "p.yaml:4: controls.resources.cpus: 0 is less than or equal to the minimum of 0",
        ),
        (
            "controls:\n  user: {allowed_uids: [-1]}\n",
            "p.yaml:4: controls.user.allowed_uids[0]: -1 is less than the minimum of 0",
        ),
        (
            "custom_rules:\n  - {code: x1, name: x, message: m, pattern: a}\n",
            "p.yaml:4: custom_rules[0].code: 'x1': must be capitals followed by digits, "
            "such as ACME101",
        ),
        (
            "controls:\n  runtime: {required: true}\n",
            "p.yaml:4: controls.runtime: required is true, so allowed must list the runtimes "
            "to require (such as runsc)",
        ),
        (
            "controls:\n  runtime: {runtime_classes: {GVisor: runsc}}\n",
            "p.yaml:4: controls.runtime.runtime_classes.GVisor: 'GVisor': a RuntimeClass name: "
            "lower-case letters, digits, '-' and '.'",
        ),
        (
            "controls:\n  runtime: {runtime_classes: {gvisor: io.containerd.runsc.v1}}\n",
            "p.yaml:4: controls.runtime.runtime_classes.gvisor: 'io.containerd.runsc.v1': a "
            "handler is a DNS label: lower-case letters, digits and '-'",
        ),
        (
            "controls:\n  user:\n    allow_root: false\n    allow_root: true\n",
            "p.yaml:6: controls.user.allow_root: duplicate key (first given on line 5)",
        ),
    ],
)
def test_invalid_policy_messages(
    write: WritePolicy, tmp_path: Path, body: str, expected: str
) -> None:
    write("p.yaml", body)
    assert error_of("p.yaml", tmp_path) == expected


def test_problems_are_sorted_by_line(write: WritePolicy, tmp_path: Path) -> None:
    write("p.yaml", "fail_on: never\ncontrols:\n  user: {allow_root: 1}\n  bogus: {}\n")
    with pytest.raises(PolicyValidationError) as caught:
        load_policy("p.yaml", cwd=tmp_path)
    assert [p.line for p in caught.value.problems] == [3, 5, 6]


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_bytes(b"apiVersion: paracle-guard/v1\nkind: Policy\n# \xff\n")
    assert error_of("p.yaml", tmp_path) == "p.yaml:3: not UTF-8 text (byte 0xff)"


def test_yaml_1_2_scalars(write: WritePolicy, tmp_path: Path) -> None:
    write(
        "p.yaml",
        """
        rules:
          missing-healthcheck: {severity: off}
        controls:
          user: {allowed_uids: [01000]}
          packages:
            deny: {on: error, yes: warning}
        exceptions:
          - {rule: PG101, reason: r, expires: 2027-06-30}
        """,
    )
    policy = load_policy("p.yaml", cwd=tmp_path)
    assert policy.rules["missing-healthcheck"].severity == "off"
    assert policy.controls.user.allowed_uids == [1000]  # decimal, not octal
    assert policy.controls.packages.deny == {"on": "error", "yes": "warning"}
    assert str(policy.exceptions[0].expires) == "2027-06-30"


def test_anchors_and_merge_keys(write: WritePolicy, tmp_path: Path) -> None:
    write(
        "p.yaml",
        """
        exceptions:
          - &waiver {rule: PG101, target: a/*, reason: shared reason}
          - <<: *waiver
            target: b/*
        """,
    )
    policy = load_policy("p.yaml", cwd=tmp_path)
    assert [(w.target, w.reason) for w in policy.exceptions] == [
        ("a/*", "shared reason"),
        ("b/*", "shared reason"),
    ]


def test_recursive_alias_is_refused(write: WritePolicy, tmp_path: Path) -> None:
    write("p.yaml", "extends: &x [*x]\n")
    assert error_of("p.yaml", tmp_path) == (
        "p.yaml:3: extends[0]: an alias refers to a node that contains it"
    )


def test_unsupported_tag(write: WritePolicy, tmp_path: Path) -> None:
    write("p.yaml", "fail_on: !!binary ZXJyb3I=\n")
    assert error_of("p.yaml", tmp_path) == (
        "p.yaml:3: fail_on: unsupported YAML tag tag:yaml.org,2002:binary"
    )


def test_a_cross_key_check_names_the_file_that_broke_it(
    write: WritePolicy, tmp_path: Path
) -> None:
    # Each file passes the schema alone; only the merged policy requires no runtime.
    write("p.yaml", "extends: [sandbox-gvisor]\ncontrols:\n  runtime:\n    allowed: []\n")
    assert error_of("p.yaml", tmp_path) == (
        "p.yaml:5: controls.runtime: required is true, so allowed must list the runtimes to "
        "require (such as runsc)"
    )


def test_pydantic_errors_use_the_same_format(write: WritePolicy, tmp_path: Path) -> None:
    # A file that skips the schema (remembered as valid) but is not: pydantic
    # still reports it as file:line: path.
    path = write("p.yaml", "metadata: {name: t}\ncontrols:\n  user:\n    allowed_uids: [abc]\n")
    marker = loader._cache_marker(path.read_bytes())
    assert marker is not None
    marker.parent.mkdir(parents=True)
    marker.touch()
    assert error_of("p.yaml", tmp_path) == (
        "p.yaml:6: controls.user.allowed_uids[0]: input should be a valid integer, unable to "
        "parse string as an integer (got 'abc')"
    )


# --- digest and effective policy ---------------------------------------------------------------


def test_sha256_is_stable_and_ignores_key_order(write: WritePolicy, tmp_path: Path) -> None:
    write("a.yaml", "fail_on: error\ncontrols: {user: {allowed_uids: [7]}, network: {mode: x}}\n")
    write("b.yaml", "controls:\n  network: {mode: x}\n  user: {allowed_uids: [7]}\nfail_on: error")
    first = load_policy("a.yaml", cwd=tmp_path).sha256
    assert len(first) == 64
    assert load_policy("a.yaml", cwd=tmp_path).sha256 == first
    assert load_policy("b.yaml", cwd=tmp_path).sha256 == first


def test_sha256_is_about_what_is_enforced(write: WritePolicy, tmp_path: Path) -> None:
    sandbox = load_policy("sandbox")
    write("same.yaml", "metadata: {name: ours}\nextends: [sandbox]\n")
    write("other.yaml", "extends: [sandbox]\nfail_on: error\n")
    assert load_policy("same.yaml", cwd=tmp_path).sha256 == sandbox.sha256
    assert load_policy("other.yaml", cwd=tmp_path).sha256 != sandbox.sha256
    assert sandbox.sha256 == policy_digest(sandbox)


def test_sha256_is_the_canonical_json(tmp_path: Path) -> None:
    policy = load_policy("baseline")
    document = policy.model_dump(mode="json", by_alias=True, exclude={"metadata", "extends"})
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert policy.sha256 == hashlib.sha256(canonical.encode()).hexdigest()


def test_effective_yaml_round_trips(write: WritePolicy, tmp_path: Path) -> None:
    write(
        "team.yaml",
        """
        extends: [sandbox]
        rules: {PG503: {severity: "off"}}
        exceptions: [{rule: PG101, reason: r, expires: 2027-06-30}]
        """,
    )
    policy = load_policy("team.yaml", cwd=tmp_path)
    text = effective_policy_yaml(policy)
    assert text.startswith(
        f"# Effective policy 'team' from team.yaml\n# sha256: {policy.sha256}\n"
        "# extends (already merged below): sandbox\napiVersion: paracle-guard/v1\n"
    )
    assert "\nextends:" not in text
    (tmp_path / "effective.yaml").write_text(text)
    again = load_policy("effective.yaml", cwd=tmp_path)
    assert again.sha256 == policy.sha256
    assert again.exceptions == policy.exceptions
    assert again.extends == []


def test_effective_yaml_of_an_unloaded_policy() -> None:
    text = effective_policy_yaml(Policy())
    digest = policy_digest(Policy())
    assert text.startswith(f"# Effective policy 'unnamed' from memory\n# sha256: {digest}\n")


def test_policy_schema_text_is_the_published_schema() -> None:
    root = Path(__file__).resolve().parents[2]
    assert policy_schema_text() == (root / "schemas" / "policy.schema.json").read_text()


# --- validation and its cache ---------------------------------------------------------------------


def _forbid_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise AssertionError("the schema ran")

    monkeypatch.setattr(validation, "schema_problems", fail)


def test_valid_file_is_remembered(
    write: WritePolicy, tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write("p.yaml", "fail_on: error\n")
    load_policy("p.yaml", cwd=tmp_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    markers = list((cache_home / "paracle-guard" / "validated").glob(f"*/{digest}"))
    assert len(markers) == 1
    _forbid_schema(monkeypatch)
    assert load_policy("p.yaml", cwd=tmp_path).fail_on == "error"


def test_changed_file_is_validated_again(write: WritePolicy, tmp_path: Path) -> None:
    write("p.yaml", "fail_on: error\n")
    load_policy("p.yaml", cwd=tmp_path)
    write("p.yaml", "fail_on: eror\n")
    assert error_of("p.yaml", tmp_path) == (
        "p.yaml:3: fail_on: 'eror' is not one of 'error', 'warning', 'info'"
    )


def test_invalid_file_is_not_remembered(
    write: WritePolicy, tmp_path: Path, cache_home: Path
) -> None:
    write("p.yaml", "fail_on: eror\n")
    error_of("p.yaml", tmp_path)
    assert not list(cache_home.rglob("*/validated/*/*"))


def test_builtins_are_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    _forbid_schema(monkeypatch)
    assert load_policy("sandbox").source == "builtin:sandbox"
    assert load_policy("baseline").source == "builtin:baseline"


def test_validate_policy_file_always_runs_the_schema(write: WritePolicy, tmp_path: Path) -> None:
    path = write("p.yaml", "extends: [baseline]\ncontrols:\n  user:\n    allowed_uids: [abc]\n")
    marker = loader._cache_marker(path.read_bytes())
    assert marker is not None
    marker.parent.mkdir(parents=True)
    marker.touch()
    with pytest.raises(PolicyValidationError) as caught:
        validate_policy_file(path)
    assert str(caught.value) == (
        f"{path}:6: controls.user.allowed_uids[0]: 'abc' is not of type 'integer'"
    )


def test_validate_policy_file_returns_the_effective_policy(write: WritePolicy) -> None:
    path = write("p.yaml", "extends: [baseline]\nfail_on: info\n")
    policy = validate_policy_file(path)
    assert policy.fail_on == "info"
    assert policy.controls.network.mode == "bridge"
    assert policy.source == str(path)


def test_unwritable_cache_is_fine(
    write: WritePolicy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A regular file where the cache directory should be: mkdir fails even for root.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    write("p.yaml", "fail_on: error\n")
    assert load_policy("p.yaml", cwd=tmp_path).fail_on == "error"
    assert load_policy("p.yaml", cwd=tmp_path).fail_on == "error"
    write("p.yaml", "fail_on: eror\n")
    assert error_of("p.yaml", tmp_path).startswith("p.yaml:3: fail_on:")


def test_relative_xdg_cache_home_is_ignored(
    write: WritePolicy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write("p.yaml", "fail_on: error\n")
    load_policy("p.yaml", cwd=tmp_path)
    assert list((tmp_path / "home" / ".cache" / "paracle-guard" / "validated").glob("*/*"))
    assert not (tmp_path / "relative").exists()


def _imports_jsonschema(spec: str, cwd: Path, cache_home: Path) -> bool:
    script = (
        "import sys\n"
        "from paracle_guard.policy.loader import load_policy\n"
        f"load_policy({spec!r})\n"
        "print('jsonschema' in sys.modules)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip() == "True"


def test_cached_load_does_not_import_jsonschema(
    write: WritePolicy, tmp_path: Path, cache_home: Path
) -> None:
    write("p.yaml", "extends: [sandbox]\nfail_on: error\n")
    assert _imports_jsonschema("p.yaml", tmp_path, cache_home) is True
    assert _imports_jsonschema("p.yaml", tmp_path, cache_home) is False


def test_builtin_load_does_not_import_jsonschema(tmp_path: Path, cache_home: Path) -> None:
    assert _imports_jsonschema("sandbox", tmp_path, cache_home) is False
