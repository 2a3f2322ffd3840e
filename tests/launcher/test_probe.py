"""``sandbox test``: the probe's judgement, and the probe in busybox images on the real engine."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from paracle_guard.launcher.hostproof import HostFacts, Limits, ProcessFacts, parse_mountinfo
from paracle_guard.launcher.probe import (
    HELLO,
    HOST_PROMISES,
    PACKAGES,
    Expectations,
    evaluate_host,
    evaluate_inside,
    parse_facts,
    run_probe,
)
from tests.docker_images import (
    ACCOUNTS,
    ImageSpec,
    TestImages,
    busybox,
    directory,
    file,
    symlink,
)
from tests.launcher.conftest import LABELS, run_cli

NONCE = "0123abcd"
MIB = 1 << 20

MOUNTINFO = """\
78 53 0:39 / / ro,relatime master:2 - overlay overlay rw,lowerdir=/l
79 78 0:42 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
80 78 0:43 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
93 80 0:41 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw
96 78 0:47 / /tmp rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,size=65536k,uid=1000,gid=1000
97 78 0:48 / /workspace rw,nosuid,nodev,relatime - tmpfs tmpfs rw,size=65536k,uid=1000,gid=1000
59 79 0:43 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
"""
PROCESS = ProcessFacts(pid=7, uids=(1000,) * 4, gids=(1000,) * 4, groups=(1000,), cap_eff=0,
                       cap_bnd=0, no_new_privs=1, seccomp=2)


def host(**changes: Any) -> HostFacts:
    """What the host reads from a sandbox that keeps every promise, with ``changes``."""
    facts = HostFacts(pid=7, processes=[PROCESS], mounts=parse_mountinfo(MOUNTINFO),
                      interfaces=["lo"], limits=Limits(memory=512 * MIB, swap=0, pids=256,
                                                        cpus=1.0),
                      identities={}, host_mounts=[])
    for name, value in changes.items():
        setattr(facts, name, value)
    return facts


INSIDE = {"probe": "python", "python": "3.11.2", "hello": f"{HELLO} {NONCE}",
          **{f"import:{module}": "ok 1.0" for module in PACKAGES}}
EXPECT = Expectations(allowed_uids=(1000,), network_none=True, memory=512 * MIB, cpus=1.0,
                      pids=256)


def statuses(facts: HostFacts | None, inside: dict[str, str] = INSIDE,
             expect: Expectations = EXPECT) -> dict[str, str]:
    checks = [*evaluate_host(facts, expect, "no host facts"), *evaluate_inside(inside, NONCE)]
    return {check.name: check.status for check in checks}


def test_every_promise_holds_in_a_good_sandbox() -> None:
    assert set(statuses(host()).values()) == {"pass"}


def with_process(**changes: Any) -> HostFacts:
    return host(processes=[PROCESS, replace(PROCESS, pid=8, **changes)])


@pytest.mark.parametrize(
    ("facts", "broken"),
    [
        (with_process(uids=(0, 0, 0, 0)), "user"),
        (with_process(uids=(1001,) * 4), "user"),  # non-root but not the uid the policy allows
        (with_process(groups=(0, 1000)), "groups"),
        (with_process(cap_eff=0xA80425FB), "CapEff"),
        (with_process(cap_bnd=0x2000), "CapBnd"),
        (with_process(no_new_privs=0), "NoNewPrivs"),
        (with_process(seccomp=0), "Seccomp"),
        (host(mounts=parse_mountinfo(MOUNTINFO.replace("/ / ro,", "/ / rw,"))), "read-only root"),
        # The scratch tmpfs landed on /etc (an image's /tmp -> /etc): /tmp is not a mount, and
        # /etc is writable.
        (host(mounts=parse_mountinfo(MOUNTINFO.replace(" /tmp ", " /etc "))), "/tmp writable"),
        (host(mounts=parse_mountinfo(MOUNTINFO.replace("uid=1000,gid=1000\n97", "uid=0\n97"))),
         "/tmp writable"),
        (host(interfaces=["eth0", "lo"]), "network"),
        (host(limits=Limits(memory=1 << 30, swap=0, pids=256, cpus=1.0)), "limits"),
        (host(limits=Limits(memory=512 * MIB, swap=512 * MIB, pids=256, cpus=1.0)), "limits"),
        (host(limits=Limits(memory=512 * MIB, swap=0, pids=None, cpus=1.0)), "limits"),
        (host(limits=None), "limits"),
    ],
)
def test_one_broken_host_fact_breaks_its_promise(facts: HostFacts, broken: str) -> None:
    result = statuses(facts)
    assert result[broken] == "fail"
    assert {name for name, status in result.items() if status != "pass"} <= {
        broken, "read-only root"}  # a tmpfs on /etc also breaks the read-only promise


def test_a_redirected_tmpfs_breaks_both_writable_and_read_only() -> None:
    result = statuses(host(mounts=parse_mountinfo(MOUNTINFO.replace(" /tmp ", " /etc "))))
    assert result["/tmp writable"] == result["read-only root"] == "fail"


@pytest.mark.parametrize(("key", "value", "broken"), [
    ("import:yaml", "error ModuleNotFoundError: No module named 'yaml'", "import yaml"),
    ("hello", f"{HELLO} forged", "hello"),
    ("python", "missing", "python"),
])
def test_the_images_own_checks_are_only_its_own(key: str, value: str, broken: str) -> None:
    result = statuses(host(), {**INSIDE, key: value})
    assert {name for name, status in result.items() if status != "pass"} == {broken}


def test_without_host_facts_no_sandbox_promise_is_checked() -> None:
    """The image's interpreter cannot vouch for the sandbox: nothing passes on its word."""
    lying = {**INSIDE, "uid": "1000", "CapEff": "0000000000000000", "interfaces": "lo"}
    result = statuses(None, lying)
    assert {result[name] for name in HOST_PROMISES} == {"unchecked"}


def test_a_policy_with_a_network_accepts_other_interfaces() -> None:
    allowed = replace(EXPECT, network_none=False)
    assert statuses(host(interfaces=["eth0", "lo"]), expect=allowed)["network"] == "pass"


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


def test_the_inside_checks_come_from_the_policy_s_sandbox_test() -> None:
    from paracle_guard.policy.models import Policy

    shipped = Expectations.of(Policy())
    assert (shipped.python, shipped.packages) == (True, PACKAGES)
    custom = Expectations.of(Policy.model_validate(
        {"sandbox_test": {"python": True, "python_packages": ["numpy"]}}))
    inside = {**INSIDE, "import:numpy": "error ModuleNotFoundError: No module named 'numpy'"}
    checks = {c.name: c.status for c in evaluate_inside(inside, NONCE, custom)}
    assert checks == {"python": "pass", "import numpy": "fail", "hello": "pass"}
    no_python = Expectations.of(Policy.model_validate({"sandbox_test": {"python": False}}))
    shell_only = {"probe": "sh", "python": "missing", "hello": f"{HELLO} {NONCE}"}
    assert {c.name: c.status for c in evaluate_inside(shell_only, NONCE, no_python)} == {
        "hello": "pass"}
    assert no_python.inside_promises == ["hello"]


@pytest.mark.docker
def test_a_shell_only_image_passes_a_policy_that_asks_for_no_python(
    test_images: TestImages, tmp_path: Path
) -> None:
    policy = tmp_path / "shell-sandbox.yaml"
    policy.write_text("apiVersion: paracle-guard/v1\nkind: Policy\nextends: [sandbox]\n"
                      "sandbox_test: {python: false}\n")
    image = test_images.get(SHELL_ONLY)
    done = run_cli("sandbox", "test", "--image", image.ref, "--policy", str(policy),
                   "--format", "json")
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    names = {check["name"] for check in json.loads(done.stdout)["checks"]}
    assert "python" not in names and not any(name.startswith("import ") for name in names)


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
    assert done.stderr.decode().splitlines() == [
        "paracle-guard: error: --format yaml: expected text or json",
        "See 'paracle-guard sandbox test --help'.",
    ]


@pytest.mark.docker
def test_a_missing_image_is_one_line_and_exit_2(test_images: TestImages) -> None:
    done = run_cli("sandbox", "test", "--image", "paracle-guard-test/no-such-image:0")
    assert done.returncode == 2
    assert len(done.stderr.decode().strip().splitlines()) == 1


# --- an image that lies -----------------------------------------------------------------

# A python3 that is a shell script: it prints what a good sandbox would report, in the old
# probe's words and with a uid of its own choosing, and echoes the nonce it is sent.
FAKE_PYTHON = """#!/bin/sh
P=paracle-probe:
echo "${P}probe=python"
echo "${P}uid=4242"; echo "${P}gid=4242"; echo "${P}groups=4242"
echo "${P}CapEff=0000000000000000"; echo "${P}CapBnd=0000000000000000"
echo "${P}NoNewPrivs=1"; echo "${P}Seccomp=2"
for p in / /usr /etc; do echo "${P}write:$p=denied EROFS"; done
echo "${P}write:/tmp=ok"; echo "${P}write:/workspace=ok"; echo "${P}interfaces=lo"
echo "${P}python=3.11.2"
for m in requests pydantic click rich jinja2 yaml; do echo "${P}import:$m=ok 1.0"; done
read -r line
echo "${P}hello=$line"
"""
FAKE_LAYER = (*ACCOUNTS, *(symlink(f"/bin/{applet}", "busybox") for applet in ("sh", "echo")),
              file("/usr/bin/python3", FAKE_PYTHON, 0o755), directory("/tmp", 0o1777))
LYING = ImageSpec("probe-lying-python", layers=(FAKE_LAYER,),
                  instructions=("USER 1000:1000",))
# The image: the same liar, with /tmp turned into a symlink to /etc by a later layer.
LYING_TMP_ETC = ImageSpec(
    "probe-lying-python-tmp-etc", layers=(FAKE_LAYER,),
    instructions=(busybox("rm", "-rf", "/tmp"), busybox("ln", "-s", "/etc", "/tmp"),
                  "USER 1000:1000"))


@pytest.mark.docker
def test_a_lying_python_with_tmp_on_etc_does_not_make_every_promise_hold(
    test_images: TestImages,
) -> None:
    image = test_images.get(LYING_TMP_ETC)
    report = run_probe(image.ref, policy="sandbox", labels=LABELS)
    assert not report.ok
    assert report.problem is not None and "PG206" in report.problem
    assert "/tmp is a symlink to /etc" in report.problem

    done = run_cli("sandbox", "test", "--image", image.ref, "--policy", "sandbox")
    assert done.returncode == 1
    assert b"every promise holds" not in done.stdout
    assert b"PG206" in done.stdout


@pytest.mark.docker
def test_a_lying_python_cannot_speak_for_the_sandbox(test_images: TestImages) -> None:
    """Every sandbox promise is what the host read; the script's own claims go unused."""
    image = test_images.get(LYING)
    report = run_probe(image.ref, policy="sandbox", labels=LABELS)
    observed = {check.name: check.observed for check in report.checks}
    assert observed["user"] == "uid=1000 gid=1000"  # the kernel's, not the script's 4242
    assert observed["groups"] == "1000"
    assert observed["network"] == "lo"
    assert observed["/tmp writable"] == "tmpfs rw uid=1000"
    assert observed["limits"].startswith("memory 512MiB, swap 0 bytes, pids 256")
    # What only the image can say is marked as its own word.
    assert observed["python"] == "3.11.2 (the image's own word)"
