"""``/readyz`` checks the store and the broker, and a 503 names the one that is down."""

from __future__ import annotations

import pytest
import redis

from orchestrator.core import broker
from orchestrator.services import EXTENSION_NAME

AMQP = "amqp://guest:guest@rabbit.internal:5672//"


@pytest.fixture
def amqp_app(app, svc):
    """The app of a deployment whose broker is RabbitMQ (the store stays fakeredis)."""
    svc.settings = svc.settings.with_overrides(broker_url=AMQP)
    app.extensions[EXTENSION_NAME] = svc
    return app


def test_ready_when_store_and_a_separate_broker_answer(amqp_app, monkeypatch):
    asked = []
    monkeypatch.setattr(broker, "ping", asked.append)
    answer = amqp_app.test_client().get("/readyz")
    assert answer.status_code == 200
    details = answer.get_json()["details"]
    assert (details["redis"], details["broker"], details["submissions_paused"]) == (
        "ok",
        "ok",
        False,
    )
    assert asked == [AMQP]


def test_503_names_the_broker_when_only_the_broker_is_down(amqp_app, monkeypatch):
    def down(url: str) -> None:
        raise broker.BrokerUnavailable("broker unreachable (ConnectionRefusedError)")

    monkeypatch.setattr(broker, "ping", down)
    answer = amqp_app.test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json() == {
        "status": "unavailable",
        "details": {"redis": "ok", "broker": "unreachable"},
    }
    assert "guest" not in answer.get_data(as_text=True)


def test_503_names_the_store_when_only_the_store_is_down(amqp_app, svc, monkeypatch):
    def down() -> None:
        raise redis.ConnectionError("down")

    monkeypatch.setattr(svc.redis, "ping", down)
    monkeypatch.setattr(broker, "ping", lambda url: None)
    answer = amqp_app.test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["details"] == {"redis": "unreachable", "broker": "ok"}


def test_a_broker_that_is_the_store_is_not_asked_twice(app, svc, monkeypatch):
    def never(url: str) -> None:
        raise AssertionError("the store's own Redis was just pinged")

    monkeypatch.setattr(broker, "ping", never)
    assert svc.settings.broker_url == svc.settings.redis_url
    answer = app.test_client().get("/readyz")
    assert answer.status_code == 200 and answer.get_json()["details"]["broker"] == "ok"
