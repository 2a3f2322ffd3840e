"""``sandbox test``: the probe's judgement, and the probe in busybox images on the real engine."""

from __future__ import annotations

import json

import pytest

from paracle_guard.launcher.probe import (
    HELLO,
    PACKAGES,
    Expectations,
    evaluate,
    parse_facts,
    run_probe,
)
from tests.docker_images import ACCOUNTS, ImageSpec, TestImages, symlink
from tests.launcher.conftest import LABELS, run_cli

NONCE = "0123abcd"

# What the python probe reports in a sandbox that keeps every promise.
GOOD = {
    "probe": "python", "uid": "1000", "gid": "1000", "groups": "1000",
    "CapEff": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1",
    "Seccomp": "2", "write:/": "denied EROFS", "write:/usr": "denied EROFS",
    "write:/etc": "denied EROFS", "write:/tmp": "ok", "write:/workspace": "ok",
    "interfaces": "lo", "python": "3.11.2",
    **{f"import:{module}": "ok 1.0" for module in PACKAGES},
    "hello": f"{HELLO} {NONCE}",
}
EXPECT = Expectations(allowed_uids=(1000,), network_none=True)


def statuses(facts: dict[str, str], expect: Expectations = EXPECT) -> dict[str, str]:
    return {check.name: check.status for check in evaluate(facts, expect, NONCE)}


def test_every_promise_holds_in_a_good_sandbox() -> None:
    assert set(statuses(GOOD).values()) == {"pass"}


@pytest.mark.parametrize(
    ("key", "value", "broken"),
    [
        ("uid", "0", "user"),
        ("uid", "1001", "user"),  # non-root but not the uid the policy allows
        ("groups", "0", "groups"),  # root's group as a supplementary group instead of 1000
        ("groups", "1000 27", "groups"),
        ("CapEff", "00000000a80425fb", "CapEff"),
        ("CapBnd", "0000000000002000", "CapBnd"),
        ("NoNewPrivs", "0", "NoNewPrivs"),
        ("Seccomp", "0", "Seccomp"),
        ("write:/usr", "ok", "read-only root"),
        ("write:/tmp", "denied EROFS", "/tmp writable"),
        ("write:/workspace", "denied EACCES", "/workspace writable"),
        ("interfaces", "eth0,lo", "network"),
        ("import:yaml", "error ModuleNotFoundError: No module named 'yaml'", "import yaml"),
        ("hello", f"{HELLO} forged", "hello"),
    ],
)
def test_one_broken_fact_breaks_exactly_its_promise(key: str, value: str, broken: str) -> None:
    result = statuses({**GOOD, key: value})
    assert {name for name, status in result.items() if status != "pass"} == {broken}


def test_a_fact_the_probe_did_not_report_fails_its_promise() -> None:
    facts = {key: value for key, value in GOOD.items() if key != "Seccomp"}
    assert statuses(facts)["Seccomp"] == "fail"


def test_a_policy_with_a_network_accepts_other_interfaces() -> None:
    allowed = Expectations(allowed_uids=(1000,), network_none=False)
    assert statuses({**GOOD, "interfaces": "eth0,lo"}, allowed)["network"] == "pass"


def test_only_prefixed_lines_are_facts() -> None:
    output = "uid=0\nparacle-probe:uid=1000\nnoise\nparacle-probe:hello=a=b\n"
    assert parse_facts(output) == {"uid": "1000", "hello": "a=b"}


# --- against the engine --------------------------------------------------------------------

SHELL_ONLY = ImageSpec(
    "probe-shell-only",
    layers=((*ACCOUNTS, *(symlink(f"/bin/{applet}", "busybox")
                          for applet in ("sh", "id", "grep", "cat", "rm"))),),
    instructions=("USER 1000:1000",),
)
# Only the busybox binary every test image carries, with no applet link: no sh, no python3.
NO_INTERPRETER = ImageSpec("probe-no-interpreter", layers=(ACCOUNTS,),
                           instructions=("USER 1000:1000",))


@pytest.mark.docker
def test_a_shell_only_image_proves_the_sandbox_but_not_python(test_images: TestImages) -> None:
    image = test_images.get(SHELL_ONLY)
    report = run_probe(image.ref, policy="sandbox", labels=LABELS)
    result = {check.name: check.status for check in report.checks}
    assert report.interpreter == "sh"
    sandbox = ["user", "groups", "CapEff", "CapBnd", "NoNewPrivs", "Seccomp", "read-only root",
               "/tmp writable", "/workspace writable", "network", "hello"]
    assert {name: result[name] for name in sandbox} == dict.fromkeys(sandbox, "pass")
    assert result["python"] == "fail"
    assert all(result[f"import {module}"] == "fail" for module in PACKAGES)
    assert not report.ok


@pytest.mark.docker
def test_the_cli_exits_1_and_names_the_broken_promises(test_images: TestImages) -> None:
    image = test_images.get(SHELL_ONLY)
    done = run_cli("sandbox", "test", "--image", image.ref, "--policy", "sandbox",
                   "--format", "json")
    assert done.returncode == 1, done.stderr.decode()
    document = json.loads(done.stdout)
    assert document["ok"] is False and document["interpreter"] == "sh"
    failed = {check["name"] for check in document["checks"] if check["status"] == "fail"}
    assert failed == {"python", *(f"import {module}" for module in PACKAGES)}


@pytest.mark.docker
def test_an_image_without_python_or_sh_says_what_it_could_not_check(
    test_images: TestImages,
) -> None:
    image = test_images.get(NO_INTERPRETER)
    report = run_probe(image.ref, policy="sandbox", labels=LABELS)
    assert report.interpreter == "none" and not report.ok
    assert {check.status for check in report.checks} == {"unchecked"}
    assert "Seccomp" in report.unchecked and "hello" in report.unchecked

    done = run_cli("sandbox", "test", "--image", image.ref, "--policy", "sandbox")
    assert done.returncode == 1
    text = done.stdout.decode()
    assert "could not check: user, groups, CapEff" in text
    assert "neither python3 nor /bin/sh" in text


@pytest.mark.docker
def test_a_root_image_is_refused_and_reported_not_probed(test_images: TestImages) -> None:
    image = test_images.get("root-default")
    report = run_probe(image.ref, policy="sandbox", labels=LABELS)
    assert not report.ok
    assert report.problem is not None and "PG101" in report.problem


def test_bad_format_is_one_line_and_exit_2() -> None:
    done = run_cli("sandbox", "test", "--format", "yaml")
    assert done.returncode == 2
    assert done.stderr.decode().strip() == (
        "paracle-guard: error: --format yaml: expected text or json"
    )


@pytest.mark.docker
def test_a_missing_image_is_one_line_and_exit_2(test_images: TestImages) -> None:
    done = run_cli("sandbox", "test", "--image", "paracle-guard-test/no-such-image:0")
    assert done.returncode == 2
    assert len(done.stderr.decode().strip().splitlines()) == 1
