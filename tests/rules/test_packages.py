"""PG401 install-recommends, PG402 package-cache, PG403 denied-package, PG404 too-many-packages."""

from __future__ import annotations

import pytest

from paracle_guard.severity import Severity
from paracle_guard.subject import RunStep
from tests.builders import (
    check,
    controls,
    dockerfile,
    image,
    loc,
    messages,
    package,
    run_step,
)

# --- PG401 install-recommends -----------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        "apt-get update && apt-get install -y curl git",
        "apt install -y python3",
        "DEBIAN_FRONTEND=noninteractive apt-get -y install ca-certificates",
        "apt-get install -y -o APT::Install-Recommends=true curl",
    ],
)
def test_apt_install_with_recommends(script: str) -> None:
    (violation,) = check("PG401", dockerfile(run_steps=[run_step(script, line=6)]))
    assert "without --no-install-recommends" in violation.message
    assert violation.location == loc(6)


def test_message_names_the_packages() -> None:
    step = run_step("apt-get install -y curl=7.88.1-10 git/bookworm a b c d e")
    (message,) = messages("PG401", dockerfile(run_steps=[step]))
    assert message.startswith("apt-get install curl, git, a, b, c and 2 more")


@pytest.mark.parametrize(
    "script",
    [
        "apt-get install -y --no-install-recommends curl",
        "apt-get install --no-install-recommends -y curl && rm -rf /var/lib/apt/lists/*",
        "apt-get install -y -o APT::Install-Recommends=false curl",
        "apt-get install -y -oAPT::Install-Recommends=0 curl",
        "apt-get install -y --option=APT::Install-Recommends=false curl",
        "apt-get update",
        "apt-get remove -y curl",
        "pip install requests",
    ],
)
def test_apt_without_recommends_passes(script: str) -> None:
    assert check("PG401", dockerfile(run_steps=[run_step(script)])) == []


def test_apt_conf_written_by_an_earlier_run_holds() -> None:
    steps = [
        run_step(
            "echo 'APT::Install-Recommends \"false\";' > /etc/apt/apt.conf.d/00-no-recommends",
            line=2,
        ),
        run_step("apt-get install -y curl", line=3),
    ]
    assert check("PG401", dockerfile(run_steps=steps)) == []


def test_builder_stage_installs_are_ignored() -> None:
    step = run_step("apt-get install -y build-essential", final=False)
    assert check("PG401", dockerfile(run_steps=[step])) == []


def test_recommends_rule_off_when_the_policy_says_so() -> None:
    policy = controls(packages={"no_install_recommends": False})
    assert check("PG401", dockerfile(run_steps=[run_step("apt-get install curl")]), policy) == []


# --- PG402 package-cache ----------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "needle"),
    [
        ("apt-get update && apt-get install -y --no-install-recommends curl",
         "apt-get update leaves the package lists"),
        ("apt-get update", "apt-get update leaves"),
        ("apt-get install -y curl && apt-get clean", "apt-get install leaves"),
        ("pip install requests", "pip install without --no-cache-dir"),
        ("python3 -m pip install -U pip", "python3 -m pip install without --no-cache-dir"),
        ("apk add curl", "apk add without --no-cache"),
        ("apk update && apk add --virtual .deps gcc", "apk add without --no-cache"),
        ("dnf install -y git", "dnf install without 'dnf clean all'"),
        ("yum -y update", "yum update without 'yum clean all'"),
        ("microdnf install shadow-utils", "microdnf install without"),
    ],
)
def test_caches_left_in_the_layer(script: str, needle: str) -> None:
    (violation,) = check("PG402", dockerfile(run_steps=[run_step(script, line=11)]))
    assert needle in violation.message
    assert violation.location == loc(11)
    assert violation.fix is not None


@pytest.mark.parametrize(
    "script",
    [
        "apt-get update && apt-get install -y --no-install-recommends curl "
        "&& rm -rf /var/lib/apt/lists/*",
        "apt-get update && apt-get install -y curl; rm -r /var/lib/apt/lists",
        "apt-get update && apt-get install -y curl && rm -rf /var/lib/apt",
        "pip install --no-cache-dir requests",
        "pip --no-cache-dir install requests",
        "PIP_NO_CACHE_DIR=1 pip install requests",
        "export PIP_NO_CACHE_DIR=off; pip install requests",
        "pip install requests && rm -rf /root/.cache/pip",
        "apk add --no-cache curl",
        "apk add curl && rm -rf /var/cache/apk/*",
        "dnf install -y git && dnf clean all",
        "yum install -y git && rm -rf /var/cache/yum",
        "apt-get remove -y curl",
        "pip download requests",
    ],
)
def test_caches_cleaned_in_the_same_run(script: str) -> None:
    assert check("PG402", dockerfile(run_steps=[run_step(script)])) == []


@pytest.mark.parametrize(
    "script",
    [
        "apt-get update && apt-get install -y --no-install-recommends tini && apt-get dist-clean",
        "apt update; apt install -y --no-install-recommends tini; apt distclean",
        "apk add --no-network --allow-untrusted /tmp/pkgs/*.apk",
        "apk add --no-network --repository /tmp/repo py3-app",
        "pip install requests && pip cache purge",
        "microdnf install -y shadow-utils && microdnf clean all",
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends x"
        " && sudo rm -rf /var/lib/apt/lists/*",
        "bash -c 'apt-get update && apt-get install -y x && rm -rf /var/lib/apt/lists/*'",
    ],
)
def test_caches_cleaned_by_the_manager_itself_or_never_made(script: str) -> None:
    assert check("PG402", dockerfile(run_steps=[run_step(script)])) == []


@pytest.mark.parametrize(
    "script",
    [
        "rm -rf /var/lib/apt/lists/* && apt-get update && apt-get install -y x",
        "apt-get update && apt-get clean",  # clean keeps the lists
        "ionice -c3 apt-get update",
        "dnf clean all && dnf install -y git",
        "apk add curl; rm -rf /var/cache/apk/* ; apk add git",
    ],
)
def test_a_cache_cleaned_before_the_last_fetch_stays(script: str) -> None:
    assert len(check("PG402", dockerfile(run_steps=[run_step(script)]))) == 1


def test_an_expanded_script_is_judged_as_the_shell_runs_it() -> None:
    script = 'apt-get update && echo "lists ready" && rm -rf /var/lib/apt/lists/*'
    step = run_step('bash -c "$SETUP"', environment={"SETUP": script})
    assert check("PG402", dockerfile(run_steps=[step])) == []


def test_pip_cache_setting_must_reach_pip() -> None:
    # A shell variable that is not exported is not in pip's environment.
    unexported = run_step("PIP_NO_CACHE_DIR=1; pip install requests")
    exported = run_step("export PIP_NO_CACHE_DIR=1; pip install requests")
    assert len(check("PG402", dockerfile(run_steps=[unexported]))) == 1
    assert check("PG402", dockerfile(run_steps=[exported])) == []


@pytest.mark.parametrize(
    "script",
    [
        "ionice -c3 apt-get install -y curl",
        "nice -n 5 apt-get install -y curl",
        "doas apt-get install -y curl",
        "echo curl | xargs apt-get install -y",
        "eval 'apt-get install -y curl'",
    ],
)
def test_wrapped_installs_are_installs(script: str) -> None:
    (violation,) = check("PG401", dockerfile(run_steps=[run_step(script)]))
    assert violation.message.startswith("apt-get install curl without")


def test_cleaning_in_a_later_run_is_too_late() -> None:
    steps = [run_step("apt-get update && apt-get install -y curl"),
             run_step("rm -rf /var/lib/apt/lists/*")]
    assert len(check("PG402", dockerfile(run_steps=steps))) == 1


@pytest.mark.parametrize(
    ("script", "mount"),
    [
        ("apt-get update && apt-get install -y curl", "type=cache,target=/var/lib/apt/lists"),
        ("apt-get update && apt-get install -y curl",
         "type=cache,target=/var/cache/apt,sharing=locked"),
        ("pip install requests", "type=cache,target=/root/.cache/pip"),
        ("apk add curl", "type=cache,dst=/var/cache/apk"),
        ("dnf install -y git", "type=tmpfs,target=/var/cache/dnf"),
    ],
)
def test_cache_mounts_keep_caches_out_of_the_layer(script: str, mount: str) -> None:
    assert check("PG402", dockerfile(run_steps=[run_step(script, mounts=[mount])])) == []


def test_a_bind_mount_is_not_a_cache() -> None:
    step = run_step("pip install requests", mounts=["type=bind,target=/root/.cache/pip"])
    assert len(check("PG402", dockerfile(run_steps=[step]))) == 1


@pytest.mark.parametrize("value", ["1", "true", "on", "off", "0", "false"])
def test_pip_no_cache_dir_from_env_any_boolean(value: str) -> None:
    # pip turns the cache off for every value strtobool accepts, "0" and "false" too.
    step = run_step("pip install requests", environment={"PIP_NO_CACHE_DIR": value})
    assert check("PG402", dockerfile(run_steps=[step])) == []


@pytest.mark.parametrize(
    "step",
    [
        run_step("pip install requests", environment={"PIP_NO_CACHE_DIR": "please"}),
        run_step("PIP_NO_CACHE_DIR= pip install requests"),
    ],
)
def test_pip_no_cache_dir_with_an_invalid_value_does_not_count(step: RunStep) -> None:
    # pip rejects such a value instead of disabling its cache.
    assert len(check("PG402", dockerfile(run_steps=[step]))) == 1


def test_one_finding_per_manager_per_step() -> None:
    step = run_step("apt-get update && apt-get install -y x && pip install a && pip install b")
    found = messages("PG402", dockerfile(run_steps=[step]))
    assert len(found) == 2


def test_cache_rule_ignores_builder_stages_and_can_be_switched_off() -> None:
    assert check("PG402", dockerfile(run_steps=[run_step("apk add gcc", final=False)])) == []
    policy = controls(packages={"clean_caches": False})
    assert check("PG402", dockerfile(run_steps=[run_step("apk add gcc")]), policy) == []


# --- PG403 denied-package ---------------------------------------------------------

DENY = controls(
    packages={
        "deny": {
            "sudo": "error",
            "curl": "warning",
            "netcat*": "warning",
            "netcat-traditional": "off",
            "PyYAML": "info",
            "telnetd": "off",
        }
    }
)


def test_denied_package_uses_the_policy_severity() -> None:
    subject = dockerfile(packages=[package("sudo", line=2), package("curl", line=3)])
    found = check("PG403", subject, DENY)
    assert [(v.severity, v.location) for v in found] == [
        (Severity.ERROR, loc(2)),
        (Severity.WARNING, loc(3)),
    ]
    assert found[0].message == "package sudo (apt) is denied by the policy"


def test_names_match_case_insensitively() -> None:
    assert len(check("PG403", image(packages=[package("Curl", "apk")]), DENY)) == 1


def test_glob_entries_and_the_entry_is_named() -> None:
    (violation,) = check("PG403", dockerfile(packages=[package("netcat-openbsd")]), DENY)
    assert "(deny entry 'netcat*')" in violation.message
    assert violation.severity is Severity.WARNING


def test_a_more_specific_off_entry_wins_over_a_glob() -> None:
    assert check("PG403", dockerfile(packages=[package("netcat-traditional")]), DENY) == []


def test_off_means_not_denied() -> None:
    assert check("PG403", dockerfile(packages=[package("telnetd")]), DENY) == []


@pytest.mark.parametrize(
    "name", ["zope-interface", "Zope_Interface", "zope.interface", "ZOPE-_.interface"]
)
def test_python_names_are_normalised_per_pep_503(name: str) -> None:
    policy = controls(packages={"deny": {"zope_interface": "info"}})
    subject = image(packages=[package(name, "python", version="6.0")])
    (violation,) = check("PG403", subject, policy)
    assert violation.severity is Severity.INFO
    assert violation.message == f"package {name} 6.0 (python) is denied by the policy"


def test_a_pip_install_matches_a_mixed_case_deny_key() -> None:
    (violation,) = check("PG403", dockerfile(packages=[package("pyyaml", "pip")]), DENY)
    assert violation.severity is Severity.INFO


def test_pep_503_applies_only_to_python_packages() -> None:
    policy = controls(packages={"deny": {"py-yaml": "info"}})
    assert check("PG403", image(packages=[package("py_yaml", "dpkg")]), policy) == []


def test_undenied_and_builder_packages_pass() -> None:
    subject = dockerfile(packages=[package("git"), package("sudo", final=False)])
    assert check("PG403", subject, DENY) == []
    assert check("PG403", dockerfile(packages=[package("sudo")])) == []  # empty deny list


# --- PG404 too-many-packages ------------------------------------------------------

MiB = 1024 * 1024


def test_too_many_os_packages_lists_the_five_largest() -> None:
    packages = [package(f"lib{i}", "dpkg", size=i * MiB) for i in range(1, 8)]
    packages.append(package("requests", "python", size=100 * MiB))  # not an OS package
    policy = controls(packages={"max_installed": 5})
    (message,) = messages("PG404", image(packages=packages), policy)
    assert message.startswith("7 OS packages are installed, more than max_installed 5")
    assert message.endswith(
        "largest: lib7 (7.0 MiB), lib6 (6.0 MiB), lib5 (5.0 MiB), lib4 (4.0 MiB), lib3 (3.0 MiB)"
    )


def test_sizes_unknown_still_reports_the_count() -> None:
    packages = [package("a", "apk"), package("b", "rpm")]
    policy = controls(packages={"max_installed": 1})
    (message,) = messages("PG404", image(packages=packages), policy)
    assert message == "2 OS packages are installed, more than max_installed 1"


def test_at_the_limit_or_no_limit_passes() -> None:
    packages = [package("a", "dpkg"), package("b", "dpkg")]
    assert check("PG404", image(packages=packages), controls(packages={"max_installed": 2})) == []
    assert check("PG404", image(packages=packages)) == []
