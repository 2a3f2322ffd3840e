"""Judges of requests about containers: each builds the Subject the request would
produce and lets the policy's rules decide, through the code of ``paracle-guard
container``.

- create: the body, normalised as the engine would store it, with its image
  (``sources.container.subject_from_create``);
- start and restart: the container as the engine stores it (the source of
  truth: whatever happened since create, a re-pointed tag, a default the
  plugin could not see, a user name that maps to uid 0), plus, for API
  versions before 1.24, the HostConfig a start body may still replace;
- exec: the container as it would be for the exec's user, privilege and working
  directory;
- update: the container with the new limits applied as the engine applies them;
- network connect: the container with the network added;
- copy into a container and commit: allowed or refused by the policy's switches.

A container that carries an exemption's label (set by the request that created
it, not inherited from its image) is let through, and the audit line says so.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from paracle_guard.authz import judges_engine
from paracle_guard.authz.guard import Call, Decision, Judge, Judgement
from paracle_guard.sources.container import container_subject, subject_from_create
from paracle_guard.sources.create_request import (
    CreateRequest,
    decode_create_body,
    parse_volumes_from,
    version_before,
)
from paracle_guard.sources.go_json import (
    EXEC_CONFIG,
    NETWORK_CONNECT,
    UPDATE_CONFIG,
    decode,
    parse,
)

# Resource fields ``docker update`` replaces when the request sets them (not zero).
_UPDATED_WHEN_SET = (
    "BlkioWeight", "CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "CpusetCpus",
    "CpusetMems", "Memory", "MemorySwap", "MemoryReservation", "KernelMemory",
    "CpuRealtimePeriod", "CpuRealtimeRuntime",
)
# A start body of at most this many bytes holds no HostConfig (the engine's own test).
_EMPTY_START_BODY = 7


def exempted(call: Call, labels: Mapping[str, Any], what: str) -> Decision | None:
    exemption = call.label_exemption(labels)
    if exemption is None:
        return None
    return Decision(True, f"exempt: {exemption.reason}", call.endpoint,
                    exemption=exemption.reason, subject=what)


def _container(call: Call, reference: str) -> dict[str, Any]:
    document = call.reader.inspect_container(reference)
    if document is None:
        raise Judgement(f"no container {reference!r} on the engine")
    return document


def _own_labels(call: Call, container: Mapping[str, Any]) -> dict[str, Any]:
    """The container's labels that its image does not also carry (those it set itself)."""
    labels = dict((container.get("Config") or {}).get("Labels") or {})
    image = call.reader.inspect_image_document(str(container.get("Image") or ""))
    inherited = ((image or {}).get("Config") or {}).get("Labels") or {}
    return {k: v for k, v in labels.items() if inherited.get(k) != v}


def _name(container: Mapping[str, Any]) -> str:
    name = str(container.get("Name") or "").lstrip("/")
    return f"container {name or str(container.get('Id') or '')[:12]}"


def _exempted_container(call: Call, container: Mapping[str, Any]) -> Decision | None:
    if not any(e.label for e in call.guard.active_exemptions()):
        return None
    return exempted(call, _own_labels(call, container), _name(container))


def judge_create(call: Call) -> Decision:
    request = decode_create_body(call.body() or b"")
    name = call.target.first("name")
    image_ref = str(request.config.get("Image") or "")
    what = f"container {name or '(unnamed)'} of image {image_ref or '(none)'}"
    exemption = exempted(call, request.config.get("Labels") or {}, what)
    if exemption is not None:
        return exemption
    _check_volume_drivers(call, request)
    image = None
    if image_ref:
        image = call.reader.inspect_image_document(image_ref)
        if image is None:
            raise Judgement(f"image {image_ref} is not on the engine: pull or build it first "
                            "(a container is judged together with its image)")
    volumes_from = _volumes_from(call, request)
    # What the request asks the engine to create is judged before the engine is asked
    # which volumes exist: a request that defines a volume binding / is refused for
    # that alone, also when the lookup is slow (a dead volume plugin stalls it ~15 s).
    call.verdict(subject_from_create(
        call.reader, request, image, name=name, version=call.version(),
        defaults=call.defaults(), volumes_from=volumes_from, read_existing_volumes=False,
    ), what)
    subject = subject_from_create(
        call.reader, request, image, name=name, version=call.version(),
        defaults=call.defaults(), volumes_from=volumes_from,
    )
    return call.verdict(subject, what)


def _volumes_from(call: Call, request: CreateRequest) -> dict[str, dict[str, Any]]:
    found = {}
    for spec in (request.host_config or {}).get("VolumesFrom") or []:
        reference, _ = parse_volumes_from(str(spec))
        found[reference] = _container(call, reference)
    return found


def _check_volume_drivers(call: Call, request: CreateRequest) -> None:
    host = request.host_config or {}
    drivers = {str(host.get("VolumeDriver") or "")}
    for mount in host.get("Mounts") or []:
        driver_config = (mount.get("VolumeOptions") or {}).get("DriverConfig") or {}
        drivers.add(str(driver_config.get("Name") or ""))
    allowed = call.policy.authz.volume_drivers
    for driver in sorted(drivers - {""}):
        if driver not in allowed:
            raise Judgement(f"volume driver {driver} is not one policy "
                            f"{call.policy.metadata.name} allows (authz.volume_drivers: "
                            f"{', '.join(allowed) or 'none'})")


def judge_start(call: Call) -> Decision:
    if call.target.first("checkpoint"):
        raise Judgement("starting from a checkpoint is not something the plugin can judge")
    container = _container(call, call.params["name"])
    what = _name(container)
    exemption = _exempted_container(call, container)
    if exemption is not None:
        return exemption
    replaced = _old_start_host_config(call)
    decision = call.verdict(container_subject(call.reader, container), what)
    if replaced is None:
        return decision
    # API < 1.24: the body replaces the container's HostConfig at this start.
    request = CreateRequest(config=dict(container.get("Config") or {}), host_config=replaced)
    image = call.reader.inspect_image_document(str(container.get("Image") or ""))
    subject = subject_from_create(call.reader, request, image, name=what.split(" ", 1)[1],
                                  version=call.version(), defaults=call.defaults())
    return call.verdict(subject, f"{what} with the HostConfig of this start")


def _old_start_host_config(call: Call) -> dict[str, Any] | None:
    if not version_before(call.version(), "1.24") or call.request.method != "POST":
        return None  # newer engines refuse a start with a body
    if call.request.body is None:
        length = (call.request.header("Content-Length") or "").strip()
        if length.isascii() and length.isdigit() and int(length) <= _EMPTY_START_BODY:
            return None
    request = decode_create_body(call.body() or b"", require_config=False)
    return request.host_config


def judge_exec(call: Call) -> Decision:
    exec_config = decode(parse(call.body() or b""), EXEC_CONFIG, "body")
    container = _container(call, call.params["name"])
    user = str(exec_config.get("User") or "")
    what = f"exec in {_name(container)}" + (f" as user {user}" if user else "")
    exemption = _exempted_container(call, container)
    if exemption is not None:
        return exemption
    changed = copy.deepcopy(container)
    if user:
        changed.setdefault("Config", {})["User"] = user
    workdir = str(exec_config.get("WorkingDir") or "")
    if workdir:  # docker exec -w: runc exec --cwd, CVE-2024-21626's other way in
        changed.setdefault("Config", {})["WorkingDir"] = workdir
    if exec_config.get("Privileged"):
        changed.setdefault("HostConfig", {})["Privileged"] = True
    return call.verdict(container_subject(call.reader, changed), what)


def judge_update(call: Call) -> Decision:
    update = decode(parse(call.body() or b""), UPDATE_CONFIG, "body")
    container = _container(call, call.params["name"])
    what = f"update of {_name(container)}"
    exemption = _exempted_container(call, container)
    if exemption is not None:
        return exemption
    if version_before(call.version(), "1.40"):
        update.pop("PidsLimit", None)
    changed = copy.deepcopy(container)
    host = changed.setdefault("HostConfig", {})
    for key in _UPDATED_WHEN_SET:
        if update.get(key):
            host[key] = update[key]
    if update.get("PidsLimit") is not None:
        # 0 and below are "unlimited", stored as 0.
        host["PidsLimit"] = max(int(update["PidsLimit"]), 0)
    restart = update.get("RestartPolicy") or {}
    if restart.get("Name"):
        host["RestartPolicy"] = restart
    return call.verdict(container_subject(call.reader, changed), what)


def judge_network_connect(call: Call) -> Decision:
    body = decode(parse(call.body() or b""), NETWORK_CONNECT, "body")
    network = call.reader.inspect_network(call.params["name"])
    if network is None:
        raise Judgement(f"no network {call.params['name']!r} on the engine")
    container = _container(call, str(body.get("Container") or ""))
    network_name = str(network.get("Name") or call.params["name"])
    what = f"{_name(container)} joining network {network_name}"
    exemption = _exempted_container(call, container)
    if exemption is not None:
        return exemption
    changed = copy.deepcopy(container)
    settings = changed.setdefault("NetworkSettings", {})
    networks = dict(settings.get("Networks") or {})
    networks[network_name] = {}
    settings["Networks"] = networks
    if network.get("Driver") == "host":
        changed.setdefault("HostConfig", {})["NetworkMode"] = "host"  # the host's stack
    return call.verdict(container_subject(call.reader, changed), what)


def judge_archive(call: Call) -> Decision:
    what = f"copy into container {call.params['name']} ({call.target.first('path') or '/'})"
    if call.policy.authz.allow_copy_into_containers:
        return Decision(True, "allowed", call.endpoint, subject=what)
    exemption = _exempted_container(call, _container(call, call.params["name"]))
    if exemption is not None:
        return exemption
    raise Judgement(f"policy {call.policy.metadata.name} does not allow copying files into "
                    "containers (authz.allow_copy_into_containers: false); give the sandbox "
                    "its files through the launcher's --workspace")


def judge_commit(call: Call) -> Decision:
    reference = call.target.first("container")
    what = f"commit of container {reference}"
    call.body(required=False)  # a config the plugin cannot see must not slip through
    if call.policy.authz.allow_commit:
        return Decision(True, "allowed", call.endpoint, subject=what)
    exemption = _exempted_container(call, _container(call, reference))
    if exemption is not None:
        return exemption
    raise Judgement(f"policy {call.policy.metadata.name} does not allow turning a container "
                    "into an image (authz.allow_commit: false)")


def _allow(call: Call) -> Decision:
    return Decision(True, "allowed", call.endpoint)


JUDGES: dict[str, Judge] = {
    "allow": _allow,
    "create": judge_create,
    "start": judge_start,
    "exec": judge_exec,
    "update": judge_update,
    "archive": judge_archive,
    "commit": judge_commit,
    "network-connect": judge_network_connect,
    **judges_engine.JUDGES,
}
