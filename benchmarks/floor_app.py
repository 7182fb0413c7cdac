"""The parts of ``make bench-floor``: the fixed shape (gunicorn + Flask, Celery on Redis,
requests) with no product logic at all, so that what they cost per job is a floor no product
change can go under.

One entry module for gunicorn (``benchmarks.floor_app:app``) and Celery
(``-A benchmarks.floor_app``): the Celery app takes the product's own configuration
(``orchestrator.celery_app.celery_config``: late acks, prefetch of one, JSON, the cheap kombu
clients, task events off), and the views answer as ``benchmarks/bare_app.py`` does.
"""

from __future__ import annotations

import urllib3
from celery import Celery
from flask import Flask, Response, jsonify, request

from benchmarks.bench_floor import PREFORK_QUEUE, THREADS_QUEUE
from orchestrator.celery_app import celery_config
from orchestrator.core.config import load_settings

POST_TIMEOUT_SECONDS = 5.0
HTTP_ERROR = 400
QUEUES = {"prefork": PREFORK_QUEUE, "threads": THREADS_QUEUE}

_config = celery_config(load_settings())
_config.update(beat_schedule={}, task_routes={}, task_default_queue=PREFORK_QUEUE)
celery = Celery("floor")
celery.config_from_object(_config)
# Keep-alive connections, as the delivery worker's (webhooks/outbound/connections.py).
_pool = urllib3.PoolManager(maxsize=64)


@celery.task(name="floor.noop")
def noop(job_id: str) -> None:
    """A task that does nothing: what is left is Celery's own hop (consume, run, ack)."""


@celery.task(name="floor.post")
def post(job_id: str, url: str) -> None:
    """One small JSON POST, as a submit to Pixazo or a delivery to a consumer makes."""
    answer = _pool.request("POST", url, json={"id": job_id}, timeout=POST_TIMEOUT_SECONDS)
    if answer.status >= HTTP_ERROR:
        raise RuntimeError(f"POST {url}: {answer.status}")


app = Flask(__name__)


@app.route("/bare", methods=["GET", "POST"])
def bare() -> Response:
    request.get_data()
    return jsonify({"ok": True})


@app.post("/publish/<pool>")
def publish(pool: str) -> Response:
    """Read the body, send one task, answer: what the intake does at the least."""
    request.get_data()
    target = request.args.get("post")
    if target:
        post.apply_async(("job_floor", target), queue=QUEUES[pool])
    else:
        noop.apply_async(("job_floor",), queue=QUEUES[pool])
    return jsonify({"ok": True})
