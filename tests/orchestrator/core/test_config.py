"""Configuration: defaults per API.md, and every bad value named in one ConfigError."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devtools.devstack import base_env
from orchestrator.core.config import (
    MAX_DELIVERY_TIMEOUT_SECONDS,
    ConfigError,
    Settings,
    load_settings,
    secret_values,
)
from tests.helpers import SYSTEM_ENV
from tests.system.resilience_support import RESILIENT_ENV

# tests/system/test_resilience.py's limiter test: a longer submit timeout than RESILIENT_ENV's.
LIMITER_ENV = {
    "ORCHESTRATOR_SUBMIT_TIMEOUT_SECONDS": "5",
    "ORCHESTRATOR_UNKNOWN_GRACE_SECONDS": "13",
}

BASE = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "PIXAZO_API_KEY": "pk-123",
    "PUBLIC_BASE_URL": "https://orch.example.com",
    "ORCHESTRATOR_SECRET_KEY": "x" * 32,
}


def load(**changes: str) -> Settings:
    env = {**BASE, **changes}
    return load_settings({k: v for k, v in env.items() if v is not None})


def test_defaults_per_the_contract():
    s = load()
    assert s.broker_url == BASE["REDIS_URL"]
    assert s.pixazo_base_url == "https://gateway.pixazo.ai"
    assert s.pixazo_webhook_mode == "terminal"
    assert s.allow_http is False
    assert s.stuck_after_seconds == 300
    assert s.job_deadline_seconds == 3600
    assert s.delivery_retry_schedule == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert s.sentry_dsn == ""


def test_values_are_read():
    s = load(
        CELERY_BROKER_URL="redis://127.0.0.1:6380/1",
        PIXAZO_BASE_URL="http://sim:9000/",
        PIXAZO_WEBHOOK_MODE="sync",
        ORCHESTRATOR_STUCK_AFTER_SECONDS="10",
        ORCHESTRATOR_JOB_DEADLINE_SECONDS="20",
        ORCHESTRATOR_DELIVERY_RETRY_SCHEDULE="0, 1,2",
        SENTRY_DSN="https://k@sentry.example/1",
    )
    assert s.broker_url.endswith("/1") and s.pixazo_base_url == "http://sim:9000"
    assert s.pixazo_webhook_mode == "sync" and s.stuck_after_seconds == 10
    assert s.job_deadline_seconds == 20 and s.delivery_retry_schedule == (0, 1, 2)
    assert s.sentry_dsn.startswith("https://")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_URL", ""),
        ("REDIS_URL", "http://localhost"),
        ("PIXAZO_BASE_URL", "ftp://x"),
        ("PIXAZO_BASE_URL", "not a url"),
        ("PIXAZO_WEBHOOK_MODE", "always"),
        ("PIXAZO_API_KEY", ""),
        ("PUBLIC_BASE_URL", ""),
        ("PUBLIC_BASE_URL", "http://orch.example.com"),
        ("PUBLIC_BASE_URL", "https://127.0.0.1"),
        ("PUBLIC_BASE_URL", "https://localhost"),
        ("PUBLIC_BASE_URL", "orch.example.com"),
        ("ORCHESTRATOR_SECRET_KEY", ""),
        ("ORCHESTRATOR_SECRET_KEY", "short"),
        ("ORCHESTRATOR_ALLOW_HTTP", "maybe"),
        ("ORCHESTRATOR_TESTING", "maybe"),
        ("ORCHESTRATOR_TASK_EVENTS", "maybe"),
        ("ORCHESTRATOR_STUCK_AFTER_SECONDS", "soon"),
        ("ORCHESTRATOR_STUCK_AFTER_SECONDS", "0"),
        ("ORCHESTRATOR_JOB_DEADLINE_SECONDS", "-5"),
        ("ORCHESTRATOR_JOB_DEADLINE_SECONDS", "100"),  # not longer than STUCK_AFTER (300)
        ("ORCHESTRATOR_DELIVERY_RETRY_SCHEDULE", "0,five"),
        ("ORCHESTRATOR_DELIVERY_RETRY_SCHEDULE", ","),
        ("ORCHESTRATOR_DELIVERY_RETRY_SCHEDULE", "1,-1"),
        ("ORCHESTRATOR_SUBMIT_RETRY_SCHEDULE", "x"),
        ("ORCHESTRATOR_POLL_SCHEDULE", "1.5"),
        ("ORCHESTRATOR_UNKNOWN_GRACE_SECONDS", "0"),
        ("ORCHESTRATOR_BALANCE_PROBE_SECONDS", "0"),
        ("ORCHESTRATOR_SUBMIT_RATE_PER_SECOND", "fast"),
        ("ORCHESTRATOR_SUBMIT_CONCURRENCY", "0"),
        ("ORCHESTRATOR_SUBMIT_TIMEOUT_SECONDS", "0"),
        ("ORCHESTRATOR_DELIVERY_TIMEOUT_SECONDS", "x"),
        ("ORCHESTRATOR_RECONCILE_INTERVAL_SECONDS", "0"),
        ("ORCHESTRATOR_RECONCILE_BATCH_SIZE", "0"),
        ("ORCHESTRATOR_JOB_RETENTION_DAYS", "0"),
        ("ORCHESTRATOR_MAX_BODY_BYTES", "10"),
        ("ORCHESTRATOR_CLIENT_RATE_LIMIT_PER_MINUTE", "lots"),
        ("ORCHESTRATOR_UNKNOWN_GRACE_SECONDS", "30"),  # not longer than the submit timeout
        ("ORCHESTRATOR_UNKNOWN_GRACE_SECONDS", "37"),  # = 30 + connect 5 + margin 2
        ("ORCHESTRATOR_DELIVERY_TIMEOUT_SECONDS", "301"),
        ("ORCHESTRATOR_DELIVERY_TIMEOUT_SECONDS", "inf"),
        ("ORCHESTRATOR_DELIVERY_TIMEOUT_SECONDS", "nan"),
        ("ORCHESTRATOR_SUBMIT_TIMEOUT_SECONDS", "nan"),
    ],
)
def test_bad_value_names_the_variable(variable, value):
    with pytest.raises(ConfigError) as info:
        load(**{variable: value})
    assert info.value.variable == variable
    assert str(info.value).startswith(f"{variable}: ")
    assert "\n" not in str(info.value)


def test_the_grace_must_outlast_a_submit_that_may_still_be_answered():
    """A late answer must never race a resubmit: the grace is checked against the submit
    timeout it was given with, and the error names the grace."""
    assert load(ORCHESTRATOR_UNKNOWN_GRACE_SECONDS="38").unknown_grace_seconds == 38
    s = load(ORCHESTRATOR_SUBMIT_TIMEOUT_SECONDS="1", ORCHESTRATOR_UNKNOWN_GRACE_SECONDS="9")
    assert s.unknown_grace_seconds == 9
    with pytest.raises(ConfigError) as info:
        load(ORCHESTRATOR_SUBMIT_TIMEOUT_SECONDS="1000")  # the default grace is 900
    assert info.value.variable == "ORCHESTRATOR_UNKNOWN_GRACE_SECONDS"
    assert "ORCHESTRATOR_SUBMIT_TIMEOUT_SECONDS" in str(info.value)


def test_delivery_timeout_has_an_upper_bound():
    assert load(ORCHESTRATOR_DELIVERY_TIMEOUT_SECONDS="300").delivery_timeout_seconds == 300
    assert MAX_DELIVERY_TIMEOUT_SECONDS == 300


def test_the_test_systems_env_is_valid():
    """The env every system test starts its processes with (and the dedicated systems' own
    timings on top of it) passes start-up validation."""
    base = base_env("redis://127.0.0.1:6379/14")
    for extra in ({}, RESILIENT_ENV, {**RESILIENT_ENV, **LIMITER_ENV}):
        load_settings({**base, **SYSTEM_ENV, **extra})


def test_bad_value_never_echoes_a_secret():
    with pytest.raises(ConfigError) as info:
        load(ORCHESTRATOR_SECRET_KEY="tiny-secret")
    assert "tiny-secret" not in str(info.value)


def test_allow_http_permits_http_and_loopback_public_base_url():
    s = load(ORCHESTRATOR_ALLOW_HTTP="1", PUBLIC_BASE_URL="http://127.0.0.1:8000/")
    assert s.allow_http and s.public_base_url == "http://127.0.0.1:8000"


def test_upstream_settings_optional_only_when_not_required():
    env = {"REDIS_URL": BASE["REDIS_URL"]}
    assert load_settings(env, require_upstream=False).pixazo_api_key == ""
    with pytest.raises(ConfigError):
        load_settings(env)


def test_secrets_are_not_in_repr_and_are_listed():
    s = load(SENTRY_DSN="https://key@sentry.example/1")
    text = repr(s)
    for secret in ("pk-123", "x" * 32, "https://key@sentry.example/1"):
        assert secret not in text
        assert secret in secret_values(s)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ORCHESTRATOR_SECRET_KEY", "short"),
        ("PUBLIC_BASE_URL", "http://orch.example.com"),
        ("ORCHESTRATOR_STUCK_AFTER_SECONDS", "soon"),
    ],
)
def test_the_cli_stops_with_one_line_naming_the_variable(variable, value):
    env = {k: v for k, v in os.environ.items() if k not in BASE and not k.startswith("ORCH")}
    env.update({**BASE, "REDIS_URL": "redis://127.0.0.1:1/0", variable: value})
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "clients", "create", "x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and variable in lines[0], result.stderr
    assert "Traceback" not in result.stderr
