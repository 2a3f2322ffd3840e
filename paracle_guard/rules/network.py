"""Network rules: services that invite connections in, and networks that let traffic out.

A container's networks are its network mode plus every network it is attached
to; a compose service with neither network_mode nor networks is attached to the
project's "default" network, a bridge. Joining the host's or another container's
network namespace is PG305's finding (host-namespace), not repeated here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from paracle_guard.cel import CelCheck, every_container
from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import Admission, Violation, rule
from paracle_guard.severity import Severity
from paracle_guard.subject import BUILD_KINDS, RUNTIME_KINDS, Subject

if TYPE_CHECKING:  # runtime facts are made on first use (see subject.py)
    from paracle_guard.subject_runtime import KubernetesFacts, RuntimeConfig, Setting

SSH_PORT = 22
SSH_SERVER_BINARIES = frozenset({"sshd", "dropbear"})
# Alpine's and Arch's "openssh" ships sshd; Debian splits it into -client and -server.
SSH_SERVER_PACKAGES = frozenset({"openssh-server", "openssh", "dropbear", "dropbear-bin"})


@rule(
    code="PG310",
    name="exposed-ssh",
    severity=Severity.ERROR,
    kinds=BUILD_KINDS,
    summary="The image exposes port 22 or ships an SSH server",
    fix=(
        "Remove the SSH server and EXPOSE 22; use docker exec (or kubectl exec) to get into "
        "a container"
    ),
    rationale=(
        "An SSH daemon in a container is a second way in, with its own credentials, keys "
        "and CVEs, that the container runtime does not control or audit."
    ),
    references=("CIS Docker Benchmark v1.6.0 5.7",),
)
def exposed_ssh(subject: Subject, controls: Controls) -> Iterator[Violation]:
    for port in subject.exposed_ports:
        if port.port == SSH_PORT and port.protocol.lower() == "tcp":
            yield Violation(message="port 22/tcp (SSH) is exposed", location=port.location)
    servers = [
        p for p in subject.packages if p.final and p.name.lower() in SSH_SERVER_PACKAGES
    ]
    for package in servers:
        yield Violation(
            message=f"package {package.name} ({package.manager}) installs an SSH server",
            location=package.location,
        )
    if servers:
        return  # its binary would only repeat the package's finding
    for entry in subject.files:
        name = entry.path.rstrip("/").rsplit("/", 1)[-1]
        if name in SSH_SERVER_BINARIES and entry.kind in ("file", "symlink"):
            yield Violation(message=f"{entry.path} is an SSH server", location=entry.location)


# --- run-time networking (containers and compose services) ---------------------------


def no_host_port_on_admission(controls: Controls) -> CelCheck:
    return CelCheck(
        every_container("!has(c.ports) || c.ports.all(p, !has(p.hostPort) || p.hostPort == 0)"),
        "hostPort must not be set")


def _published_port_on_admission(controls: Controls) -> CelCheck | None:
    # Under another network mode a hostPort is host-port's (PG806) to refuse.
    return no_host_port_on_admission(controls) if controls.network.mode == "none" else None


@rule(
    code="PG311",
    name="published-port",
    severity=Severity.WARNING,
    kinds=RUNTIME_KINDS,
    summary="Ports are published while the policy's network mode is none",
    fix="Remove -p/--publish/-P (compose ports:), or change controls.network.mode",
    fixes={
        "container": "Recreate the container without -p/--publish/-P, or change "
                     "controls.network.mode",
        "compose": "Remove ports: from the service, or change controls.network.mode",
        "k8s": "Remove hostPort from the container's ports, or change controls.network.mode",
    },
    rationale=(
        "A sandbox with no network has nothing to publish; a published port says the "
        "container is meant to be reached from outside, which the policy rules out. The "
        "first change of network mode would open it."
    ),
    references=(
        "CIS Docker Benchmark v1.6.0 5.9",
        "Kubernetes Pod Security Standards (baseline): host ports",
    ),
    admission=Admission(pod=_published_port_on_admission),
)
def published_port(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None or controls.network.mode != "none":
        return
    for port in config.ports:
        if subject.kind == "k8s":
            yield Violation(message=f"hostPort {port.host_port} binds container port "
                                    f"{port.container_port}/{port.protocol} on the node while "
                                    "the policy allows no network", location=port.location)
            continue
        yield Violation(
            message=(
                f"port {port.container_port}/{port.protocol} is published on "
                f"{_published_on(port.host_ip, port.host_port)} while the policy allows no "
                "network"
            ),
            location=port.location,
        )
    if config.publish_all_ports:
        yield Violation(
            message="every exposed port is published (-P) while the policy allows no network",
            location=config.location_of("ports"),
        )


def _published_on(host_ip: str, host_port: str) -> str:
    """``host port 8080 (all host addresses)``, ``127.0.0.1:8080``, ``an ephemeral port of
    ::1``: where on the host a published port can be reached."""
    if not host_ip:
        port = f"host port {host_port}" if host_port else "an ephemeral host port"
        return f"{port} (all host addresses)"
    if not host_port:
        return f"an ephemeral port of {host_ip}"
    address = f"[{host_ip}]" if ":" in host_ip else host_ip
    return f"{address}:{host_port}"


def _attached(config: RuntimeConfig) -> list[Setting]:
    from paracle_guard.subject_runtime import Setting

    attached = list(config.networks)
    if config.network_mode:
        attached.insert(0, Setting(value=config.network_mode,
                                   location=config.location_of("network_mode")))
    if not attached:
        # No mode and no network: the engine's default bridge.
        attached.append(Setting(value="default", location=config.location_of("network_mode")))
    return attached


def _allowed(network: str, mode: str) -> bool:
    # "none" is the tightest mode there is: it satisfies every policy. "default" is the
    # engine's bridge for a container and the project's bridge network for a compose
    # service: both are what a policy calls "bridge".
    return network in (mode, "none") or (mode == "bridge" and network in ("bridge", "default"))


def _labelled_pods_only(rules: str) -> str:
    """Every ingress rule of ``rules`` admits only pods picked by a label selector."""
    selects = ("((has(p.podSelector.matchLabels) && size(p.podSelector.matchLabels) > 0) || "
               "(has(p.podSelector.matchExpressions) && "
               "size(p.podSelector.matchExpressions) > 0))")
    return (f"(!has({rules}.ingress) || {rules}.ingress.all(r, has(r.from) && "
            f"size(r.from) > 0 && r.from.all(p, !has(p.ipBlock) && has(p.podSelector) && "
            f"{selects})))")


def _template_network_on_admission(controls: Controls) -> CelCheck | None:
    """A SandboxTemplate's managed networkPolicy, read as ``paracle-guard k8s`` reads it.

    A Pod has nothing to show here: the namespace's default-deny NetworkPolicy,
    which the export writes under network mode none, isolates it.
    """
    if controls.network.mode != "none":
        return None
    rules = "object.spec.networkPolicy"
    return CelCheck(
        "object.kind != 'SandboxTemplate' || (has(object.spec.networkPolicyManagement) "
        "&& object.spec.networkPolicyManagement == 'Unmanaged') || "
        f"(has({rules}) && (!has({rules}.egress) || size({rules}.egress) == 0) && "
        f"{_labelled_pods_only(rules)})",
        "a SandboxTemplate's networkPolicy must allow no egress and let in only pods "
        "picked by labels (or be Unmanaged, under the namespace's deny-all)")


@rule(
    code="PG702",
    name="network-not-isolated",
    severity=Severity.ERROR,
    kinds=RUNTIME_KINDS,
    summary="The container uses a network other than the policy's network mode",
    fix=(
        "Run with the policy's network (docker run --network none, compose network_mode: "
        "none) and attach no other network"
    ),
    fixes={
        "container": "Recreate the container with --network none (or the policy's network) and "
                     "connect it to no other network",
        "compose": "Set network_mode: none on the service (or attach only the policy's network)",
        "k8s": "Add a NetworkPolicy that selects the pod, with policyTypes: [Ingress, Egress] "
               "and no rules: it then has no network",
    },
    rationale=(
        "Untrusted code with a network can exfiltrate data, download payloads and attack "
        "services on the host's network. The policy's network mode says which network, if "
        "any, a container may have; every attached network counts, not only the first. A "
        "pod has no network when its NetworkPolicies (an Agent Sandbox template's own "
        "included) let it send nothing and receive only from pods picked by labels, such "
        "as the sandbox router that drives it."
    ),
    references=("CIS Docker Benchmark v1.6.0 5.30",),
    admission=Admission(pod_template=_template_network_on_admission, listed_after="PG810"),
)
def network_not_isolated(subject: Subject, controls: Controls) -> Iterator[Violation]:
    config = subject.runtime
    if config is None:
        return
    mode = controls.network.mode
    reported: set[str] = set()
    for network in _attached(config):
        name = network.value
        if name in reported or _allowed(name, mode):
            continue
        shares = name == "host" or name.startswith(("container:", "service:"))
        if shares and not controls.privileges.host_namespaces:
            continue  # a shared namespace: PG305 reports it
        reported.add(name)
        facts = subject.kubernetes
        if facts is not None and name == "default":
            reason = config.reasons.get(
                "networks", "no NetworkPolicy in the checked files cuts it off")
            yield Violation(
                message=f"the pod has the cluster network: {reason}, while the policy's "
                        f"network mode is {mode}",
                location=network.location,
                fix=_managed(facts.network_policy_owner) if facts.network_policy_owner
                else _deny_all(facts))
            continue
        what = ("the project's default network (a bridge)"
                if subject.kind == "compose" and name == "default" else f"network {name}")
        yield Violation(message=f"uses {what} while the policy's network mode is {mode}",
                        location=network.location)


def _managed(owner: str) -> str:
    """What to write in an Agent Sandbox template so the NetworkPolicy its controller
    makes cuts the pod off."""
    return "\n".join([
        f"Set spec.networkPolicy of {owner} so that it allows no egress and lets in only "
        "the pods that drive the sandbox (a missing or empty list denies that direction):",
        "  networkPolicy:",
        "    ingress:",
        "      - from:",
        "          - namespaceSelector:",
        "              matchLabels: {kubernetes.io/metadata.name: agent-sandbox-system}",
        "            podSelector:",
        "              matchLabels: {app: sandbox-router}",
    ])


def _deny_all(facts: KubernetesFacts) -> str:
    """The NetworkPolicy that takes this pod off the network, ready to apply."""
    name = f"{facts.workload_name}-deny-all"
    namespace = f", namespace: {facts.namespace}" if facts.namespace else ""
    if facts.pod_labels:
        # Values quoted: "true" or "1.0" would otherwise be read back as other types.
        labels = ", ".join(f"{key}: {json.dumps(value)}"
                           for key, value in sorted(facts.pod_labels.items()))
        selector = f"matchLabels: {{{labels}}}"
    else:
        selector = "{}  # the pod has no labels: this selects every pod of the namespace"
    lines = [
        "Add a NetworkPolicy that selects the pod and allows it no traffic:",
        "  apiVersion: networking.k8s.io/v1",
        "  kind: NetworkPolicy",
        f"  metadata: {{name: {name}{namespace}}}",
        "  spec:",
        f"    podSelector: {selector}" if not facts.pod_labels else "    podSelector:",
    ]
    if facts.pod_labels:
        lines.append(f"      {selector}")
    lines.append("    policyTypes: [Ingress, Egress]")
    return "\n".join(lines)
