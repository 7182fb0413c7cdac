"""The ops console (``/ops``): server-rendered pages over the same actions as the CLI and API.

Every page needs a signed-in operator; every POST needs the session's CSRF token and an
explicit confirmation (each action has its own confirm page that says what will happen); each
action goes through :mod:`orchestrator.jobs.actions`, which writes the job's timeline and the audit
log with the operator's name. After a POST the browser is redirected (no resubmit on reload).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from ops import auth, dashboard, present
from ops.operators import valid_name
from orchestrator.core import budgets, catalog, clock, keys
from orchestrator.core.clients import Client
from orchestrator.core.error_codes import ErrorCode
from orchestrator.core.errors import error_response
from orchestrator.core.ids import is_id
from orchestrator.core.records import Job
from orchestrator.core.services import Services, current
from orchestrator.jobs import actions
from orchestrator.jobs.state import PUBLIC_STATUSES
from orchestrator.jobs.store import JobFilter, decode_cursor, error_code, index_for
from orchestrator.upstream import pause
from webhooks.outbound import redeliver

bp = Blueprint(
    "ops",
    __name__,
    url_prefix="/ops",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

PAGE_SIZE = 50
REFRESH_SECONDS = 10
PUBLIC_ENDPOINTS = frozenset({"ops.login", "ops.static"})
JOB_ACTIONS = ("retry", "repoll", "cancel", "redeliver")
# The job list's error filter, in the order it offers them (every ErrorCode, tested).
ERROR_CODES: tuple[ErrorCode, ...] = (
    ErrorCode.UPSTREAM_ERROR,
    ErrorCode.UPSTREAM_FAILED,
    ErrorCode.UPSTREAM_REJECTED,
    ErrorCode.UPSTREAM_AUTH,
    ErrorCode.UPSTREAM_UNAVAILABLE,
    ErrorCode.INSUFFICIENT_BALANCE,
    ErrorCode.TIMEOUT,
    ErrorCode.CANCELED,
)
_TIME_INPUT = "%Y-%m-%dT%H:%M"
SIGN_IN_REFUSED = "Wrong name or password."


@bp.before_request
def _guard() -> BaseResponse | None:
    g.operator = auth.signed_in_operator()
    if request.endpoint not in PUBLIC_ENDPOINTS and g.operator is None:
        if auth.wants_json():
            return error_response(401, "unauthorized", "Sign in to the ops console.")
        return redirect(url_for("ops.login", next=request.full_path.rstrip("?")))
    if request.method == "POST" and not auth.csrf_ok():
        if auth.wants_json():
            return error_response(403, "csrf_failed", "The form's CSRF token is missing or wrong.")
        return Response(
            render_template("ops/refused.html"), status=403, content_type="text/html; charset=utf-8"
        )
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; media-src *; img-src 'self' data:; frame-ancestors 'none'",
    )
    return response


@bp.app_template_global()
def csrf_token() -> str:
    return auth.csrf_token()


@bp.app_template_filter("rel")
def _rel(value: str | None) -> str:
    return present.relative(value)


@bp.app_template_filter("abs")
def _abs(value: str | None) -> str:
    return present.absolute(value)


@bp.app_template_filter("pretty")
def _pretty(value: Any) -> str:
    return present.pretty(value)


@bp.app_template_global()
def state_class(state: str | None) -> str:
    return present.state_class(state)


@bp.context_processor
def _globals() -> dict[str, Any]:
    return {"operator": g.get("operator")}


def _svc() -> Services:
    return current()


def _page(template: str, status: int = 200, **context: Any) -> Response:
    return Response(
        render_template(template, **context), status=status, content_type="text/html; charset=utf-8"
    )


# ------------------------------------------------------------------------------ sign-in


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse:
    target = auth.safe_next(request.values.get("next"))
    if request.method == "GET":
        if g.operator:
            return redirect(target)
        auth.csrf_token()
        return _page("ops/login.html", next=target)
    name = (request.form.get("name") or "").strip()
    attempt = auth.operators().sign_in(name, request.form.get("password") or "", _source())
    if not attempt.ok:
        return _sign_in_refused(target, name, attempt.retry_after)
    auth.sign_in(name)
    return redirect(target)


def _sign_in_refused(target: str, name: str, retry_after: int) -> Response:
    """401, or 429 with Retry-After while this name and address (or the host) must wait; a
    name that breaks the name rule is not echoed."""
    error = f"Too many sign-in attempts; try again in {retry_after} s." if retry_after else None
    page = _page(
        "ops/login.html",
        429 if retry_after else 401,
        next=target,
        name=name if valid_name(name) else "",
        error=error or SIGN_IN_REFUSED,
    )
    if retry_after:
        page.headers["Retry-After"] = str(retry_after)
    return page


def _source() -> str:
    """The address sign-in failures are counted under (the peer: no forwarded header, which
    a client could set to spread its failures over addresses it does not have)."""
    return request.remote_addr or ""


@bp.post("/logout")
def logout() -> BaseResponse:
    auth.sign_out()
    flash("Signed out.")
    return redirect(url_for("ops.login"))


# ------------------------------------------------------------------------------ dashboard


@bp.get("/")
def index() -> Response:
    svc = _svc()
    return _page(
        "ops/dashboard.html",
        data=dashboard.overview(svc),
        clients=_client_names(svc),
        refresh=REFRESH_SECONDS,
    )


def _client_names(svc: Services) -> dict[str, str]:
    ids = sorted(svc.clients.all_ids())
    pipe = svc.redis.pipeline(transaction=False)
    for client_id in ids:
        pipe.hget(keys.client(client_id), "name")
    return {c: (n or c) for c, n in zip(ids, pipe.execute(), strict=True)}


# ------------------------------------------------------------------------------ job list


def _parse_time(value: str | None) -> int | None:
    """A time filter (ISO 8601 or the browser's datetime-local, read as UTC) in epoch ms."""
    if not value:
        return None
    moment = clock.parse_iso(value.strip())
    if moment is None:
        try:
            moment = datetime.strptime(value.strip(), _TIME_INPUT).replace(tzinfo=UTC)
        except ValueError:
            return None
    return int(moment.timestamp() * 1000)


def _search(svc: Services, query: str) -> str | None:
    """The job page a search names: a job id, a Pixazo request_id or an event id."""
    if is_id(query, "job"):
        return query if svc.redis.exists(keys.job(query)) else None
    if is_id(query, "evt"):
        return cast("str | None", svc.redis.hget(keys.event(query), "job_id"))
    return svc.jobs.job_for_request(query)


@bp.get("/jobs")
def jobs() -> BaseResponse:
    svc = _svc()
    args = request.args
    query = (args.get("q") or "").strip()
    if query:
        found = _search(svc, query)
        if found:
            return redirect(url_for("ops.job", job_id=found))
        flash(f"No job, event or Pixazo request_id matches {query!r}.", "error")
    flt = JobFilter(
        status=args.get("status") if args.get("status") in PUBLIC_STATUSES else None,
        client_id=args.get("client") or None,
        model=args.get("model") if args.get("model") in catalog.MODELS else None,
        error_code=args.get("error_code") if args.get("error_code") in ERROR_CODES else None,
    )
    since, until = _parse_time(args.get("since")), _parse_time(args.get("until"))
    cursor = args.get("cursor") or None
    try:
        decode_cursor(cursor)
    except ValueError:
        cursor = None
        flash("That page link was malformed; showing the first page.", "error")
    index, keep = index_for(flt, svc.redis)
    page = svc.jobs.list_range(index, PAGE_SIZE, cursor, since_ms=since, until_ms=until, keep=keep)
    rows: list[dict[str, Any]] = [raw for raw in svc.jobs.get_many(page.ids) if raw]
    matching = None
    if keep is None:  # the index alone answers the filter: its size in the range is exact
        low, high = ("-inf" if since is None else since), ("+inf" if until is None else until)
        matching = svc.redis.zcount(index, low, high)
    for raw in rows:
        raw["error_code"] = error_code(raw)
    filters: dict[str, Any] = {k: v for k, v in args.items() if k not in ("cursor", "q") and v}
    return _page(
        "ops/jobs.html",
        rows=rows,
        matching=matching,
        page=page,
        filters=filters,
        flt=flt,
        statuses=PUBLIC_STATUSES,
        models=list(catalog.MODELS),
        error_codes=ERROR_CODES,
        clients=_client_names(svc),
        next_url=url_for("ops.jobs", **filters, cursor=page.next_cursor)
        if page.next_cursor
        else None,
        first_url=url_for("ops.jobs", **filters) if cursor else None,
        dead_for_client=len(redeliver.dead_letters(svc, flt.client_id, actions.BULK_LIMIT))
        if flt.client_id
        else None,
    )


# ------------------------------------------------------------------------------ job page


def _job_view(svc: Services, job_id: str) -> dict[str, Any] | None:
    raw = svc.jobs.find(job_id)  # None for a malformed id too: it never reaches Redis
    if raw is None:
        return None
    record = Job.from_hash(raw)
    job = svc.jobs.get(job_id) or {}
    secrets = present.secrets_for(svc.settings, job_id)
    events = []
    for event_type, event_id in sorted(actions.job_event_ids(svc, job_id).items()):
        evt = svc.redis.hgetall(keys.event(event_id)) or {}
        events.append(
            {
                "id": event_id,
                "type": event_type,
                "state": evt.get("state", "expired"),
                "attempts": evt.get("attempts", "0"),
                "next_attempt_at": evt.get("next_attempt_at"),
                "note": evt.get("note"),
                "settled_at": evt.get("settled_at"),
                "dead": svc.redis.zscore(keys.DEAD_DELIVERIES, event_id) is not None,
            }
        )
    client = svc.clients.get(record.client_id)
    return present.redact(
        {
            "job": job,
            "state": record.state.value,
            "client_id": record.client_id,
            "client_name": client.name if client else record.client_id,
            "callback_url": present.safe_url(job.get("callback_url")),
            "endpoint": present.safe_url(client.callback_url if client else None),
            "polls": str(record.polls),
            "media": present.media_urls(job.get("output")),
            "timeline": svc.jobs.timeline(job_id),
            "events": events,
        },
        secrets,
    )


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> Response:
    svc = _svc()
    view = _job_view(svc, job_id)
    if view is None:
        return _page("ops/missing.html", 404, what=f"job {job_id}")
    return _page("ops/job.html", v=view, rest=present.timeline_rest, offset=present.offset)


def _confirm_context(svc: Services, job_id: str, action: str) -> dict[str, Any] | None:
    raw = svc.jobs.find(job_id)  # None for a malformed id too: it never reaches Redis
    if raw is None:
        return None
    event_id = request.values.get("event") or ""
    if action == "redeliver" and not (
        is_id(event_id, "evt") and svc.redis.hget(keys.event(event_id), "job_id") == job_id
    ):
        return None
    record = Job.from_hash(raw)
    return {
        "job_id": job_id,
        "action": action,
        "state": record.state.value,
        "request_id": record.request_id,
        "model": record.model,
        "event_id": event_id or None,
        "charge_warning": action == "retry" and actions.may_be_charged(raw),
    }


@bp.get("/jobs/<job_id>/<action>")
def confirm(job_id: str, action: str) -> Response:
    if action not in JOB_ACTIONS:
        abort(404)
    context = _confirm_context(_svc(), job_id, action)
    if context is None:
        return _page("ops/missing.html", 404, what=f"{action} for job {job_id}")
    return _page("ops/confirm.html", c=context)


@bp.post("/jobs/<job_id>/<action>")
def act(job_id: str, action: str) -> BaseResponse:
    if action not in JOB_ACTIONS:
        abort(404)
    svc = _svc()
    context = _confirm_context(svc, job_id, action)
    if context is None:
        return _page("ops/missing.html", 404, what=f"{action} for job {job_id}")
    if request.form.get("confirm") != "yes":
        flash("Nothing was done: the action was not confirmed.", "error")
        return redirect(
            url_for("ops.confirm", job_id=job_id, action=action, event=context["event_id"])
        )
    actor = g.operator
    if action == "retry":
        result = actions.retry(
            svc, job_id, actor, confirm_charge=request.form.get("confirm_charge") == "yes"
        )
        if not result.ok and (result.data or {}).get("needs_confirmation"):
            flash("Tick the second-charge box to resubmit this job.", "error")
            return redirect(url_for("ops.confirm", job_id=job_id, action="retry"))
    elif action == "repoll":
        result = actions.repoll(svc, job_id, actor)
    elif action == "cancel":
        result = actions.cancel(svc, job_id, actor)
    else:
        result = redeliver.redeliver(svc, context["event_id"], actor)
    flash(f"{action}: {result.message}", "ok" if result.ok else "error")
    return redirect(url_for("ops.job", job_id=job_id))


# ------------------------------------------------------------------------------ bulk actions


def _bulk_selection(svc: Services, kind: str) -> dict[str, Any]:
    client_id = request.values.get("client") or None
    if kind == "redeliver":
        if not client_id:
            abort(404)
        events = redeliver.dead_letters(svc, client_id, actions.BULK_LIMIT)
        return {"kind": kind, "client": client_id, "count": len(events), "charged": 0}
    code = request.values.get("error_code") or ErrorCode.UPSTREAM_ERROR
    if code not in ERROR_CODES:
        abort(404)
    model = request.values.get("model") or None
    model = model if model in catalog.MODELS else None
    found = actions.failed_jobs(svc, code, client_id, model, actions.BULK_LIMIT)
    return {
        "kind": kind,
        "client": client_id,
        "model": model,
        "error_code": code,
        "count": len(found),
        "charged": sum(1 for raw in found if actions.may_be_charged(raw)),
        "limit": actions.BULK_LIMIT,
    }


@bp.route("/bulk/<kind>", methods=["GET", "POST"])
def bulk(kind: str) -> BaseResponse:
    if kind not in ("redeliver", "retry"):
        abort(404)
    svc = _svc()
    selection = _bulk_selection(svc, kind)
    selection["client_name"] = _client_names(svc).get(selection["client"] or "", None)
    if request.method == "GET":
        return _page("ops/bulk.html", s=selection)
    if request.form.get("confirm") != "yes":
        flash("Nothing was done: the action was not confirmed.", "error")
        return _page("ops/bulk.html", s=selection)
    if kind == "redeliver":
        if not selection["client"]:
            abort(404)
        result = redeliver.redeliver_client_since(svc, selection["client"], 0.0, g.operator)
    else:
        result = actions.retry_failed(
            svc,
            g.operator,
            selection["error_code"],
            selection["client"],
            selection["model"],
            confirm_charge=request.form.get("confirm_charge") == "yes",
        )
    flash(result.message, "ok" if result.ok else "error")
    back = {"client": selection["client"]} if selection["client"] else {}
    if kind == "retry" and not result.ok:
        return redirect(url_for("ops.bulk", kind=kind, error_code=selection["error_code"], **back))
    return redirect(url_for("ops.jobs", **back))


# ------------------------------------------------------------------------------ submissions


@bp.route("/submissions/<verb>", methods=["GET", "POST"])
def submissions(verb: str) -> BaseResponse:
    if verb not in ("pause", "resume"):
        abort(404)
    svc = _svc()
    if request.method == "GET":
        return _page("ops/submissions.html", verb=verb, paused=pause.paused(svc.redis))
    if request.form.get("confirm") != "yes":
        flash("Nothing was done: the action was not confirmed.", "error")
        return redirect(url_for("ops.index"))
    if verb == "pause":
        reason = (request.form.get("reason") or "operator").strip()[:200]
        pause.pause_by_operator(svc, g.operator, reason)
    else:
        pause.resume_by_operator(svc, g.operator)
    flash(f"Submissions {verb}d.", "ok")
    return redirect(url_for("ops.index"))


# ------------------------------------------------------------------------------ clients and budgets


def _client_rows(svc: Services) -> list[dict[str, Any]]:
    """Every client with its spend against its budget this month (UTC)."""
    rows = []
    for client_id in svc.clients.all_ids():
        client = svc.clients.get(client_id)
        if client is not None:
            rows.append(_budget_row(svc, client))
    return rows


def _budget_row(svc: Services, client: Client) -> dict[str, Any]:
    budget = budgets.status(svc.redis, client.id)
    committed = budgets.to_micros(budget["committed_usd"])
    return {
        "client": client,
        "budget": budget,
        "share": _share(client.budget_micros, committed),
        "warn": budgets.near_limit(client.budget_micros, committed),
        "over": client.budget_micros is not None and committed > client.budget_micros,
    }


def _share(budget_micros: int | None, committed: int) -> int | None:
    """Committed spend as a percentage of the budget (None without a budget)."""
    if budget_micros is None:
        return None
    if budget_micros == 0:
        return 100
    return 100 * committed // budget_micros  # floored: 79.99% reads 79%, under the warning


@bp.get("/clients")
def clients() -> Response:
    return _page("ops/clients.html", rows=_client_rows(_svc()), warn_percent=_warn_percent())


def _warn_percent() -> int:
    return int(budgets.WARN_FRACTION * 100)


@bp.route("/clients/<client_id>", methods=["GET", "POST"])
def client_page(client_id: str) -> BaseResponse:
    """One client's spend against its budget, and the form that sets the budget and the
    unpriced policy (confirmed, CSRF-protected, in the audit log with the operator's name)."""
    svc = _svc()
    client = svc.clients.get(client_id) if is_id(client_id, "cli") else None
    if client is None:
        return _page("ops/missing.html", 404, what=f"client {client_id}")
    if request.method == "POST":
        return _update_budget(svc, client)
    return _page("ops/client.html", r=_budget_row(svc, client), warn_percent=_warn_percent())


def _update_budget(svc: Services, client: Client) -> BaseResponse:
    back = redirect(url_for("ops.client_page", client_id=client.id))
    if request.form.get("confirm") != "yes":
        flash("Nothing was done: the change was not confirmed.", "error")
        return back
    raw = (request.form.get("monthly_budget_usd") or "").strip()
    policy = request.form.get("unpriced") or ""
    if policy not in {p.value for p in budgets.UnpricedPolicy}:
        flash("Unpriced jobs: choose allow or refuse.", "error")
        return back
    try:
        amount = budgets.parse_usd(raw) if raw else None
    except budgets.BudgetValueError as exc:
        flash(f"Monthly budget: {exc}.", "error")
        return back
    updated = svc.clients.update(
        client.id,
        monthly_budget_usd=amount,
        no_budget=amount is None,
        unpriced=budgets.UnpricedPolicy(policy),
    )
    if updated is None:
        return _page("ops/missing.html", 404, what=f"client {client.id}")
    budgets.warn_if_near_now(svc.redis, updated.id, updated.budget_micros)
    detail = f"monthly budget {'none' if amount is None else f'{amount} USD'}, unpriced {policy}"
    actions.audit(svc, g.operator, "budget", client.id, detail)
    flash(f"Budget of {updated.name}: {detail}.", "ok")
    return back


# ------------------------------------------------------------------------------ audit log


@bp.get("/audit")
def audit() -> Response:
    entries = actions.audit_log(_svc(), limit=200)
    return _page("ops/audit.html", entries=entries)


@bp.get("/api/overview")
def overview_json() -> Response:
    """The dashboard's numbers as JSON (for scripts and the page's refresh)."""
    data = dashboard.overview(_svc())
    data["counts"] = [vars(c) for c in data["counts"]]
    return Response(json.dumps(data, default=str), content_type="application/json")
