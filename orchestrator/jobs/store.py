"""The job store: creating jobs, reading them back, and the timeline each job keeps.

Writes that change a job's state go through :mod:`orchestrator.jobs.state`; this module creates
jobs (with their idempotency key, in one atomic step) and holds the readers.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis

from orchestrator.core import budgets, clock, keys, lua
from orchestrator.core.ids import created_at, is_id, new_id
from orchestrator.jobs import timeline as timelines
from orchestrator.jobs.result import result_of
from orchestrator.jobs.state import EVENT_PREFIX, GENERATION, PUBLIC_STATUS, JobState

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
MAX_PAGE = 100
MAX_EXAMINED = 5000  # members a filtered page may read before it ends early
JOB_PREFIX = "job"
_SCAN_CHUNK = 200
DEFAULT_WEBHOOK_MODE = "terminal"  # what a job without the field asks of Pixazo (not stored)
_CREATED = 1  # create_job.lua's answers: created, replayed (0), refused by the budget (2, 3)
_REFUSED = (2, 3)
# A request binding's key names 96 bits of the request id's SHA-256 (16 characters): no two of
# the requests a retention keeps come near sharing one.
_BINDING_DIGEST_BYTES = 12


@dataclass(frozen=True)
class NewJob:
    client_id: str
    model: str
    input: dict[str, Any]
    metadata: dict[str, Any]
    callback_url: str | None
    estimated_cost_usd: float | None
    webhook_mode: str
    # What the intake could not honour and said so (a gateway default Pixazo cannot apply):
    # [{"field", "message"}], stored with the job and shown in every answer and event.
    warnings: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class CreateResult:
    job_id: str
    created: bool  # False: the idempotency key named an earlier job (or the budget refused)
    fingerprint_matches: bool = True
    refused: budgets.Refusal | None = None  # the client's budget refused the job: nothing stored
    budget_micros: int | None = None  # the client's budget when the job was created
    committed_micros: int = 0  # the client's committed spend for the month, this job included
    period: budgets.Period | None = None
    # The public job object as created (rendered from the fields the create step wrote, so
    # the intake answers without reading the job back); None unless ``created``.
    job: dict[str, Any] | None = None


class JobStore:
    def __init__(self, r: redis.Redis, deadline_seconds: int, first_submit_grace: float) -> None:
        self._redis = r
        self._deadline = deadline_seconds
        self._grace = first_submit_grace
        self._create = r.register_script(lua.source("create_job"))

    def create(
        self,
        job: NewJob,
        *,
        idempotency_key: str | None = None,
        fingerprint: str = "",
        now: float | None = None,
    ) -> CreateResult:
        """Store a queued job, or return the job an earlier request with the same key made.

        The job sits in the submit due-set a little in the future: the intake enqueues the
        submit task right away, and the due-set only catches a message the broker lost.
        The same step checks the client's monthly budget and commits the job's estimated cost
        (:mod:`orchestrator.core.budgets`); a refused job writes nothing.
        """
        moment = clock.now() if now is None else now
        job_id = new_id("job", moment)
        created_ms = int(moment * 1000)
        stamp = clock.iso(created_ms / 1000)  # what readers derive from created_ms
        commit = budgets.commit_for(job.client_id, job.estimated_cost_usd, moment)
        fields = {
            "client_id": job.client_id,
            "status": JobState.QUEUED.value,
            "model": job.model,
            "input": _compact_json(job.input),
            GENERATION: "1",
            "created_ms": str(created_ms),
            **_unless_empty(
                webhook_mode="" if job.webhook_mode == DEFAULT_WEBHOOK_MODE else job.webhook_mode,
                metadata=_compact_json(job.metadata) if job.metadata else "",
                callback_url=job.callback_url or "",
                estimated_cost_usd=""
                if job.estimated_cost_usd is None
                else repr(job.estimated_cost_usd),
                warnings=_compact_json(list(job.warnings)) if job.warnings else "",
            ),
            **commit.job_fields(),
        }
        idem_key = keys.idempotency(job.client_id, idempotency_key) if idempotency_key else ""
        intake = {"at": stamp, "type": "intake", "model": job.model, "to": JobState.QUEUED.value}
        code, *answer = self._create(
            keys=[
                keys.job(job_id),
                keys.timeline(job_id),
                idem_key,
                keys.DUE_SUBMIT,
                keys.DUE_DEADLINE,
                keys.ALL_JOBS,
                keys.status_index(PUBLIC_STATUS[JobState.QUEUED]),
                keys.client_index(job.client_id),
                keys.client_status_index(job.client_id, PUBLIC_STATUS[JobState.QUEUED]),
                keys.model_index(job.model),
                keys.client_model_index(job.client_id, job.model),
                keys.client(job.client_id),
                commit.key,
            ],
            args=[
                job_id,
                fields["created_ms"],
                json.dumps(fields),
                repr(moment + self._grace),
                repr(moment + self._deadline),
                json.dumps({"job_id": job_id, "fingerprint": fingerprint}),
                IDEMPOTENCY_TTL_SECONDS,
                json.dumps(intake),
                "" if commit.micros is None else str(commit.micros),
                commit.period.expire_at,
            ],
        )
        if code == _CREATED:
            return CreateResult(
                job_id=job_id,
                created=True,
                budget_micros=int(answer[0]) if answer[0] != "" else None,
                committed_micros=int(answer[1]),
                period=commit.period,
                job=render({"id": job_id, **fields}),
            )
        if code in _REFUSED:
            refusal = budgets.refusal(answer[0], answer[1], commit, job.model)
            return CreateResult(job_id="", created=False, refused=refusal)
        record = json.loads(answer[0])
        return CreateResult(
            job_id=record["job_id"],
            created=False,
            fingerprint_matches=record["fingerprint"] == fingerprint,
        )

    def get_raw(self, job_id: str) -> dict[str, str] | None:
        """The job hash with the fields it does not store filled in (:func:`restored`)."""
        data = cast(dict[str, str], self._redis.hgetall(keys.job(job_id)))
        return restored(job_id, data) if data else None

    def find(self, job_id: str, client_id: str | None = None) -> dict[str, str] | None:
        """The raw job for an id from outside (a URL, a form, a CLI argument), the one check
        every such reader uses: None alike for an id not of our shape (it never reaches Redis,
        where ``job_...:timeline`` names another key type), a missing job and, with
        ``client_id``, another client's job."""
        if not is_id(job_id, JOB_PREFIX):
            return None
        raw = self.get_raw(job_id)
        if raw is None or (client_id is not None and raw.get("client_id") != client_id):
            return None
        return raw

    def get(self, job_id: str, client_id: str | None = None) -> dict[str, Any] | None:
        """The public job object; ``client_id`` hides other clients' jobs (as absent)."""
        raw = self.find(job_id, client_id)
        return render(raw) if raw else None

    def state_of(self, job_id: str) -> JobState | None:
        value = cast(str | None, self._redis.hget(keys.job(job_id), "status"))
        return JobState(value) if value else None

    def append_timeline(self, job_id: str, entry: Mapping[str, Any]) -> None:
        record = {"at": clock.iso(), **entry}
        timelines.append(self._redis, job_id, json.dumps(record))

    def queue_timeline_entry(
        self, pipe: redis.client.Pipeline, job_id: str, entry: Mapping[str, Any]
    ) -> Callable[[object], None]:
        """:meth:`append_timeline` queued in ``pipe``; call what it returns with the reply."""
        text = json.dumps({"at": clock.iso(), **entry})
        timelines.queue_append(pipe, self._redis, job_id, text)
        return lambda reply: timelines.appended(self._redis, job_id, text, reply)

    def timeline(self, job_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        return timelines.read(self._redis, job_id, limit)

    def event_ids(self, job_id: str) -> dict[str, str]:
        """The job's events, "type:generation" -> event id: fields of its hash, or the events
        hash of a job made before issue 12 (both read in one round trip)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(keys.job_events(job_id))
        pipe.hgetall(keys.job(job_id))
        older, raw = cast("list[dict[str, str]]", pipe.execute())
        return event_ids_of(raw, older)

    def job_for_request(self, upstream_request_id: str) -> str | None:
        """The job bound to a Pixazo request id, by either form of the binding (one round
        trip): a binding written before the digest form lives out its TTL."""
        names = [_binding_key(upstream_request_id), keys.request_id(upstream_request_id)]
        found = cast("list[str | None]", self._redis.mget(names))
        return next((value for value in found if value), None)

    def bind_request(
        self,
        upstream_request_id: str,
        job_id: str,
        ttl_seconds: int,
        pipe: redis.client.Pipeline | None = None,
    ) -> None:
        """With ``pipe``, only queued there (sent with the caller's other writes)."""
        (self._redis if pipe is None else pipe).set(
            _binding_key(upstream_request_id), job_id, ex=ttl_seconds
        )

    def list_ids(
        self,
        index: str,
        limit: int,
        cursor: str | None = None,
        keep: Callable[[dict[str, str]], bool] | None = None,
    ) -> tuple[list[str], str | None]:
        """A page of ids from ``index``, newest first, after ``cursor``; and the next cursor.

        ``keep`` is an optional predicate on the raw job, for the filters no index covers; it
        is :meth:`list_range`'s bounded, pipelined examination (a page may end short with a
        cursor that continues the search)."""
        page = self.list_range(index, limit, cursor, keep=keep)
        return page.ids, page.next_cursor

    def _walk(
        self,
        index: str,
        position: tuple[float, str] | None,
        low: float | None = None,
        high: float | None = None,
    ) -> Iterator[tuple[str, float]]:
        """Members in (score, member) descending order, strictly after ``position``, with
        scores within [``low``, ``high``] when given."""
        chunk = _SCAN_CHUNK
        bottom = "-inf" if low is None else repr(float(low))
        while True:
            bounds = [b for b in (high, position[0] if position else None) if b is not None]
            top = repr(float(min(bounds))) if bounds else "+inf"
            rows = cast(
                list[tuple[str, float]],
                self._redis.zrevrangebyscore(
                    index, top, bottom, start=0, num=chunk, withscores=True
                ),
            )
            fresh = [(m, s) for m, s in rows if _after((s, m), position)]
            if not fresh and len(rows) == chunk:
                chunk *= 2  # a whole chunk shares the cursor's score: read further
                continue
            yield from fresh
            if len(rows) < chunk or not fresh:
                return
            position = (fresh[-1][1], fresh[-1][0])
            chunk = _SCAN_CHUNK

    def count(self, index: str) -> int:
        return int(self._redis.zcard(index))

    def list_range(
        self,
        index: str,
        limit: int,
        cursor: str | None = None,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        keep: Callable[[dict[str, str]], bool] | None = None,
        max_examined: int = MAX_EXAMINED,
    ) -> Page:
        """A page of ids from ``index``, newest first, after ``cursor``, within a created-time
        range, reading the jobs ``keep`` looks at in pipelined chunks; it stops after
        ``max_examined`` members (reading no more than that) so that a rare match costs a
        bounded page, and the cursor then continues the search."""
        limit = max(1, min(limit, MAX_PAGE))
        out: list[str] = []
        last: tuple[float, str] | None = None
        examined = 0
        walk = self._walk(index, decode_cursor(cursor), since_ms, until_ms)
        while True:
            room = max_examined - examined
            if room <= 0 and last is not None:
                return Page(out, encode_cursor(*last), examined_all=False)
            batch = list(itertools.islice(walk, min(_SCAN_CHUNK, max(room, 1))))
            if not batch:
                return Page(out, None)
            raws = self.get_many([m for m, _ in batch]) if keep is not None else None
            for i, (job_id, score) in enumerate(batch):
                raw = raws[i] if raws is not None else None
                matches = raws is None or (raw is not None and keep is not None and keep(raw))
                if matches and len(out) == limit:
                    return Page(out, encode_cursor(*last) if last else None)
                if matches:
                    out.append(job_id)
                last = (score, job_id)
                examined += 1

    def get_many(self, job_ids: list[str]) -> list[dict[str, str] | None]:
        """Raw job hashes in one round trip (``None`` for a job that has expired)."""
        pipe = self._redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(keys.job(job_id))
        found = cast("list[dict[str, str]]", pipe.execute())
        return [restored(j, d) if d else None for j, d in zip(job_ids, found, strict=True)]


@dataclass(frozen=True)
class Page:
    ids: list[str]
    next_cursor: str | None
    examined_all: bool = True  # False: the examination cap ended the page early


@dataclass(frozen=True)
class JobFilter:
    """What an operator filters the job list by; ``index_for`` picks the index that serves it."""

    status: str | None = None
    client_id: str | None = None
    model: str | None = None
    error_code: str | None = None


def index_for(f: JobFilter, r: redis.Redis) -> tuple[str, Callable[[dict[str, str]], bool] | None]:
    """The narrowest index for the filter, and a predicate for what that index does not cover.

    Every combination has an index except status+model (without a client): there the smaller
    of the two indexes is read and the other attribute is checked on each job."""
    if f.client_id and f.status:
        index = keys.client_status_index(f.client_id, f.status)
    elif f.client_id and f.model:
        index = keys.client_model_index(f.client_id, f.model)
    elif f.client_id:
        index = keys.client_index(f.client_id)
    elif f.status and f.model:
        by_status, by_model = keys.status_index(f.status), keys.model_index(f.model)
        pipe = r.pipeline(transaction=False)
        pipe.zcard(by_status)
        pipe.zcard(by_model)
        n_status, n_model = pipe.execute()
        index = by_status if n_status <= n_model else by_model
    elif f.status:
        index = keys.status_index(f.status)
    elif f.model:
        index = keys.model_index(f.model)
    else:
        index = keys.ALL_JOBS
    checks: list[Callable[[dict[str, str]], bool]] = []
    if f.model and f.client_id and f.status:
        checks.append(lambda raw: raw.get("model") == f.model)
    elif f.model and f.status and not f.client_id:
        checks.append(lambda raw: raw.get("model") == f.model)
        checks.append(lambda raw: PUBLIC_STATUS[JobState(raw["status"])] == f.status)
    if f.error_code:
        checks.append(lambda raw: error_code(raw) == f.error_code)
    if not checks:
        return index, None
    return index, lambda raw: all(check(raw) for check in checks)


def _after(item: tuple[float, str], position: tuple[float, str] | None) -> bool:
    if position is None:
        return True
    score, member = item
    return score < position[0] or (score == position[0] and member < position[1])


def encode_cursor(score: float, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"{score!r}|{job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[float, str] | None:
    """Raises ValueError for a cursor we did not make."""
    if not cursor:
        return None
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        score, job_id = base64.urlsafe_b64decode(padded.encode()).decode().split("|", 1)
        value = float(score)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("malformed cursor") from exc
    if not math.isfinite(value):  # Redis refuses "nan" as a range bound: that would be a 500
        raise ValueError("malformed cursor")
    return value, job_id


def event_ids_of(job_hash: Mapping[str, str], older: Mapping[str, str]) -> dict[str, str]:
    """ "type:generation" -> event id from a job hash's event fields, over ``older`` (the events
    hash of a job made before issue 12)."""
    own = {k[len(EVENT_PREFIX) :]: v for k, v in job_hash.items() if k.startswith(EVENT_PREFIX)}
    return {**older, **own}


def restored(job_id: str, raw: Mapping[str, str]) -> dict[str, str]:
    """The job hash as readers know it. A job stores no field it can derive (issue 12: bytes
    per job): its id is its key's, ``created_at`` is ``created_ms`` (intake writes both from the
    same millisecond), ``updated_at`` is ``completed_at`` once finished (the terminal move sets
    both) and ``created_at`` before any move. A hash written before stores them all."""
    out = {"id": job_id, **raw}
    if "created_at" not in out:
        out["created_at"] = _created_stamp(out)
    if "updated_at" not in out:
        out["updated_at"] = out.get("completed_at") or out["created_at"]
    return out


def _created_stamp(raw: Mapping[str, str]) -> str:
    """``created_at`` from ``created_ms`` (else from the id's own milliseconds)."""
    created_ms = raw.get("created_ms") or ""
    if created_ms.isdigit():
        return clock.iso(int(created_ms) / 1000)
    return clock.iso(created_at(raw["id"])) if raw.get("id") else ""


def render(raw: Mapping[str, str]) -> dict[str, Any]:
    """The job object of API.md from its stored hash. ``job_id``, ``created`` (Unix seconds) and
    ``result`` are the gateway dialects' names for what ``id``, ``created_at`` and ``output`` say,
    so that clients of aigateway.sh and EmpirioLabs read every job answer unchanged. ``raw`` may
    lack the fields a job derives (:func:`restored`), but not its id."""
    raw = restored(raw["id"], raw)
    state = JobState(raw["status"])
    cost = raw.get("estimated_cost_usd") or ""
    status = PUBLIC_STATUS[state]
    job_input = _json(raw.get("input"), {})
    output = _json(raw.get("output"), None)
    return {
        "id": raw["id"],
        "job_id": raw["id"],
        "status": status,
        "model": raw["model"],
        "input": job_input,
        "metadata": _json(raw.get("metadata"), {}),
        "callback_url": raw.get("callback_url") or None,
        "request_id": raw.get("request_id") or None,
        "upstream_status": raw.get("upstream_status") or None,
        "output": output,
        "result": result_of(status, job_input, output),
        "error": _json(raw.get("error"), None),
        "warnings": _json(raw.get("warnings"), []),
        "estimated_cost_usd": float(cost) if cost else None,
        "attempts": int(raw.get("attempts") or 0),
        "created": _unix_seconds(raw),
        "created_at": raw["created_at"],
        "updated_at": raw.get("updated_at") or raw["created_at"],
        "completed_at": raw.get("completed_at") or None,
    }


def _unix_seconds(raw: Mapping[str, str]) -> int | None:
    created_ms = raw.get("created_ms") or ""
    if created_ms.isdigit():
        return int(created_ms) // 1000
    moment = clock.parse_iso(raw.get("created_at"))
    return int(moment.timestamp()) if moment is not None else None


def error_code(raw: Mapping[str, str]) -> str | None:
    error = _json(raw.get("error"), None)
    return error.get("code") if isinstance(error, dict) else None


def _json(value: str | None, default: Any) -> Any:
    return json.loads(value) if value else default


def _binding_key(upstream_request_id: str) -> str:
    """The request binding's key: 96 bits of SHA-256 of the request id, url-safe base64."""
    digest = hashlib.sha256(upstream_request_id.encode("utf-8")).digest()[:_BINDING_DIGEST_BYTES]
    return keys.request_binding(base64.urlsafe_b64encode(digest).decode("ascii"))


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _unless_empty(**fields: str) -> dict[str, str]:
    """The job fields that say something: an absent field reads as its empty default (no
    metadata, callback URL, price or warnings; ``attempts`` is absent until the first submit
    counts it), so a job hash does not keep field names for nothing (issue 12)."""
    return {name: value for name, value in fields.items() if value}
