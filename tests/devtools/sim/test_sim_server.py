import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devtools.sim import cli as sim_cli
from devtools.sim.engine import SimEngine
from devtools.sim.knobs import SimConfig
from devtools.sim.rules import MODELS
from devtools.sim.server import create_sim_app
from devtools.sim.timeline import FAILED_MESSAGES

REPO_ROOT = Path(__file__).resolve().parents[3]
KEY = "sim-key"
AUTH = {"Ocp-Apim-Subscription-Key": KEY}
IMAGE = "https://cdn.example.com/images/cat.png"
V6_T2V = "pixverse-v6-text-to-video"
V6_PATH = MODELS[V6_T2V].route
VALID_BODIES = {
    "pixverse-v6-text-to-video": {"prompt": "a cat"},
    "pixverse-v6-image-to-video": {"prompt": "a cat", "image_url": IMAGE},
    "pixverse-c1-text-to-video": {"prompt": "a cat"},
    "pixverse-c1-image-to-video": {"prompt": "a cat", "image_url": IMAGE},
    "pixverse": {"prompt": "a cat", "aspect_ratio": "16:9", "resolution": "720p", "duration": 5},
    "pixverse-i2v": {"prompt": "a cat", "resolution": "720p", "duration": "5", "image_url": IMAGE},
}
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PLAIN_SECONDS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
WAIT_SECONDS = 10.0
FAST = {"queued_seconds": 0.2, "processing_seconds": 0.3, "jitter": 0.0}


def wait_for(predicate, timeout=WAIT_SECONDS, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


class Receiver:
    """A tiny webhook receiver on a real socket: answers from a script, records every body."""

    def __init__(self):
        self.calls = []
        self.script = []  # status codes to answer first, then 200
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"

    def _app(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            status = self.script.pop(0) if self.script else 200
            self.calls.append({"body": json.loads(request.get_data()), "answered": status})
        return Response("ok", status=status)(environ, start_response)

    def bodies(self, answered=None):
        with self._lock:
            return [c["body"] for c in self.calls if answered is None or c["answered"] == answered]

    def close(self):
        self._server.shutdown()
        self._thread.join(5)
        self._server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def engine():
    sim = SimEngine(SimConfig(**FAST, callback_backoff_seconds=0.05), seed=1234)
    yield sim
    sim.close()


@pytest.fixture
def client(engine):
    return create_sim_app(engine).test_client()


def submit(client, model_id=V6_T2V, body=None, headers=None, **extra_headers):
    body = VALID_BODIES[model_id] if body is None else body
    all_headers = {**AUTH, **(headers or {}), **extra_headers}
    return client.post(MODELS[model_id].route, json=body, headers=all_headers)


def status_of(client, request_id):
    return client.get(f"/v2/requests/status/{request_id}", headers=AUTH)


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_submit_is_accepted_with_request_id_and_polling_url(client, model_id):
    response = submit(client, model_id)
    assert response.status_code == 202
    body = response.get_json()
    assert set(body) == {"request_id", "status", "polling_url"}
    assert body["status"] == "QUEUED"
    assert re.fullmatch(rf"{re.escape(model_id)}_[0-9a-f-]{{36}}", body["request_id"])
    assert body["polling_url"] == f"http://localhost/v2/requests/status/{body['request_id']}"


@pytest.mark.parametrize("key", [None, "wrong"])
def test_missing_or_wrong_key_is_401_in_apim_style(client, engine, key):
    headers = {} if key is None else {"Ocp-Apim-Subscription-Key": key}
    response = client.post(V6_PATH, json={"prompt": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {
        "statusCode": 401,
        "message": "Access denied due to invalid subscription key. "
        "Make sure to provide a valid key for an active subscription.",
    }
    assert client.get("/v2/requests/status/x", headers=headers).status_code == 401
    assert engine.stats()["rejected_by_code"] == {"401": 1}


def test_other_paths_are_404(client):
    unknown_model = client.post("/pixverse-v7/v1/pixverse-v7-request", json={}, headers=AUTH)
    assert unknown_model.status_code == 404
    assert client.get("/", headers=AUTH).get_json() == {
        "statusCode": 404,
        "message": "Resource not found",
    }


def test_disabled_model_is_400_model_not_found(client, engine):
    engine.configure({"disabled_models": ["pixverse-i2v"]})
    response = submit(client, "pixverse-i2v")
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "Model not found",
        "message": "Model 'pixverse-i2v' not found or is disabled",
    }
    assert submit(client, "pixverse").status_code == 202


def test_invalid_body_is_400_naming_the_problem(client, engine):
    response = submit(client, "pixverse-i2v", body={**VALID_BODIES["pixverse-i2v"], "duration": 5})
    assert response.status_code == 400
    assert response.get_json()["error"] == "Bad Request"
    assert "duration" in response.get_json()["message"]
    unknown = submit(client, body={"prompt": "x", "fps": 24})
    assert "fps" in unknown.get_json()["message"]
    not_json = client.post(V6_PATH, data="{not json", headers=AUTH)
    assert not_json.status_code == 400
    assert engine.stats()["submits_accepted"] == 0
    assert engine.stats()["rejected_by_code"] == {"400": 3}


def test_balance_is_spent_then_402(client, engine):
    engine.configure({"balance": 2})
    assert [submit(client).status_code for _ in range(3)] == [202, 202, 402]
    assert submit(client).get_json() == {
        "error": "Insufficient Balance",
        "message": "Your wallet does not have enough balance.",
    }
    assert engine.config.balance == 0
    engine.configure({"balance": None})
    assert submit(client).status_code == 202


def test_injected_429_with_and_without_retry_after(client, engine):
    engine.configure({"rate_429": 1.0, "retry_after": 3})
    response = submit(client)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    engine.configure({"retry_after": None})
    assert "Retry-After" not in submit(client).headers
    engine.configure({"retry_after": 2, "retry_after_missing_rate": 1.0})
    assert "Retry-After" not in submit(client).headers
    assert engine.stats()["rejected_by_code"] == {"429": 3}


def test_injected_500_402_and_403(client, engine):
    engine.configure({"rate_500": 1.0})
    assert submit(client).status_code == 500
    engine.configure({"rate_500": 0.0, "rate_402": 1.0})
    assert submit(client).status_code == 402
    engine.configure({"rate_402": 0.0, "rate_403": 1.0})
    assert submit(client).status_code == 403
    stats = engine.stats()
    assert stats["rejected_by_code"] == {"500": 1, "402": 1, "403": 1}
    assert stats["submits_received"] == 3 and stats["submits_accepted"] == 0


def test_accepted_then_500_is_charged_and_still_runs(client, engine):
    engine.configure({"rate_500_after_accept": 1.0})
    assert submit(client).status_code == 500
    stats = engine.stats()
    assert stats["submits_accepted"] == 1 and stats["accepted_then_500"] == 1
    assert len(engine.list_requests()) == 1


def test_webhook_header_rules(client, engine):
    plain = submit(client, **{"X-Webhook-URL": "http://example.com/hook"})
    assert plain.status_code == 400
    assert "X-Webhook-URL" in plain.get_json()["message"]
    assert submit(client, **{"X-Webhook-URL": "not a url"}).status_code == 400
    assert submit(client, **{"X-Webhook-URL": "https://example.com/h"}).status_code == 202
    bad_mode = submit(client, **{"X-Webhook-URL": "https://example.com/h", "X-Webhook-Mode": "all"})
    assert bad_mode.status_code == 400
    assert "X-Webhook-Mode" in bad_mode.get_json()["message"]
    engine.configure({"allow_http_webhooks": True})
    assert submit(client, **{"X-Webhook-URL": "http://example.com/hook"}).status_code == 202
    assert engine.stats()["accepted_by_webhook_url"] == {
        "https://example.com/h": 1,
        "http://example.com/hook": 1,
    }


def test_status_moves_with_time_and_uses_the_docs_timestamp_formats(client):
    request_id = submit(client).get_json()["request_id"]
    first = status_of(client, request_id).get_json()
    assert first["status"] == "QUEUED"
    assert (first["error"], first["output"], first["completed_at"]) == (None, None, None)
    assert first["model_id"] == V6_T2V
    assert ISO_MILLIS.match(first["created_at"])
    assert PLAIN_SECONDS.match(first["updated_at"])
    wait_for(lambda: status_of(client, request_id).get_json()["status"] == "PROCESSING")
    done = wait_for(lambda: _terminal(status_of(client, request_id).get_json()))
    assert done["status"] == "COMPLETED"
    assert set(done) == {
        "request_id",
        "status",
        "model_id",
        "error",
        "output",
        "created_at",
        "updated_at",
        "completed_at",
    }
    assert done["output"] == {
        "media_url": [f"http://localhost/media/{request_id}/output.mp4"],
        "media_type": "video/mp4",
    }
    assert PLAIN_SECONDS.match(done["completed_at"])
    assert done["created_at"] == first["created_at"]


def _terminal(status):
    return status if status["status"] in ("COMPLETED", "FAILED", "ERROR") else None


def test_unknown_request_status_is_404(client, engine):
    assert status_of(client, f"{V6_T2V}_nope").status_code == 404
    assert engine.stats()["status_calls"] == 1


@pytest.mark.parametrize(
    ("knob", "status", "errors"),
    [("failure_rate", "FAILED", FAILED_MESSAGES), ("error_rate", "ERROR", ("Internal error",))],
)
def test_failed_and_error_outcomes(client, engine, knob, status, errors):
    engine.configure({knob: 1.0})
    request_id = submit(client).get_json()["request_id"]
    done = wait_for(lambda: _terminal(status_of(client, request_id).get_json()))
    assert done["status"] == status
    assert done["output"] is None
    assert done["error"] in errors
    assert done["completed_at"] is not None


def test_media_is_a_real_mp4_once_completed(client):
    request_id = submit(client).get_json()["request_id"]
    assert client.get(f"/media/{request_id}/output.mp4").status_code == 404
    wait_for(lambda: _terminal(status_of(client, request_id).get_json()))
    media = client.get(f"/media/{request_id}/output.mp4")
    assert media.status_code == 200
    assert media.mimetype == "video/mp4"
    assert media.data[4:8] == b"ftyp"
    assert 1_000 < len(media.data) < 200_000


def test_stats_counters(client, engine):
    request_id = submit(client).get_json()["request_id"]
    submit(client, "pixverse")
    submit(client, body={})
    status_of(client, request_id)
    status_of(client, request_id)
    stats = client.get("/_sim/stats").get_json()
    assert stats["submits_received"] == 3
    assert stats["submits_accepted"] == 2
    assert stats["accepted_by_model"] == {V6_T2V: 1, "pixverse": 1}
    assert stats["rejected_by_code"] == {"400": 1}
    assert stats["status_calls"] == 2
    assert stats["status_calls_by_request"] == {request_id: 2}
    assert stats["requests"] == 2
    assert stats["callbacks_sent"] == 0 and stats["callbacks_failed"] == 0


def test_admin_requests_config_and_reset(client, engine):
    request_id = submit(client, **{"X-Webhook-URL": "https://example.com/h"}).get_json()[
        "request_id"
    ]
    listed = client.get("/_sim/requests").get_json()
    assert [r["request_id"] for r in listed] == [request_id]
    one = client.get(f"/_sim/requests/{request_id}").get_json()
    assert (one["model"], one["mode"], one["body"]) == (V6_T2V, "terminal", {"prompt": "a cat"})
    assert one["webhook_url"] == "https://example.com/h"
    assert client.get("/_sim/requests/nope").status_code == 404

    changed = client.post("/_sim/config", json={"failure_rate": 0.5}).get_json()
    assert changed["failure_rate"] == 0.5 and changed["api_key"] == KEY
    assert client.get("/_sim/config").get_json() == changed
    assert client.post("/_sim/config", json={"nope": 1}).status_code == 400
    assert client.post("/_sim/config", json={"failure_rate": 2}).status_code == 400
    assert client.post("/_sim/config", json={"balance": True}).status_code == 400

    client.post("/_sim/reset")
    assert client.get("/_sim/stats").get_json()["requests"] == 0
    assert client.get("/_sim/config").get_json()["failure_rate"] == 0.5
    client.post("/_sim/reset", json={"config": True})
    assert client.get("/_sim/config").get_json()["failure_rate"] == 0.0


def test_submit_delay_counts_the_submit_before_answering(client, engine):
    engine.configure({"submit_delay_seconds": 0.5})
    answers = []
    thread = threading.Thread(target=lambda: answers.append(submit(client).status_code))
    thread.start()
    wait_for(lambda: engine.stats()["submits_accepted"] == 1)
    assert answers == []
    thread.join(WAIT_SECONDS)
    assert answers == [202]


def test_same_seed_same_request_ids():
    ids = []
    for _ in range(2):
        sim = SimEngine(SimConfig(), seed=99)
        try:
            app_client = create_sim_app(sim).test_client()
            ids.append([submit(app_client).get_json()["request_id"] for _ in range(3)])
        finally:
            sim.close()
    assert ids[0] == ids[1]


# --- callbacks (real sockets: the sim posts to a local receiver) ---------------------------------


def webhook(receiver, mode=None):
    headers = {"X-Webhook-URL": receiver.url}
    if mode:
        headers["X-Webhook-Mode"] = mode
    return headers


@pytest.fixture
def http_engine(engine):
    engine.configure({"allow_http_webhooks": True})
    return engine


def test_terminal_mode_sends_exactly_one_callback(client, http_engine, receiver):
    request_id = submit(client, headers=webhook(receiver)).get_json()["request_id"]
    wait_for(lambda: receiver.bodies())
    wait_for(lambda: settled(http_engine))
    [body] = receiver.bodies()
    assert body == status_of(client, request_id).get_json()
    assert body["status"] == "COMPLETED"
    assert http_engine.stats()["callbacks_sent"] == 1


def test_sync_mode_sends_progress_then_terminal(client, http_engine, receiver):
    http_engine.configure({"sync_interval_seconds": 0.1})
    submit(client, headers=webhook(receiver, "sync"))
    wait_for(lambda: any(b["status"] == "COMPLETED" for b in receiver.bodies()))
    wait_for(lambda: settled(http_engine))
    statuses = [b["status"] for b in receiver.bodies()]
    assert statuses[0] == "QUEUED"
    assert "PROCESSING" in statuses
    assert statuses.count("COMPLETED") == 1
    assert len(statuses) >= 4


def test_out_of_order_sends_progress_after_terminal(client, http_engine, receiver):
    http_engine.configure({"sync_interval_seconds": 0.1, "out_of_order": True})
    submit(client, headers=webhook(receiver, "sync"))
    wait_for(lambda: http_engine.stats()["callbacks_sent"] >= 2 and settled(http_engine))
    statuses = [b["status"] for b in receiver.bodies()]
    completed_at = statuses.index("COMPLETED")
    assert any(s in ("QUEUED", "PROCESSING") for s in statuses[completed_at + 1 :])


def settled(engine):
    """Every callback that will ever be sent has been."""
    return engine.stats()["callbacks_pending"] == 0


def test_duplicate_rate_sends_the_same_callback_again(client, http_engine, receiver):
    http_engine.configure({"duplicate_rate": 1.0})
    request_id = submit(client, headers=webhook(receiver)).get_json()["request_id"]
    wait_for(lambda: len(receiver.bodies()) >= 2)
    wait_for(lambda: settled(http_engine))
    bodies = receiver.bodies()
    assert 2 <= len(bodies) <= 3
    assert all(b == bodies[0] and b["request_id"] == request_id for b in bodies)
    assert http_engine.stats()["callbacks_duplicated"] == len(bodies) - 1


def test_drop_rate_sends_nothing(client, http_engine, receiver):
    http_engine.configure({"drop_rate": 1.0})
    request_id = submit(client, headers=webhook(receiver)).get_json()["request_id"]
    wait_for(lambda: _terminal(status_of(client, request_id).get_json()))
    wait_for(lambda: http_engine.stats()["callbacks_dropped"] == 1 and settled(http_engine))
    assert receiver.bodies() == []
    assert http_engine.stats()["callbacks_sent"] == 0


def test_failed_callbacks_are_retried(client, http_engine, receiver):
    receiver.script = [500, 503]
    submit(client, headers=webhook(receiver))
    wait_for(lambda: receiver.bodies(answered=200))
    assert [c["answered"] for c in receiver.calls] == [500, 503, 200]

    def counted() -> tuple[int, int]:
        stats = http_engine.stats()
        return stats["callbacks_failed"], stats["callbacks_sent"]

    # The receiver answers before the sender counts the answer: wait for the count too.
    wait_for(lambda: counted() == (2, 1))
    assert counted() == (2, 1)


def test_unreachable_callback_gives_up_after_max_attempts(client, http_engine):
    http_engine.configure({"callback_max_attempts": 2})
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    submit(client, headers={"X-Webhook-URL": dead_url})
    wait_for(lambda: http_engine.stats()["callbacks_given_up"] == 1)
    assert http_engine.stats()["callbacks_failed"] == 2


def test_resend_repeats_the_terminal_callback(client, http_engine, receiver):
    request_id = submit(client, headers=webhook(receiver)).get_json()["request_id"]
    early = client.post(f"/_sim/requests/{request_id}/resend")
    assert early.status_code == 409
    wait_for(lambda: receiver.bodies())
    assert client.post(f"/_sim/requests/{request_id}/resend").status_code == 200
    wait_for(lambda: len(receiver.bodies()) == 2)
    assert receiver.bodies()[0] == receiver.bodies()[1]
    assert client.post("/_sim/requests/nope/resend").status_code == 404


def test_reset_cancels_pending_callbacks(client, http_engine, receiver):
    http_engine.configure({"queued_seconds": 0.3})
    submit(client, headers=webhook(receiver))
    client.post("/_sim/reset")
    assert settled(http_engine)
    time.sleep(0.7)  # past the moment its terminal callback was due
    assert receiver.bodies() == []


# --- the real process ----------------------------------------------------------------------------


class SimProcess:
    def __init__(self, *args):
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        command = [sys.executable, "-m", "devtools.sim", "--port", "0", *args]
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.url = self._read_banner()

    def _read_banner(self):
        lines = []
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()))
        reader.start()
        reader.join(WAIT_SECONDS)
        line = lines[0] if lines else ""
        match = re.fullmatch(r"pixazo simulator listening on (http://\S+)\n", line)
        if match is None:
            self.stop()
            raise AssertionError(f"no startup line, got {line!r}")
        return match.group(1)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(WAIT_SECONDS)
        self.process.stdout.close()
        return self.process.returncode


@pytest.mark.integration
def test_real_process_sync_and_terminal_callbacks_and_a_burst(receiver):
    sim = SimProcess(
        "--allow-http-webhooks",
        "--queued-seconds",
        "0.2",
        "--processing-seconds",
        "0.4",
        "--sync-interval",
        "0.1",
        "--seed",
        "7",
    )
    try:
        submit_url = sim.url + V6_PATH

        def post(mode):
            headers = {**AUTH, "X-Webhook-URL": receiver.url, "X-Webhook-Mode": mode}
            return requests.post(submit_url, json={"prompt": "x"}, headers=headers, timeout=10)

        terminal = post("terminal")
        sync = post("sync")
        assert (terminal.status_code, sync.status_code) == (202, 202)
        assert terminal.json()["polling_url"].startswith(sim.url + "/v2/requests/status/")
        terminal_id, sync_id = terminal.json()["request_id"], sync.json()["request_id"]

        def done():
            ids = [b["request_id"] for b in receiver.bodies() if b["status"] == "COMPLETED"]
            return terminal_id in ids and sync_id in ids

        wait_for(done)
        terminal_calls = [b for b in receiver.bodies() if b["request_id"] == terminal_id]
        sync_statuses = [b["status"] for b in receiver.bodies() if b["request_id"] == sync_id]
        assert [b["status"] for b in terminal_calls] == ["COMPLETED"]
        assert sync_statuses[0] == "QUEUED" and sync_statuses.count("COMPLETED") == 1
        status_url = f"{sim.url}/v2/requests/status/{terminal_id}"
        polled = requests.get(status_url, headers=AUTH, timeout=5)
        assert polled.json() == terminal_calls[0]
        media = requests.get(polled.json()["output"]["media_url"][0], timeout=5)
        assert media.headers["Content-Type"] == "video/mp4"

        burst = 500
        with ThreadPoolExecutor(max_workers=burst) as pool:
            codes = list(
                pool.map(
                    lambda _: (
                        requests.post(
                            submit_url, json={"prompt": "x"}, headers=AUTH, timeout=30
                        ).status_code
                    ),
                    range(burst),
                )
            )
        assert codes == [202] * burst
        stats = requests.get(f"{sim.url}/_sim/stats", timeout=5).json()
        assert stats["submits_accepted"] == burst + 2
        assert stats["accepted_by_webhook_url"] == {receiver.url: 2}
    finally:
        assert sim.stop() == 0


def test_cli_flags_become_knobs(monkeypatch):
    served = {}

    def fake_serve(app, host, port, banner, on_stop):
        served.update(host=host, port=port, banner=banner, engine=on_stop.__self__)

    monkeypatch.setattr(sim_cli, "serve_until_signalled", fake_serve)
    args = ["--port", "0", "--balance", "3", "--retry-after", "none", "--rate-429", "0.25"]
    args += ["--out-of-order", "--disable-model", "pixverse", "--sync-interval", "0.5"]
    result = CliRunner().invoke(sim_cli.sim_command, args)
    assert result.exit_code == 0, result.output
    engine = served["engine"]
    try:
        config = engine.config
        assert (config.balance, config.retry_after, config.rate_429) == (3, None, 0.25)
        assert config.out_of_order is True and config.disabled_models == ["pixverse"]
        assert config.sync_interval_seconds == 0.5
        assert (served["port"], served["banner"]) == (0, "pixazo simulator")
    finally:
        engine.close()


@pytest.mark.parametrize(
    "args", [["--sync-interval", "20"], ["--balance", "-1"], ["--rate-500", "2"]]
)
def test_cli_refuses_bad_knobs(args):
    assert CliRunner().invoke(sim_cli.sim_command, args).exit_code == 2
