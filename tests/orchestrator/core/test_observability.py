"""Secrets never survive Sentry's before_send or the log filter."""

from __future__ import annotations

import json
import logging

import pytest

from orchestrator.core.clients import ClientStore
from orchestrator.core.config import secret_values
from orchestrator.core.observability import REDACTED, SecretFilter, scrub_event
from orchestrator.core.tokens import callback_url


@pytest.fixture
def secrets_in_play(svc, fake_redis):
    client, api_key = ClientStore(fake_redis).create("acme")
    url = callback_url(
        "https://o.example", svc.settings.secret_key, "job_01abcdefghjkmnpqrstvwxyz00"
    )
    token = url.rsplit("/", 1)[1]
    return {
        "pixazo": svc.settings.pixazo_api_key,
        "api_key": api_key,
        "whsec": client.webhook_secrets[0],
        "token": token,
        "secret_key": svc.settings.secret_key,
        "url": url,
    }


def test_scrub_event_removes_every_secret(svc, secrets_in_play):
    s = secrets_in_play
    event = {
        "message": f"submit failed with key {s['pixazo']} for {s['url']}",
        "request": {
            "headers": {
                "Authorization": f"Bearer {s['api_key']}",
                "Ocp-Apim-Subscription-Key": s["pixazo"],
                "X-Webhook-URL": s["url"],
            },
            "url": s["url"],
            "data": {"secret": s["whsec"]},
        },
        "extra": {"nested": [f"key={s['api_key']}", s["secret_key"], {"w": s["whsec"]}]},
        "exception": {"values": [{"value": f"boom {s['whsec']} {s['token']}"}]},
    }
    cleaned = json.dumps(scrub_event(event, secret_values(svc.settings)))
    for name in ("pixazo", "api_key", "whsec", "token", "secret_key"):
        assert s[name] not in cleaned, name
    assert REDACTED in cleaned
    assert "/webhooks/pixazo/job_01abcdefghjkmnpqrstvwxyz00/" in cleaned  # the id stays useful


def test_scrub_event_without_configured_secrets_still_catches_shapes(secrets_in_play):
    s = secrets_in_play
    cleaned = json.dumps(scrub_event({"m": f"{s['api_key']} {s['whsec']} {s['url']}"}, []))
    for name in ("api_key", "whsec", "token"):
        assert s[name] not in cleaned, name


def test_log_filter_scrubs_messages_and_args(svc, secrets_in_play, caplog):
    s = secrets_in_play
    logger = logging.getLogger("test.scrub")
    caplog.handler.addFilter(SecretFilter(secret_values(svc.settings)))
    with caplog.at_level(logging.INFO, logger="test.scrub"):
        logger.info("pixazo key %s", s["pixazo"])
        logger.info("client %s secret %s", s["api_key"], s["whsec"])
        logger.warning(f"callback to {s['url']} with {s['secret_key']}")
    text = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    for name in ("pixazo", "api_key", "whsec", "token", "secret_key"):
        assert s[name] not in text, name
    assert text.count(REDACTED) >= 5


def test_log_filter_scrubs_tracebacks(svc, secrets_in_play):
    s = secrets_in_play
    logger = logging.getLogger("test.scrub.tb")
    logger.propagate = False
    stream = __import__("io").StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretFilter(secret_values(svc.settings)))
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"upstream said {s['pixazo']} {s['whsec']} {s['url']}")
        except RuntimeError:
            logger.exception("failed for %s", s["api_key"])
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "RuntimeError" in text
    for name in ("pixazo", "api_key", "whsec", "token"):
        assert s[name] not in text, name


def test_bare_callback_token_is_scrubbed(secrets_in_play):
    s = secrets_in_play
    cleaned = json.dumps(scrub_event({"m": f"token={s['token']}"}, []))
    assert s["token"] not in cleaned
