"""The Kubernetes backend's Agent Sandbox forms: the launcher's hardened Pod, as a sandbox.

The pod spec is the one ``k8s_backend.pod_spec`` builds from the RunSpec, unchanged;
only what wraps it differs (kubernetes-sigs/agent-sandbox, v1beta1):

- ``--as sandbox``: a ``Sandbox`` whose ``podTemplate`` is that spec, beside the same
  deny-all NetworkPolicy as the Pod (a bare Sandbox gets no NetworkPolicy of its own);
- ``--as sandbox-template``: a ``SandboxTemplate`` whose controller makes the
  NetworkPolicy: ``networkPolicy: {}`` (no rule either way) when the policy's network
  is ``none``, ``Unmanaged`` (the pod network) when it is ``bridge``;
- ``--as sandbox-claim``: that template, a ``SandboxWarmPool`` of it with no warm
  replicas (a v1beta1 claim names a pool; with none warm, the controller starts a
  sandbox from the pool's template), and the ``SandboxClaim``.

The launcher's labels travel on the pod template (the Agent Sandbox controllers drop
only their own ``agents.x-k8s.io/`` keys). The objects are read back through
``paracle-guard k8s`` before they are printed, like the Pod.
"""

from __future__ import annotations

from typing import Any

SANDBOX_API = "agents.x-k8s.io/v1beta1"
EXTENSIONS_API = "extensions.agents.x-k8s.io/v1beta1"
FORMS = ("sandbox", "sandbox-template", "sandbox-claim")


def sandbox_objects(form: str, network_mode: str, metadata: dict[str, Any],
                    pod: dict[str, Any], isolation: list[dict[str, Any]]
                    ) -> list[dict[str, Any]]:
    """The objects of ``form`` around ``pod`` (a PodSpec), in the order to apply them.

    ``metadata`` is the launcher's (name, labels, annotations, namespace) and
    ``isolation`` the NetworkPolicy a bare pod needs (empty for the pod network).
    """
    template = {"metadata": {"labels": dict(metadata["labels"]),
                             "annotations": dict(metadata["annotations"])},
                "spec": pod}
    if form == "sandbox":
        return [*isolation, {"apiVersion": SANDBOX_API, "kind": "Sandbox",
                             "metadata": dict(metadata), "spec": {"podTemplate": template}}]
    spec: dict[str, Any] = {"podTemplate": template}
    if network_mode == "none":
        # Both lists missing: the controller's policy allows nothing in and nothing out.
        spec.update(networkPolicyManagement="Managed", networkPolicy={})
    else:
        spec["networkPolicyManagement"] = "Unmanaged"
    name = metadata["name"]
    objects: list[dict[str, Any]] = [
        {"apiVersion": EXTENSIONS_API, "kind": "SandboxTemplate", "metadata": dict(metadata),
         "spec": spec}]
    if form == "sandbox-claim":
        pool = f"{name}-pool"
        objects.append({"apiVersion": EXTENSIONS_API, "kind": "SandboxWarmPool",
                        "metadata": {**metadata, "name": pool},
                        "spec": {"replicas": 0, "sandboxTemplateRef": {"name": name}}})
        objects.append({"apiVersion": EXTENSIONS_API, "kind": "SandboxClaim",
                        "metadata": dict(metadata),
                        "spec": {"warmPoolRef": {"name": pool},
                                 "lifecycle": {"shutdownPolicy": "Delete"}}})
    return objects
