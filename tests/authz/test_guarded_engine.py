"""A real second engine, guarded by the real plugin, driven by the real docker CLI and SDK.

Everything here goes through ``dockerd --authorization-plugin``: the images are
built through the plugin, the launcher runs through it, and every refusal is the
engine's own "authorization denied by plugin" with the rule that caused it.
The shared engine is never touched; the second one is removed at the end.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import docker
from tests.authz.conftest import ADMIN_LABEL
from tests.authz.second_engine import SecondEngine
from tests.conftest import RUN_ID
from tests.docker_images import ACCOUNTS, BuiltImage, ImageSpec, build
from tests.launcher.conftest import probe_spec

pytestmark = pytest.mark.docker

# What the launcher's RunSpec asks the engine for, as docker run options.
LAUNCHER_FLAGS = (
    "--user", "1000:1000", "--read-only", "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges:true", "--network", "none", "--ipc", "none",
    "--cgroupns", "private", "--tmpfs", "/tmp:rw,noexec,nosuid,nodev,size=64m",
    "--tmpfs", "/workspace:rw,noexec,nosuid,nodev,size=64m", "--memory", "512m",
    "--memory-swap", "512m", "--cpus", "1", "--pids-limit", "256", "--init",
)
_VALUED = frozenset({"--user", "--cap-drop", "--security-opt", "--network", "--ipc",
                     "--cgroupns", "--tmpfs", "--memory", "--memory-swap", "--cpus",
                     "--pids-limit"})


def launcher_flags(*options: str, drop: tuple[str, ...] = ()) -> list[str]:
    """LAUNCHER_FLAGS without ``drop`` and the single-valued options ``options`` set again,
    then ``options``."""
    gone = set(drop) | {o for o in options if o in ("--user", "--network", "--memory",
                                                     "--memory-swap")}
    flags: list[str] = []
    pairs = iter(LAUNCHER_FLAGS)
    for flag in pairs:
        given = [flag, next(pairs)] if flag in _VALUED else [flag]
        if flag not in gone:
            flags += given
    return [*flags, *options]


ROOT_IMAGE = ImageSpec("authz-root", layers=(ACCOUNTS,))
LABELLED_IMAGE = ImageSpec("authz-labelled", layers=(ACCOUNTS,),
                           instructions=(f"LABEL {ADMIN_LABEL}={RUN_ID}", "USER 1000:1000"))


@pytest.fixture(scope="module")
def images(guarded: SecondEngine, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[dict[str, BuiltImage]]:
    """Test images built in the guarded engine, through the plugin (nothing can be pulled)."""
    client = guarded.client()
    workdir = tmp_path_factory.mktemp("authz-images")
    built = {spec.name: build(client, spec, run_id=RUN_ID, workdir=workdir)
             for spec in (probe_spec("authz-probe", "A"), ROOT_IMAGE, LABELLED_IMAGE)}
    yield built
    client.close()


@pytest.fixture(scope="module")
def probe(images: dict[str, BuiltImage]) -> str:
    return images["authz-probe"].id


def refused(result: Any, guarded: SecondEngine, rule: str | None = None) -> bool:
    """True when the engine refused the CLI call through this plugin (for ``rule``)."""
    text = result.stderr
    return (result.returncode != 0
            and f"authorization denied by plugin {guarded.name}" in text
            and (rule is None or rule in text))


def test_the_engine_is_guarded_and_doctor_says_so(guarded: SecondEngine) -> None:
    info = guarded.docker("info", "--format", "{{json .Plugins.Authorization}}", check=True)
    assert json.loads(info.stdout) == [guarded.name]
    doctor = _cli("doctor", "--format", "json", env={"DOCKER_HOST": guarded.host})
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["guard"]["status"] == "ok"
    assert f"plugin {guarded.name}, policy authz-test" in checks["guard"]["detail"]


def test_a_compliant_docker_run_with_the_launchers_flags(guarded: SecondEngine,
                                                         probe: str) -> None:
    run = guarded.docker("run", "--rm", *LAUNCHER_FLAGS, probe, "/bin/busybox", "sh", "-c",
                         "echo hello from $(id -u)")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "hello from 1000\n"


def test_paracle_guard_run_works_through_the_guard(guarded: SecondEngine, probe: str) -> None:
    run = _cli("run", "--policy", "sandbox", "--image", probe, "--", "sh", "-c",
               "echo launched as $(id -u):$(id -g)", env={"DOCKER_HOST": guarded.host})
    assert run.returncode == 0, run.stderr
    assert run.stdout == "launched as 1000:1000\n"


@pytest.mark.parametrize(("options", "rule"), [
    (("--privileged",), "PG303"),
    (("--user", "0"), "PG101"),
    (("--cap-add", "SYS_ADMIN"), "PG302"),
    (("-v", "/var/run/docker.sock:/var/run/docker.sock"), "PG307"),
    (("--network", "host"), "PG305"),
    (("--pid", "host"), "PG305"),
    (("--security-opt", "seccomp=unconfined"), "PG312"),
    (("--mount", "type=volume,src=pg-rootvol,dst=/workspace/h,volume-driver=local,"
                 "volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/"), "PG307"),
    (("--memory", "2g", "--memory-swap", "2g"), "PG701"),
])
def test_refused_through_the_docker_cli(guarded: SecondEngine, probe: str,
                                        options: tuple[str, ...], rule: str) -> None:
    result = guarded.docker("create", *launcher_flags(*options), probe, "/bin/busybox", "true")
    assert refused(result, guarded, rule), result.stderr
    assert _no_containers(guarded)


def test_a_custom_seccomp_profile_that_lets_everything_through_is_refused(
    guarded: SecondEngine, probe: str, tmp_path: Path,
) -> None:
    # docker run --security-opt seccomp=FILE sends the file's JSON. With an allow-all
    # profile a capability-less sandbox could unshare -U -r into a namespace of its own.
    profile = tmp_path / "allow-all.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    result = guarded.docker("create", *launcher_flags("--security-opt", f"seccomp={profile}"),
                            probe, "/bin/busybox", "true")
    assert refused(result, guarded, "PG312"), result.stderr
    assert "lets every call it does not name through" in result.stderr
    assert _no_containers(guarded)


def test_an_image_that_runs_as_root_without_user_is_refused(
    guard_root: tuple[SecondEngine, str],
) -> None:
    guarded, image = guard_root
    result = guarded.docker("create", *launcher_flags(drop=("--user",)), image,
                            "/bin/busybox", "true")
    assert refused(result, guarded, "PG101")
    assert "neither the container nor its image sets a user" in result.stderr


@pytest.fixture
def guard_root(guarded: SecondEngine, images: dict[str, BuiltImage]) -> tuple[SecondEngine, str]:
    return guarded, images["authz-root"].id


def test_a_named_volume_that_binds_the_host_root(guarded: SecondEngine, probe: str,
                                                 tmp_path: Path) -> None:
    direct = guarded.docker("volume", "create", "-o", "type=none", "-o", "o=bind",
                            "-o", "device=/", "pg-root")
    assert refused(direct, guarded, "PG307")
    # A volume of a harmless folder, later swapped for a symlink to /.
    folder = tmp_path / "data"
    folder.mkdir()
    name = f"pg-swapped-{RUN_ID}"
    made = guarded.docker("volume", "create", "-o", "type=none", "-o", "o=bind",
                          "-o", f"device={folder}", name)
    assert made.returncode == 0, made.stderr
    try:
        folder.rmdir()
        folder.symlink_to("/")
        result = guarded.docker("create", *LAUNCHER_FLAGS, "-v", f"{name}:/workspace/h:ro",
                                probe, "/bin/busybox", "true")
        assert refused(result, guarded, "PG307")
        assert "through the symlink" in result.stderr
    finally:
        guarded.docker("volume", "rm", "-f", name)


@pytest.fixture
def sandbox(guarded: SecondEngine, probe: str) -> Iterator[str]:
    """A running container started with the launcher's flags."""
    name = f"pg-sandbox-{RUN_ID}"
    run = guarded.docker("run", "-d", "--name", name, *LAUNCHER_FLAGS, probe,
                         "/bin/busybox", "sleep", "300")
    assert run.returncode == 0, run.stderr
    yield name
    guarded.docker("rm", "-f", name)


def test_exec_update_and_cp_on_a_running_sandbox(guarded: SecondEngine, sandbox: str,
                                                 tmp_path: Path) -> None:
    ok = guarded.docker("exec", sandbox, "/bin/busybox", "id", "-u")
    assert ok.returncode == 0 and ok.stdout == "1000\n", ok.stderr
    assert refused(guarded.docker("exec", "--privileged", sandbox, "/bin/busybox", "true"),
                   guarded, "PG303")
    assert refused(guarded.docker("exec", "-u", "0", sandbox, "/bin/busybox", "true"),
                   guarded, "PG101")
    assert refused(guarded.docker("exec", "-w", "/proc/self/fd/7", sandbox, "/bin/busybox",
                                  "true"), guarded, "PG204")
    assert refused(guarded.docker("update", "--memory", "1g", "--memory-swap", "1g", sandbox),
                   guarded, "PG701")
    lower = guarded.docker("update", "--pids-limit", "128", sandbox)
    assert lower.returncode == 0, lower.stderr
    payload = tmp_path / "payload"
    payload.write_text("x")
    copy_in = guarded.docker("cp", str(payload), f"{sandbox}:/tmp/payload")
    assert refused(copy_in, guarded) and "allow_copy_into_containers" in copy_in.stderr
    copy_out = guarded.docker("cp", f"{sandbox}:/etc/marker", str(tmp_path / "marker"))
    assert copy_out.returncode == 0 and (tmp_path / "marker").read_text() == "A\n"


def test_unlisted_endpoints_and_engine_objects_are_refused(guarded: SecondEngine,
                                                           probe: str) -> None:
    assert refused(guarded.docker("swarm", "unlock-key"), guarded)
    assert "allow-list" in guarded.docker("swarm", "unlock-key").stderr
    assert refused(guarded.docker("network", "create", "-d", "macvlan", "pg-mac"), guarded)
    assert refused(guarded.docker("service", "create", "--name", "pg-svc", probe), guarded,
                   "PG304")
    assert refused(guarded.docker("commit", "nothing-here"), guarded)


def test_sdk_refusals(guarded: SecondEngine, probe: str) -> None:
    client = guarded.client()
    try:
        # A create body of 2 MiB: the engine does not pass it to the plugin.
        with pytest.raises(docker.errors.APIError) as big:
            client.api.create_container(probe, ["/bin/busybox", "true"], user="1000:1000",
                                        labels={"padding": "x" * (2 << 20)})
        assert big.value.status_code == 403 and "did not pass" in str(big.value.explanation)
        # A build whose RUN steps would share the host's network.
        with pytest.raises(docker.errors.APIError) as host_build:
            client.images.build(fileobj=_dockerfile("FROM scratch\n"), network_mode="host")
        assert host_build.value.status_code == 403 and "PG305" in str(host_build.value)
        # A plugin that asks for host privileges (refused before anything is pulled).
        response = client.api._post_json(
            client.api._url("/plugins/pull"), params={"remote": "example.invalid/p"},
            data=[{"Name": "network", "Description": "", "Value": ["host"]}])
        assert response.status_code == 403 and "host privileges" in response.text
    finally:
        client.close()


def _dockerfile(text: str) -> Any:
    import io

    return io.BytesIO(text.encode())


def raw(guarded: SecondEngine, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        chunked: bool = False) -> tuple[int, str]:
    """One HTTP request to the guarded engine, as any client could send it (``headers``
    as pairs may name one header twice).

    The engine may answer (403) and close before a large body is sent: the answer
    is read whatever happened to the rest of the body.
    """
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close",
             *(f"{k}: {v}" for k, v in pairs)]
    payload = body or b""
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload) if payload else b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(payload)}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(120)
    try:
        sock.connect(str(guarded.socket))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        sock.close()


@contextlib.contextmanager
def plugin_policy(guarded: SecondEngine, text: str) -> Iterator[None]:
    """The plugin restarted under the policy ``text`` for a while (the engine reconnects)."""
    original = guarded.policy
    swapped = guarded.base / "swapped-policy.yaml"
    swapped.write_text(text)
    guarded.stop_plugin()
    guarded.policy = swapped
    try:
        guarded.start_plugin()
        yield
    finally:
        guarded.stop_plugin()
        guarded.policy = original
        guarded.start_plugin()


def test_build_options_hidden_in_a_form_body_are_refused(guarded: SecondEngine) -> None:
    # The engine parses a form body when the first Content-Type says so, and tells the
    # plugin the last one: networkmode=host (and a remote context) hide from the query.
    # Against this engine, with the suite's opt-in, such a build ran its RUN steps in the
    # host's network namespace. Under the sandbox policy it is refused as a whole.
    form = ("pad=" + "&pad=" * 1200 + "&networkmode=host&remote=http%3A%2F%2F127.0.0.1"
            "%3A9%2Fctx.tar").encode()
    headers = [("Content-Type", "application/x-www-form-urlencoded"),
               ("Content-Type", "application/x-tar")]
    sandbox = ("apiVersion: paracle-guard/v1\nkind: Policy\nmetadata:\n  name: authz-default"
               "\nextends: [sandbox]\n")
    with plugin_policy(guarded, sandbox):
        status, text = raw(guarded, "POST", "/v1.41/build", form, headers)
        assert status == 403 and "authz.allow_build_context: false" in text, text
        status, text = raw(guarded, "POST", "/v1.41/build?networkmode=host", b"",
                           {"Content-Type": "application/x-tar"})
        assert status == 403 and "PG305" in text, text


def _hardened_body(image: str, **extra: Any) -> dict[str, Any]:
    return {
        "Image": image, "Cmd": ["/bin/busybox", "true"], "User": "1000:1000", **extra,
        "HostConfig": {
            "ReadonlyRootfs": True, "CapDrop": ["ALL"], "NetworkMode": "none",
            "SecurityOpt": ["no-new-privileges:true"], "IpcMode": "none",
            "CgroupnsMode": "private", "Memory": 512 << 20, "MemorySwap": 512 << 20,
            "NanoCpus": 1_000_000_000, "PidsLimit": 256,
            "Tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},
        },
    }


def test_bodies_the_plugin_cannot_see_and_versions_it_does_not_read(
    guarded: SecondEngine, probe: str,
) -> None:
    body = json.dumps(_hardened_body(probe)).encode()
    json_type = {"Content-Type": "application/json"}
    # Chunked: an engine with the CVE-2024-41110 fix forwards the body and it is judged;
    # one without it forwards nothing and the plugin refuses. Either way, never unseen.
    privileged = _hardened_body(probe)
    privileged["HostConfig"]["Privileged"] = True
    status, text = raw(guarded, "POST", "/v1.41/containers/create",
                       json.dumps(privileged).encode(), json_type, chunked=True)
    assert status == 403 and ("PG303" in text or "did not pass" in text)
    padded = {**privileged, "Labels": {"padding": "x" * (2 << 20)}}
    status, text = raw(guarded, "POST", "/v1.41/containers/create",
                       json.dumps(padded).encode(), json_type, chunked=True)
    assert status == 403 and "did not pass" in text
    status, text = raw(guarded, "POST", "/v1.41/containers/create", body,
                       {"Content-Type": "text/plain"})
    assert status == 403 and "did not pass" in text
    status, text = raw(guarded, "GET", "/v1.99/containers/json")
    assert status == 403 and "API version 1.99" in text
    # HostConfig's fields at the top level, which the engine honours.
    top = {**_hardened_body(probe), **_hardened_body(probe)["HostConfig"], "Privileged": True}
    del top["HostConfig"]
    status, text = raw(guarded, "POST", "/v1.41/containers/create",
                       json.dumps(top).encode(), json_type)
    assert status == 403 and "PG303" in text
    # An old API version's start carrying a HostConfig.
    status, text = raw(guarded, "POST", "/v1.41/containers/create?name=pg-old-start",
                       body, json_type)
    assert status == 201, text
    try:
        status, text = raw(guarded, "POST", "/v1.23/containers/pg-old-start/start",
                           b'{"Privileged": true}', json_type)
        assert status == 403 and "PG303" in text
    finally:
        raw(guarded, "DELETE", "/v1.41/containers/pg-old-start?force=1")


def test_label_exemptions_set_by_admin_tooling(guarded: SecondEngine, probe: str,
                                               images: dict[str, BuiltImage]) -> None:
    name = f"pg-exempt-{RUN_ID}"
    made = guarded.docker("create", "--name", name, "--label", f"{ADMIN_LABEL}={RUN_ID}",
                          *LAUNCHER_FLAGS, "--privileged", probe, "/bin/busybox", "true")
    try:
        assert made.returncode == 0, made.stderr
        line = [r for r in guarded.audit_records()
                if r["endpoint"] == "POST /containers/create" and name in r["uri"]][-1]
        assert line["decision"] == "allow"
        assert line["exemption"] == "the test suite's own admin tooling"
    finally:
        guarded.docker("rm", "-f", name)
    # The same label inherited from the image exempts nothing.
    inherited = guarded.docker("create", *LAUNCHER_FLAGS, "--privileged",
                               images["authz-labelled"].id, "/bin/busybox", "true")
    assert refused(inherited, guarded, "PG303")


def test_200_concurrent_creates_are_each_decided_and_audited(guarded: SecondEngine,
                                                             probe: str) -> None:
    dangerous = [
        ({"User": "0"}, "PG101"),
        ({"HostConfig": {"Privileged": True}}, "PG303"),
        ({"HostConfig": {"CapAdd": ["SYS_ADMIN"]}}, "PG302"),
        ({"HostConfig": {"Binds": ["/var/run/docker.sock:/s:ro"]}}, "PG307"),
    ]
    cases: list[tuple[str, bytes, str | None]] = []
    for index in range(200):
        document = _hardened_body(probe)
        expected = None
        if index % 2:
            change, expected = dangerous[index // 2 % len(dangerous)]
            document.update({k: v for k, v in change.items() if k != "HostConfig"})
            document["HostConfig"].update(change.get("HostConfig", {}))
        cases.append((f"pg-many-{RUN_ID}-{index}", json.dumps(document).encode(), expected))
    barrier = threading.Barrier(len(cases))

    def send(case: tuple[str, bytes, str | None]) -> tuple[int, str]:
        barrier.wait()
        return raw(guarded, "POST", f"/v1.41/containers/create?name={case[0]}", case[1],
                   {"Content-Type": "application/json"})

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(cases)) as pool:
        answers = list(pool.map(send, cases))
    try:
        for (name, _, expected), (status, text) in zip(cases, answers, strict=True):
            if expected is None:
                assert status == 201, (name, text)
            else:
                assert status == 403 and expected in text, (name, status, text)
        records = guarded.audit_records()  # every line parses: none is torn or interleaved
        by_name: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            if record["endpoint"] == "POST /containers/create" and "pg-many-" in record["uri"]:
                by_name.setdefault(record["uri"].split("name=", 1)[1], []).append(record)
        assert sorted(by_name) == sorted(name for name, _, _ in cases)
        for name, _, expected in cases:
            (record,) = by_name[name]
            assert record["decision"] == ("allow" if expected is None else "deny")
            assert record["rules"] == ([] if expected is None else [expected])
        # Each plugin process counts its own lines from 1 (other tests restart the plugin).
        sequences: dict[int, list[int]] = {}
        for record in records:
            sequences.setdefault(record["pid"], []).append(record["seq"])
        for sequence in sequences.values():
            assert sequence == list(range(1, len(sequence) + 1))
    finally:
        names = [name for name, _, expected in cases if expected is None]
        guarded.docker("rm", "-f", *names, timeout=300)


def test_with_the_plugin_stopped_every_request_is_refused(guarded: SecondEngine,
                                                          probe: str) -> None:
    """The engine's own behaviour: it retries the plugin for ~15 s, then refuses."""
    body = json.dumps(_hardened_body(probe)).encode()
    calls: list[tuple[str, str, bytes | None]] = [
        ("HEAD", "/_ping", None), ("GET", "/v1.41/containers/json", None),
        ("GET", "/v1.41/version", None), ("POST", "/v1.41/containers/create", body),
        ("DELETE", "/v1.41/images/never-there", None),
    ]
    guarded.stop_plugin()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(calls) + 1) as pool:
            sdk = pool.submit(_sdk_ping, guarded)
            answers = list(pool.map(
                lambda call: raw(guarded, call[0], call[1], call[2],
                                 {"Content-Type": "application/json"}), calls))
            sdk_error = sdk.result()
        for call, (status, text) in zip(calls, answers, strict=True):
            assert status == 500, (call, status, text)
            assert call[0] == "HEAD" or f"plugin {guarded.name} failed with error" in text
        assert f"plugin {guarded.name} failed with error" in sdk_error
    finally:
        guarded.start_plugin()
    assert guarded.docker("ps").returncode == 0
    assert _no_containers(guarded)


def _sdk_ping(guarded: SecondEngine) -> str:
    client = guarded.client()
    try:
        client.containers.list()
    except docker.errors.APIError as error:
        return str(error)
    finally:
        client.close()
    return "listed: the plugin was not consulted"


def _no_containers(guarded: SecondEngine) -> bool:
    listed = guarded.docker("ps", "-aq", check=True)
    return listed.stdout.strip() == ""


def _cli(*args: str, env: dict[str, str] | None = None) -> Any:
    import subprocess

    environment = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-c", "from paracle_guard.cli import main; main()",
                           *args], capture_output=True, text=True, timeout=300,
                          env=environment, check=False)
