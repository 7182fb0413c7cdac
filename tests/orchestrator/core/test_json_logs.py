"""LOG_FORMAT=json: one JSON object a line, carrying the job, client, HTTP request and Celery
task it is about, with every secret still scrubbed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from orchestrator.celery_app import _bind_task_context, _clear_task_context
from orchestrator.core import logcontext
from orchestrator.core.config import ConfigError, load_settings, secret_values
from orchestrator.core.observability import (
    REDACTED,
    ScrubbingJsonFormatter,
    SecretFilter,
    configure_logging,
)
from orchestrator.core.tokens import callback_url

ENV = {
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "PIXAZO_API_KEY": "k-123456789",
    "PUBLIC_BASE_URL": "https://o.example",
    "ORCHESTRATOR_SECRET_KEY": "0123456789abcdef0123",
}


class Lines:
    """A handler set up as configure_logging sets up root's, writing into a buffer."""

    def __init__(self, secrets: list[str]) -> None:
        self.buffer = io.StringIO()
        self.handler = logging.StreamHandler(self.buffer)
        self.handler.addFilter(logcontext.ContextFilter())
        self.handler.addFilter(SecretFilter(secrets))
        self.handler.setFormatter(ScrubbingJsonFormatter(secrets))

    def read(self) -> list[dict]:
        return [json.loads(line) for line in self.buffer.getvalue().splitlines()]


@pytest.fixture
def lines(settings) -> Iterator[Lines]:
    captured = Lines(secret_values(settings))
    logger = logging.getLogger("test.json_logs")
    logger.addHandler(captured.handler)
    logger.setLevel(logging.INFO)
    logcontext.clear()
    yield captured
    logger.removeHandler(captured.handler)
    logcontext.clear()


def test_log_format_defaults_to_text_and_accepts_json():
    assert load_settings(ENV).log_format == "text"
    assert load_settings({**ENV, "LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError) as err:
        load_settings({**ENV, "LOG_FORMAT": "xml"})
    assert err.value.variable == "LOG_FORMAT"


def test_a_line_carries_the_context_that_was_bound(lines):
    logcontext.bind(job_id="job_1", client_id="cli_1", request_id="req_1")
    logging.getLogger("test.json_logs").info("submitted %s", "ok")
    [line] = lines.read()
    assert line["message"] == "submitted ok" and line["level"] == "INFO"
    assert line["logger"] == "test.json_logs" and line["time"]
    assert (line["job_id"], line["client_id"], line["request_id"]) == ("job_1", "cli_1", "req_1")


def test_a_celery_task_names_itself_and_its_job(lines):
    job_id = "job_01abcdefghjkmnpqrstvwxyz00"
    task = SimpleNamespace(name="workers.submit.submit_job")
    _bind_task_context(task_id="c0ffee-1", task=task, args=(job_id,))
    logging.getLogger("test.json_logs").info("in the task")
    _clear_task_context()
    logging.getLogger("test.json_logs").info("after it")
    first, after = lines.read()
    assert first["task_name"] == "workers.submit.submit_job" and first["task_id"] == "c0ffee-1"
    assert first["job_id"] == job_id
    assert not {"task_name", "task_id", "job_id"} & set(after)


def test_secrets_are_scrubbed_from_message_extra_and_traceback(lines, settings):
    url = callback_url("https://o.example", settings.secret_key, "job_01abcdefghjkmnpqrstvwxyz00")
    log = logging.getLogger("test.json_logs")
    log.info("calling back %s with %s", url, settings.pixazo_api_key)
    log.info("extra", extra={"detail": f"key={settings.pixazo_api_key}"})
    try:
        raise RuntimeError(f"boom {settings.secret_key}")
    except RuntimeError:
        log.exception("failed")
    raw = lines.buffer.getvalue()
    assert settings.pixazo_api_key not in raw and settings.secret_key not in raw
    assert url.rsplit("/", 1)[1] not in raw
    message, extra, failed = lines.read()
    assert REDACTED in message["message"] and extra["detail"] == f"key={REDACTED}"
    assert "RuntimeError" in failed["exc_info"] and REDACTED in failed["exc_info"]


def test_an_http_request_logs_its_request_id_and_job(settings, svc):
    from orchestrator.app import create_app
    from orchestrator.services import EXTENSION_NAME

    app = create_app(settings)
    app.extensions[EXTENSION_NAME] = svc

    @app.get("/v1/jobs/<job_id>/probe")
    def probe(job_id: str) -> str:
        logging.getLogger("test.json_logs").info("handling")
        return "ok"

    captured = Lines(secret_values(settings))
    logger = logging.getLogger("test.json_logs")
    logger.addHandler(captured.handler)
    try:
        job_id = "job_01abcdefghjkmnpqrstvwxyz00"
        answer = app.test_client().get(f"/v1/jobs/{job_id}/probe", headers={"X-Request-Id": "r-9"})
    finally:
        logger.removeHandler(captured.handler)
    [line] = captured.read()
    assert answer.headers["Request-Id"] == "r-9"
    assert line["request_id"] == "r-9" and line["job_id"] == job_id
    assert logcontext.current() == {}  # the request's context ends with it


def test_configure_logging_json_formats_the_root_handlers(settings):
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    try:
        configure_logging(settings.with_overrides(log_format="json"))
        assert isinstance(handler.formatter, ScrubbingJsonFormatter)
        assert any(isinstance(f, logcontext.ContextFilter) for f in handler.filters)
        assert any(isinstance(f, SecretFilter) for f in handler.filters)
    finally:
        root.removeHandler(handler)
