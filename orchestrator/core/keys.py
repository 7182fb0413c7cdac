"""The Redis key layout, in one place so that readers, writers and Lua scripts agree.

Per-job data lives in a hash (with its event ids and, once finished, its packed timeline as
fields: orchestrator/jobs/timeline.py) and, while it runs, a timeline list; each event in a hash
of its own. Everything periodic work needs is kept in sorted sets scored by the time it becomes
due, so that a tick reads only what is due.
"""

from __future__ import annotations

# Sorted sets of due times (score: unix seconds). Members are job ids unless noted.
DUE_SUBMIT = "due:submit"  # queued jobs waiting for their (re)submit
DUE_SUBMITTING = "due:submitting"  # jobs inside a submit: due when the submit must have ended
DUE_UNKNOWN = "due:unknown"  # submits of unknown outcome: due when the grace period ends
DUE_POLL = "due:poll"  # submitted jobs: due when the next status poll is
DUE_DEADLINE = "due:deadline"  # every non-terminal job: due at its deadline
DUE_DELIVERY = "due:delivery"  # members are event ids: due at the next attempt
DUE_CALLBACK = "due:callback"  # members are inbox ids: recorded callbacks not yet applied

JOB_DUE_SETS = (DUE_SUBMIT, DUE_SUBMITTING, DUE_UNKNOWN, DUE_POLL, DUE_DEADLINE)
DUE_SETS = (*JOB_DUE_SETS, DUE_DELIVERY, DUE_CALLBACK)  # all seven (orchestrator/core/due.py)

DEAD_DELIVERIES = "deliveries:dead"  # event ids, score: time dead-lettered
ALL_JOBS = "idx:jobs"  # every job id, score: created (ms)
CLIENTS = "clients"  # set of client ids
SUBMISSIONS_PAUSED = "submissions:paused"  # hash: reason, since, by
SUBMISSIONS_PROBE = "submissions:probe"  # string (PX): the job that may probe a 402 pause
UPSTREAM_STATS = "upstream:stats"  # prefix of the console's answer counters (see below)
UPSTREAM_LATENCY = f"{UPSTREAM_STATS}:latency"  # list: recent submit latencies (ms), newest first
UPSTREAM_LAST_ERROR = "upstream:last_error"  # hash: at, status, message

# The submit limiter shared by every worker (orchestrator/limiter.py).
LIMITER_BUCKET = "limiter:submit:bucket"  # hash: tokens, ts (the token bucket)
LIMITER_LEASES = "limiter:submit:leases"  # sorted set of lease ids, score: when the lease lapses

RECONCILE_LOCK = "lock:reconcile"  # string (PX): the token of the beat tick that holds it
AUDIT = "audit"  # list of JSON operator actions, newest first (orchestrator/actions.py)
METRICS = "metrics"  # prefix of the cluster-wide counters and histograms (core/metrics.py)


def upstream_stats(bucket: int) -> str:
    """Hash answer label -> count, for one hour bucket (unix seconds // 3600)."""
    return f"{UPSTREAM_STATS}:{bucket}"


def metric(name: str) -> str:
    """Hash of one Prometheus counter or histogram, summed over every process: field = JSON
    ``[label values, part]`` (part: "" for a counter, a bucket bound or "sum"), value = total."""
    return f"{METRICS}:{name}"


def job(job_id: str) -> str:
    return f"job:{job_id}"


def timeline(job_id: str) -> str:
    """List of the timeline entries not yet packed into the job hash (jobs/timeline.py)."""
    return f"job:{job_id}:timeline"


def job_events(job_id: str) -> str:
    """Hash "type:generation" -> event id of a job stored before issue 12's layout (read, and
    written for such a job only: a job now keeps its event ids in its hash, state.event_field)."""
    return f"job:{job_id}:events"


def event(event_id: str) -> str:
    return f"evt:{event_id}"


def status_index(status: str) -> str:
    return f"idx:status:{status}"


def client_index(client_id: str) -> str:
    return f"idx:client:{client_id}"


def client_status_index(client_id: str, status: str) -> str:
    return f"idx:client:{client_id}:status:{status}"


def model_index(model: str) -> str:
    return f"idx:model:{model}"


def client_model_index(client_id: str, model: str) -> str:
    return f"idx:client:{client_id}:model:{model}"


def request_id(upstream_request_id: str) -> str:
    """String: the job a Pixazo request belongs to, as bound before issue 12 (read only: such
    bindings expire with their TTL; new ones are :func:`request_binding`)."""
    return f"reqid:{upstream_request_id}"


def request_binding(request_digest: str) -> str:
    """String: the job a Pixazo request belongs to, named by a digest of the request id
    (JobStore.bind_request): a short key name, where Pixazo's ids run to 60 characters."""
    return f"rqid:{request_digest}"


def inbox(inbox_id: str) -> str:
    return f"inbox:{inbox_id}"


def client(client_id: str) -> str:
    return f"client:{client_id}"


def api_key(key_hash: str) -> str:
    return f"apikey:{key_hash}"


def idempotency(client_id: str, key: str) -> str:
    return f"idem:{client_id}:{key}"


def rate_limit(client_id: str, window: int) -> str:
    return f"ratelimit:{client_id}:{window}"


def client_dead_deliveries(client_id: str) -> str:
    """Sorted set of one client's dead-lettered event ids, score: time dead-lettered."""
    return f"deliveries:dead:client:{client_id}"


def endpoint_in_flight(endpoint_hash: str) -> str:
    """Sorted set of event ids being sent to one endpoint, score: when the claim lapses."""
    return f"deliveries:inflight:{endpoint_hash}"


def endpoint_waiting(endpoint_hash: str) -> str:
    """Sorted set of event ids deferred because their endpoint was at its in-flight cap, score:
    when deferred; an attempt that gives a lease back hands the earliest one on."""
    return f"deliveries:waiting:{endpoint_hash}"


def event_attempts(event_id: str) -> str:
    """List of one event's attempts (JSON), as events stored before issue 12 kept them (read
    and given the event's TTL only: an event now keeps its last attempts in its own hash)."""
    return f"evt:{event_id}:attempts"


def delivery_lock(event_id: str) -> str:
    """String: the token of the delivery that holds ``event_id`` (one attempt at a time)."""
    return f"lock:delivery:{event_id}"


# Console operators and their sign-ins.
OPERATORS = "operators"  # set of operator names


def operator(name: str) -> str:
    """Hash: name, password_hash, created_at."""
    return f"operator:{name}"


def operator_session(session_id: str) -> str:
    """String: the operator a console session belongs to."""
    return f"ops:session:{session_id}"


def signin_throttle(digest: str) -> str:
    """Hash (count, until ms) of one name + source address: a digest, so its size is fixed."""
    return f"ops:signin:pair:{digest}"


def signin_address(digest: str, minute: int) -> str:
    """Counter of one source address's sign-in attempts in one minute."""
    return f"ops:signin:addr:{digest}:{minute}"


def signin_verifies(second: int) -> str:
    """Counter of password hash verifies in one second, across all web processes."""
    return f"ops:signin:verifies:{second}"


# Per-client monthly budgets (orchestrator/core/budgets.py).
def budget_committed(client_id: str, period: str) -> str:
    """Integer micro-dollars a client committed in one month ("YYYY-MM", UTC); expires some
    months after the month ends."""
    return f"budget:{client_id}:{period}:committed"


def budget_warned(client_id: str, period: str) -> str:
    """String (SET NX): set once the 80% warning of one client and month went to Sentry."""
    return f"budget:{client_id}:{period}:warned"
