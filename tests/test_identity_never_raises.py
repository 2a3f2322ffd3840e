"""No user or group string, account file or number makes any source or the launcher raise.

One property per path a user spec takes: `lint` (USER), `image` (Config.User and
the image's /etc/passwd and /etc/group), `container` (Config.User, GroupAdd and
the container's files), `compose` (user, group_add), `k8s` (runAsUser,
runAsGroup, supplementalGroups, fsGroup) and the launcher (the image user it
builds a RunSpec from). Anything the sources refuse must be a GuardError or a
parse problem, never a traceback; what they accept must be judged by the rules
without raising. ``USER ²`` crashed image, container, compose and run before.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from paracle_guard.engine import Plan
from paracle_guard.errors import GuardError
from paracle_guard.launcher.runspec import PolicyViolation, SandboxConfig, build_runspec
from paracle_guard.policy.loader import load_policy
from paracle_guard.sources.compose import load_compose
from paracle_guard.sources.container import subject_from_inspect
from paracle_guard.sources.dockerfile import parse_dockerfile
from paracle_guard.sources.image import image_subject
from paracle_guard.sources.image_archive import read_saved_archive
from paracle_guard.sources.k8s import load_manifest_texts, parse_quantity
from paracle_guard.subject import Subject
from paracle_guard.units import parse_size
from tests.docker_images import file
from tests.sources.test_container import hardened_documents
from tests.sources.test_image_archive import saved_archive

PLAN = Plan.compile(load_policy("sandbox"))
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# Specs that steer towards the parser's corners, plus anything at all.
SPEC_PARTS = st.sampled_from(["0", "+0", "-0", ":", "root", "\u00b2", "\u0661\u0660", "\n",
                              "99999999999999999999", "-1", "4294967296", "$", "${X}", " "])
SPECS = st.text() | st.lists(SPEC_PARTS | st.text(max_size=4), max_size=6).map("".join)
ACCOUNT_LINE = st.lists(st.text(max_size=6) | SPEC_PARTS, max_size=5).map(":".join)
ACCOUNT_FILE = st.lists(ACCOUNT_LINE, max_size=6).map(lambda lines: "\n".join(lines).encode(
    "utf-8", "surrogatepass"))


def judged(subject: Subject) -> None:
    PLAN.evaluate(subject)


@SETTINGS
@given(SPECS)
def test_lint(spec: str) -> None:
    for base in ("scratch", "debian:12"):
        judged(parse_dockerfile(f"FROM {base}\nRUN useradd -u 1000 app\nUSER {spec}\n",
                                "Dockerfile"))
        judged(parse_dockerfile(f"FROM {base}\nARG A\nENV B=$A\nUSER {spec}:$B\n",
                                "Dockerfile"))


@SETTINGS
@given(SPECS, ACCOUNT_FILE, ACCOUNT_FILE)
def test_image(spec: str, passwd: bytes, group: bytes) -> None:
    archive = saved_archive([(file("/etc/passwd", passwd), file("/etc/group", group))],
                            User=spec)
    saved = read_saved_archive(io.BytesIO(archive), source="fuzz")
    subject = image_subject(saved, saved.images[0], target="fuzz")
    judged(subject)


@SETTINGS
@given(SPECS, st.lists(SPECS, max_size=3), ACCOUNT_FILE, ACCOUNT_FILE)
def test_container(spec: str, group_add: list[str], passwd: bytes, group: bytes) -> None:
    container, image = hardened_documents()
    container["Config"]["User"] = spec
    container["HostConfig"]["GroupAdd"] = group_add
    for files in ({"passwd": passwd, "group": group}, {}):
        judged(subject_from_inspect(container, image, target="c", **files))  # type: ignore[arg-type]


@SETTINGS
@example("9" * 5000, [])
@given(SPECS, st.lists(SPECS, max_size=3))
def test_compose(tmp_path_factory: object, spec: str, group_add: list[str]) -> None:
    # JSON is YAML: the strings arrive exactly as generated.
    assume("\x00" not in spec and all("\x00" not in g for g in group_add))
    path = Path(str(tmp_path_factory.mktemp("compose"))) / "compose.yaml"  # type: ignore[attr-defined]
    # A number in a string is read as Compose reads it: int64, or a clean error.
    service = {"image": "x", "user": spec, "group_add": group_add, "pids_limit": spec}
    path.write_text(json.dumps({"services": {"app": service}}), encoding="utf-8",
                    errors="surrogatepass")
    try:
        subjects = load_compose(path, environ={})
    except GuardError:
        return
    for subject in subjects:
        judged(subject)


IDS = st.integers() | st.text(max_size=6) | st.booleans() | st.none() | st.floats()


@SETTINGS
@given(IDS, IDS, st.lists(IDS, max_size=3), IDS, st.text(max_size=8))
def test_k8s(uid: object, gid: object, groups: list[object], fs_group: object,
             policy: str) -> None:
    context = {"runAsUser": uid, "runAsGroup": gid, "supplementalGroups": groups,
               "fsGroup": fs_group, "supplementalGroupsPolicy": policy}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"securityContext": context, "containers": [{"name": "c", "image": "x"}]}}
    try:
        text = json.dumps(pod, allow_nan=False)
    except ValueError:
        return  # NaN is not JSON, and not YAML 1.2's spelling of it either
    for subject in load_manifest_texts([("pod.yaml", text)]):
        judged(subject)


@SETTINGS
@given(SPECS, ACCOUNT_FILE, ACCOUNT_FILE)
def test_launcher(spec: str, passwd: bytes, group: bytes) -> None:
    archive = saved_archive([(file("/etc/passwd", passwd), file("/etc/group", group))],
                            User=spec)
    saved = read_saved_archive(io.BytesIO(archive), source="fuzz")
    user = image_subject(saved, saved.images[0], target="fuzz").user
    for policy in ("sandbox", "baseline"):
        try:
            spec_ = build_runspec(load_policy(policy), SandboxConfig(image="x"), ["true"],
                                  image_id="sha256:" + "0" * 64, image_user=user,
                                  image_volumes=(), name="fuzz", home="/nonexistent-home")
        except PolicyViolation:
            continue
        # Whatever the image says, the launcher runs a numeric, non-root uid and gid.
        assert spec_.uid > 0 and spec_.gid > 0


@SETTINGS
@example("1e99999999999")
@example("9" * 400)
@example("\u0661\u0660m")
@given(st.text() | st.lists(st.sampled_from(["9", "1", ".", "e", "m", "Mi", "g", "+", "-",
                                             "\u00b2", "\u0661", " "]), max_size=30).map("".join))
def test_sizes_and_quantities(text: str) -> None:
    # Sizes (--memory, mem_limit, the policy's limits) and Kubernetes quantities refuse
    # with ValueError, which their callers turn into one clear line or a parse problem.
    for parse in (parse_size, parse_quantity):
        with contextlib.suppress(ValueError):
            parse(text)
