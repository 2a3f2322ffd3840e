"""Every registered rule, for every kind of input it declares, fires and passes through the
real reader of that kind (as kube-linter checks each of its templates end to end).

``CASES`` maps each rule code to {kind: (firing input, passing input)}. The test
walks ``all_rules()``: a new rule, or a new kind on a rule, with no row here fails
``test_the_table_covers_every_rule_and_kind_exactly``; a row for a rule or kind
the registry does not have fails it too.

Inputs are small and read by the real sources, with no engine:

- ``dockerfile``: Dockerfile text, through ``parse_dockerfile``;
- ``compose``: a compose file, through ``load_compose`` (``Compose(...)``: the
  hardened service of ``tests/sources/compose_cases`` with keys changed, or a
  case file of that corpus);
- ``k8s``: manifests, through ``load_manifest_texts`` (a case file of
  ``tests/sources/k8s_cases``, or text);
- ``container``: the captured inspect JSON of a hardened container
  (``tests/sources/fixtures/hardened.json``) with fields changed, through
  ``subject_from_inspect``;
- ``image``: a ``docker save`` archive built here with tarfile, through
  ``load_image_archive``.

Each case is judged under the built-in sandbox policy, with the control changes
``POLICY`` names for its rule.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from paracle_guard.policy.loader import load_policy
from paracle_guard.policy.models import Controls
from paracle_guard.rules.base import all_rules, find_rule
from paracle_guard.sources.compose import load_compose
from paracle_guard.sources.container import subject_from_inspect
from paracle_guard.sources.dockerfile import parse_dockerfile
from paracle_guard.sources.image import load_image_archive
from paracle_guard.sources.k8s import load_manifest_texts
from paracle_guard.subject import Subject, SubjectKind
from tests.docker_images import Node, directory, file, symlink
from tests.sources.test_image_archive import saved_archive

SOURCES = Path(__file__).resolve().parents[1] / "sources"
DIGEST = "@sha256:" + "0" * 64


# --- inputs, one type per kind ----------------------------------------------------------


@dataclass(frozen=True)
class Dockerfile:
    text: str


@dataclass(frozen=True)
class Compose:
    """The hardened service with ``changes`` (None deletes a key), or a corpus case."""

    changes: dict[str, Any] = field(default_factory=dict)
    case: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class K8s:
    case: str = "hardened"
    text: str | None = None


@dataclass(frozen=True)
class Container:
    """The captured hardened container with ``host_config``/``config`` keys changed."""

    host_config: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    mounts: tuple[dict[str, Any], ...] = ()
    image_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Image:
    files: tuple[Node, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)


Input = Dockerfile | Compose | K8s | Container | Image

ACCOUNTS = (
    file("/etc/passwd", "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"),
    file("/etc/group", "root:x:0:\napp:x:1000:\n"),
)


def dpkg(*names: str) -> Node:
    """A dpkg status database listing ``names`` as installed."""
    records = "".join(f"Package: {name}\nStatus: install ok installed\nVersion: 1.0\n"
                      f"Architecture: amd64\nInstalled-Size: 100\n\n" for name in names)
    return file("/var/lib/dpkg/status", records)


def dockerfile(*lines: str, user: str = "1000:1000") -> Dockerfile:
    """A Dockerfile from a pinned base, ``lines``, then the sandbox user."""
    return Dockerfile("\n".join([f"FROM registry.example/base:1.0{DIGEST}", *lines,
                                 f"USER {user}"]) + "\n")


HARDENED_DOCKERFILE = dockerfile()
HARDENED_IMAGE = Image()
HARDENED_CONTAINER = Container()
HARDENED_COMPOSE = Compose()
HARDENED_K8S = K8s()
HARDENED_K8S_TEXT = (SOURCES / "k8s_cases" / "hardened.yaml").read_text()


# --- readers -----------------------------------------------------------------------------


def read_compose(spec: Compose, tmp_path: Path) -> list[Subject]:
    path = tmp_path / "compose.yaml"
    if spec.case is not None:
        path.write_text((SOURCES / "compose_cases" / f"{spec.case}.yaml").read_text())
    elif spec.text is not None:
        path.write_text(spec.text)
    else:
        document = yaml.safe_load((SOURCES / "compose_cases" / "hardened.yaml").read_text())
        service = document["services"]["sandbox"]
        for key, value in spec.changes.items():
            if value is None:
                service.pop(key, None)
            else:
                service[key] = value
        path.write_text(yaml.safe_dump(document))
    return load_compose(path, environ={})


def read_container(spec: Container) -> list[Subject]:
    documents = json.loads((SOURCES / "fixtures" / "hardened.json").read_text())
    container, image = copy.deepcopy(documents["container"]), documents["image"]
    container["HostConfig"].update(spec.host_config)
    container["Config"].update(spec.config)
    container["Mounts"] = list(spec.mounts)
    image["Config"].update(spec.image_config)
    return [subject_from_inspect(container, image, target="c")]


def read_image(spec: Image, tmp_path: Path) -> list[Subject]:
    config = {"User": "1000:1000", **spec.config}
    path = tmp_path / "image.tar"
    path.write_bytes(saved_archive([ACCOUNTS + spec.files], **config))
    return [load_image_archive(path)]


def read(spec: Input, tmp_path: Path) -> list[Subject]:
    if isinstance(spec, Dockerfile):
        return [parse_dockerfile(spec.text, "Dockerfile")]
    if isinstance(spec, Compose):
        return read_compose(spec, tmp_path)
    if isinstance(spec, K8s):
        text = spec.text if spec.text is not None else (
            SOURCES / "k8s_cases" / f"{spec.case}.yaml").read_text()
        return load_manifest_texts([("pod.yaml", text)])
    if isinstance(spec, Container):
        return read_container(spec)
    return read_image(spec, tmp_path)


KIND_OF: dict[type, SubjectKind] = {Dockerfile: "dockerfile", Compose: "compose", K8s: "k8s",
                                    Container: "container", Image: "image"}

# --- the table ---------------------------------------------------------------------------

PARSE_ERROR_IMAGE = Image(config={"User": ["not", "a", "string"]})
PRIVATE_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
               "-----END OPENSSH PRIVATE KEY-----\n")
SSH_IMAGE = Image(files=(file("/usr/sbin/sshd", mode=0o755),))

CASES: dict[str, dict[SubjectKind, tuple[Input, Input]]] = {
    "PG101": {
        "dockerfile": (dockerfile(user="root"), HARDENED_DOCKERFILE),
        "image": (Image(config={"User": "0"}), HARDENED_IMAGE),
        "container": (Container(config={"User": "0"}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg101-root-user"), HARDENED_COMPOSE),
        "k8s": (K8s("pg101-root-user"), HARDENED_K8S),
    },
    "PG102": {
        "dockerfile": (dockerfile(user="2000:1000"), HARDENED_DOCKERFILE),
        "image": (Image(config={"User": "2000:1000"}), HARDENED_IMAGE),
        "container": (Container(config={"User": "2000:1000"}), HARDENED_CONTAINER),
        "compose": (Compose({"user": "2000:1000"}), HARDENED_COMPOSE),
        "k8s": (K8s("pg102-uid-not-allowed"), HARDENED_K8S),
    },
    "PG103": {
        "dockerfile": (dockerfile("RUN apk add --no-cache sudo"), HARDENED_DOCKERFILE),
        "image": (Image(files=(dpkg("sudo"),)), Image(files=(dpkg("bash"),))),
    },
    "PG104": {
        "dockerfile": (dockerfile(user="1000:0"), HARDENED_DOCKERFILE),
        "image": (Image(config={"User": "1000:0"}), HARDENED_IMAGE),
        "container": (Container(config={"User": "1000:0"}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg104-root-group"), HARDENED_COMPOSE),
        "k8s": (K8s("pg104-root-group"), HARDENED_K8S),
    },
    "PG105": {
        "dockerfile": (dockerfile(user="1000:2000"), HARDENED_DOCKERFILE),
        "image": (Image(config={"User": "1000:2000"}), HARDENED_IMAGE),
        "container": (Container(config={"User": "1000:2000"}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg105-gid-not-allowed"), HARDENED_COMPOSE),
        "k8s": (K8s("pg105-gid-not-allowed"), HARDENED_K8S),
    },
    "PG201": {
        "container": (Container(host_config={"ReadonlyRootfs": False}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg201-writable-rootfs"), HARDENED_COMPOSE),
        "k8s": (K8s("pg201-writable-rootfs"), HARDENED_K8S),
    },
    "PG202": {
        "container": (Container(host_config={"Tmpfs": {"/tmp": "rw", "/workspace": "rw",
                                                       "/opt": "rw"}}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg202-writable-path"), HARDENED_COMPOSE),
        "k8s": (K8s("pg202-writable-path"), HARDENED_K8S),
    },
    "PG203": {
        "image": (Image(config={"Volumes": {"/data": {}}}), HARDENED_IMAGE),
        "container": (Container(
            config={"Volumes": {"/data": {}}}, image_config={"Volumes": {"/data": {}}},
            mounts=({"Type": "volume", "Name": "f" * 64, "Destination": "/data",
                     "Source": f"/var/lib/docker/volumes/{'f' * 64}/_data", "Driver": "local",
                     "Mode": "", "RW": True, "Propagation": ""},)), HARDENED_CONTAINER),
    },
    "PG204": {
        "dockerfile": (dockerfile("WORKDIR /proc/self"), HARDENED_DOCKERFILE),
        "image": (Image(config={"WorkingDir": "/proc/self"}), HARDENED_IMAGE),
        "container": (Container(config={"WorkingDir": "/proc/self"}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg204-unsafe-workdir"), HARDENED_COMPOSE),
        "k8s": (K8s("pg204-unsafe-workdir"), HARDENED_K8S),
    },
    "PG205": {
        "image": (Image(files=(directory("/srv", mode=0o777),)),
                  Image(files=(directory("/srv", mode=0o1777),))),
    },
    "PG206": {
        "image": (Image(files=(symlink("/workspace", "/etc"),)),
                  Image(files=(directory("/workspace"),))),
    },
    "PG301": {
        "container": (Container(host_config={"CapDrop": None}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg301-capabilities-not-dropped"), HARDENED_COMPOSE),
        "k8s": (K8s("pg301-capabilities-not-dropped"), HARDENED_K8S),
    },
    "PG302": {
        "container": (Container(host_config={"CapAdd": ["NET_ADMIN"]}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg302-capability-added"), HARDENED_COMPOSE),
        "k8s": (K8s("pg302-capability-added"), HARDENED_K8S),
    },
    "PG303": {
        "container": (Container(host_config={"Privileged": True}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg303-privileged"), HARDENED_COMPOSE),
        "k8s": (K8s("pg303-privileged"), HARDENED_K8S),
    },
    "PG304": {
        "container": (Container(host_config={"SecurityOpt": None}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg304-new-privileges-allowed"), HARDENED_COMPOSE),
        "k8s": (K8s("pg304-new-privileges-allowed"), HARDENED_K8S),
    },
    "PG305": {
        "container": (Container(host_config={"PidMode": "host"}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg305-host-namespace"), HARDENED_COMPOSE),
        "k8s": (K8s("pg305-host-namespace"), HARDENED_K8S),
    },
    "PG306": {
        "dockerfile": (dockerfile("RUN chmod u+s /usr/bin/tool"), HARDENED_DOCKERFILE),
        "image": (Image(files=(file("/usr/bin/tool", mode=0o4755),)),
                  Image(files=(file("/usr/bin/tool", mode=0o755),))),
    },
    "PG307": {
        "container": (Container(mounts=({"Type": "bind", "Source": "/var/run/docker.sock",
                                         "Destination": "/var/run/docker.sock", "Mode": "",
                                         "RW": False, "Propagation": "rprivate"},)),
                      HARDENED_CONTAINER),
        "compose": (Compose(case="pg307-sensitive-mount"), HARDENED_COMPOSE),
        "k8s": (K8s("pg307-sensitive-mount"), HARDENED_K8S),
    },
    "PG308": {
        "container": (Container(host_config={"Devices": [{
            "PathOnHost": "/dev/kvm", "PathInContainer": "/dev/kvm",
            "CgroupPermissions": "rwm"}]}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg308-device-access"), HARDENED_COMPOSE),
        "k8s": (K8s("pg308-device-access"), HARDENED_K8S),
    },
    "PG309": {
        "container": (Container(host_config={"Sysctls": {"kernel.msgmax": "65536"}}),
                      Container(host_config={"Sysctls": {"net.ipv4.tcp_syncookies": "1"}})),
        "compose": (Compose(case="pg309-unsafe-sysctl"),
                    Compose({"sysctls": {"net.ipv4.ip_unprivileged_port_start": "0"}})),
        "k8s": (K8s("pg309-unsafe-sysctl"), HARDENED_K8S),
    },
    "PG310": {
        "dockerfile": (dockerfile("EXPOSE 22"), dockerfile("EXPOSE 8080")),
        "image": (SSH_IMAGE, HARDENED_IMAGE),
    },
    "PG311": {
        "container": (Container(host_config={"PortBindings": {"8080/tcp": [
            {"HostIp": "", "HostPort": "8080"}]}}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg311-published-port"), HARDENED_COMPOSE),
        "k8s": (K8s("pg311-published-port"), HARDENED_K8S),
    },
    "PG312": {
        "container": (Container(host_config={"SecurityOpt": [
            "no-new-privileges:true", "seccomp=unconfined"]}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg312-unconfined-profile"), HARDENED_COMPOSE),
        "k8s": (K8s("pg312-unconfined-profile"), HARDENED_K8S),
    },
    "PG313": {  # under sandbox-gvisor's runtime controls (POLICY)
        "container": (HARDENED_CONTAINER, Container(host_config={"Runtime": "runsc"})),
        "compose": (HARDENED_COMPOSE, Compose({"runtime": "runsc"})),
        "k8s": (HARDENED_K8S, K8s(text=HARDENED_K8S_TEXT.replace("spec:\n  automount",
                                           "spec:\n  runtimeClassName: gvisor\n  automount"))),
    },
    "PG401": {
        "dockerfile": (dockerfile("RUN apt-get update && apt-get install -y curl-free-tool "
                                  "&& rm -rf /var/lib/apt/lists/*"),
                       dockerfile("RUN apt-get update && apt-get install -y "
                                  "--no-install-recommends curl-free-tool "
                                  "&& rm -rf /var/lib/apt/lists/*")),
    },
    "PG402": {
        "dockerfile": (dockerfile("RUN apt-get update && apt-get install -y "
                                  "--no-install-recommends tool"),
                       dockerfile("RUN apt-get update && apt-get install -y "
                                  "--no-install-recommends tool && rm -rf /var/lib/apt/lists/*")),
    },
    "PG403": {
        "dockerfile": (dockerfile("RUN apk add --no-cache netcat-openbsd"),
                       dockerfile("RUN apk add --no-cache jq")),
        "image": (Image(files=(dpkg("netcat-openbsd"),)), Image(files=(dpkg("jq"),))),
    },
    "PG404": {  # max_installed 1 (POLICY)
        "image": (Image(files=(dpkg("jq", "bash"),)), Image(files=(dpkg("jq"),))),
    },
    "PG501": {
        "dockerfile": (Dockerfile("FROM python:latest\nUSER 1000:1000\n"), HARDENED_DOCKERFILE),
        "compose": (Compose({"image": "paracle/sandbox:latest"}), HARDENED_COMPOSE),
        "k8s": (K8s("pg501-unpinned-image"), HARDENED_K8S),
    },
    "PG502": {  # allowed_registries registry.example (POLICY)
        "dockerfile": (Dockerfile(f"FROM quay.io/x/base:1.0{DIGEST}\nUSER 1000:1000\n"),
                       HARDENED_DOCKERFILE),
        "compose": (HARDENED_COMPOSE, Compose({"image": "registry.example/sandbox:1.0"})),
        "k8s": (K8s(text=HARDENED_K8S_TEXT.replace("registry.example/", "quay.io/x/")),
                HARDENED_K8S),
    },
    "PG503": {
        "dockerfile": (dockerfile("RUN wget -qO- https://example.com/install.sh | sh"),
                       HARDENED_DOCKERFILE),
    },
    "PG601": {
        "dockerfile": (dockerfile("ENV API_TOKEN=abc"), dockerfile("ENV LOG_LEVEL=info")),
        "image": (Image(config={"Env": ["API_TOKEN=abc"]}),
                  Image(config={"Env": ["LOG_LEVEL=info"]})),
        "container": (Container(config={"Env": ["API_TOKEN=abc"]}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg601-secret-in-env"), HARDENED_COMPOSE),
        "k8s": (K8s("pg601-secret-in-env"), HARDENED_K8S),
    },
    "PG602": {
        "image": (Image(files=(file("/root/.ssh/id_rsa", PRIVATE_KEY),)), HARDENED_IMAGE),
    },
    "PG701": {
        "container": (Container(host_config={"Memory": 0, "MemorySwap": 0}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg701-missing-limits"), HARDENED_COMPOSE),
        "k8s": (K8s("pg701-missing-limits"), HARDENED_K8S),
    },
    "PG702": {
        "container": (Container(host_config={"NetworkMode": "bridge"}), HARDENED_CONTAINER),
        "compose": (Compose(case="pg702-network-not-isolated"), HARDENED_COMPOSE),
        "k8s": (K8s("pg702-network-not-isolated"), HARDENED_K8S),
    },
    "PG801": {"k8s": (K8s("pg801-service-account-token"), HARDENED_K8S)},
    "PG802": {"k8s": (K8s("pg802-run-as-non-root-not-set"), HARDENED_K8S)},
    "PG803": {"k8s": (K8s("pg803-unprovable-user"), HARDENED_K8S)},
    "PG804": {"k8s": (K8s("pg804-seccomp-not-set"), HARDENED_K8S)},
    "PG805": {"k8s": (K8s("pg805-restricted-volume-type"), HARDENED_K8S)},
    "PG806": {"k8s": (K8s("pg311-published-port"), HARDENED_K8S)},  # network bridge (POLICY)
    "PG808": {"k8s": (HARDENED_K8S, HARDENED_K8S)},  # passes with no pids limit (POLICY)
    "PG810": {"k8s": (K8s("pg810-secret-as-env"), HARDENED_K8S)},
    "PG811": {"k8s": (K8s("pg811-supplemental-groups-merged"), HARDENED_K8S)},
    "PG901": {
        "dockerfile": (Dockerfile('FROM scratch\nLABEL a="unterminated\n'), HARDENED_DOCKERFILE),
        "image": (PARSE_ERROR_IMAGE, HARDENED_IMAGE),
        "container": (Container(host_config={"SecurityOpt": ["selinux=off"]}),
                      HARDENED_CONTAINER),
        "compose": (Compose(case="pg901-parse-error"), HARDENED_COMPOSE),
        "k8s": (K8s(text="apiVersion: v1\nkind: Pod\nmetadata: [\n"), HARDENED_K8S),
    },
    "PG902": {
        "dockerfile": (Dockerfile("# paracle-guard ignore=PG101\nFROM scratch\n"),
                       Dockerfile('# paracle-guard ignore=PG101 reason="a test image"\n'
                                  "FROM scratch\n")),
    },
}

# Control changes a rule's cases are judged under, as (firing, passing): the sandbox
# policy otherwise.
POLICY: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "PG313": ({"runtime": {"allowed": ["runsc"], "required": True,
                           "runtime_classes": {"gvisor": "runsc"}}},) * 2,
    "PG404": ({"packages": {"max_installed": 1}},) * 2,
    "PG502": ({"base_image": {"allowed_registries": ["registry.example"]}},) * 2,
    "PG806": ({"network": {"mode": "bridge"}},) * 2,
    "PG808": ({}, {"resources": {"pids": None}}),
}


def controls_for(changes: dict[str, Any]) -> Controls:
    data = load_policy("sandbox").controls.model_dump()
    for section, values in changes.items():
        data[section].update(values)
    return Controls.model_validate(data)


def fired(code: str, spec: Input, changes: dict[str, Any], tmp_path: Path) -> list[str]:
    found = find_rule(code)
    assert found is not None
    subjects = read(spec, tmp_path)
    assert subjects and {s.kind for s in subjects} == {KIND_OF[type(spec)]}
    controls = controls_for(changes)
    return [v.message for subject in subjects for v in found.check(subject, controls)]


def test_the_table_covers_every_rule_and_kind_exactly() -> None:
    declared = {r.code: set(r.kinds) for r in all_rules()}
    tabled = {code: set(kinds) for code, kinds in CASES.items()}
    assert tabled == declared
    for code, kinds in CASES.items():
        for kind, inputs in kinds.items():
            assert {KIND_OF[type(spec)] for spec in inputs} == {kind}, (code, kind)
    assert set(POLICY) <= set(CASES)


ROWS = [(code, kind) for code, kinds in sorted(CASES.items()) for kind in sorted(kinds)]


@pytest.mark.parametrize(("code", "kind"), ROWS)
def test_the_rule_fires_and_passes_through_the_real_reader(code: str, kind: SubjectKind,
                                                           tmp_path: Path) -> None:
    firing, passing = CASES[code][kind]
    on_fire, on_pass = POLICY.get(code, ({}, {}))
    assert fired(code, firing, on_fire, tmp_path), f"{code} does not fire on its {kind} case"
    assert fired(code, passing, on_pass, tmp_path) == [], f"{code} fires on its passing {kind}"
