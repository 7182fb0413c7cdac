"""Celery's broker, RedBeat's lock and Celery's own tools, from one configured URL each."""

from __future__ import annotations

from orchestrator import celery_app
from tests.helpers import make_settings

SENTINEL = "redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/3"
AMQP = "amqp://guest:guest@127.0.0.1:5672/orch"


def test_a_sentinel_broker_becomes_kombus_sentinel_transport_with_its_master_name():
    config = celery_app.celery_config(make_settings(redis_url=SENTINEL, broker_url=SENTINEL))
    assert config["broker_url"] == "sentinel://:pw@127.0.0.1:26379/3;sentinel://127.0.0.1:26380"
    assert config["broker_transport_options"]["master_name"] == "mymaster"
    assert config["broker_transport_options"]["visibility_timeout"] > 0
    assert config[celery_app.BROKER_URL_CONF] == SENTINEL


def test_redbeats_lock_follows_the_sentinel_primary_of_the_store():
    config = celery_app.celery_config(make_settings(redis_url=SENTINEL, broker_url=AMQP))
    assert config["redbeat_redis_url"].startswith("redis-sentinel")
    options = config["redbeat_redis_options"]
    assert options["sentinels"] == [("127.0.0.1", 26379), ("127.0.0.1", 26380)]
    assert (options["service_name"], options["db"]) == ("mymaster", 3)


def test_rabbitmq_and_plain_redis_urls_pass_unchanged():
    config = celery_app.celery_config(make_settings(broker_url=AMQP))
    assert config["broker_url"] == AMQP
    assert "master_name" not in config["broker_transport_options"]
    assert config["redbeat_redis_url"] == make_settings().redis_url
    assert config["redbeat_redis_options"] == {}  # never the broker's transport options


def test_task_events_wait_for_a_monitor_unless_configured_on():
    """Off by default (Flower turns them on with ``enable_events``); remote control always on."""
    config = celery_app.celery_config(make_settings())
    assert config["worker_enable_remote_control"] is True
    assert config["worker_send_task_events"] is False
    assert config["task_send_sent_event"] is False


def test_orchestrator_task_events_sends_them_from_start_up():
    config = celery_app.celery_config(make_settings(task_events=True))
    assert config["worker_enable_remote_control"] is True
    assert config["worker_send_task_events"] is True
    assert config["task_send_sent_event"] is True
