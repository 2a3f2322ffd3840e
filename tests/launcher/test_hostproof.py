"""The kernel's facts against the RunSpec: mount tables, credentials, interfaces and limits.

The mount tables here are the shape of real ones, captured from containers the
launcher created on the CI engine (20.10, cgroup v1); the engine-backed tests
in test_launch.py read live ones.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from paracle_guard.launcher.hostproof import (
    HostFacts,
    Limits,
    ProcessFacts,
    host_record,
    judge,
    parse_interfaces,
    parse_mountinfo,
    parse_status,
)
from paracle_guard.launcher.runspec import BindMount, RunSpec, TmpfsMount

MIB = 1 << 20
MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list"]

SPEC = RunSpec(
    name="sbx", image_id="sha256:" + "a" * 64, command=("true",), uid=1000, gid=1000,
    tmpfs=(TmpfsMount(target="/tmp", options="rw,noexec,nosuid,nodev,size=64m,uid=1000"),
           TmpfsMount(target="/data", options="ro,noexec,nosuid,nodev,size=4k")),
    binds=(BindMount(source="/srv/jobs/ws", target="/workspace", identity=(2049, 77)),
           BindMount(source="/srv/in/token", target="/run/secrets/token", identity=(2049, 78),
                     read_only=True, is_dir=False)),
    memory_bytes=512 * MIB, nano_cpus=1_500_000_000, pids_limit=256,
)

CONTAINER = """\
78 53 0:39 / / ro,relatime master:2 - overlay overlay rw,lowerdir=/var/lib/docker/l/A
79 78 0:42 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
80 78 0:43 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
81 80 0:44 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620
82 78 0:45 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
83 82 0:46 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
84 83 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw
93 80 0:41 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw
94 78 254:0 /usr/bin/tini-static /sbin/docker-init ro,relatime - ext4 /dev/vda rw
95 78 254:0 /srv/jobs/ws /workspace rw,relatime - ext4 /dev/vda rw
96 78 0:47 / /tmp rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,size=65536k,uid=1000
97 78 0:48 / /data ro,nosuid,nodev,noexec,relatime - tmpfs tmpfs ro,size=4k
98 78 254:0 /srv/in/token /run/secrets/token ro,relatime - ext4 /dev/vda rw
99 78 254:0 /var/lib/docker/containers/abc/hosts /etc/hosts ro,relatime - ext4 /dev/vda rw
59 79 0:43 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
58 79 0:49 / /proc/acpi ro,relatime - tmpfs tmpfs ro
"""
HOST = """\
23 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
"""
PROCESS = ProcessFacts(pid=5, uids=(1000,) * 4, gids=(1000,) * 4, groups=(1000,), cap_eff=0,
                       cap_bnd=0, no_new_privs=1, seccomp=2)


def facts(mounts: str = CONTAINER, **changes: Any) -> HostFacts:
    seen = HostFacts(pid=5, processes=[PROCESS], mounts=parse_mountinfo(mounts),
                     interfaces=["lo"], limits=Limits(memory=512 * MIB, swap=0, pids=256,
                                                       cpus=1.5),
                     identities={"/workspace": (2049, 77), "/run/secrets/token": (2049, 78)},
                     host_mounts=parse_mountinfo(HOST))
    for name, value in changes.items():
        setattr(seen, name, value)
    return seen


def problems(seen: HostFacts, spec: RunSpec = SPEC) -> list[tuple[str, str]]:
    return [(problem.code, problem.message) for problem in judge(spec, seen, MASKED)]


def test_the_container_the_launcher_asked_for_has_no_problems() -> None:
    assert problems(facts()) == []


def test_a_tmpfs_redirected_by_a_symlink_is_missing_at_its_target_and_writable_elsewhere() -> None:
    found = problems(facts(CONTAINER.replace(" /tmp ", " /etc ")))
    assert found == [
        ("PG206", "the tmpfs declared at /tmp is not mounted there (the image may redirect it "
                  "with a symlink)"),
        ("PG202", "/etc is writable (tmpfs from tmpfs), but the run specification mounts "
                  "nothing writable there"),
    ]


def test_a_workspace_redirected_into_the_path_is_caught() -> None:
    found = problems(facts(CONTAINER.replace(" /workspace ", " /usr/local/bin ")))
    assert ("PG206", "the bind mount declared at /workspace is not mounted there (the image "
                     "may redirect it with a symlink)") in found
    assert any(code == "PG202" and "/usr/local/bin is writable" in text for code, text in found)


def test_a_writable_root_and_any_undeclared_writable_mount_are_caught() -> None:
    assert ("PG201", "the root filesystem is mounted read-write") in problems(
        facts(CONTAINER.replace("/ / ro,", "/ / rw,")))
    extra = CONTAINER + "100 78 0:50 / /dev/shm rw,nosuid - tmpfs shm rw,size=65536k\n"
    assert [code for code, _ in problems(facts(extra))] == ["PG202"]
    # The engine's /dev/null over a masked /proc file is not a writable place.
    masked = CONTAINER + "60 79 0:43 /null /proc/timer_list rw,nosuid - tmpfs tmpfs rw\n"
    assert problems(facts(masked)) == []
    # But the same at a path the engine did not mask is.
    unmasked = CONTAINER + "61 79 0:43 /null /proc/other rw,nosuid - tmpfs tmpfs rw\n"
    assert [code for code, _ in problems(facts(unmasked))] == ["PG202"]


def test_declared_mounts_keep_their_flags() -> None:
    rw_input = CONTAINER.replace("/run/secrets/token ro,", "/run/secrets/token rw,").replace(
        "/srv/in/token /run/secrets/token ro,relatime - ext4 /dev/vda rw",
        "/srv/in/token /run/secrets/token rw,relatime - ext4 /dev/vda rw")
    assert ("PG206", "/run/secrets/token is writable, not as declared") in problems(
        facts(rw_input))
    exec_tmp = CONTAINER.replace("/tmp rw,nosuid,nodev,noexec,", "/tmp rw,nosuid,nodev,")
    assert ("PG206", "/tmp is mounted without noexec") in problems(facts(exec_tmp))
    stacked = CONTAINER + "101 96 0:51 / /tmp rw,relatime - tmpfs tmpfs rw\n"
    assert ("PG206", "/tmp holds 2 mounts (tmpfs, tmpfs), not the tmpfs alone") in problems(
        facts(stacked))


def test_a_bind_that_is_not_the_checked_folder_is_caught_by_inode_and_by_record() -> None:
    swapped = facts(identities={"/workspace": (2049, 99), "/run/secrets/token": (2049, 78)})
    assert problems(swapped) == [("PG206", "/workspace is not the /srv/jobs/ws that was checked "
                                           "(another folder or file was swapped in before the "
                                           "mount)")]
    # Without /proc/PID/root (not root), the mount table still names what was mounted.
    elsewhere = facts(CONTAINER.replace("254:0 /srv/jobs/ws", "254:0 /home/victim"),
                      identities={"/workspace": None, "/run/secrets/token": None})
    assert problems(elsewhere) == [("PG206", "/workspace mounts /home/victim of device 254:0, "
                                             "not /srv/jobs/ws as this host sees it")]


def test_the_host_record_of_a_path_follows_the_mount_that_holds_it() -> None:
    mounts = parse_mountinfo(HOST + "40 23 8:1 /subvol /srv rw - btrfs /dev/sda1 rw\n")
    assert host_record("/srv/jobs/ws", mounts) == ("8:1", "/subvol/jobs/ws")
    assert host_record("/home/me/ws", mounts) == ("254:0", "/home/me/ws")
    assert host_record("/srvx/ws", mounts) == ("254:0", "/srvx/ws")


def test_credentials_of_every_process_are_judged() -> None:
    root = replace(PROCESS, pid=6, uids=(0, 0, 0, 0))
    capable = replace(PROCESS, pid=7, cap_eff=0x2000, no_new_privs=0)
    found = problems(facts(processes=[PROCESS, root, capable]))
    assert [code for code, _ in found] == ["PG102", "PG301", "PG304"]
    assert "process 6 runs as uid (0, 0, 0, 0)" in found[0][1]


def test_interfaces_and_limits() -> None:
    assert problems(facts(interfaces=["eth0", "lo"])) == [
        ("PG702", "the network namespace has interfaces eth0, lo, not only lo")]
    rounded = Limits(memory=512 * MIB - 4096 + 1, swap=0, pids=256, cpus=1.5)
    assert problems(facts(limits=rounded)) == []  # the kernel rounds to whole pages
    loose = Limits(memory=1 << 30, swap=512 * MIB, pids=None, cpus=None)
    assert [text.split(" limit")[0] for _, text in problems(facts(limits=loose))] == [
        "the kernel's memory", "the kernel's swap", "the kernel's pids", "the kernel's CPU"]
    assert problems(facts(limits=None)) == []  # unreadable limits are a note, not a verdict


def test_parsers_read_what_the_kernel_writes() -> None:
    (entry,) = parse_mountinfo(
        r"90 78 254:0 /srv/my\040dir /work\040space rw,relatime shared:5 - ext4 /dev/vda rw")
    assert (entry.root, entry.mount_point, entry.read_only) == ("/srv/my dir", "/work space",
                                                                False)
    status = parse_status("Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000"
                          "\nGroups:\t1000 \nCapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb"
                          "\nNoNewPrivs:\t1\nSeccomp:\t2\n", 9)
    assert status == ProcessFacts(pid=9, uids=(1000,) * 4, gids=(1000,) * 4, groups=(1000,),
                                  cap_eff=0, cap_bnd=0xA80425FB, no_new_privs=1, seccomp=2)
    dev = ("Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n"
           "    lo:       0       0\n  eth0: 10 1\n")
    assert parse_interfaces(dev) == ["eth0", "lo"]


@pytest.mark.parametrize("line", ["garbage", "1 2 3", "1 2 0:1 / / rw -"])
def test_lines_that_are_not_mount_entries_are_skipped(line: str) -> None:
    assert parse_mountinfo(line) == []
