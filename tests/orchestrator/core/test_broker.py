"""Queue depths and reachability through kombu, on any transport (here kombu's in-memory one;
tests/system/test_rabbitmq.py and test_sentinel.py ask RabbitMQ and Redis for real)."""

from __future__ import annotations

import uuid

import pytest
from kombu import Connection, Queue

from orchestrator.core import broker


def test_depths_count_waiting_messages_and_undeclared_queues_are_empty():
    full, other, never = (f"q-{uuid.uuid4().hex[:8]}" for _ in range(3))
    with Connection("memory://") as conn:
        producer = conn.Producer()
        for name, n in ((full, 3), (other, 1)):
            queue = Queue(name)
            queue(conn.default_channel).declare()
            for i in range(n):
                producer.publish({"i": i}, routing_key=name)
    assert broker.queue_depths("memory://", [full, never, other]) == {
        full: 3,
        never: 0,
        other: 1,
    }


@pytest.mark.parametrize(
    "url",
    [
        "redis://:topsecret@127.0.0.1:1/0",
        "amqp://guest:topsecret@127.0.0.1:1//",
        "redis+sentinel://:topsecret@127.0.0.1:1/mymaster",
    ],
)
def test_an_unreachable_broker_raises_broker_unavailable_without_the_url(url):
    with pytest.raises(broker.BrokerUnavailable) as caught:
        broker.queue_depths(url, ["submit"])
    assert "topsecret" not in str(caught.value) and "unreachable" in str(caught.value)
    with pytest.raises(broker.BrokerUnavailable):
        broker.ping(url)


def test_ping_returns_when_the_broker_answers():
    broker.ping("memory://")
