"""The state machine: every move allowed or refused, and the bookkeeping each move keeps in step."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.core import keys
from orchestrator.core.records import Event
from orchestrator.jobs.state import (
    ALLOWED,
    ATTEMPT_TOKEN,
    EVENT_FOR_STATE,
    GEN_ATTEMPTS,
    IN_FLIGHT_ONLY,
    PUBLIC_STATUS,
    PUBLIC_STATUSES,
    STATE_DUE_SET,
    TERMINAL,
    JobState,
    TransitionResult,
    _IdentityCache,
    event_key,
)
from orchestrator.jobs.store import NewJob
from tests.orchestrator.script_keys import KeysSpy, changed, snapshot

S = JobState
CLIENT = "cli_test"
# A path of allowed moves from queued to each state.
PATHS: dict[JobState, list[JobState]] = {
    S.QUEUED: [],
    S.SUBMITTING: [S.SUBMITTING],
    S.SUBMIT_UNKNOWN: [S.SUBMITTING, S.SUBMIT_UNKNOWN],
    S.SUBMITTED: [S.SUBMITTED],
    S.PROCESSING: [S.SUBMITTED, S.PROCESSING],
    S.COMPLETED: [S.SUBMITTED, S.COMPLETED],
    S.FAILED: [S.FAILED],
    S.CANCELED: [S.CANCELED],
}
STATE_SETS = sorted(set(STATE_DUE_SET.values()))


def new_job(svc, model: str = "pixverse") -> str:
    job = NewJob(CLIENT, model, {"prompt": "p"}, {}, None, None, "terminal")
    return svc.jobs.create(job).job_id


def job_in(svc, state: JobState) -> str:
    job_id = new_job(svc)
    for step in PATHS[state]:
        current = svc.jobs.state_of(job_id)
        assert svc.states.transition(job_id, expected=[current], to=step).applied
    assert svc.jobs.state_of(job_id) is state
    return job_id


def assert_bookkeeping(svc, job_id: str, retention: int) -> None:
    """Indexes and due sets agree with the job's state."""
    r = svc.redis
    state = svc.jobs.state_of(job_id)
    public = PUBLIC_STATUS[state]
    for status in PUBLIC_STATUSES:
        expected = status == public
        assert (r.zscore(keys.status_index(status), job_id) is not None) is expected, status
        in_client = r.zscore(keys.client_status_index(CLIENT, status), job_id) is not None
        assert in_client is expected, status
    for due_set in STATE_SETS:
        expected = STATE_DUE_SET.get(state) == due_set
        assert (r.zscore(due_set, job_id) is not None) is expected, (state, due_set)
    in_deadline = r.zscore(keys.DUE_DEADLINE, job_id) is not None
    assert in_deadline is (state not in TERMINAL)
    ttl = r.ttl(keys.job(job_id))
    if state in TERMINAL:
        assert 0 < ttl <= retention
        # the timeline list, while it exists (not yet packed into the job hash), expires too
        assert r.ttl(keys.timeline(job_id)) == -2 or 0 < r.ttl(keys.timeline(job_id)) <= retention
        assert r.hget(keys.job(job_id), "completed_at")
    else:
        assert ttl == -1
        assert r.ttl(keys.timeline(job_id)) == -1
        assert not r.hget(keys.job(job_id), "completed_at")


ALL_PAIRS = list(itertools.product(JobState, JobState))


@pytest.mark.parametrize(("start", "to"), [p for p in ALL_PAIRS if p[1] in ALLOWED[p[0]]])
def test_every_allowed_move_applies_and_keeps_bookkeeping(svc, start, to):
    job_id = job_in(svc, start)
    before = len(svc.jobs.timeline(job_id))
    # Leaving a terminal state (an operator's retry) must set a new deadline.
    deadline = 1e10 if start in TERMINAL else None
    result = svc.states.transition(job_id, expected=[start], to=to, deadline_at=deadline)
    assert result.applied and result.previous is start
    assert svc.jobs.state_of(job_id) is to
    timeline = svc.jobs.timeline(job_id)
    assert len(timeline) == before + 1
    assert timeline[-1]["from"] == start.value and timeline[-1]["to"] == to.value
    assert_bookkeeping(svc, job_id, svc.retention_seconds)


@pytest.mark.parametrize(("start", "to"), [p for p in ALL_PAIRS if p[1] not in ALLOWED[p[0]]])
def test_every_forbidden_move_is_refused_before_touching_redis(svc, start, to):
    job_id = job_in(svc, start)
    before = svc.redis.hgetall(keys.job(job_id))
    with pytest.raises(ValueError, match="not in the state machine"):
        svc.states.transition(job_id, expected=[start], to=to)
    assert svc.redis.hgetall(keys.job(job_id)) == before


def test_terminal_states_are_final_except_an_operator_retry_of_failed():
    assert ALLOWED[S.COMPLETED] == frozenset() and ALLOWED[S.CANCELED] == frozenset()
    assert ALLOWED[S.FAILED] == frozenset({S.QUEUED})


@pytest.mark.parametrize("actual", list(JobState))
def test_cas_refuses_when_the_state_differs(svc, actual):
    job_id = job_in(svc, actual)
    # A move that is legal from some other state, expected from that other state.
    other = next(s for s in JobState if s is not actual and S.CANCELED in ALLOWED[s])
    before = svc.redis.hgetall(keys.job(job_id))
    timeline = svc.jobs.timeline(job_id)
    result = svc.states.transition(job_id, expected=[other], to=S.CANCELED, emit=True)
    assert not result.applied and result.previous is actual and result.event_id is None
    assert svc.redis.hgetall(keys.job(job_id)) == before
    assert svc.jobs.timeline(job_id) == timeline
    assert svc.jobs.event_ids(job_id) == {}
    assert svc.redis.zcard(keys.DUE_DELIVERY) == 0


def test_missing_job_is_reported_as_absent(svc):
    result = svc.states.transition("job_nothere", expected=[S.QUEUED], to=S.SUBMITTING)
    assert not result.applied and result.previous is None
    assert not svc.redis.exists(keys.job("job_nothere"))


def test_fields_are_written_and_none_deletes(svc):
    job_id = job_in(svc, S.QUEUED)
    svc.states.transition(
        job_id, expected=[S.QUEUED], to=S.SUBMITTED, fields={"request_id": "r1", "x": {"a": 1}}
    )
    raw = svc.jobs.get_raw(job_id)
    assert raw["request_id"] == "r1" and raw["x"] == '{"a":1}'
    svc.states.transition(job_id, expected=[S.SUBMITTED], to=S.PROCESSING, fields={"x": None})
    assert "x" not in svc.jobs.get_raw(job_id)


def test_due_time_is_the_given_one(svc):
    job_id = job_in(svc, S.QUEUED)
    svc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTED, due_at=1234.5)
    assert svc.redis.zscore(keys.DUE_POLL, job_id) == 1234.5
    assert svc.redis.zscore(keys.DUE_SUBMIT, job_id) is None


@pytest.mark.parametrize("terminal", [S.COMPLETED, S.FAILED, S.CANCELED])
def test_event_is_written_to_the_outbox_with_the_move(svc, terminal):
    job_id = job_in(svc, S.SUBMITTED)
    result = svc.states.transition(job_id, expected=[S.SUBMITTED], to=terminal, emit=True)
    assert result.applied and result.event_created and result.event_id
    evt = svc.redis.hgetall(keys.event(result.event_id))
    assert evt["type"] == EVENT_FOR_STATE[terminal] and evt["job_id"] == job_id
    assert evt["client_id"] == CLIENT and evt["state"] == "pending" and evt["attempts"] == "0"
    assert svc.jobs.event_ids(job_id) == {event_key(EVENT_FOR_STATE[terminal], 1): result.event_id}
    assert svc.redis.zscore(keys.DUE_DELIVERY, result.event_id) is not None
    # The snapshot is the job after the move.
    assert '"status":"' + terminal.value + '"' in evt["snapshot"].replace(" ", "")


def test_no_event_without_emit(svc):
    job_id = job_in(svc, S.SUBMITTED)
    result = svc.states.transition(job_id, expected=[S.SUBMITTED], to=S.COMPLETED)
    assert result.applied and not result.event_created and result.event_id is None
    assert svc.redis.zcard(keys.DUE_DELIVERY) == 0


def test_one_event_per_job_and_type_even_across_a_retry(svc):
    job_id = job_in(svc, S.FAILED)
    # PATHS put it in FAILED without an event; fail it again with one, retry, fail again.
    retry = svc.states.transition(job_id, expected=[S.FAILED], to=S.QUEUED, deadline_at=1e10)
    assert retry.applied
    first = svc.states.transition(job_id, expected=[S.QUEUED], to=S.FAILED, emit=True)
    assert first.event_created
    svc.states.transition(job_id, expected=[S.FAILED], to=S.QUEUED, deadline_at=1e10)
    second = svc.states.transition(job_id, expected=[S.QUEUED], to=S.FAILED, emit=True)
    assert second.applied and not second.event_created and second.event_id is None
    assert svc.jobs.event_ids(job_id) == {"job.failed:1": first.event_id}
    assert svc.redis.zcard(keys.DUE_DELIVERY) == 1
    assert len([k for k in svc.redis.scan_iter("evt:*")]) == 1


def test_terminal_move_sets_retention_on_job_timeline_and_events(svc):
    job_id = job_in(svc, S.PROCESSING)
    svc.states.transition(job_id, expected=[S.PROCESSING], to=S.COMPLETED, emit=True)
    retention = svc.retention_seconds
    assert not svc.redis.exists(keys.job_events(job_id))  # its event ids are job hash fields
    for key in (keys.job(job_id), keys.timeline(job_id)):
        assert retention - 5 <= svc.redis.ttl(key) <= retention, key


def test_operator_retry_of_failed_persists_keys_and_restores_indexes(svc):
    job_id = job_in(svc, S.SUBMITTED)
    svc.states.transition(
        job_id,
        expected=[S.SUBMITTED],
        to=S.FAILED,
        emit=True,
        fields={"error": {"code": "upstream_failed", "message": "m"}},
    )
    assert svc.redis.ttl(keys.job(job_id)) > 0
    result = svc.states.transition(
        job_id,
        expected=[S.FAILED],
        to=S.QUEUED,
        fields={"error": None},
        due_at=100.0,
        deadline_at=5000.0,
    )
    assert result.applied
    for key in (keys.job(job_id), keys.timeline(job_id)):
        assert svc.redis.ttl(key) == -1, key
    raw = svc.jobs.get_raw(job_id)
    assert "completed_at" not in raw and "error" not in raw
    assert svc.redis.zscore(keys.DUE_SUBMIT, job_id) == 100.0
    assert svc.redis.zscore(keys.DUE_DEADLINE, job_id) == 5000.0
    assert_bookkeeping(svc, job_id, svc.retention_seconds)


def test_incr_counts_attempts(svc):
    job_id = job_in(svc, S.QUEUED)
    svc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTING, incr=("attempts",))
    svc.states.transition(job_id, expected=[S.SUBMITTING], to=S.QUEUED)
    svc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTING, incr=("attempts",))
    assert svc.jobs.get(job_id)["attempts"] == 2


def test_public_status_hides_submit_substates(svc):
    for state in (S.SUBMITTING, S.SUBMIT_UNKNOWN):
        job_id = job_in(svc, state)
        assert svc.jobs.get(job_id)["status"] == "queued"
        assert svc.redis.zscore(keys.status_index("queued"), job_id) is not None


def _spy_transitions(svc, monkeypatch):
    spy = KeysSpy(svc.states._script)
    monkeypatch.setattr(svc.states, "_script", spy)
    return spy


@pytest.mark.parametrize(("start", "to"), [(s, t) for s in JobState for t in sorted(ALLOWED[s])])
def test_every_move_touches_only_the_keys_it_passes(svc, monkeypatch, start, to):
    """Index keys, due sets and the event's hash are all in KEYS (Redis Cluster, proxies)."""
    job_id = job_in(svc, start)
    spy = _spy_transitions(svc, monkeypatch)
    before = snapshot(svc.redis)
    result = svc.states.transition(
        job_id,
        expected=[start],
        to=to,
        emit=True,
        deadline_at=None if to in TERMINAL else 9e9,
        fields={"x": "1"},
    )
    assert result.applied
    touched = changed(before, snapshot(svc.redis))
    assert keys.job(job_id) in touched
    assert touched <= set(spy.keys), touched - set(spy.keys)


def test_a_retry_touches_only_the_keys_it_passes(svc, monkeypatch):
    job_id = job_in(svc, S.FAILED)
    spy = _spy_transitions(svc, monkeypatch)
    before = snapshot(svc.redis)
    # Expected states of several public statuses: the index keys of each are passed.
    expected = [S.FAILED, S.SUBMIT_UNKNOWN, S.SUBMITTING]
    retry = {"indexed_ms": "123"}  # an operator retry re-lists the job by when it came back
    assert svc.states.transition(
        job_id, expected=expected, to=S.QUEUED, fields=retry, deadline_at=9e9
    ).applied
    touched = changed(before, snapshot(svc.redis))
    assert keys.client_model_index(CLIENT, "pixverse") in touched
    assert touched <= set(spy.keys), touched - set(spy.keys)


def test_client_and_model_are_read_once_per_job_and_process(svc, monkeypatch):
    job_id = job_in(svc, S.QUEUED)
    reads = []
    real_hmget = svc.redis.hmget
    monkeypatch.setattr(svc.redis, "hmget", lambda *a, **k: reads.append(a) or real_hmget(*a, **k))
    svc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTING)
    svc.states.transition(job_id, expected=[S.SUBMITTING], to=S.SUBMITTED)
    svc.states.transition(job_id, expected=[S.SUBMITTED], to=S.COMPLETED)
    assert len(reads) <= 1


def test_a_missing_job_is_not_remembered(svc):
    result = svc.states.transition("job_missing", expected=[S.QUEUED], to=S.SUBMITTING)
    assert result == TransitionResult(applied=False, previous=None)
    assert svc.states._identities.get("job_missing") is None


def test_the_identity_cache_is_bounded_and_keeps_the_recent():
    cache = _IdentityCache(2)
    cache.put("a", ("c", "m"))
    cache.put("b", ("c", "m"))
    assert cache.get("a") == ("c", "m")  # a is now the most recent
    cache.put("c", ("c", "m"))
    assert len(cache) == 2 and cache.get("b") is None and cache.get("a") is not None


def test_a_move_from_any_of_several_states_touches_only_the_keys_it_passes(svc, monkeypatch):
    job_id = job_in(svc, S.PROCESSING)
    spy = _spy_transitions(svc, monkeypatch)
    before = snapshot(svc.redis)
    expected = [S.QUEUED, S.SUBMITTED, S.PROCESSING]
    assert svc.states.transition(job_id, expected=expected, to=S.CANCELED, emit=True).applied
    touched = changed(before, snapshot(svc.redis))
    assert keys.client_status_index(CLIENT, "processing") in touched
    assert touched <= set(spy.keys), touched - set(spy.keys)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_a_terminal_move_drops_the_fields_only_a_job_in_flight_needs(svc, terminal):
    """Issue 12: the attempt token and this generation's submit count are not kept for the
    retention; the event's snapshot, written in the same step, has them no more either."""
    job_id = job_in(svc, S.QUEUED)
    svc.states.transition(
        job_id,
        expected=[S.QUEUED],
        to=S.SUBMITTING,
        fields={ATTEMPT_TOKEN: "t1"},
        incr=("attempts", GEN_ATTEMPTS),
    )
    assert set(IN_FLIGHT_ONLY) <= set(svc.jobs.get_raw(job_id))
    result = svc.states.transition(job_id, expected=[S.SUBMITTING], to=terminal, emit=True)
    assert result.applied and result.event_created
    raw = svc.jobs.get_raw(job_id)
    assert not set(IN_FLIGHT_ONLY) & set(raw) and raw["attempts"] == "1"
    snap = Event.from_hash(svc.redis.hgetall(keys.event(result.event_id))).snapshot
    assert snap["status"] == terminal.value and not set(IN_FLIGHT_ONLY) & set(snap)


def test_a_non_terminal_move_keeps_the_attempt(svc):
    job_id = job_in(svc, S.QUEUED)
    svc.states.transition(
        job_id,
        expected=[S.QUEUED],
        to=S.SUBMITTING,
        fields={ATTEMPT_TOKEN: "t1"},
        incr=(GEN_ATTEMPTS,),
    )
    svc.states.transition(job_id, expected=[S.SUBMITTING], to=S.SUBMITTED)
    raw = svc.jobs.get_raw(job_id)
    assert raw[ATTEMPT_TOKEN] == "t1" and raw[GEN_ATTEMPTS] == "1"
