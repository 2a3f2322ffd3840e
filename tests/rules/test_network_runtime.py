"""Run-time network rules: PG311 published-port and PG702 network-not-isolated."""

from __future__ import annotations

from paracle_guard.subject_runtime import PublishedPort, Setting
from tests.builders import check, controls, messages
from tests.runtime_builders import at, hardened, subject


def port(container: str, host_port: str = "", host_ip: str = "", protocol: str = "tcp",
         line: int = 30) -> PublishedPort:
    return PublishedPort(container_port=container, host_port=host_port, host_ip=host_ip,
                         protocol=protocol, location=at(line))


# --- PG311 --------------------------------------------------------------------------


def test_published_ports_under_a_no_network_policy() -> None:
    config = hardened(ports=[port("80", "8080"), port("53", "5353", "127.0.0.1", "udp", 31),
                             port("9000"), port("22", "2222", "::1"), port("23", "", "::1")])
    violations = check("PG311", subject(config))
    assert [v.message for v in violations] == [
        "port 80/tcp is published on host port 8080 (all host addresses) while the policy "
        "allows no network",
        "port 53/udp is published on 127.0.0.1:5353 while the policy allows no network",
        "port 9000/tcp is published on an ephemeral host port (all host addresses) while the "
        "policy allows no network",
        "port 22/tcp is published on [::1]:2222 while the policy allows no network",
        "port 23/tcp is published on an ephemeral port of ::1 while the policy allows no "
        "network",
    ]
    assert [v.location for v in violations] == [at(30), at(31), at(30), at(30), at(30)]


def test_publish_all() -> None:
    config = hardened(publish_all_ports=True, locations={"ports": at(12)})
    violations = check("PG311", subject(config))
    assert [v.message for v in violations] == [
        "every exposed port is published (-P) while the policy allows no network"
    ]
    assert violations[0].location == at(12)


def test_ports_are_fine_when_the_policy_has_a_network() -> None:
    policy = controls(network={"mode": "bridge"})
    assert check("PG311", subject(hardened(ports=[port("80")])), policy) == []
    assert check("PG311", subject()) == []


# --- PG702 --------------------------------------------------------------------------


def test_network_none_passes_a_none_policy() -> None:
    assert check("PG702", subject()) == []
    attached = hardened(networks=[Setting(value="none", location=at(9))])
    assert check("PG702", subject(attached, kind="container")) == []


def test_compose_default_network() -> None:
    config = hardened(network_mode="", networks=[Setting(value="default", location=at(2))])
    violations = check("PG702", subject(config))
    assert [v.message for v in violations] == [
        "uses the project's default network (a bridge) while the policy's network mode is none"
    ]
    assert violations[0].location == at(2)


def test_every_attached_network_counts() -> None:
    config = hardened(network_mode="none", networks=[Setting(value="none", location=at(9)),
                                                     Setting(value="backend", location=at(10))])
    violations = check("PG702", subject(config, kind="container"))
    assert [v.message for v in violations] == [
        "uses network backend while the policy's network mode is none"
    ]


def test_no_mode_and_no_network_is_the_default_bridge() -> None:
    config = hardened(network_mode="", locations={"network_mode": at(5)})
    assert messages("PG702", subject(config, kind="container")) == [
        "uses network default while the policy's network mode is none"
    ]


def test_bridge_policy_accepts_default_and_bridge() -> None:
    policy = controls(network={"mode": "bridge"})
    for name in ("bridge", "default"):
        config = hardened(network_mode=name)
        assert check("PG702", subject(config, kind="container"), policy) == []


def test_none_satisfies_every_policy() -> None:
    # The tightest mode: under a bridge or a named-network policy it is not "not isolated".
    for mode in ("bridge", "sandbox-net", "host"):
        policy = controls(network={"mode": mode})
        for kind in ("container", "compose", "k8s"):
            isolated = subject(hardened(network_mode="none"), kind=kind)
            assert check("PG702", isolated, policy) == [], (mode, kind)


def test_shared_namespaces_are_pg305_s_unless_the_policy_allows_them() -> None:
    for mode in ("host", "container:db", "service:helper"):
        config = hardened(network_mode=mode)
        assert check("PG702", subject(config)) == []
        allowing = controls(privileges={"host_namespaces": True})
        assert messages("PG702", subject(config), allowing) == [
            f"uses network {mode} while the policy's network mode is none"
        ]


def test_a_named_network_policy() -> None:
    policy = controls(network={"mode": "sandbox-net"})
    ok = hardened(network_mode="sandbox-net")
    assert check("PG702", subject(ok, kind="container"), policy) == []
    other = hardened(network_mode="", networks=[Setting(value="sandbox-net", location=at(3)),
                                                 Setting(value="public", location=at(4))])
    assert messages("PG702", subject(other), policy) == [
        "uses network public while the policy's network mode is sandbox-net"
    ]
