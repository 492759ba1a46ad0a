"""``dangjian run --workers N``: N bot processes on one port, started and stopped together.

One Python process answers from one core; the inbound path is CPU-bound (see docs/benchmarks.md), so a
bigger machine is used by running more processes. Each worker is a whole bot (``dangjian run``) whose
socket sets ``SO_REUSEPORT``, so the kernel spreads new connections across them. They share PostgreSQL
and Redis, which already make several instances safe: the KV claim and the unique message id dedup
inbound messages, outbox rows are leased with ``SKIP LOCKED``, occurrences are claimed once.

Worker 0 starts first and alone applies migrations and seeds an empty database; the others start once
it is healthy. Only worker 0 runs the scheduler (the claims would make more harmless, but idle). When
any worker exits, the supervisor stops the rest and exits with that worker's code: a service manager
(systemd, Docker) then restarts the whole set rather than leaving it half up.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType

STARTUP_TIMEOUT_S = 120.0  # worker 0 may be migrating a large database
STOP_TIMEOUT_S = 30.0
POLL_S = 0.2
EXIT_SIGNALLED = 0


def worker_argv(base: Sequence[str], workers: int, index: int) -> list[str]:
    """The command line of worker ``index``: the supervisor's own run arguments, as one of ``workers``."""
    return [sys.executable, "-m", "bot", "run", *base, "--workers", str(workers), "--worker-index", str(index)]


def probe_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)


def healthy(host: str, port: int) -> bool:
    """``/healthz`` answers (200 ok/degraded, or 503 with the database down): the worker is serving."""
    conn = http.client.HTTPConnection(probe_host(host), port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status in (200, 503)
    except OSError:
        return False
    finally:
        conn.close()


class Supervisor:
    def __init__(self, argv: Callable[[int], list[str]], workers: int, host: str, port: int) -> None:
        self._argv = argv
        self._workers = workers
        self._host, self._port = host, port
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stopping = False

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(self._argv(index), env=os.environ.copy())
        self._procs.append(proc)
        return proc

    def _exited(self) -> subprocess.Popen[bytes] | None:
        return next((p for p in self._procs if p.poll() is not None), None)

    def run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._run()
        finally:
            self._stop_all()
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _run(self) -> int:
        first = self._spawn(0)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not healthy(self._host, self._port):
            if self._stopping:
                return EXIT_SIGNALLED
            if first.poll() is not None:
                return first.returncode or 1
            if time.monotonic() > deadline:
                print("worker 0 did not become healthy", file=sys.stderr, flush=True)
                return 1
            time.sleep(POLL_S)
        for index in range(1, self._workers):
            self._spawn(index)
        print(f"{self._workers} 个工作进程已启动 {self._workers} workers serving port {self._port}", flush=True)
        while not self._stopping:
            if (gone := self._exited()) is not None:
                code = gone.returncode
                print(f"worker pid {gone.pid} exited ({code}); stopping the others", file=sys.stderr, flush=True)
                return code if code and code > 0 else 1
            time.sleep(POLL_S)
        return EXIT_SIGNALLED

    def _stop_all(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self._procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
