"""sources/package_calls.py: package-manager calls read from one unwrapped argv."""

from __future__ import annotations

import pytest

from paracle_guard.sources.package_calls import cleaned_paths, package_call, package_calls


def _call(command: str) -> tuple[str, str, str, list[tuple[str, str | None]]] | None:
    call = package_call([word.strip("'") for word in command.split(" ")], 0)
    if call is None:
        return None
    return call.manager, call.verb, call.action, [(p.name, p.version) for p in call.packages]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("apt-get -o APT::Get::Assume-Yes=true -t bookworm-backports install -y curl",
         ("apt", "install", "install", [("curl", None)])),
        ("apt-get install libc6:amd64 pkg- $EXTRA /tmp/x.deb curl=7.88.1-10 git/bookworm",
         ("apt", "install", "install", [("libc6", None), ("curl", "7.88.1-10"), ("git", None)])),
        ("apt-get -y -o Dpkg::Options::=--force-confnew install curl",
         ("apt", "install", "install", [("curl", None)])),
        ("apt install -y python3", ("apt", "install", "install", [("python3", None)])),
        ("apt-get update", ("apt", "update", "refresh", [])),
        ("apt-get remove curl", ("apt", "remove", "remove", [("curl", None)])),
        ("apt-get purge -y --auto-remove sudo", ("apt", "purge", "remove", [("sudo", None)])),
        ("apt-get dist-clean", ("apt", "dist-clean", "clean", [])),
        ("apt-get distclean", ("apt", "distclean", "clean", [])),
        ("apk add -X https://mirror/edge -t .deps gcc py3-pip>=23 foo@testing",
         ("apk", "add", "install", [("gcc", None), ("py3-pip", ">=23"), ("foo", None)])),
        ("apk --no-cache add --virtual .deps gcc", ("apk", "add", "install", [("gcc", None)])),
        ("apk del curl .deps", ("apk", "del", "remove", [("curl", None)])),
        ("apk cache clean", ("apk", "cache clean", "clean", [])),
        ("dnf --setopt=install_weak_deps=False -y install @core java-17-openjdk ./x.rpm",
         ("dnf", "install", "install", [("java-17-openjdk", None)])),
        ("dnf group install -y 'Development Tools'",
         ("dnf", "group install", "install", [("Development", None), ("Tools", None)])),
        ("yum erase -y sudo", ("yum", "erase", "remove", [("sudo", None)])),
        ("yum -y update", ("yum", "update", "upgrade", [])),
        ("microdnf install -y shadow-utils",
         ("microdnf", "install", "install", [("shadow-utils", None)])),
        ("microdnf remove shadow-utils",
         ("microdnf", "remove", "remove", [("shadow-utils", None)])),
        ("tdnf install -y sudo", ("tdnf", "install", "install", [("sudo", None)])),
        ("zypper --non-interactive in -t pattern devel_basis",
         ("zypper", "in", "install", [("devel_basis", None)])),
        ("zypper rm sudo", ("zypper", "rm", "remove", [("sudo", None)])),
        ("pip install -i https://pypi.example/simple --extra-index-url https://x -c c.txt six",
         ("pip", "install", "install", [("six", None)])),
        ("pip install 'Flask==3.0.0' 'requests[socks]~=2.31' numpy===1.26 'a>=1,<2' b==1,!=2",
         ("pip", "install", "install", [("flask", "3.0.0"), ("requests", "~=2.31"),
                                        ("numpy", "1.26"), ("a", ">=1,<2"), ("b", "==1,!=2")])),
        ("pip install mypkg @ git+https://github.com/x/y.git other",
         ("pip", "install", "install", [("mypkg", None), ("other", None)])),
        ("pip install https://x/y.whl ./dist/z.whl src/pkg ~/pkg",
         ("pip", "install", "install", [])),
        ("python3.12 -m pip install -U pip", ("pip", "install", "install", [("pip", None)])),
        ("python3 -m pip --no-cache-dir install requests",
         ("pip", "install", "install", [("requests", None)])),
        ("/opt/venv/bin/pip3.12 install -r req.txt rich",
         ("pip", "install", "install", [("rich", None)])),
        ("pip uninstall -y setuptools", ("pip", "uninstall", "remove", [("setuptools", None)])),
        ("pip download requests", ("pip", "download", "other", [])),
        ("pip cache purge", ("pip", "cache purge", "clean", [])),
        ("uv pip install --system httpx", ("pip", "install", "install", [("httpx", None)])),
        ("python3 -m venv /venv", None),
        ("python3 app.py", None),
        ("make install", None),
        ("apt-get", None),
        # Red team: names that hid a denied package.
        ("apt-get install -y curl+ sudo- x", ("apt", "install", "install", [("curl", None),
                                                                          ("x", None)])),
        ("aptitude install -y sudo", ("apt", "install", "install", [("sudo", None)])),
        ("yum install -y sudo-1.9.5p2", ("yum", "install", "install", [("sudo", "1.9.5p2")])),
        ("dnf install -y sudo-1.9.5p2-9.el9.x86_64 compat-libstdc++-33",
         ("dnf", "install", "install", [("sudo", "1.9.5p2-9.el9.x86_64"),
                                        ("compat-libstdc++-33", None)])),
        ("pacman -Syu --noconfirm extra/sudo doas",
         ("pacman", "-S", "install", [("sudo", None), ("doas", None)])),
        ("yay -S --needed sudo", ("pacman", "-S", "install", [("sudo", None)])),
        ("pacman -Rns sudo", ("pacman", "-R", "remove", [("sudo", None)])),
        ("pacman -Sy", ("pacman", "-Sy", "refresh", [])),
        ("pacman -Scc --noconfirm", ("pacman", "-Sc", "clean", [])),
        ("pacman -U /tmp/sudo-1.9-1-x86_64.pkg.tar.zst", ("pacman", "-U", "install", [])),
        ("pacman -Qi sudo", None),
    ],
)
def test_package_call(command: str, expected: object) -> None:
    assert _call(command) == expected


def test_an_apt_removal_installs_what_it_marks_with_a_plus() -> None:
    # "apt-get remove x sudo+" removes x and installs sudo (apt-get(8), install/remove).
    calls = package_calls(["apt-get", "remove", "-y", "curl", "sudo+", "vim-"], 2)
    assert [(c.verb, c.action, [p.name for p in c.packages]) for c in calls] == [
        ("remove", "remove", ["curl", "vim"]), ("remove", "install", ["sudo"])]
    assert package_calls(["apt-get", "remove", "curl"], 0)[0].action == "remove"
    assert len(package_calls(["apt-get", "remove", "curl"], 0)) == 1


def test_options_and_apt_settings_are_kept() -> None:
    call = package_call(
        ["apt-get", "install", "-yq", "-oAPT::Install-Recommends='0'", "--no-install-recommends",
         "curl"], 3)
    assert call is not None
    assert call.command == 3
    assert call.options == ["-y", "-q", "-o", "--no-install-recommends"]
    assert call.settings == {"apt::install-recommends": "0"}


@pytest.mark.parametrize(
    ("command", "paths"),
    [
        ("apt-get clean", ("/var/cache/apt/archives",)),
        ("apt-get dist-clean", ("/var/cache/apt/archives", "/var/lib/apt/lists/*")),
        ("apt distclean", ("/var/cache/apt/archives", "/var/lib/apt/lists/*")),
        ("dnf clean all", ("/var/cache/dnf",)),
        ("yum clean all", ("/var/cache/yum",)),
        ("dnf clean metadata", ()),
        ("microdnf clean all", ("/var/cache/yum",)),
        ("pip cache purge", ("~/.cache/pip",)),
        ("apt-get install x", ()),
    ],
)
def test_cleaned_paths(command: str, paths: tuple[str, ...]) -> None:
    call = package_call(command.split(" "), 0)
    assert call is not None
    assert cleaned_paths(call) == paths
