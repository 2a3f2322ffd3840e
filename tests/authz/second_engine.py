"""A second Docker Engine guarded by ``paracle-guard authz serve``, for tests and benchmarks.

The shared engine at /var/run/docker.sock is never touched. This starts, as
root, the plugin on a uniquely named socket in /run/docker/plugins (plugin
discovery paths are global, so every run has its own name), then a ``dockerd``
with its own data root, exec root, pid file, socket and config file (empty:
the host's /etc/docker/daemon.json is not read), its own containerd
namespaces, the main engine's network flags (no bridge, no iptables, no
forwarding) and ``--authorization-plugin`` naming the plugin. ``stop`` ends
both and removes every file they made, whatever state they are in.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLUGIN_DIR = Path("/run/docker/plugins")
NAME_PREFIX = "paracle-guard-test-"
NETWORK_FLAGS = ("--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false")
START_TIMEOUT = 60.0
# dockerd retries an unreachable plugin for about 15 seconds before refusing.
PLUGIN_RETRY_SECONDS = 15


def unavailable_reason() -> str | None:
    """Why a second engine cannot be started here, or None."""
    if os.geteuid() != 0:
        return "starting a second dockerd needs root"
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (scripts/docker-engine start installs it)"
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_sockets() -> None:
    """Plugin sockets of earlier runs whose process is gone (names carry the pid)."""
    if not PLUGIN_DIR.is_dir():
        return
    for entry in PLUGIN_DIR.glob(f"{NAME_PREFIX}*.sock"):
        pid = entry.name[len(NAME_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            with contextlib.suppress(OSError):
                entry.unlink()


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


@dataclass
class SecondEngine:
    """A guarded dockerd and its plugin; ``start`` then ``stop`` (also after failures)."""

    policy: Path
    base: Path = field(default_factory=lambda: Path(f"/tmp/pga-{secrets.token_hex(4)}"))
    name: str = field(default_factory=lambda: f"{NAME_PREFIX}{os.getpid()}-"
                                              f"{secrets.token_hex(3)}")
    guarded: bool = True
    plugin: subprocess.Popen[bytes] | None = None
    dockerd: subprocess.Popen[bytes] | None = None
    plugin_args: tuple[str, ...] = ()

    @property
    def socket(self) -> Path:
        return self.base / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def plugin_socket(self) -> Path:
        return PLUGIN_DIR / f"{self.name}.sock"

    @property
    def audit_log(self) -> Path:
        return self.base / "authz-audit.jsonl"

    @property
    def plugin_log(self) -> Path:
        return self.base / "plugin.log"

    def start(self) -> SecondEngine:
        self.base.mkdir(mode=0o700)
        (self.base / "daemon.json").write_text("{}\n")
        remove_stale_sockets()
        if self.guarded:
            self.start_plugin()
        self._start_dockerd()
        return self

    def start_plugin(self) -> None:
        command = [sys.executable, "-c", "from paracle_guard.cli import main; main()",
                   "authz", "serve", "--policy", str(self.policy),
                   "--socket", str(self.plugin_socket), "--audit-log", str(self.audit_log),
                   "--engine", self.host, *self.plugin_args]
        with self.plugin_log.open("ab") as log:
            self.plugin = subprocess.Popen(command, stdout=log, stderr=log,
                                           stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(self.plugin_socket):
            if self.plugin.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the plugin did not start:\n" + self.plugin_log.read_text())
            time.sleep(0.05)

    def stop_plugin(self) -> None:
        if self.plugin is not None and self.plugin.poll() is None:
            self.plugin.send_signal(signal.SIGTERM)
            try:
                self.plugin.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.plugin.kill()
                self.plugin.wait()
        self.plugin = None
        with contextlib.suppress(OSError):
            self.plugin_socket.unlink()

    def _start_dockerd(self) -> None:
        namespace = self.name
        command = [
            "dockerd", "--config-file", str(self.base / "daemon.json"),
            "--data-root", str(self.base / "data"), "--exec-root", str(self.base / "exec"),
            "--pidfile", str(self.base / "dockerd.pid"), "-H", self.host,
            "--containerd-namespace", namespace,
            "--containerd-plugins-namespace", f"{namespace}-plugins",
            "--log-level", "warn", *NETWORK_FLAGS,
        ]
        if self.guarded:
            command.append(f"--authorization-plugin={self.name}")
        with (self.base / "dockerd.log").open("ab") as log:
            self.dockerd = subprocess.Popen(command, stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            cwd="/")
        deadline = time.monotonic() + START_TIMEOUT
        while self.docker("version", check=False, timeout=10).returncode != 0:
            if self.dockerd.poll() is not None or time.monotonic() > deadline:
                log_text = (self.base / "dockerd.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the second dockerd did not start:\n{log_text}")
            time.sleep(0.2)

    def docker(self, *args: str, check: bool = False, timeout: float = 120,
               input: bytes | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The real docker CLI against this engine."""
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith("DOCKER_")} | (env or {})
        return subprocess.run(["docker", "-H", self.host, *args], capture_output=True,
                              text=True, timeout=timeout, check=check, env=environment,
                              input=input.decode() if input is not None else None)

    def client(self, **options: Any) -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, version="1.41", timeout=120, **options)

    def audit_records(self) -> list[dict[str, Any]]:
        """Every audit line, each parsed (a torn or garbled line fails here)."""
        lines = self.audit_log.read_text(encoding="ascii").splitlines()
        return [json.loads(line) for line in lines]

    def stop(self) -> None:
        """Stop dockerd and the plugin; remove the data and the plugin socket."""
        try:
            if self.dockerd is not None and self.dockerd.poll() is None:
                self.dockerd.send_signal(signal.SIGTERM)
                try:
                    self.dockerd.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(self.dockerd.pid, signal.SIGKILL)
                    self.dockerd.wait()
        finally:
            self.stop_plugin()
            _unmount_below(self.base)
            shutil.rmtree(self.base, ignore_errors=True)


def _unmount_below(base: Path) -> None:
    """Unmount whatever a killed dockerd or containerd left mounted under ``base``."""
    prefix = str(base) + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = [line.split()[4] for line in lines if len(line.split()) > 4]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
