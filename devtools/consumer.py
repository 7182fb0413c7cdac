"""A downstream consumer for demos and tests: verifies Standard Webhooks signatures, records every
attempt, and misbehaves on request (fail first n, fixed status, slow, down) so the orchestrator's
delivery retries can be watched end to end."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import click
from flask import Flask, Response, jsonify, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devtools.sim.serving import quiet_request_log, serve_until_signalled
from orchestrator.core.clock import iso

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8091
BANNER = "consumer"
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
STATUS_OK = 200
STATUS_BAD_SIGNATURE = 400
STATUS_FAIL_FIRST = 500
STATUS_DOWN = 503
MIN_HTTP_STATUS = 100
MAX_HTTP_STATUS = 599


@dataclass
class Behaviour:
    """How one hook name answers; every field is optional so the default is a healthy 200."""

    fail_first: int = 0
    status: int | None = None
    delay_seconds: float = 0.0
    retry_after: float | None = None
    down: bool = False
    secret: str | None = None

    def updated(self, changes: dict[str, Any]) -> Behaviour:
        values = {**vars(self)}
        for name, value in changes.items():
            if name not in values:
                raise ValueError(f"unknown setting {name!r}")
            _check_setting(name, value)
            values[name] = value
        return Behaviour(**values)

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "secret": None if self.secret is None else "whsec_…"}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _valid_secret(value: Any) -> bool:
    try:
        Webhook(value)
    except Exception:
        return False
    return True


def _check_setting(name: str, value: Any) -> None:
    ok = {
        "fail_first": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "status": lambda v: (
            v is None or (isinstance(v, int) and MIN_HTTP_STATUS <= v <= MAX_HTTP_STATUS)
        ),
        "delay_seconds": lambda v: _is_number(v) and v >= 0,
        "retry_after": lambda v: v is None or (_is_number(v) and v >= 0),
        "down": lambda v: isinstance(v, bool),
        "secret": lambda v: v is None or (isinstance(v, str) and _valid_secret(v)),
    }[name]
    if not ok(value):
        raise ValueError(f"invalid value for {name}: {value!r}")


@dataclass
class ConsumerState:
    """Everything the consumer remembers, behind one lock (werkzeug serves each request on its
    own thread)."""

    secrets: list[str]
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    attempts: Counter = field(default_factory=Counter)  # (name, webhook-id) -> verified attempts
    lock: threading.Lock = field(default_factory=threading.Lock)

    def behaviour(self, name: str) -> Behaviour:
        with self.lock:
            return self.behaviours.get(name, Behaviour())

    def configure(self, name: str, changes: dict[str, Any]) -> Behaviour:
        with self.lock:
            updated = self.behaviours.get(name, Behaviour()).updated(changes)
            self.behaviours[name] = updated
            return updated

    def count_attempt(self, name: str, webhook_id: str) -> int:
        with self.lock:
            self.attempts[(name, webhook_id)] += 1
            return self.attempts[(name, webhook_id)]

    def record(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.events.append(event)

    def list_events(self, name: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if name is None or e["name"] == name]

    def reset(self) -> None:
        with self.lock:
            self.behaviours.clear()
            self.events.clear()
            self.attempts.clear()


def verify_signature(secrets: list[str], body: bytes, headers: dict[str, str]) -> Any:
    """The parsed payload if any secret verifies the signature, else raises; trying each secret
    lets one consumer serve several clients, as a real endpoint rotating secrets would."""
    for secret in secrets:
        try:
            return Webhook(secret).verify(body, headers)
        except (WebhookVerificationError, ValueError):  # malformed headers or body raise ValueError
            continue
    raise WebhookVerificationError("no configured secret verifies this signature")


def _answer_status(behaviour: Behaviour, attempt: int) -> int:
    if behaviour.down:
        return STATUS_DOWN
    if behaviour.status is not None:
        return behaviour.status
    if attempt <= behaviour.fail_first:
        return STATUS_FAIL_FIRST
    return STATUS_OK


def _describe_payload(payload: Any) -> tuple[str | None, str | None, str | None]:
    """(event id, type, job id) from an orchestrator event, tolerating anything else."""
    if not isinstance(payload, dict):
        return None, None, None
    data = payload.get("data")
    job_id = data.get("id") if isinstance(data, dict) else None
    return payload.get("id"), payload.get("type"), job_id


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _handle_hook(state: ConsumerState, name: str) -> Response:
    body = request.get_data()
    headers = {key: request.headers.get(key, "") for key in SIGNATURE_HEADERS}
    behaviour = state.behaviour(name)
    secrets = [behaviour.secret] if behaviour.secret else []
    try:
        verify_signature([*secrets, *state.secrets], body, headers)
        verified = True
    except WebhookVerificationError:
        verified = False
    webhook_id = headers["webhook-id"]
    attempt = state.count_attempt(name, webhook_id) if verified else 0
    status = _answer_status(behaviour, attempt) if verified else STATUS_BAD_SIGNATURE
    payload = _parse_json(body)
    event_id, event_type, job_id = _describe_payload(payload)
    state.record(
        {
            "name": name,
            "webhook_id": webhook_id,
            "event_id": event_id,
            "type": event_type,
            "job_id": job_id,
            "verified": verified,
            "attempt": attempt,
            "status": status,
            "received_at": iso(),
            "payload": payload,
        }
    )
    if behaviour.delay_seconds > 0:
        time.sleep(behaviour.delay_seconds)
    response = jsonify({"ok": 200 <= status < 300, "verified": verified})
    response.status_code = status
    if not 200 <= status < 300 and behaviour.retry_after is not None:
        response.headers["Retry-After"] = f"{behaviour.retry_after:g}"
    return response


def _error(message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = 400
    return response


def create_consumer_app(secrets: list[str] | tuple[str, ...] = ()) -> Flask:
    state = ConsumerState(secrets=list(secrets))
    app = Flask("devtools.consumer")
    app.json.sort_keys = False
    app.extensions["consumer_state"] = state

    @app.post("/hooks/<name>")
    def hook(name: str) -> Response:
        return _handle_hook(state, name)

    @app.post("/_consumer/config")
    def configure() -> Response:
        changes = request.get_json(force=True, silent=True)
        if not isinstance(changes, dict) or not isinstance(changes.get("name"), str):
            return _error("body must be a JSON object with a string 'name'")
        name = changes.pop("name")
        try:
            return jsonify({"name": name, **state.configure(name, changes).to_dict()})
        except ValueError as error:
            return _error(str(error))

    @app.get("/_consumer/config")
    def show_config() -> Response:
        name = request.args.get("name", "")
        return jsonify({"name": name, **state.behaviour(name).to_dict()})

    @app.get("/_consumer/events")
    def events() -> Response:
        return jsonify(state.list_events(request.args.get("name")))

    @app.post("/_consumer/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({"reset": True})

    return app


@click.command("consumer")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=int,
    help="Port to listen on (0: any free).",
)
@click.option("--secret", "secrets", multiple=True, help="whsec_ secret to verify with (repeat).")
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
def consumer_command(host: str, port: int, secrets: tuple[str, ...], verbose: bool) -> None:
    """Run a webhook consumer that verifies signatures and records every delivery attempt."""
    for secret in secrets:
        if not _valid_secret(secret):
            raise click.BadParameter("not a valid whsec_ secret", param_hint="--secret")
    quiet_request_log(verbose)
    serve_until_signalled(create_consumer_app(secrets), host, port, BANNER)


if __name__ == "__main__":
    consumer_command.main(prog_name="python -m devtools.consumer")
