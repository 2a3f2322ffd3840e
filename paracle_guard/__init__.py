"""paracle-guard: policy-as-code compliance scanner and enforcer for container sandboxes."""

__version__ = "0.1.0"
