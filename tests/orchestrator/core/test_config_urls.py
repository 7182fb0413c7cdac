"""REDIS_URL and CELERY_BROKER_URL: every Redis form (Sentinel included), and RabbitMQ for the
broker; a bad URL names the variable and never echoes a password."""

from __future__ import annotations

import pytest

from orchestrator.core.config import ConfigError, Settings, load_settings

BASE = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "PIXAZO_API_KEY": "pk-123",
    "PUBLIC_BASE_URL": "https://orch.example.com",
    "ORCHESTRATOR_SECRET_KEY": "x" * 32,
}
SENTINEL = "redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/1"


def load(**changes: str) -> Settings:
    return load_settings({**BASE, **changes})


@pytest.mark.parametrize(
    "broker",
    [
        "amqp://guest:guest@127.0.0.1:5672//",
        "amqps://user:pw@rabbit.example.com:5671/orch",
        "redis://127.0.0.1:6380/1",
        SENTINEL,
    ],
)
def test_the_broker_may_be_rabbitmq_or_any_redis_form(broker):
    assert load(CELERY_BROKER_URL=broker).broker_url == broker


def test_the_store_may_be_a_sentinel_primary_and_the_broker_follows_it():
    settings = load(REDIS_URL=SENTINEL)
    assert settings.redis_url == settings.broker_url == SENTINEL


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_URL", "amqp://guest:guest@127.0.0.1:5672//"),  # RabbitMQ is no store
        ("REDIS_URL", "redis+sentinel://:topsecret@127.0.0.1:26379/"),
        ("REDIS_URL", "redis+sentinel://:topsecret@127.0.0.1:x/m"),
        ("CELERY_BROKER_URL", "http://:topsecret@127.0.0.1/"),
        ("CELERY_BROKER_URL", "redis+sentinel://:topsecret@h:1/m/db"),
    ],
)
def test_bad_urls_name_the_variable_and_hide_the_password(variable, value):
    with pytest.raises(ConfigError) as caught:
        load(**{variable: value})
    assert caught.value.variable == variable
    assert "topsecret" not in str(caught.value)
