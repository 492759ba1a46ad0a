"""Private, throw-away PostgreSQL and Redis servers for fault tests and benchmarks.

Never touches the shared servers on 5432/6379: each instance gets a free loopback port and a temp
directory, and is stopped (or killed) by its owner. PostgreSQL's ``initdb`` refuses to run as root, so
as root the cluster is created and run as the ``postgres`` user via ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


class PrivateRedis:
    """``redis-server --port <free> --save "" --appendonly no`` as a child process."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str:
        """'' when redis-server can be run, else the reason it cannot."""
        return "" if shutil.which("redis-server") else "redis-server is not installed"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    stop = kill


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivatePostgres:
    """A temporary PostgreSQL cluster (trust auth, user postgres) on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bin = _pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="dj-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "pg.log"
        self._as_user: list[str] = []

    @staticmethod
    def available() -> str:
        """'' when a private cluster can be created here, else the reason it cannot."""
        if _pg_bin() is None:
            return "PostgreSQL server binaries (initdb/pg_ctl) are not installed"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no 'postgres' user for initdb"
            if not shutil.which("runuser"):
                return "running as root and runuser is missing"
        return ""

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self._as_user, *args], check=check, capture_output=True, timeout=60)

    def init(self) -> PrivatePostgres:
        assert self.bin is not None
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")
        return self

    def start(self, *, durable: bool = False) -> PrivatePostgres:
        """``durable``: fsync on, as in production (each commit waits for its WAL flush); else fsync off."""
        assert self.bin is not None
        sync = "" if durable else " -c fsync=off"
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1{sync} -c max_connections=100"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w", "start")
        wait_port(self.port)
        return self

    def stop(self, mode: str = "fast") -> None:
        """``fast`` (clean) or ``immediate`` (like a crash: no checkpoint, recovery on next start)."""
        assert self.bin is not None
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        if self.data.exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
