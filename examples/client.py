"""Create a video job and wait for its result: an example client of the orchestrator's API.

    python examples/client.py --model pixverse-v6-text-to-video --input '{"prompt": "a cat"}'

Settings come from flags or the environment: ORCHESTRATOR_BASE_URL (default
http://127.0.0.1:8000) and ORCHESTRATOR_API_KEY (what `orchestrator clients create` printed).
It prints the finished job as JSON and exits 0 when the job completed, 1 when it failed or was
canceled, 2 when the API refused the request (the error is printed to stderr), 3 when no answer
came (the server unreachable, or the job not finished in time).

What it shows:
- an Idempotency-Key on the create, so that retrying the same request after a timeout, a 429 or
  a 503 never creates a second job (the API answers 200 with the same job);
- polling GET /v1/jobs/{id} with exponential backoff, honouring Retry-After on 429 and 503;
- errors read from the API's one error shape: {"error": {"code", "message", "details"}}.
In production, prefer the signed event (see receiver.py) to polling; poll as a fallback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any

import requests

TERMINAL = {"completed", "failed", "canceled"}
RETRY_STATUSES = {429, 503}  # the API says "not handled, try later" (with Retry-After)
REQUEST_TIMEOUT = 30  # seconds for one HTTP request
FIRST_POLL_DELAY, MAX_POLL_DELAY = 1.0, 30.0  # seconds between polls: doubling, capped
MAX_RETRY_AFTER = 60.0  # never sleep longer than this on a Retry-After
EXIT_FAILED, EXIT_REFUSED, EXIT_NO_ANSWER = 1, 2, 3


class ApiError(Exception):
    """An answer in the API's error shape, e.g. 422 validation_error with per-field details."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error") or {}
        self.status = status
        self.code = str(error.get("code", "http_error"))
        self.message = str(error.get("message", ""))
        self.details = error.get("details") or {}
        super().__init__(f"{status} {self.code}: {self.message}")


def retry_after(answer: requests.Response, default: float) -> float:
    """Seconds the server asked us to wait (Retry-After in seconds), else ``default``."""
    try:
        return min(float(answer.headers["Retry-After"]), MAX_RETRY_AFTER)
    except (KeyError, ValueError):
        return default


def call(
    session: requests.Session, method: str, url: str, *, attempts: int = 5, **kwargs: Any
) -> dict[str, Any]:
    """One API call; 429/503 and connection errors are retried after Retry-After (or a backoff).

    Retrying a create is safe only because the request carries an Idempotency-Key.
    """
    delay = FIRST_POLL_DELAY
    for attempt in range(1, attempts + 1):
        try:
            answer = session.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)
        except requests.ConnectionError:
            if attempt == attempts:
                raise
            time.sleep(delay)
            delay = min(delay * 2, MAX_POLL_DELAY)
            continue
        if answer.status_code in RETRY_STATUSES and attempt < attempts:
            time.sleep(retry_after(answer, delay))
            delay = min(delay * 2, MAX_POLL_DELAY)
            continue
        try:
            body = answer.json()
        except ValueError:  # not ours (a proxy's HTML page, say): still an error to report
            body = {"error": {"code": "http_error", "message": answer.text[:200]}}
        if answer.status_code >= 400:
            raise ApiError(answer.status_code, body)
        return dict(body)
    raise AssertionError("unreachable: the last attempt returns or raises")


def create_job(
    session: requests.Session,
    base_url: str,
    model: str,
    model_input: dict[str, Any],
    idempotency_key: str,
    callback_url: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": model_input}
    if callback_url:
        body["callback_url"] = callback_url
    headers = {"Idempotency-Key": idempotency_key}
    return call(session, "POST", f"{base_url}/v1/jobs", json=body, headers=headers)


def wait_for_job(
    session: requests.Session, base_url: str, job_id: str, timeout: float
) -> dict[str, Any]:
    """Poll until the job is terminal, backing off between polls."""
    deadline = time.monotonic() + timeout
    delay = FIRST_POLL_DELAY
    while True:
        job = call(session, "GET", f"{base_url}/v1/jobs/{job_id}")
        if job["status"] in TERMINAL:
            return job
        if time.monotonic() + delay > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 2, MAX_POLL_DELAY)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base-url", default=os.environ.get("ORCHESTRATOR_BASE_URL", "http://127.0.0.1:8000")
    )
    parser.add_argument("--api-key", default=os.environ.get("ORCHESTRATOR_API_KEY"))
    parser.add_argument("--model", default="pixverse-v6-text-to-video", help="see GET /v1/models")
    parser.add_argument("--input", default='{"prompt": "a red fox in snow"}', help="JSON object")
    parser.add_argument("--callback-url", help="where this job's signed events go")
    parser.add_argument(
        "--idempotency-key",
        default=None,
        help="reuse one to retry a create safely (default: a new random key)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait")
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("an API key is needed: --api-key or ORCHESTRATOR_API_KEY")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base_url = args.base_url.rstrip("/")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {args.api_key}"
    key = args.idempotency_key or f"example-{uuid.uuid4()}"
    try:
        job = create_job(
            session, base_url, args.model, json.loads(args.input), key, args.callback_url
        )
        print(f"created {job['id']} (Idempotency-Key {key})", file=sys.stderr)
        job = wait_for_job(session, base_url, job["id"], args.timeout)
    except ApiError as exc:
        if exc.status in RETRY_STATUSES:  # still busy or unavailable after our retries
            print(f"no answer: {exc}", file=sys.stderr)
            return EXIT_NO_ANSWER
        # e.g. 422 validation_error: details name each bad field, such as input.duration
        print(f"refused: {exc}", file=sys.stderr)
        for field, message in exc.details.items():
            print(f"  {field}: {message}", file=sys.stderr)
        return EXIT_REFUSED
    except (requests.RequestException, TimeoutError) as exc:
        print(f"no answer: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    print(json.dumps(job, indent=2))
    if job["status"] != "completed":
        error = job.get("error") or {}
        print(f"job {job['status']}: {error.get('code')}: {error.get('message')}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
