"""sources/run_facts.py: every shell form a RUN can take, and the facts the reader must record.

One table: a script (with the ARG/ENV values it sees) and the facts it must produce,
written compactly. Facts not listed must be absent, so a wrapper that hides a package
or a write that goes unrecorded fails its row.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paracle_guard.location import Location
from paracle_guard.sources.run_facts import read_run
from paracle_guard.subject import RunStep

VARIABLES = {"HOME": "/root", "SCRIPT": 'apk add "sudo" && rm -rf /var/cache/apk/*'}


def read(script: str) -> RunStep:
    """The step, run under WORKDIR /srv/app."""
    return read_run(script, variables=VARIABLES, cwd="/srv/app",
                    location=Location(path="Dockerfile"))


def facts(script: str) -> dict[str, Any]:
    """The step's facts, compactly: only the kinds that are present."""
    step = read(script)
    found: dict[str, Any] = {
        "packages": [(c.manager, c.verb, c.action, [p.name for p in c.packages])
                     for c in step.package_calls],
        "wrappers": sorted({w for c in step.commands for w in c.wrappers}),
        "writes": [(w.path, w.how) for w in step.writes],
        "removals": [(r.path, r.how) for r in step.removals],
        "modes": [(m.path, m.setuid, m.setgid, m.capabilities) for m in step.mode_changes],
        "accounts": [(a.tool, a.name, a.created, a.groups) for a in step.accounts],
        "downloads": [(d.tool, d.into, d.consumer, d.runs_as_code) for d in step.downloads],
    }
    return {kind: value for kind, value in found.items() if value}


APK_X = [("apk", "add", "install", ["x"])]

CASES: list[tuple[str, dict[str, Any]]] = [
    # --- every wrapper around a package install -------------------------------------
    ("env DEBIAN_FRONTEND=noninteractive apk add x", {"packages": APK_X, "wrappers": ["env"]}),
    ("nice -n 10 apk add x", {"packages": APK_X, "wrappers": ["nice"]}),
    ("ionice -c3 apt-get install -y curl",
     {"packages": [("apt", "install", "install", ["curl"])], "wrappers": ["ionice"]}),
    ("time apk add x", {"packages": APK_X, "wrappers": ["time"]}),
    ("timeout -k 5 300 apk add x", {"packages": APK_X, "wrappers": ["timeout"]}),
    ("stdbuf -oL apk add x", {"packages": APK_X, "wrappers": ["stdbuf"]}),
    ("nohup apk add x", {"packages": APK_X, "wrappers": ["nohup"]}),
    ("chroot /target apk add x", {"packages": APK_X, "wrappers": ["chroot"]}),
    ("sudo -E -u root apk add x", {"packages": APK_X, "wrappers": ["sudo"]}),
    ("doas apk add x", {"packages": APK_X, "wrappers": ["doas"]}),
    ("su -c 'apk add x' root", {"packages": APK_X, "wrappers": ["su"]}),
    ("su - root -c 'apk add x'", {"packages": APK_X, "wrappers": ["su"]}),
    ("runuser -u root -- apk add x", {"packages": APK_X, "wrappers": ["runuser"]}),
    ("setpriv --reuid=0 --init-groups apk add x", {"packages": APK_X, "wrappers": ["setpriv"]}),
    ("busybox sh -c 'apk add x'", {"packages": APK_X, "wrappers": ["busybox"]}),
    ("command apk add x", {"packages": APK_X, "wrappers": ["command"]}),
    ("exec apk add x", {"packages": APK_X, "wrappers": ["exec"]}),
    ("echo x | xargs apk add", {"packages": APK_X, "wrappers": ["xargs"]}),
    ("echo x | xargs -I{} apk add {}", {"packages": APK_X, "wrappers": ["xargs"]}),
    ("gosu root apk add x", {"packages": APK_X, "wrappers": ["gosu"]}),
    ("su-exec root apk add x", {"packages": APK_X, "wrappers": ["su-exec"]}),
    ("sudo env A=1 nice ionice -c2 timeout 9 apk add x",
     {"packages": APK_X, "wrappers": ["env", "ionice", "nice", "sudo", "timeout"]}),
    # Red team: wrappers and shells the reader did not know hid the install.
    ("unshare -r apk add x", {"packages": APK_X, "wrappers": ["unshare"]}),
    ("flock /tmp/l -c 'apk add x'", {"packages": APK_X, "wrappers": ["flock"]}),
    ("script -qc 'apk add x' /dev/null", {"packages": APK_X, "wrappers": ["script"]}),
    ("watch -n1 apk add x", {"packages": APK_X, "wrappers": ["watch"]}),
    ("taskset -c 0 chrt -o 0 setsid eatmydata apk add x",
     {"packages": APK_X, "wrappers": ["chrt", "eatmydata", "setsid", "taskset"]}),
    ("busybox hush -c 'apk add x'", {"packages": APK_X, "wrappers": ["busybox"]}),
    ("rbash -c 'apk add x'", {"packages": APK_X}),
    ("ksh93 -c 'apk add x'", {"packages": APK_X}),
    ("fish -c 'apk add x'", {"packages": APK_X}),
    # --- every way the shell runs a command -------------------------------------------
    ("eval 'apk add x'", {"packages": APK_X}),
    ("sh -c 'apk add x'", {"packages": APK_X}),
    ("/bin/bash -eo pipefail -c 'apk add x'", {"packages": APK_X}),
    ("sh -c 'apk add $1' _ x", {"packages": APK_X}),
    ('bash -c "$SCRIPT"', {"packages": [("apk", "add", "install", ["sudo"])],
                           "removals": [("/var/cache/apk/*", "rm")]}),
    ("echo $(apk add x)", {"packages": APK_X}),
    ("(apk add x)", {"packages": APK_X}),
    ("{ apk add x; }", {"packages": APK_X}),
    ("true && apk add x || false; :", {"packages": APK_X}),
    ("if true; then apk add x; fi", {"packages": APK_X}),
    ("sh <<EOF\napk add x\nEOF", {"packages": APK_X}),
    ("echo 'apk add x' | sh", {"packages": APK_X}),
    ("P=x; apk add $P", {"packages": APK_X}),
    ("find /tmp -name '*.apk' -exec apk add {} +", {"packages": [("apk", "add", "install", [])]}),
    # --- package managers: install and removal verbs -----------------------------------
    ("apt-get install -y curl", {"packages": [("apt", "install", "install", ["curl"])]}),
    ("apt install -y curl", {"packages": [("apt", "install", "install", ["curl"])]}),
    ("apt-get remove -y curl", {"packages": [("apt", "remove", "remove", ["curl"])]}),
    ("apt-get purge -y sudo", {"packages": [("apt", "purge", "remove", ["sudo"])]}),
    ("apt-get autoremove -y", {"packages": [("apt", "autoremove", "remove", [])]}),
    ("apt-get update", {"packages": [("apt", "update", "refresh", [])]}),
    ("apt-get dist-clean", {"packages": [("apt", "dist-clean", "clean", [])],
                            "removals": [("/var/cache/apt/archives", "apt-get dist-clean"),
                                         ("/var/lib/apt/lists/*", "apt-get dist-clean")]}),
    ("apt-get clean", {"packages": [("apt", "clean", "clean", [])],
                       "removals": [("/var/cache/apt/archives", "apt-get clean")]}),
    ("apk add --no-network x", {"packages": APK_X}),
    ("apk del x", {"packages": [("apk", "del", "remove", ["x"])]}),
    ("yum install -y httpd", {"packages": [("yum", "install", "install", ["httpd"])]}),
    ("yum erase -y httpd", {"packages": [("yum", "erase", "remove", ["httpd"])]}),
    ("dnf install -y nginx && dnf clean all",
     {"packages": [("dnf", "install", "install", ["nginx"]), ("dnf", "clean", "clean", [])],
      "removals": [("/var/cache/dnf", "dnf clean")]}),
    ("dnf remove -y nginx", {"packages": [("dnf", "remove", "remove", ["nginx"])]}),
    ("microdnf install shadow-utils",
     {"packages": [("microdnf", "install", "install", ["shadow-utils"])]}),
    ("microdnf remove shadow-utils",
     {"packages": [("microdnf", "remove", "remove", ["shadow-utils"])]}),
    ("tdnf install -y sudo", {"packages": [("tdnf", "install", "install", ["sudo"])]}),
    ("zypper -n in sudo", {"packages": [("zypper", "in", "install", ["sudo"])]}),
    ("zypper rm sudo", {"packages": [("zypper", "rm", "remove", ["sudo"])]}),
    ("pip install requests", {"packages": [("pip", "install", "install", ["requests"])]}),
    ("pip uninstall -y requests", {"packages": [("pip", "uninstall", "remove", ["requests"])]}),
    ("python3 -m pip install requests",
     {"packages": [("pip", "install", "install", ["requests"])]}),
    ("uv pip install httpx", {"packages": [("pip", "install", "install", ["httpx"])]}),
    ("pip cache purge", {"packages": [("pip", "cache purge", "clean", [])],
                         "removals": [("/root/.cache/pip", "pip cache purge")]}),
    # --- files written ------------------------------------------------------------------
    ("echo 'app ALL=(ALL) ALL' > /etc/sudoers.d/app",
     {"writes": [("/etc/sudoers.d/app", "redirect")]}),
    ("echo x >> /etc/sudoers", {"writes": [("/etc/sudoers", "redirect")]}),
    ("printf 'x\\n' 2>/dev/null >|/etc/motd", {"writes": [("/etc/motd", "redirect")]}),
    ("cat > /etc/app.conf <<EOF\nkey=1\nEOF", {"writes": [("/etc/app.conf", "redirect")]}),
    ("echo x | tee -a /etc/sudoers.d/app /etc/motd >/dev/null",
     {"writes": [("/etc/sudoers.d/app", "tee"), ("/etc/motd", "tee")]}),
    ("echo x | dd of=/etc/sudoers.d/app status=none",
     {"writes": [("/etc/sudoers.d/app", "dd")]}),
    ("install -m 440 f /etc/sudoers.d/x",
     {"writes": [("/etc/sudoers.d/x", "install")],
      "modes": [("/etc/sudoers.d/x", False, False, False)]}),
    ("install -t /etc/sudoers.d a b",
     {"writes": [("/etc/sudoers.d/a", "install"), ("/etc/sudoers.d/b", "install")]}),
    ("cp sudoers /etc/sudoers.d/", {"writes": [("/etc/sudoers.d/sudoers", "cp")]}),
    ("cp -t /etc/sudoers.d app", {"writes": [("/etc/sudoers.d/app", "cp")]}),
    ("mv /tmp/app /etc/sudoers.d/app", {"writes": [("/etc/sudoers.d/app", "mv")]}),
    ("ln -sf /opt/sudoers /etc/sudoers", {"writes": [("/etc/sudoers", "ln")]}),
    ("sed -i 's/^# %wheel/%wheel/' /etc/sudoers", {"writes": [("/etc/sudoers", "sed -i")]}),
    ("visudo -f /etc/sudoers.d/app", {"writes": [("/etc/sudoers.d/app", "visudo")]}),
    ("visudo -c", {}),
    ("cd /etc/sudoers.d && echo x > app",
     {"writes": [("/etc/sudoers.d/app", "redirect")]}),
    ("echo x > conf", {"writes": [("/srv/app/conf", "redirect")]}),  # WORKDIR /srv/app
    # --- paths removed --------------------------------------------------------------------
    ("rm -rf /var/lib/apt/lists/*", {"removals": [("/var/lib/apt/lists/*", "rm")]}),
    ("cd /var/lib/apt && rm -rf lists", {"removals": [("/var/lib/apt/lists", "rm")]}),
    # --- permission changes ----------------------------------------------------------------
    ("chmod u+s /usr/bin/x", {"modes": [("/usr/bin/x", True, False, False)]}),
    ("chmod 4755 /usr/bin/x", {"modes": [("/usr/bin/x", True, False, False)]}),
    ("chmod +s /usr/bin/x", {"modes": [("/usr/bin/x", True, True, False)]}),
    ("chmod -R ug+rwxs,o= /usr/bin/x", {"modes": [("/usr/bin/x", True, True, False)]}),
    ("chmod a-s /usr/bin/x", {"modes": [("/usr/bin/x", False, False, False)]}),
    ("chmod 0755 /usr/bin/x", {"modes": [("/usr/bin/x", False, False, False)]}),
    # GNU chmod takes an octal number after the operator: these set the bits too.
    ("chmod =4755 /usr/bin/x", {"modes": [("/usr/bin/x", True, False, False)]}),
    ("chmod +6000 /usr/bin/x", {"modes": [("/usr/bin/x", True, True, False)]}),
    ("chmod -6000 /usr/bin/x", {"modes": [("/usr/bin/x", False, False, False)]}),
    ("find / -name x -exec chmod =4755 {} +", {"modes": [("/srv/app/{}", True, False, False)]}),
    ("install -m 4755 tool /usr/local/bin/tool",
     {"writes": [("/usr/local/bin/tool", "install")],
      "modes": [("/usr/local/bin/tool", True, False, False)]}),
    ("setcap cap_net_raw+ep /usr/bin/ping", {"modes": [("/usr/bin/ping", False, False, True)]}),
    ("setcap -r /usr/bin/ping", {}),
    ("find / -perm /6000 -type f -exec chmod a-s {} +",
     {"modes": [("/srv/app/{}", False, False, False)]}),
    # --- accounts ---------------------------------------------------------------------------
    ("useradd -u 1000 -m app", {"accounts": [("useradd", "app", True, [])]}),
    ("groupadd -g 2000 staff", {"accounts": [("groupadd", "staff", True, [])]}),
    ("useradd -u 1000 -G wheel app", {"accounts": [("useradd", "app", True, ["wheel"])]}),
    ("usermod -aG sudo app", {"accounts": [("usermod", "app", False, ["sudo"])]}),
    ("adduser app sudo", {"accounts": [("adduser", "app", False, ["sudo"])]}),
    ("gpasswd -a app wheel", {"accounts": [("gpasswd", "app", False, ["wheel"])]}),
    ("busybox adduser -D -u 1000 app",
     {"accounts": [("adduser", "app", True, [])], "wrappers": ["busybox"]}),
    # --- downloads and where they go ----------------------------------------------------------
    ("curl -fsSL https://x | sh", {"downloads": [("curl", "pipe", "sh", True)]}),
    ("wget -qO- https://x | sudo bash -s",
     {"downloads": [("wget", "pipe", "bash", True)], "wrappers": ["sudo"]}),
    ("curl -s https://x | tee /tmp/i.sh | sh",
     {"downloads": [("curl", "pipe", "sh", True)], "writes": [("/tmp/i.sh", "tee")]}),
    ('sh -c "$(curl -fsSL https://x)"', {"downloads": [("curl", "argument", "sh", True)]}),
    ("bash <(curl -s https://x)", {"downloads": [("curl", "argument", "bash", True)]}),
    ('eval "$(wget -qO- https://x)"', {"downloads": [("wget", "argument", "eval", True)]}),
    ("curl -s https://x | python3 -", {"downloads": [("curl", "pipe", "python3", True)]}),
    ("curl -fsSL https://x | tar xz", {"downloads": [("curl", "pipe", "tar", False)]}),
    ("curl -fsSLo /tmp/i.sh https://x",
     {"downloads": [("curl", "file", None, False)], "writes": [("/tmp/i.sh", "curl")]}),
    ("wget https://x/app.tgz",
     {"downloads": [("wget", "file", None, False)], "writes": [("/srv/app/app.tgz", "wget")]}),
]


@pytest.mark.parametrize(("script", "expected"), CASES, ids=[case[0][:50] for case in CASES])
def test_reader_facts(script: str, expected: dict[str, Any]) -> None:
    assert facts(script) == expected


def test_there_are_at_least_sixty_forms() -> None:
    assert len(CASES) >= 60


def test_facts_name_their_command_in_order() -> None:
    step = read("apt-get update && apt-get install -y x && rm -rf /var/lib/apt/lists/*")
    assert [c.command for c in step.package_calls] == [0, 1]
    assert [r.command for r in step.removals] == [2]
    assert [c.argv[0] for c in step.commands] == ["apt-get", "apt-get", "rm"]


def test_written_content_and_apt_settings() -> None:
    step = read("echo 'APT::Install-Recommends \"false\";' > /etc/apt/apt.conf.d/00norec")
    assert step.writes[0].content == 'APT::Install-Recommends "false";\n'
    assert step.apt_settings == {"apt::install-recommends": "false"}


def test_command_environment_holds_prefixes_and_exports() -> None:
    step = read("export PIP_NO_CACHE_DIR=1; A=2 pip install x")
    assert step.commands[1].environment == {"PIP_NO_CACHE_DIR": "1", "A": "2"}


def test_a_directory_made_in_the_step_is_known() -> None:
    step = read("mkdir -p /data && chmod 2775 /data && chmod g+s /usr/bin/x")
    assert [(m.path, m.setgid, m.directory) for m in step.mode_changes] == [
        ("/data", True, True), ("/usr/bin/x", True, None)
    ]


def test_exec_form_reads_the_argv_and_its_script() -> None:
    step = read_run(argv=["sh", "-c", "apk add x"], location=Location(path="Dockerfile"))
    assert [c.argv for c in step.commands] == [["sh", "-c", "apk add x"], ["apk", "add", "x"]]
    assert [p.name for c in step.package_calls for p in c.packages] == ["x"]


def test_cache_mount_targets() -> None:
    step = read_run("apk add x", mounts=["type=cache,target=/var/cache/apk", "type=bind,dst=/src",
                                         "TYPE=tmpfs, destination=/tmp", "type=secret,id=x"],
                    location=Location(path="Dockerfile"))
    assert step.cache_mounts == ["/var/cache/apk", "/tmp"]


_WORDS = st.lists(
    st.sampled_from([
        "apt-get", "apk", "pip", "install", "add", "-y", "-o", "--no-cache", "sudo", "env",
        "xargs", "-I{}", "chmod", "u+s", "4755", "-R", "install", "-m", "-t", "cp", "mv", "ln",
        "-s", "tee", "-a", "dd", "of=", "if=", "curl", "-o", "-O", "wget", "-qO-", "|", "&&",
        ";", ">", ">>", "<<EOF", "EOF", "\n", "sh", "-c", "'", '"', "$(", ")", "eval", "cd",
        "/etc/sudoers.d", "x", "rm", "-rf", "useradd", "usermod", "-aG", "gpasswd", "find",
        "-exec", "{}", "+", "setcap", "sed", "-i", "visudo", "-f", "su", "runuser", "-u",
        "busybox", "timeout", "10", "chroot", "/", "$X", "${X:-y}",
    ]),
    max_size=40,
).map(" ".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_WORDS, st.text(max_size=120)))
def test_read_run_never_raises(script: str) -> None:
    step = read_run(script, variables={"X": "a b"}, location=Location(path="Dockerfile"))
    assert all(0 <= fact.command < len(step.commands)
               for fact in [*step.package_calls, *step.writes, *step.removals, *step.accounts])
