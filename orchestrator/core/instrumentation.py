"""Every HTTP answer: a ``Request-Id``, the log context, and the request metrics.

The request id is the caller's ``X-Request-Id`` / ``Request-Id`` when it is short and plain
(so a proxy's id follows the request through our logs), else a new one. Metrics are labelled
with the route's pattern (``/v1/jobs/<job_id>``), never the path, so ids and callback tokens
never become label values, and with a method from a fixed list.
"""

from __future__ import annotations

import re
import time

from flask import Flask, Response, g, request

from orchestrator.core import logcontext, metrics
from orchestrator.core.ids import is_id, new_id

REQUEST_ID_HEADER = "Request-Id"
INCOMING_HEADERS = ("X-Request-Id", "Request-Id")
# The same headers as the WSGI environ names them: read there, not through a Headers view.
_INCOMING_ENVIRON = tuple("HTTP_" + name.upper().replace("-", "_") for name in INCOMING_HEADERS)
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"
UNMATCHED_ROUTE = "unmatched"  # 404s for paths no route knows: one label, whatever the path


def request_id() -> str:
    """The incoming id if it is well formed, else a fresh ``req_`` id."""
    environ = request.environ
    for name in _INCOMING_ENVIRON:
        value = environ.get(name, "")
        if _WELL_FORMED.fullmatch(value):
            return value
    return new_id("req")


def _start() -> None:
    g.started = time.perf_counter()
    g.request_id = request_id()
    logcontext.clear()
    logcontext.bind(request_id=g.request_id)
    job_id = (request.view_args or {}).get("job_id")
    if is_id(job_id, "job"):
        logcontext.bind(job_id=job_id)


def _finish(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id") or request_id()
    rule = request.url_rule
    route = rule.rule if rule is not None else UNMATCHED_ROUTE
    method = request.method if request.method in METHODS else OTHER_METHOD
    metrics.HTTP_REQUESTS.inc(route, method, str(response.status_code))
    started = g.get("started")
    if started is not None:
        metrics.HTTP_DURATION.observe(time.perf_counter() - started)
    return response


def _teardown(_: BaseException | None) -> None:
    logcontext.clear()


def install(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_teardown)
