"""Judges of requests that make things other than containers: volumes, networks,
plugins, builds and swarm services.

- volume create: only the policy's drivers; a ``local`` volume whose device is
  a sensitive host path (or a relative one, which the engine mounts from its
  own working directory) is refused, as PG307 refuses mounting one;
- network create: only the policy's drivers (never host, macvlan or ipvlan by
  default), and no bridge network laid over an existing host bridge;
- plugin install, upgrade and enable: a plugin runs as root outside every
  container policy, so one that asks for any privilege (host network, mounts,
  devices, capabilities, host namespaces) is refused;
- build: the options that loosen isolation of the build's RUN steps (host or
  another container's network, unconfined security options), judged by
  PG305 and PG312; a build that sends a body (its context) is refused unless
  the policy allows it, since options can hide in that body;
- swarm service create and update: the engine creates a service's containers
  itself, never through the API, so the service's container spec is turned
  into the create request the engine's executor would make and judged as one.
"""

from __future__ import annotations

import os
from typing import Any

from paracle_guard.authz.guard import Call, Decision, Judge, Judgement
from paracle_guard.authz.routes import MAX_API
from paracle_guard.location import Location
from paracle_guard.rules.filesystem import sensitive_host_path
from paracle_guard.sources.container import subject_from_create
from paracle_guard.sources.create_request import CreateRequest
from paracle_guard.sources.go_json import (
    NETWORK_CREATE,
    PLUGIN_PRIVILEGES,
    SERVICE_SPEC,
    VOLUME_CREATE,
    decode,
    parse,
)
from paracle_guard.sources.runtime_options import local_volume_host_path, parse_security_opt
from paracle_guard.subject import Subject
from paracle_guard.subject_runtime import RuntimeConfig, SecurityOption

_BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
# The rules a build's own options can break.
_BUILD_RULES = frozenset({"PG305", "PG312"})


def judge_volume_create(call: Call) -> Decision:
    body = decode(parse(call.body() or b""), VOLUME_CREATE, "body")
    name = str(body.get("Name") or "(unnamed)")
    driver = str(body.get("Driver") or "local")
    what = f"volume {name} (driver {driver})"
    allowed = call.policy.authz.volume_drivers
    if driver not in allowed:
        raise Judgement(f"{what}: the driver is not one policy {call.policy.metadata.name} "
                        f"allows (authz.volume_drivers: {', '.join(allowed) or 'none'})")
    if driver == "local":
        problem = local_device_problem({str(k): str(v) for k, v in
                                        (body.get("DriverOpts") or {}).items()})
        if problem is not None:
            raise Judgement(f"PG307 sensitive-mount: {what} {problem}", ["PG307"], what)
    return Decision(True, "allowed", call.endpoint, subject=what)


def local_device_problem(options: dict[str, str]) -> str | None:
    """Why a local volume with these driver options must not exist, or None."""
    device = options.get("device", "").strip()
    host_path = local_volume_host_path(options)
    if host_path is None:
        return None
    if not device.startswith("/"):
        return (f"would mount device {device!r}, a relative path the engine resolves from its "
                "own working directory")
    reason = sensitive_host_path(host_path)
    if reason is None and os.path.lexists(host_path):
        real = sensitive_host_path(os.path.realpath(host_path))
        if real is not None:
            reason = f"{real}, through the symlink {host_path}"
    return f"would bind {reason}" if reason is not None else None


def judge_network_create(call: Call) -> Decision:
    body = decode(parse(call.body() or b""), NETWORK_CREATE, "body")
    driver = str(body.get("Driver") or "bridge")
    what = f"network {body.get('Name') or '(unnamed)'} (driver {driver})"
    allowed = call.policy.authz.network_drivers
    if driver not in allowed:
        raise Judgement(f"{what}: the driver is not one policy {call.policy.metadata.name} "
                        f"allows (authz.network_drivers: {', '.join(allowed) or 'none'}); "
                        "host, macvlan and ipvlan put containers on the host's own network")
    bridge = (body.get("Options") or {}).get(_BRIDGE_NAME_OPTION)
    if driver == "bridge" and bridge:
        raise Judgement(f"{what}: {_BRIDGE_NAME_OPTION}={bridge} would lay it over a host "
                        "bridge of that name")
    return Decision(True, "allowed", call.endpoint, subject=what)


def judge_plugin_install(call: Call) -> Decision:
    remote = call.target.first("remote") or call.params.get("name", "")
    privileges = decode(parse(call.body() or b"null"), PLUGIN_PRIVILEGES, "body") or []
    asked = [f"{p.get('Name')} {','.join(p.get('Value') or [])}".strip() for p in privileges]
    return _plugin_verdict(call, f"plugin {remote}", asked)


def judge_plugin_enable(call: Call) -> Decision:
    name = call.params["name"]
    plugin = call.reader.inspect_plugin(name)
    if plugin is None:
        raise Judgement(f"no plugin {name!r} on the engine")
    return _plugin_verdict(call, f"plugin {name}", plugin_privileges(plugin))


def plugin_privileges(plugin: dict[str, Any]) -> list[str]:
    """What a managed plugin may do on the host, from its config (as ``docker plugin
    install`` lists it) and from the settings ``docker plugin set`` changed."""
    config = plugin.get("Config") or {}
    settings = plugin.get("Settings") or {}
    linux = config.get("Linux") or {}
    asked = []
    network = (config.get("Network") or {}).get("Type") or ""
    if network not in ("", "null", "none", "bridge"):
        asked.append(f"network {network}")
    for mount in [*(config.get("Mounts") or []), *(settings.get("Mounts") or [])]:
        if (mount or {}).get("Source"):
            asked.append(f"mount {mount['Source']}")
    if linux.get("AllowAllDevices"):
        asked.append("allow-all-devices")
    for device in [*(linux.get("Devices") or []), *(settings.get("Devices") or [])]:
        if (device or {}).get("Path"):
            asked.append(f"device {device['Path']}")
    if linux.get("Capabilities"):
        asked.append("capabilities " + ",".join(map(str, linux["Capabilities"])))
    if config.get("PidHost"):
        asked.append("host pid namespace")
    if config.get("IpcHost"):
        asked.append("host ipc namespace")
    return asked


def _plugin_verdict(call: Call, what: str, asked: list[str]) -> Decision:
    if asked:
        raise Judgement(f"{what} asks for host privileges ({'; '.join(asked)}); a plugin runs "
                        "as root outside every container policy")
    return Decision(True, "allowed", call.endpoint, subject=what)


def judge_build(call: Call) -> Decision:
    """The build's RUN steps run in containers the engine makes itself: judge their options.

    The options are judged from the query. A request with a body the engine did not
    pass on (the classic builder's context) may carry them too: Go's ParseForm reads a
    form body when the *first* Content-Type header says so, while the plugin is shown
    the *last* one, so ``Content-Type: application/x-www-form-urlencoded`` followed by
    ``Content-Type: application/x-tar`` hides ``networkmode=host&remote=URL`` from it.
    Such a build is allowed only when the policy says so (``authz.allow_build_context``).
    """
    if (call.request.body is None and not call.policy.authz.allow_build_context
            and (call.request.header("Content-Length") or "").strip() != "0"):
        raise Judgement(
            f"policy {call.policy.metadata.name} does not allow builds that send a body "
            "(authz.allow_build_context: false): the engine may read build options from "
            "it that the plugin cannot see; docker load an image built elsewhere, or "
            "build from a remote context")
    network = call.target.first("networkmode")
    options = []
    for index, raw in enumerate(call.target.query.get("securityopt", [])):
        where = Location(path=f"securityopt[{index}]")
        try:
            key, value = parse_security_opt(raw)
        except ValueError as exc:
            raise Judgement(f"build: {exc}") from None
        options.append(SecurityOption(raw=raw, key=key, value=value, location=where))
    runtime = RuntimeConfig(location=Location(path="build"), network_mode=network,
                            security_opt=options,
                            locations={"network_mode": Location(path="networkmode")})
    subject = Subject(kind="container", target="build", runtime=runtime)
    failing = [f for f in call.failing(call.guard.plan.evaluate(subject))
               if f.rule in _BUILD_RULES]
    if failing:
        reasons = "; ".join(f"{f.rule} {f.name}: {f.message}" for f in failing)
        raise Judgement(f"the build's options break policy {call.policy.metadata.name}: "
                        f"{reasons}", sorted({f.rule for f in failing}))
    return Decision(True, "allowed", call.endpoint, subject="build")


def judge_service(call: Call) -> Decision:
    spec = decode(parse(call.body() or b""), SERVICE_SPEC, "body")
    name = str(spec.get("Name") or "(unnamed)")
    task = spec.get("TaskTemplate") or {}
    runtime = str(task.get("Runtime") or "container")
    if runtime != "container" or task.get("PluginSpec") or task.get("NetworkAttachmentSpec"):
        raise Judgement(f"service {name} runs a {runtime} task, not a container the rules can "
                        "judge")
    container = task.get("ContainerSpec")
    if not container:
        raise Judgement(f"service {name} has no container spec")
    request = service_create_request(spec)
    image_ref = str(request.config.get("Image") or "")
    image = call.reader.inspect_image_document(image_ref) if image_ref else None
    # The executor calls the engine's create directly: no API-version adjustments.
    subject = subject_from_create(call.reader, request, image, name=f"service-{name}",
                                  version=MAX_API, defaults=call.defaults())
    return call.verdict(subject, f"containers of service {name}")


def service_create_request(spec: dict[str, Any]) -> CreateRequest:
    """The create request the swarm executor makes for a task of this service."""
    task = spec.get("TaskTemplate") or {}
    container = task.get("ContainerSpec") or {}
    limits = (task.get("Resources") or {}).get("Limits") or {}
    config = {
        "Image": container.get("Image") or "", "User": container.get("User") or "",
        "Env": container.get("Env") or [], "WorkingDir": container.get("Dir") or "",
        "Labels": container.get("Labels") or {}, "Hostname": container.get("Hostname") or "",
    }
    security = []
    selinux = (container.get("Privileges") or {}).get("SELinuxContext") or {}
    if selinux.get("Disable"):
        security.append("label=disable")
    for key in ("User", "Role", "Level", "Type"):
        if selinux.get(key):
            security.append(f"label={key.lower()}:{selinux[key]}")
    targets = [str(n.get("Target") or "") for n in
               [*(task.get("Networks") or []), *(spec.get("Networks") or [])]]
    ports: dict[str, list[dict[str, str]]] = {}
    for port in (spec.get("EndpointSpec") or {}).get("Ports") or []:
        protocol = str(port.get("Protocol") or "tcp").lower()
        if (port.get("PublishMode") or "ingress") == "host":
            published = port.get("PublishedPort") or 0
            ports[f"{port.get('TargetPort') or 0}/{protocol}"] = [
                {"HostIp": "", "HostPort": str(published) if published else ""}]
        elif "ingress" not in targets:
            targets.append("ingress")  # the routing mesh publishes it on every node
    predefined = [t for t in targets if t in ("host", "bridge", "none")]
    host = {
        "ReadonlyRootfs": bool(container.get("ReadOnly")),
        "CapAdd": container.get("CapabilityAdd"), "CapDrop": container.get("CapabilityDrop"),
        "Mounts": container.get("Mounts") or [], "Sysctls": container.get("Sysctls") or {},
        "GroupAdd": container.get("Groups") or [], "Init": container.get("Init"),
        "Ulimits": container.get("Ulimits") or [], "SecurityOpt": security,
        "Memory": limits.get("MemoryBytes") or 0, "NanoCpus": limits.get("NanoCPUs") or 0,
        "PidsLimit": limits.get("Pids") or None, "PortBindings": ports,
        "NetworkMode": predefined[0] if predefined else "default",
    }
    return CreateRequest(config=config, host_config=host, networks=[t for t in targets if t])


JUDGES: dict[str, Judge] = {
    "volume-create": judge_volume_create,
    "network-create": judge_network_create,
    "plugin-install": judge_plugin_install,
    "plugin-enable": judge_plugin_enable,
    "build": judge_build,
    "service": judge_service,
}
