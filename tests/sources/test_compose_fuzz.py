"""Property tests: whatever a compose file holds, checking it never raises.

Bad input is a parse-error finding (or, for an unreadable file, one clear
InputError line); a traceback would be a bug.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paracle_guard.sources.compose import load_compose
from tests.runtime_containers import sandbox_plan

SERVICE_KEYS = [
    "image", "build", "user", "read_only", "privileged", "cap_add", "cap_drop", "security_opt",
    "pid", "ipc", "uts", "userns_mode", "cgroup", "network_mode", "networks", "volumes",
    "tmpfs", "volumes_from", "devices", "device_cgroup_rules", "gpus", "sysctls", "ports",
    "mem_limit", "memswap_limit", "cpus", "cpu_quota", "cpu_period", "pids_limit", "shm_size",
    "ulimits", "restart", "environment", "env_file", "working_dir", "extends", "deploy",
    "x-extra", "type", "source", "target", "read_only", "count", "capabilities", "resources",
    "limits", "reservations", "memory", "soft", "hard", "file", "service", "path",
]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["all", "ALL", "host", "none", "512m", "1g", "-1", "/", "/etc:/etc:ro",
                     "80:80", "no-new-privileges:false", "seccomp:unconfined", "service:app",
                     "container:x", "${VAR:-x}", "$$", "${", "base", "app", "./x:/y", "rw"]),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(SERVICE_KEYS), inner, max_size=5),
    ),
    max_leaves=25,
)
documents = st.fixed_dictionaries(
    {"services": st.dictionaries(st.sampled_from(["app", "base", "db"]),
                                 st.dictionaries(st.sampled_from(SERVICE_KEYS), values,
                                                 max_size=8),
                                 max_size=3)},
    optional={"volumes": st.dictionaries(st.sampled_from(["data", "x"]), values, max_size=2),
              "include": values, "x-anchor": values},
)


def check_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "compose.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        for subject in load_compose(path, environ={"VAR": "v"}):
            sandbox_plan().evaluate(subject)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_structured_documents_never_raise(document: dict[str, Any]) -> None:
    check_text(yaml.safe_dump(document, sort_keys=False))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    check_text(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([
    "services:", "  app:", "    image: a", "    <<: *x", "x-a: &x", "  read_only: true",
    "    extends: app", "    volumes:", "      - /etc:/etc", "    ports: [80]", "  - a", "{",
    "    cap_add: [SYS_ADMIN]", "  db: *x", "    security_opt: [disable]", "\t", "---",
]), max_size=12))
def test_line_soup_never_raises(lines: list[str]) -> None:
    check_text("\n".join(lines) + "\n")
