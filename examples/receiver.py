"""Receive the orchestrator's job events: an example Flask receiver.

    python examples/receiver.py --port 9000 --secret whsec_...

Settings come from flags or the environment: WEBHOOK_SECRET (the client's ``whsec_`` secret that
`orchestrator clients create` printed), RECEIVER_HOST (default 127.0.0.1), RECEIVER_PORT (default
9000). Point your client's callback URL (or a job's ``callback_url``) at http(s)://HOST:PORT/webhooks.

What it shows:
- every request is verified with the `standardwebhooks` library over the raw body bytes and the
  webhook-id / webhook-timestamp / webhook-signature headers; anything else is answered 400;
- it is idempotent on the event id: an event can arrive more than once (a retry after a lost
  answer, an operator's redelivery) and is handled once; duplicates are answered 200 too, so
  the orchestrator stops sending them;
- it answers quickly: a slow answer is a failed attempt and a retry. Do real work in a queue.
It prints one JSON line per request (verified, duplicate or rejected) to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import Any

from flask import Flask, request
from standardwebhooks import Webhook, WebhookVerificationError

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 9000
BAD_REQUEST = 400


class SeenEvents:
    """Event ids already handled. In memory for the example: in production keep them where your
    data lives (a table with a unique key on the event id), in the same transaction as the work."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def first_time(self, event_id: str) -> bool:
        with self._lock:
            if event_id in self._ids:
                return False
            self._ids.add(event_id)
            return True


def log(outcome: str, **fields: Any) -> None:
    print(json.dumps({"outcome": outcome, **fields}), flush=True)


def handle_event(event: dict[str, Any]) -> None:
    """Your work goes here: the event's ``data`` is the job object."""
    job = event["data"]
    output = job.get("output") or {}
    error = job.get("error") or {}
    log(
        "verified",
        event_id=event["id"],
        type=event["type"],
        job_id=job["id"],
        status=job["status"],
        media_url=(output.get("media_url") or [None])[0],
        error_code=error.get("code"),
    )


def create_app(secret: str) -> Flask:
    app = Flask(__name__)
    webhook = Webhook(secret)
    seen = SeenEvents()

    @app.post("/webhooks")
    def receive() -> tuple[str, int]:
        try:
            # The raw bytes as sent: re-serialized JSON would not match the signature.
            event = webhook.verify(request.get_data(), dict(request.headers))
        except WebhookVerificationError as exc:
            log("rejected", reason=str(exc), webhook_id=request.headers.get("webhook-id"))
            return "invalid signature", BAD_REQUEST
        if not seen.first_time(event["id"]):
            log("duplicate", event_id=event["id"])
            return "", 200
        handle_event(event)
        return "", 200

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET"))
    parser.add_argument("--host", default=os.environ.get("RECEIVER_HOST", DEFAULT_HOST))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("RECEIVER_PORT", DEFAULT_PORT))
    )
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("the webhook secret is needed: --secret or WEBHOOK_SECRET")
    # Flask's own server is fine for trying it out; behind traffic, run create_app under gunicorn.
    create_app(args.secret).run(host=args.host, port=args.port, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
