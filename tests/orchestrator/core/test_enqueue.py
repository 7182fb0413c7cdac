"""enqueue.send: routes each task to its queue, with the options its kind needs, on a producer
kept from one send to the next (a real Celery app on kombu's in-memory broker shows what is
published)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery, _state
from kombu import Connection
from kombu import messaging as kombu_messaging
from kombu.exceptions import OperationalError

from orchestrator.core import enqueue


class _Connection:
    def __init__(self) -> None:
        self.declared_entities: set[int] = set()
        self.released = 0

    def release(self) -> None:
        self.released += 1


class _Producer:
    def __init__(self, connection: _Connection | None = None) -> None:
        self.connection = connection or _Connection()
        self.released = 0

    def release(self) -> None:
        self.released += 1


class _Pool:
    def __init__(self) -> None:
        self.taken: list[_Producer] = []

    def acquire(self, block: bool) -> _Producer:
        self.taken.append(_Producer())
        return self.taken[-1]


class _Queues(dict):
    """Celery's queues make a queue for any name asked; here the queue is its name."""

    def __missing__(self, name: str) -> str:
        return name


class _Amqp:
    Producer = _Producer
    queues = _Queues()


class _Conf:
    broker_pool_limit: int | None = 10


class _Celery:
    def __init__(self) -> None:
        self.conf = _Conf()
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.producer_pool = _Pool()
        self.amqp = _Amqp()
        self.connections: list[_Connection] = []

    def _get_current_object(self) -> _Celery:
        return self

    def connection_for_write(self) -> _Connection:
        self.connections.append(_Connection())
        return self.connections[-1]

    def send_task(self, name: str, **options: Any) -> None:
        self.sent.append((name, options))


@pytest.fixture
def celery(monkeypatch) -> _Celery:
    fake = _Celery()
    monkeypatch.setattr(enqueue, "current_celery", fake)
    monkeypatch.setattr(enqueue, "_KEPT", enqueue._KeptProducers())
    return fake


def test_a_reconcile_batch_goes_to_the_reconcile_queue_and_expires(celery) -> None:
    assert enqueue.reconcile_batch("polls")
    [(name, options)] = celery.sent
    assert name == enqueue.RECONCILE_BATCH
    producer = options.pop("producer")
    assert isinstance(producer, _Producer) and producer.connection is celery.connections[0]
    assert options == {
        "args": ["polls"],
        "queue": enqueue.QUEUE_RECONCILE,
        "expires": enqueue.RECONCILE_BATCH_EXPIRES_SECONDS,
    }


@pytest.mark.parametrize(
    ("send", "task", "queue"),
    [
        (enqueue.poll, enqueue.POLL, enqueue.QUEUE_POLL),
        (enqueue.deliver, enqueue.DELIVER, enqueue.QUEUE_DELIVERY),
    ],
)
def test_other_tasks_carry_only_their_queue(celery, send, task, queue) -> None:
    assert send("job_a")
    [(name, options)] = celery.sent
    options.pop("producer")
    assert (name, options) == (task, {"args": ["job_a"], "queue": queue})


def test_sends_inside_one_producer_share_one_producer_and_release_it(celery) -> None:
    with enqueue.one_producer():
        assert enqueue.poll("job_a")
        assert enqueue.deliver("evt_a")
    [producer] = celery.producer_pool.taken
    assert [options["producer"] for _, options in celery.sent] == [producer, producer]
    assert producer.released == 1
    assert enqueue.poll("job_b")  # outside: a kept producer, not the pool's
    assert celery.sent[-1][1]["producer"] is not producer
    assert len(celery.producer_pool.taken) == 1


def test_one_producer_takes_nothing_when_nothing_is_sent(celery) -> None:
    with enqueue.one_producer():
        pass
    assert celery.producer_pool.taken == []
    assert celery.connections == []


def test_sends_one_after_another_keep_one_producer_on_one_connection(celery) -> None:
    for job_id in ("job_a", "job_b", "job_c"):
        assert enqueue.submit(job_id)
    producers = {id(options["producer"]) for _, options in celery.sent}
    assert len(producers) == 1 and len(celery.connections) == 1


def test_sends_at_once_take_a_producer_each_and_keep_both(celery) -> None:
    with enqueue._KEPT.taken() as held:  # a send under way in another thread
        assert enqueue.submit("job_a")
    assert celery.sent[0][1]["producer"] is not held
    assert len(celery.connections) == 2
    for job_id in ("job_b", "job_c"):
        assert enqueue.submit(job_id)
    assert len(celery.connections) == 2


def test_beyond_the_pool_limit_a_send_takes_celerys_pool_as_before(celery) -> None:
    """At most ``broker_pool_limit`` kept producers (the connections Celery's pool would have
    opened): a thread pool wider than that does not open a connection per thread."""
    celery.conf.broker_pool_limit = 2
    with enqueue._KEPT.taken(), enqueue._KEPT.taken():  # two sends under way
        assert enqueue.submit("job_a")
    assert "producer" not in celery.sent[0][1] and len(celery.connections) == 2
    assert enqueue.submit("job_b")
    assert celery.sent[1][1]["producer"].connection in celery.connections
    assert len(celery.connections) == 2


@pytest.mark.parametrize("limit", [0, None])
def test_a_pool_limit_of_none_keeps_the_default_number(celery, limit) -> None:
    celery.conf.broker_pool_limit = limit
    assert enqueue._limit(celery) == enqueue.DEFAULT_KEPT_PRODUCERS


def test_a_producer_whose_send_failed_is_closed_not_kept(celery, monkeypatch, caplog) -> None:
    def refuse(name: str, **options: Any) -> None:
        raise OperationalError("broker away")

    monkeypatch.setattr(celery, "send_task", refuse)
    assert enqueue.submit("job_a") is False
    assert "could not enqueue" in caplog.text
    assert celery.connections[0].released == 1
    monkeypatch.undo()
    monkeypatch.setattr(enqueue, "current_celery", celery)
    assert enqueue.submit("job_b")
    assert celery.sent[-1][1]["producer"].connection is celery.connections[1]


def test_a_declared_queue_is_not_declared_again_on_that_connection(celery) -> None:
    assert enqueue.submit("job_a")
    assert "declare" not in celery.sent[0][1]
    connection = celery.sent[0][1]["producer"].connection
    connection.declared_entities.add(hash(enqueue.QUEUE_SUBMIT))  # what kombu's declare does
    assert enqueue.submit("job_b")
    assert celery.sent[1][1]["declare"] == []
    assert enqueue.poll("job_c")  # another queue: not declared on that connection yet
    assert "declare" not in celery.sent[2][1]


def test_a_new_app_or_a_fork_starts_from_no_producers(celery, monkeypatch) -> None:
    assert enqueue.submit("job_a")
    other = _Celery()
    monkeypatch.setattr(enqueue, "current_celery", other)
    assert enqueue.submit("job_b")
    assert celery.connections[0].released == 1  # the old app's producer, closed
    enqueue._KEPT.forget()
    assert enqueue.submit("job_c")
    assert len(other.connections) == 2 and other.connections[0].released == 0


# ----------------------------------------------------------------- a real app, in-memory broker


@pytest.fixture
def memory_app() -> Iterator[Celery]:
    """The current and default app (threads other than the test's see the default one)."""
    app = Celery("enqueue-test", broker="memory://", set_as_current=False)
    app.conf.task_routes = enqueue.ROUTES
    previous, previous_default = enqueue.current_celery._get_current_object(), _state.default_app
    kept = enqueue._KEPT
    enqueue._KEPT = enqueue._KeptProducers()
    app.set_current()
    app.set_default()
    try:
        yield app
    finally:
        previous.set_current()
        _state.default_app = previous_default
        enqueue._KEPT = kept


def _messages(queue: str) -> list[Any]:
    with Connection("memory://") as conn:
        channel = conn.default_channel
        found = []
        while (message := channel.basic_get(queue)) is not None:
            found.append(message)
        return found


def test_what_a_kept_producer_publishes_is_what_celery_sends(memory_app, monkeypatch) -> None:
    """Same headers, properties and body as Celery's own send_task on its pooled producer."""
    declares: list[Any] = []
    real_declare = kombu_messaging.Producer.maybe_declare

    def counted(self: Any, entity: Any, retry: bool = False, **policy: Any) -> Any:
        declares.append(entity)
        return real_declare(self, entity, retry, **policy)

    monkeypatch.setattr(kombu_messaging.Producer, "maybe_declare", counted)
    for job_id in ("job_a", "job_b", "job_c"):
        assert enqueue.submit(job_id)
    assert len(declares) == 1  # the first publish on the kept connection declares the queue
    memory_app.send_task(enqueue.SUBMIT, args=["job_d"], queue=enqueue.QUEUE_SUBMIT)
    messages = _messages(enqueue.QUEUE_SUBMIT)
    assert [m.headers["task"] for m in messages] == [enqueue.SUBMIT] * 4
    assert [m.decode()[0] for m in messages] == [["job_a"], ["job_b"], ["job_c"], ["job_d"]]
    assert {frozenset(m.headers) for m in messages} == {frozenset(messages[-1].headers)}
    assert {frozenset(m.properties) - {"delivery_tag"} for m in messages} == {
        frozenset(messages[-1].properties) - {"delivery_tag"}
    }
    assert [m.delivery_info["routing_key"] for m in messages] == [enqueue.QUEUE_SUBMIT] * 4


def test_threads_sending_at_once_each_publish_whole(memory_app) -> None:
    sent: list[bool] = []
    threads = [
        threading.Thread(target=lambda i=i: sent.append(enqueue.poll(f"job_{i}"))) for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sent == [True] * 8
    args = sorted(m.decode()[0][0] for m in _messages(enqueue.QUEUE_POLL))
    assert args == sorted(f"job_{i}" for i in range(8))
