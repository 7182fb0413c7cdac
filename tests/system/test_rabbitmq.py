"""The lifecycle with RabbitMQ as the broker and Redis as the store, as real processes.

The machine's RabbitMQ (127.0.0.1:5672, guest/guest; started here if it does not answer) gives
each test its own vhost, deleted afterwards. Everything that used to read the broker as Redis
is checked on AMQP: the console's queue depths (a queue left without its consumer shows its
backlog), ``/readyz`` (store and broker), the worker watchdog and the worker liveness probe.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from devtools.devstack import Stack
from orchestrator.core import broker, enqueue
from tests.helpers import System, start_system, wait_for
from tests.system.console_support import signed_in
from tests.system.resilience_support import (
    assert_one_accepted_submit_each,
    cli,
    events_by_job,
    post_jobs,
    wait_terminal,
)

pytestmark = pytest.mark.integration
RABBITMQ_HOST = "127.0.0.1:5672"
RABBITMQ_ROOT = f"amqp://guest:guest@{RABBITMQ_HOST}//"
RABBITMQ_START_SECONDS = 90.0
JOBS = 12


def rabbitmq_answers() -> bool:
    try:
        broker.ping(RABBITMQ_ROOT)
    except broker.BrokerUnavailable:
        return False
    return True


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    """The machine's RabbitMQ, started if it does not answer."""
    if not rabbitmq_answers():
        if shutil.which("rabbitmq-server") is None:
            pytest.skip("no RabbitMQ on this machine (apt-get install rabbitmq-server)")
        subprocess.run(["rabbitmq-server", "-detached"], check=True, timeout=60)
        wait_for(rabbitmq_answers, RABBITMQ_START_SECONDS, every=1.0, what="RabbitMQ to answer")
    return RABBITMQ_HOST


@pytest.fixture
def vhost_url(rabbitmq: str) -> Iterator[str]:
    """A vhost of this test's own, on which guest may do everything; deleted afterwards."""
    name = f"orch-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{rabbitmq}/{name}"
    finally:
        rabbitmqctl("delete_vhost", name)


@pytest.fixture
def amqp_system(vhost_url: str) -> Iterator[System]:
    stack = Stack(supervise=True)
    try:
        _, redis_url = stack.start_redis()
        stack, system = start_system(redis_url, {"CELERY_BROKER_URL": vhost_url}, stack=stack)
        yield system
    finally:
        stack.stop_all()


def overview(session: requests.Session, system: System) -> dict:
    answer = session.get(f"{system.web}/ops/api/overview", timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_jobs_flow_on_rabbitmq_and_the_console_readyz_watchdog_and_probe_work(
    amqp_system: System,
) -> None:
    system = amqp_system
    _, key = system.new_client("rabbit")
    job_ids = post_jobs(system, key, JOBS, threads=4)
    assert len(job_ids) == JOBS
    assert wait_terminal(system, job_ids, 90, "every job terminal") == {"completed": JOBS}
    assert_one_accepted_submit_each(system, job_ids)

    def all_delivered() -> dict | None:
        events = events_by_job(system, "rabbit")
        return events if set(events) == set(job_ids) else None

    events = wait_for(all_delivered, 60, what="one event per job at the consumer")
    counts = {job: {t: len(ids) for t, ids in types.items()} for job, types in events.items()}
    assert counts == {job: {"job.completed": 1} for job in job_ids}

    ready = requests.get(f"{system.web}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["details"] | {"submissions_paused": False} == {
        "redis": "ok",
        "broker": "ok",
        "submissions_paused": False,
    }

    session = signed_in(system)
    queues = overview(session, system)["queues"]
    assert queues["error"] is None
    assert set(queues["queues"]) == set(enqueue.ALL_QUEUES)
    assert all(isinstance(n, int) for n in queues["queues"].values())
    assert session.get(f"{system.web}/ops/", timeout=30).status_code == 200

    # Every worker's watchdog runs on AMQP (it used to turn itself off off Redis).
    for worker in (*system.orch.workers, system.orch.delivery):
        assert worker is not None and "watchdog: active" in worker.log(), worker.log()[-2000:]

    probe = cli(system, "worker", "ping", "--json")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    print(f"\nrabbitmq: {JOBS} jobs completed, one event and one charge each; probe {probe.stdout}")


def test_the_console_shows_a_backlog_waiting_on_rabbitmq(amqp_system: System) -> None:
    """With the delivery worker stopped, completed jobs' events wait in RabbitMQ's delivery
    queue: the console counts them (a passive declare through kombu), then they drain."""
    system = amqp_system
    stack, orch = system.orch.stack, system.orch
    assert orch.delivery is not None
    stack.stop(orch.delivery)
    _, key = system.new_client("backlog")
    job_ids = post_jobs(system, key, 5, threads=5)
    assert wait_terminal(system, job_ids, 90, "jobs terminal") == {"completed": 5}
    session = signed_in(system)

    def backlog() -> int:
        return int(overview(session, system)["queues"]["queues"][enqueue.QUEUE_DELIVERY])

    wait_for(lambda: backlog() >= len(job_ids), 30, what="the delivery backlog")
    waiting = backlog()
    orch.start_delivery_worker()
    started = time.monotonic()
    wait_for(lambda: len(events_by_job(system, "backlog")) == len(job_ids), 60, what="drained")
    wait_for(lambda: backlog() == 0, 30, what="an empty delivery queue")
    print(
        f"\nrabbitmq backlog: {waiting} delivery message(s) shown waiting; drained "
        f"{time.monotonic() - started:.1f} s after the delivery worker came back"
    )
