"""What the host proves about a container gVisor runs, against real containers on the engine.

A container under runsc must give every host fact; one under runc gives none of
the gVisor ones, even when its process dresses up as the sandbox (argv
``... boot <its own container ID>``): the executable's device and inode are
the kernel's record, which no image controls.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paracle_guard.launcher.gvisor import (
    HostFact,
    SentryProcess,
    promises,
    prove_gvisor,
    read_oci_spec,
    sentry_processes,
)
from paracle_guard.launcher.runtimes import Runtime, engine_runtimes
from tests.docker_images import TestImages
from tests.runtime_containers import HARDENED, PLAIN_IMAGE, ContainerFactory, container_factory

# Reads its own container ID where cgroup v1 shows it, then becomes a process whose
# command line ends like gVisor's sandbox: "... boot <container ID>".
IMPOSTOR = (
    'id=$(/bin/busybox grep -o "[0-9a-f]\\{64\\}" /proc/self/cgroup | /bin/busybox head -n1); '
    'exec /bin/busybox sh -c "/bin/busybox sleep 30; true" runsc-sandbox boot "$id"'
)


@pytest.fixture
def containers(docker_client: Any, test_images: TestImages) -> Iterator[ContainerFactory]:
    with container_factory(docker_client, test_images.run_id) as factory:
        yield factory


def registered(docker_client: Any, name: str) -> Runtime:
    return {r.name: r for r in engine_runtimes(docker_client.api.info())}[name]


def started(factory: ContainerFactory, image: str, command: list[str],
            **options: Any) -> dict[str, Any]:
    labels = {**factory.labels}
    container = factory.client.containers.create(image, command=command, labels=labels,
                                                  **options)
    factory.containers.append(container.id)
    container.start()
    for _ in range(50):
        document = factory.inspect(container.id)
        if document["State"]["Pid"]:
            return document
        time.sleep(0.1)
    raise AssertionError("the container did not start")


def verdicts(facts: list[HostFact]) -> dict[str, bool]:
    return {fact.name: fact.holds for fact in facts}


@pytest.mark.docker
def test_a_hardened_container_under_runsc_is_proven_from_the_host(
    containers: ContainerFactory, test_images: TestImages, gvisor: str
) -> None:
    image = test_images.get(PLAIN_IMAGE).id
    document = started(containers, image, ["/bin/busybox", "sleep", "30"],
                       runtime=gvisor, **HARDENED)
    facts = prove_gvisor(document, registered(containers.client, gvisor))
    assert verdicts(facts) == {
        "runtime": True, "sandbox process": True, "host seccomp": True,
        "host no_new_privs": True, "host user": True, "host network": True,
        "read-only root": True}, facts
    # What runsc was told (the bundle's OCI spec) and what its kernel runs (runsc ps).
    spec = read_oci_spec(document["State"]["Pid"])
    assert spec is not None
    assert spec["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000]}
    assert spec["process"]["noNewPrivileges"] is True
    assert not any(spec["process"]["capabilities"].values())
    assert spec["root"]["readonly"] is True
    processes = sentry_processes(registered(containers.client, gvisor),
                                 document["State"]["Pid"], document["Id"])
    assert processes is not None and [(p.uid, p.command) for p in processes] == [
        (1000, "busybox")]  # /bin/busybox sleep 30, with no init (HARDENED has none)


@pytest.mark.docker
def test_a_runc_container_dressed_as_the_sandbox_proves_nothing(
    containers: ContainerFactory, test_images: TestImages, gvisor: str
) -> None:
    image = test_images.get(PLAIN_IMAGE).id
    # The engine's default cgroup namespace on cgroup v1 shows the container its ID.
    options = {**HARDENED, "cgroupns": "host"}
    document = started(containers, image, ["/bin/busybox", "sh", "-c", IMPOSTOR], **options)
    facts = {fact.name: fact for fact in prove_gvisor(document, registered(containers.client,
                                                                          gvisor))}
    assert not facts["runtime"].holds
    assert not facts["sandbox process"].holds
    # Its command line does end in "boot <ID>": only the executable gives it away.
    assert f"boot {document['Id']}" in facts["sandbox process"].observed
    assert "is NOT /usr/bin/runsc" in facts["sandbox process"].observed
    assert not facts["read-only root"].holds  # runc has no gofer
    # Even pointed at a runtime registered under another name, the file decides.
    renamed = Runtime("runsc", "/usr/bin/runsc")
    document["HostConfig"]["Runtime"] = "runsc"  # what a forged record would say
    forged = {fact.name: fact for fact in prove_gvisor(document, renamed)}
    assert forged["runtime"].holds and not forged["sandbox process"].holds


def test_a_stopped_container_or_unreadable_records_prove_nothing(tmp_path: Path) -> None:
    runtime = Runtime("runsc", "/usr/bin/runsc")
    stopped = {"Id": "a" * 64, "HostConfig": {"Runtime": "runsc"}, "State": {"Pid": 0}}
    assert verdicts(prove_gvisor(stopped, runtime, proc=tmp_path)) == {
        "runtime": True, "sandbox process": False}
    gone = {**stopped, "State": {"Pid": 4242}, "HostConfig": {"Runtime": "runsc",
                                                              "ReadonlyRootfs": True}}
    facts = prove_gvisor(gone, runtime, proc=tmp_path)
    assert [fact.name for fact in facts if fact.holds] == ["runtime"]


SCRATCH = "rw,noexec,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=0700"


@pytest.mark.docker
def test_every_promise_of_a_runsc_sandbox_from_the_hosts_records(
    containers: ContainerFactory, test_images: TestImages, gvisor: str
) -> None:
    image = test_images.get(PLAIN_IMAGE).id
    options = {**HARDENED, "tmpfs": {"/tmp": SCRATCH, "/workspace": SCRATCH}}
    document = started(containers, image, ["/bin/busybox", "sleep", "30"], runtime=gvisor,
                       **options)
    runtime = registered(containers.client, gvisor)
    pid = document["State"]["Pid"]
    found = promises(prove_gvisor(document, runtime), read_oci_spec(pid),
                     sentry_processes(runtime, pid, document["Id"]), uid=1000, gid=1000,
                     writable=["/tmp", "/workspace"])
    assert {fact.name: fact.holds for fact in found} == {
        "runtime": True, "user": True, "groups": True, "capabilities": True,
        "NoNewPrivs": True, "Seccomp": True, "read-only root": True,
        "/tmp writable": True, "/workspace writable": True, "network": True}, found
    # Another uid than the one promised is a broken promise, in both records.
    wrong = {fact.name: fact for fact in promises(
        prove_gvisor(document, runtime), read_oci_spec(pid),
        sentry_processes(runtime, pid, document["Id"]), uid=2000, gid=2000,
        writable=["/tmp"])}
    assert not wrong["user"].holds and not wrong["/tmp writable"].holds


def test_promises_without_root_are_not_proven() -> None:
    proof = [HostFact("runtime", "", True, "runsc"), HostFact("sandbox process", "", True, "ok"),
             HostFact("host seccomp", "", True, "2"), HostFact("host network", "", True, "lo")]
    found = {f.name: f for f in promises(proof, None, None, uid=1000, gid=1000,
                                         writable=["/tmp"])}
    assert found["runtime"].holds and found["Seccomp"].holds and found["network"].holds
    for name in ("user", "groups", "capabilities", "NoNewPrivs", "read-only root",
                 "/tmp writable"):
        assert not found[name].holds, name
    assert "root only" in found["user"].observed


def test_a_spec_that_grants_more_breaks_its_promises() -> None:
    proof = [HostFact("host no_new_privs", "", True, "1"), HostFact("host user", "", True, "x")]
    oci = {"process": {"user": {"uid": 1000, "gid": 1000, "additionalGids": [1000, 0]},
                       "capabilities": {"bounding": ["CAP_SYS_ADMIN"]},
                       "noNewPrivileges": False},
           "root": {"readonly": False},
           "mounts": [{"destination": "/tmp", "type": "tmpfs", "options": ["ro", "uid=1000"]}]}
    found = {f.name: f for f in promises(proof, oci, [SentryProcess(0, 1, "sh")], uid=1000,
                                         gid=1000, writable=["/tmp", "/workspace"])}
    assert [name for name, fact in found.items() if fact.holds] == []
    assert "uid 0" in found["user"].observed
