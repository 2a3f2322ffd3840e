"""PG101 root-user, PG102 uid-not-allowed, PG103 sudo."""

from __future__ import annotations

import pytest

from paracle_guard.policy.loader import load_policy
from paracle_guard.severity import Severity
from paracle_guard.subject import UserFact
from tests.builders import (
    check,
    controls,
    dockerfile,
    file,
    image,
    instruction,
    loc,
    messages,
    package,
    run_step,
    user,
)

# --- PG101 root-user --------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "uid", "name"),
    [
        ("root", 0, "root"),
        ("0", 0, None),
        ("0:0", 0, None),
        ("root:root", 0, "root"),
        ("0:1000", 0, None),
        ("root:staff", 0, "root"),
    ],
)
def test_root_in_any_spelling_is_root(spec: str, uid: int, name: str | None) -> None:
    found = check("PG101", dockerfile(user=user(spec, uid=uid, name=name, line=7)))
    assert len(found) == 1
    assert found[0].location == loc(7)
    assert repr(spec) in found[0].message


def test_a_variable_that_resolves_to_zero_says_it_is_uid_0() -> None:
    # USER ${UID} with ARG UID=0: the source hands over the substituted spec.
    (message,) = messages("PG101", dockerfile(user=user("0", uid=0)))
    assert "USER sets user '0'" in message


def test_no_user_at_all_is_root_and_fails_closed() -> None:
    (violation,) = check("PG101", dockerfile(user=None))
    assert "no USER instruction" in violation.message
    assert violation.location is None


def test_empty_spec_is_root() -> None:
    (message,) = messages("PG101", dockerfile(user=user(None, line=1)))
    assert "no USER" in message


def test_root_inherited_from_a_stage_names_it() -> None:
    subject = dockerfile(user=user("root", uid=0, name="root", inherited_from="stage base"))
    (message,) = messages("PG101", subject)
    assert "inherited from stage base" in message


def test_no_user_here_or_in_the_base_names_the_base() -> None:
    subject = dockerfile(user=user(None, inherited_from="python:3.12-slim"))
    (message,) = messages("PG101", subject)
    assert "python:3.12-slim" in message


def test_image_with_empty_config_user_is_root() -> None:
    (message,) = messages("PG101", image(user=user("", line=None)))
    assert "Config.User is empty" in message


def test_image_name_mapped_to_uid_0_in_passwd_is_root() -> None:
    (message,) = messages("PG101", image(user=user("toor", uid=0, name="toor")))
    assert "'toor'" in message
    assert "/etc/passwd" in message


def test_a_name_created_with_uid_0_in_the_dockerfile_is_root() -> None:
    # useradd -o -u 0 toor && USER toor: the source resolves the name to uid 0.
    (message,) = messages("PG101", dockerfile(user=user("toor", uid=0, name="toor")))
    assert message == "USER sets user 'toor' (uid 0), which is root"


@pytest.mark.parametrize(
    "fact",
    [
        user("1000", uid=1000),
        user("1000:1000", uid=1000, name=None),
        user("app", uid=1000, name="app"),
        # An unresolved name is not proven root; PG102 reports that it is unproven.
        user("app", name="app", unresolved_reason="no useradd -u"),
    ],
)
def test_non_root_users_pass(fact: UserFact) -> None:
    assert check("PG101", dockerfile(user=fact)) == []


def test_allow_root_switches_the_rule_off() -> None:
    policy = controls(user={"allow_root": True})
    assert check("PG101", dockerfile(user=None), policy) == []
    assert check("PG101", image(user=user("0", uid=0)), policy) == []


# --- PG102 uid-not-allowed --------------------------------------------------------

ONLY_1000 = controls(user={"allowed_uids": [1000]})


def test_uid_outside_the_allowed_list() -> None:
    (violation,) = check("PG102", dockerfile(user=user("1001", uid=1001, line=4)), ONLY_1000)
    assert "uid 1001" in violation.message
    assert "1000" in violation.message
    assert violation.severity is None  # the rule's own severity
    assert violation.location == loc(4)


def test_allowed_uid_passes() -> None:
    assert check("PG102", dockerfile(user=user("app", uid=1000, name="app")), ONLY_1000) == []


def test_any_non_root_uid_passes_when_the_list_is_empty() -> None:
    assert check("PG102", dockerfile(user=user("4242", uid=4242))) == []


def test_root_is_left_to_pg101() -> None:
    assert check("PG102", dockerfile(user=user("0", uid=0)), ONLY_1000) == []
    assert check("PG102", dockerfile(user=None), ONLY_1000) == []


def test_unresolvable_name_is_an_info_that_says_why() -> None:
    fact = user("app", name="app", unresolved_reason="app is not created with useradd -u")
    (violation,) = check("PG102", dockerfile(user=fact), ONLY_1000)
    assert violation.severity is Severity.INFO
    assert "cannot prove" in violation.message
    assert "useradd -u" in violation.message


def test_unresolvable_name_without_a_reason_still_explains() -> None:
    (violation,) = check("PG102", image(user=user("svc", name="svc")), ONLY_1000)
    assert violation.severity is Severity.INFO
    assert "not known" in violation.message


# --- PG103 sudo -------------------------------------------------------------------

# gosu and su-exec are not setuid: said as what they are, not as a way to become root.
STEPS_DOWN = (
    "switches a process started as root to another user; it is not setuid, so it cannot "
    "raise privileges, but the container starts as root to use it"
)


@pytest.mark.parametrize("name", ["sudo", "doas", "opendoas", "gosu", "su-exec", "SUDO",
                                  "sudo-rs", "sudo-ldap"])
def test_escalation_packages(name: str) -> None:
    (violation,) = check("PG103", dockerfile(packages=[package(name, line=3)]))
    assert name in violation.message
    assert violation.location == loc(3)


def test_escalation_package_in_a_builder_stage_is_fine() -> None:
    assert check("PG103", dockerfile(packages=[package("sudo", final=False)])) == []


def test_ordinary_packages_pass() -> None:
    assert check("PG103", dockerfile(packages=[package("curl"), package("sudoku")])) == []


@pytest.mark.parametrize(
    "script",
    [
        "echo 'app ALL=(ALL) NOPASSWD: ALL' >> /etc/sudoers",
        'printf "app ALL=(ALL) ALL\\n" > "/etc/sudoers.d/app"',
        "echo 'app ALL=(ALL) ALL' | tee -a /etc/sudoers.d/app",
        "cp sudoers /etc/sudoers.d/app",
        "install -m 0440 app.sudoers /etc/sudoers.d/app",
        "mv /tmp/app /etc/sudoers.d/",
        "cp -t /etc/sudoers.d app",
        "ln -s /opt/sudoers /etc/sudoers",
        "sed -i 's/^# %wheel/%wheel/' /etc/sudoers",
        "visudo -f /etc/sudoers.d/app",
        "usermod -aG sudo app",
        "usermod --append --groups docker,wheel app",
        "useradd -m -G sudo app",
        "adduser app sudo",
        "adduser -D -G wheel app",
        "addgroup app wheel",
        "gpasswd -a app sudo",
        "DEBIAN_FRONTEND=noninteractive usermod -aG sudo app",
    ],
)
def test_sudoers_grants_in_run(script: str) -> None:
    (violation,) = check("PG103", dockerfile(run_steps=[run_step(script, line=9)]))
    assert violation.message.startswith("RUN ")
    assert violation.location == loc(9)


@pytest.mark.parametrize(
    "script",
    [
        "cat /etc/sudoers > /tmp/copy",
        "cp /etc/sudoers /tmp/backup",
        "grep app /etc/sudoers",
        "visudo -c",
        "install -d -m 0750 /etc/sudoers.d",
        "usermod -aG docker app",
        "useradd -u 1000 -m app",
        "adduser --disabled-password --gecos '' app",
        "adduser app staff",
        "sed 's/a/b/' /etc/sudoers",
    ],
)
def test_harmless_commands_touching_sudoers_or_groups(script: str) -> None:
    assert check("PG103", dockerfile(run_steps=[run_step(script)])) == []


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ('echo "app ALL=(ALL) NOPASSWD:ALL" | dd of=/etc/sudoers.d/app',
         "RUN writes /etc/sudoers.d/app with dd"),
        ("install -m 440 f /etc/sudoers.d/x", "RUN writes /etc/sudoers.d/x with install"),
        ("cd /etc/sudoers.d && echo 'app ALL=(ALL) ALL' > app",
         "RUN writes /etc/sudoers.d/app with a redirect"),
        ("curl -fsSLo /etc/sudoers.d/app https://x/app", "RUN writes /etc/sudoers.d/app with curl"),
        ("sh -c 'usermod -aG wheel app'", "RUN adds app to the wheel group with usermod"),
    ],
)
def test_sudoers_grants_however_spelled(script: str, message: str) -> None:
    assert messages("PG103", dockerfile(run_steps=[run_step(script)])) == [message]


@pytest.mark.parametrize(
    ("script", "tool"),
    [
        ("sudo apt-get update", "sudo"),
        ("sudo -E -u root make install", "sudo"),
        ("doas apk upgrade", "doas"),
        ("echo x | sudo tee /etc/motd", "sudo"),
        ("sh -c 'sudo make install'", "sudo"),
    ],
)
def test_running_sudo_shows_it_is_in_the_image(script: str, tool: str) -> None:
    (violation,) = check("PG103", dockerfile(run_steps=[run_step(script, line=4)]))
    assert violation.message.startswith(f"RUN runs a command through {tool}, so {tool} is in "
                                        "the image")
    assert violation.location == loc(4)


def test_sudo_installed_and_run_is_reported_once() -> None:
    step = run_step("apt-get install -y sudo && sudo true")
    subject = dockerfile(run_steps=[step], packages=[package("sudo")])
    assert messages("PG103", subject) == ["package sudo (apt) lets a user become root"]


@pytest.mark.parametrize("tool", ["gosu", "su-exec"])
def test_gosu_and_su_exec_are_said_as_what_they_are(tool: str) -> None:
    (message,) = messages("PG103", dockerfile(run_steps=[run_step(f"{tool} app true")]))
    assert message == (f"RUN runs a command through {tool}, so {tool} is in the image; "
                       f"it {STEPS_DOWN}")
    assert "become root" not in message


def test_sudoers_grant_in_a_builder_stage_is_fine() -> None:
    step = run_step("usermod -aG sudo app", final=False)
    assert check("PG103", dockerfile(run_steps=[step])) == []


@pytest.mark.parametrize(
    ("keyword", "value", "flags"),
    [
        ("COPY", "sudoers /etc/sudoers.d/app", {}),
        ("COPY", "--chown=root:root app.conf /etc/sudoers.d/", {}),
        ("ADD", '["sudoers", "/etc/sudoers"]', {}),
        ("COPY", "<<EOF /etc/sudoers.d/app\napp ALL=(ALL) ALL\nEOF", {}),
        ("COPY", "sudoers /etc/sudoers.d/", {"from": "builder"}),
    ],
)
def test_copy_to_sudoers(keyword: str, value: str, flags: dict[str, str]) -> None:
    subject = dockerfile(instructions=[instruction(keyword, value, flags=flags, line=5)])
    (violation,) = check("PG103", subject)
    assert "/etc/sudoers" in violation.message
    assert violation.location == loc(5)


def test_copy_from_sudoers_or_elsewhere_is_fine() -> None:
    subject = dockerfile(
        instructions=[
            instruction("COPY", "/etc/sudoers /backup/sudoers"),
            instruction("COPY", "app.py /app/"),
            instruction("COPY", "sudoers /etc/sudoers.d/app", final=False),
        ]
    )
    assert check("PG103", subject) == []


@pytest.mark.parametrize(
    ("value", "flags", "name"),
    [
        # The tool itself copied in, without its package: it used to pass.
        ("/gosu /usr/local/bin/", {"from": "tianon/gosu:1.17"}, "gosu"),
        ("/usr/bin/sudo /usr/bin/sudo", {"from": "debian:12"}, "sudo"),
        ('["bin/doas", "/usr/bin/"]', {}, "doas"),
        ("helper /usr/local/bin/su-exec", {}, "su-exec"),
    ],
)
def test_copying_an_escalation_tool_in(value: str, flags: dict[str, str], name: str) -> None:
    subject = dockerfile(instructions=[instruction("COPY", value, flags=flags, line=4)])
    (violation,) = check("PG103", subject)
    assert violation.message.startswith(f"COPY puts {name} in the image")
    assert violation.location == loc(4)


def test_an_escalation_tool_installed_and_copied_is_reported_once() -> None:
    subject = dockerfile(packages=[package("sudo", line=3)],
                         instructions=[instruction("COPY", "sudo /usr/bin/sudo", line=4)])
    assert [v.location for v in check("PG103", subject)] == [loc(3)]
    assert check("PG103", dockerfile(instructions=[
        instruction("COPY", "docs/ /usr/share/doc/"),
        instruction("COPY", "/usr/bin/sudo /usr/bin/sudo", final=False)])) == []


def test_the_built_in_policies_deny_every_packaging_of_sudo_and_doas() -> None:
    for name in ("sandbox", "baseline"):
        deny = load_policy(name).controls.packages.deny
        assert {"sudo", "sudo-rs", "sudo-ldap", "doas", "opendoas"} <= set(deny), name


def test_image_binaries_and_grants() -> None:
    subject = image(
        files=[
            file("/usr/local/bin/gosu", 0o755),
            file("/sbin/su-exec", 0o777, kind="symlink"),
            file("/etc/sudoers.d/app", 0o440, tags=["sudoers-grant"]),
        ]
    )
    found = messages("PG103", subject)
    assert found == [
        f"/usr/local/bin/gosu {STEPS_DOWN}",
        f"/sbin/su-exec {STEPS_DOWN}",
        "/etc/sudoers.d/app grants sudo rights",
    ]


def test_image_files_that_only_share_the_name_are_fine() -> None:
    subject = image(
        files=[
            file("/etc/pam.d/sudo", 0o644),
            file("/usr/share/doc/sudo", 0o755, kind="dir"),
            file("/etc/sudoers", 0o440),  # untagged: the source found no grant in it
        ]
    )
    assert check("PG103", subject) == []


def test_image_binary_of_a_reported_package_is_not_repeated() -> None:
    subject = image(
        packages=[package("sudo", "dpkg")],
        files=[file("/usr/bin/sudo", 0o4755)],
    )
    assert messages("PG103", subject) == ["package sudo (dpkg) lets a user become root"]
