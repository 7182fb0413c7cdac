"""Redis with failover: a primary, a replica and a sentinel on free ports; the store, the broker
and RedBeat's lock all on ``redis+sentinel://``. The primary is SIGKILLed while jobs flow:
the sentinel promotes the replica, intake answers again within seconds of the promotion, and
every job intake answered 202 for completes with exactly one charge (the simulator's count)
and one event (the consumer's count).

The replica is asynchronous, so a failover can lose writes the primary acknowledged but had
not yet shipped (README "Redis with failover"); on loopback the lag is well under a
millisecond, which is why this test can ask for every job.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import redis
import requests

from devtools.devstack import (
    Proc,
    Stack,
    free_port,
    redis_answers,
    redis_argv,
    redis_server_binary,
)
from tests.helpers import System, start_system, wait_for
from tests.system.resilience_support import (
    MODEL,
    assert_one_accepted_submit_each,
    events_by_job,
    wait_terminal,
)

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
MASTER = "orchmaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
BATCHES = 8
PER_BATCH = 10
KILL_AFTER_SECONDS = 2.0
PROMOTION_WAIT_SECONDS = 60.0
PROBE_BASE = 10_000  # the probes' job numbers (Idempotency-Keys), apart from the batches'


@dataclass
class Failover:
    stack: Stack
    primary: Proc
    primary_port: int
    replica_port: int
    sentinel_port: int

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{MASTER}/0"

    def master_port(self) -> int | None:
        try:
            sentinel = redis.Redis(port=self.sentinel_port, socket_timeout=1)
            addr = sentinel.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
        except (redis.RedisError, OSError):
            return None
        return int(addr[1]) if addr else None


def _replica_in_sync(port: int) -> bool:
    try:
        info = redis.Redis(port=port, socket_timeout=1).info("replication")
    except (redis.RedisError, OSError):
        return False
    return info.get("master_link_status") == "up"


def _sentinel_sees_replica(port: int) -> bool:
    try:
        replicas = redis.Redis(port=port, socket_timeout=1).execute_command(
            "SENTINEL", "replicas", MASTER
        )
    except (redis.RedisError, OSError):
        return False
    return bool(replicas)


def start_failover_set(stack: Stack) -> Failover:
    primary_port, replica_port, sentinel_port = free_port(), free_port(), free_port()
    primary = stack.spawn("redis-primary", redis_argv(primary_port, stack.workdir / "primary"))
    stack.wait_until(primary, lambda: redis_answers(f"redis://127.0.0.1:{primary_port}"), "ping")
    replica = stack.spawn(
        "redis-replica",
        redis_argv(
            replica_port, stack.workdir / "replica", "--replicaof", "127.0.0.1", str(primary_port)
        ),
    )
    stack.wait_until(replica, lambda: _replica_in_sync(replica_port), "replication link up")
    conf = stack.workdir / "sentinel.conf"  # the sentinel rewrites it: a file of its own
    conf.write_text(
        f"port {sentinel_port}\n"
        "bind 127.0.0.1\n"
        f"dir {stack.workdir}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 1\n"
        f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
        f"sentinel parallel-syncs {MASTER} 1\n"
    )
    sentinel = stack.spawn("redis-sentinel", [redis_server_binary(), str(conf), "--sentinel"])
    stack.wait_until(sentinel, lambda: _sentinel_sees_replica(sentinel_port), "replica known")
    return Failover(stack, primary, primary_port, replica_port, sentinel_port)


@pytest.fixture
def failover() -> Iterator[tuple[Failover, System]]:
    stack = Stack(supervise=True)
    try:
        servers = start_failover_set(stack)
        stack, system = start_system(servers.url, {"CELERY_BROKER_URL": servers.url}, stack=stack)
        yield servers, system
    finally:
        stack.stop_all()


def _create(system: System, key: str, n: int, outcomes: Counter | None = None) -> str | None:
    """Create job ``n`` with its own Idempotency-Key, as a client that retries would: the id
    if intake answered 202 (created) or 200 (created by an earlier try), else None."""
    try:
        answer = system.api(key).post(
            f"{system.web}/v1/jobs",
            json={"model": MODEL, "input": {"prompt": f"failover {n}"}},
            headers={"Idempotency-Key": f"failover-{n}"},
            timeout=15,
        )
    except requests.RequestException as exc:
        if outcomes is not None:
            outcomes[type(exc).__name__] += 1
        return None
    if outcomes is not None:
        outcomes[answer.status_code] += 1
    return answer.json()["id"] if answer.status_code in (200, 202) else None


def _post_batches(
    system: System, key: str
) -> tuple[threading.Thread, dict[int, str | None], Counter]:
    """Post jobs in batches from a thread: job number -> id (None: no 200/202 yet), and the
    first answers by status (or exception name)."""
    posted: dict[int, str | None] = {}
    outcomes: Counter = Counter()

    def run() -> None:
        with ThreadPoolExecutor(4) as pool:
            for batch in range(BATCHES):
                numbers = list(range(batch * PER_BATCH, (batch + 1) * PER_BATCH))
                ids = pool.map(lambda n: _create(system, key, n, outcomes), numbers)
                posted.update(zip(numbers, ids, strict=True))
                time.sleep(0.5)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, posted, outcomes


def _retry_refused(system: System, key: str, posted: dict[int, str | None]) -> int:
    """A client retries what got a 503 (or no answer) with the same Idempotency-Key: intake
    may have stored the job before the primary died. Returns how many needed it."""
    refused = [n for n, job_id in posted.items() if job_id is None]
    for n in refused:
        posted[n] = wait_for(lambda n=n: _create(system, key, n), 30, what=f"job {n} retried")
    return len(refused)


def test_primary_killed_mid_run_fails_over_and_every_job_completes_once(failover) -> None:
    servers, system = failover
    _, key = system.new_client("failover")
    poster, posted, outcomes = _post_batches(system, key)
    time.sleep(KILL_AFTER_SECONDS)
    before_kill = sum(1 for job_id in posted.values() if job_id)
    servers.stack.stop(servers.primary, signal.SIGKILL)
    killed_at = time.monotonic()

    promoted_at: float | None = None
    answered_at: float | None = None
    probe_ids: list[str] = []
    deadline = killed_at + PROMOTION_WAIT_SECONDS
    while answered_at is None and time.monotonic() < deadline:
        if promoted_at is None and servers.master_port() == servers.replica_port:
            promoted_at = time.monotonic()
        if promoted_at is not None:
            probe = _create(system, key, PROBE_BASE + len(probe_ids))
            if probe:
                answered_at = time.monotonic()
                probe_ids.append(probe)
        time.sleep(0.05)
    assert promoted_at is not None, "the sentinel never promoted the replica"
    assert answered_at is not None, "intake never answered after the promotion"
    poster.join(120)
    retried = _retry_refused(system, key, posted)
    everything = [*(job_id for job_id in posted.values() if job_id), *probe_ids]
    assert len(everything) == BATCHES * PER_BATCH + len(probe_ids)
    counts = wait_terminal(system, everything, 150, "every 202'd job terminal after failover")
    stats = assert_one_accepted_submit_each(system, everything)

    def all_delivered() -> dict | None:
        events = events_by_job(system, "failover")
        return events if set(events) >= set(everything) else None

    events = wait_for(all_delivered, 90, what="an event for every job")
    per_job = {job: {t: len(ids) for t, ids in types.items()} for job, types in events.items()}
    processes = (system.orch.beat, system.orch.web, system.orch.delivery, *system.orch.workers)
    restarts = {p.name: p.restarts for p in processes if p is not None and p.restarts}
    print(
        f"\nsentinel failover: primary SIGKILLed with {before_kill} jobs accepted; promotion "
        f"{promoted_at - killed_at:.1f} s after the kill; intake answered 202 again "
        f"{answered_at - promoted_at:.2f} s after the promotion "
        f"({answered_at - killed_at:.1f} s after the kill); intake answers while posting "
        f"{BATCHES * PER_BATCH}: {dict(outcomes)}, {retried} retried with their "
        f"Idempotency-Key; {len(everything)} jobs: {counts}; "
        f"accepted submits {stats['submits_accepted']}; restarts by the supervisor: "
        f"{restarts or 'none'}"
    )
    assert counts == {"completed": len(everything)}
    assert per_job == {job: {"job.completed": 1} for job in everything}
    assert servers.master_port() == servers.replica_port
