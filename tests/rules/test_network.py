"""PG310 exposed-ssh."""

from __future__ import annotations

import pytest

from paracle_guard.subject import ExposedPort
from tests.builders import check, dockerfile, file, image, loc, messages, package, port


def test_exposed_port_22() -> None:
    (violation,) = check("PG310", dockerfile(exposed_ports=[port(22, line=12)]))
    assert violation.message == "port 22/tcp (SSH) is exposed"
    assert violation.location == loc(12)


@pytest.mark.parametrize("exposed", [port(2222), port(22, "udp"), port(8080)])
def test_other_ports_pass(exposed: ExposedPort) -> None:
    assert check("PG310", image(exposed_ports=[exposed])) == []


@pytest.mark.parametrize("name", ["openssh-server", "openssh", "dropbear", "dropbear-bin"])
def test_ssh_server_packages(name: str) -> None:
    (message,) = messages("PG310", dockerfile(packages=[package(name)]))
    assert message == f"package {name} (apt) installs an SSH server"


def test_client_and_builder_packages_pass() -> None:
    subject = dockerfile(
        packages=[package("openssh-client"), package("openssh-server", final=False)]
    )
    assert check("PG310", subject) == []


def test_ssh_server_binaries_in_an_image() -> None:
    subject = image(files=[file("/usr/sbin/sshd", 0o755), file("/usr/sbin/dropbear", 0o755)])
    assert messages("PG310", subject) == [
        "/usr/sbin/sshd is an SSH server",
        "/usr/sbin/dropbear is an SSH server",
    ]


def test_binary_of_a_reported_package_is_not_repeated() -> None:
    subject = image(packages=[package("openssh-server", "dpkg")], files=[file("/usr/sbin/sshd")])
    assert len(check("PG310", subject)) == 1


def test_sshd_config_directory_is_not_a_server() -> None:
    assert check("PG310", image(files=[file("/etc/ssh/sshd", 0o755, kind="dir")])) == []
