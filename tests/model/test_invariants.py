"""Issue 8, "prove the invariants": a Hypothesis stateful model of the whole orchestrator.

One example is one small world: a fresh fakeredis (real Lua) with a handful of jobs of one
client, a scripted Pixazo with a charge ledger (``fakes.FakePixazo``), a consumer endpoint,
a model clock, and no Celery: every message the product enqueues lands in ``self.pending``,
and rules decide which runs next, run it again (redelivery), run it while the worker dies, or
drop it (a lost message, which the due-time sets and the reconcile tick must recover).

Rules are every actor in any order: create, the submit task (any Pixazo answer, or a *slow*
submit whose answer comes later), polls, Pixazo callbacks (any status, any request Pixazo
issued for the job, duplicates, out of order; the receiver applies a new one in the request, or
dies or meets a Redis error after recording it, leaving it to beat's ``apply_callback`` task, or
is overtaken by that task between its read and its move), reconcile ticks at any clock advance
(the tick fans out one batch message per due set with due members: run at once in the fan-out's
order, or left pending like any message: run in any order, redelivered, dropped, or killed right
after its claim, so that its members wait out the claim's lease), operator retry (with and
without confirmation), cancel, redeliver, and delivery attempts.

Invariants (each its own ``@invariant`` so that Hypothesis reports each kind separately):

* ``no_double_charge``: Pixazo charged at most one submit per job and generation, except the
  documented case: every earlier charge of the generation had an unknown outcome, the grace
  had passed since the last one, and no callback for them was recorded while the job was
  still in a submit (anything but ``queued``). A confirmed operator retry starts a generation.
* ``unconfirmed_retry_never_recharges``: an operator retry without confirmation never leads to
  a submit of a job that Pixazo had charged before.
* ``stale_answer_never_settles_newer_claim``: a late 202 of an old attempt does not settle a
  newer attempt's claim (the job in ``submitting`` with more attempts than when it was sent).
* ``terminal_stays_terminal``: completed/failed/canceled is final, except failed -> queued by
  an operator's retry.
* ``fresh_budget_per_generation``: a job fails ``upstream_unavailable`` only after a whole
  attempt budget of submits in its current generation (a retry starts a fresh budget).
* ``one_event_per_job_type_generation``: each job, event type and generation has exactly one
  event id (``job:{id}:events`` maps ``"{type}:{generation}"``, or ``type`` for generation 1
  before the change), its event exists, and every generation that ended has its event.
* ``active_job_has_one_due_time``: an active job is in exactly one of the job due-time sets
  (the one of its state) besides ``due:deadline``, which it is in too; a terminal one in none.
* ``indexes_point_at_jobs``: no ``idx:*`` member is a missing job; each job is in the status
  index of its public status and in no other.
* ``budget_committed_is_unreleased_jobs`` (issue 13): each month's committed-spend counter of
  the client equals the sum of the costs its jobs committed in that month and have not released;
  a job released its cost only if Pixazo charged nothing in its current generation or ended it
  with ERROR; and every job that ended uncharged (failed or canceled without ``charge_risk``,
  or ``upstream_error``) has released it.
* at teardown, after draining (every message runs, Pixazo answers 202, consumers 2xx, the clock
  passes every schedule and the deadline): every event is delivered or dead-lettered, every
  job is terminal (a job is finished or failed by its deadline), and every recorded callback
  has been applied (``due:callback`` is empty).

``MODEL_SKIP=name,name`` skips invariants by name (``drain`` skips the teardown drain), to
look for further violations behind one already found. Profiles: ``ci`` (default,
derandomized) and ``long`` (``HYPOTHESIS_PROFILE=long``, ``make test-model``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import random
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import workers.callbacks
import workers.delivery
import workers.poll
import workers.reconcile
import workers.submit
from orchestrator.app import create_app
from orchestrator.core import budgets, clock, enqueue, ids, keys, tokens
from orchestrator.intake import create
from orchestrator.jobs import actions
from orchestrator.jobs.state import (
    ACTIVE,
    CHARGE_RISK,
    EVENT_FOR_STATE,
    PUBLIC_STATUS,
    STATE_DUE_SET,
    JobState,
)
from orchestrator.jobs.store import event_ids_of
from orchestrator.reconcile import steps as reconcile_steps
from orchestrator.services import EXTENSION_NAME, build_services
from orchestrator.upstream import submission
from orchestrator.upstream.pixazo import PixazoClient
from tests.conftest import make_settings
from tests.model.fakes import (
    SLOW_ANSWERS,
    SLOW_WAIT_SECONDS,
    SUBMIT_DRAWS,
    Charge,
    Clock,
    FakeConsumer,
    FakePixazo,
    SlowSubmit,
    WorkerDied,
)
from webhooks.inbound import receiver
from webhooks.outbound import delivery
from webhooks.outbound import redeliver as outbound_redeliver

# ----------------------------------------------------------------------------- configuration

settings.register_profile(
    "ci",
    max_examples=250,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "long",
    max_examples=5000,
    stateful_step_count=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    PROFILE = "ci"
SKIP = frozenset(filter(None, os.environ.get("MODEL_SKIP", "").split(",")))

SETTINGS = make_settings(
    stuck_after_seconds=60,
    job_deadline_seconds=1800,
    delivery_retry_schedule=(0, 10, 60),
    submit_retry_schedule=(1, 2, 4),  # an attempt budget of 3
    poll_schedule=(10, 30),
    unknown_grace_seconds=300,
    balance_probe_seconds=10.0,
    submit_rate_per_second=1000.0,
    submit_concurrency=100,
    submit_timeout_seconds=30.0,
    reconcile_batch_size=50,
)
GRACE = SETTINGS.unknown_grace_seconds
BUDGET = len(SETTINGS.submit_retry_schedule)
SUBMITTING_FOR = SETTINGS.submit_timeout_seconds + submission.SUBMITTING_MARGIN_SECONDS
# Clock advances: nothing, small steps, and just past each period that matters (the deadline,
# which fails every job, only for ticks and not twice as often as the rest).
ADVANCES = sorted(
    {
        0.0,
        1.0,
        5.0,
        11.0,
        31.0,
        SUBMITTING_FOR + 1,
        SETTINGS.stuck_after_seconds + 1.0,
        GRACE + 1.0,
    }
)
TICK_ADVANCES = (*ADVANCES, SETTINGS.job_deadline_seconds + 1.0)
MAX_JOBS = 3
MODEL_ID = "pixverse"  # v5.6: a priced model, so that budgets commit real amounts
MODEL_INPUT = {"prompt": "a cat at a window", "aspect_ratio": "16:9", "resolution": "720p"}
CONSUMER_URL = "https://consumer.example/hooks/acme"
UPSTREAM = ("QUEUED", "PROCESSING", "COMPLETED", "FAILED", "ERROR")
HTTP = ("ok", "5xx", "timeout", "429", "410")  # poll: ok/5xx/timeout; delivery: all
TERMINAL = frozenset({"completed", "failed", "canceled"})
# How the receiver's apply of a new callback goes: in the request, or not (its process dies
# after the record or after the move, Redis fails: beat's task applies it after the grace), or
# overtaken by a late task between its read and its move.
RECEIVER_APPLIES = (
    "inline",
    "inline",
    "inline",
    "died_before_apply",
    "redis_error",
    "died_before_done",
    "task_overtakes",
)
ACTOR = "model-operator"
DRAIN_ROUNDS = 40
DRAIN_STEP_SECONDS = 300.0
TASKS = {
    enqueue.SUBMIT: workers.submit.submit_job,
    enqueue.APPLY_CALLBACK: workers.callbacks.apply_callback,
    enqueue.POLL: workers.poll.poll_job,
    enqueue.DELIVER: workers.delivery.deliver_event,
    enqueue.RECONCILE_BATCH: workers.reconcile.reconcile_batch,
}

_APP: dict[str, Any] = {}


def flask_app() -> Any:
    """One Flask app for the whole run (it is costly); each example swaps its Services in."""
    if "app" not in _APP:
        _APP["app"] = create_app(SETTINGS)
    return _APP["app"]


@dataclass(frozen=True)
class Callback:
    job_id: str
    request_id: str
    status: str
    job_state: str  # the job's state when the receiver recorded it
    generation: int  # the generation of the charge the request belongs to


@dataclass
class Snapshot:
    jobs: dict[str, dict[str, str]] = field(default_factory=dict)
    job_events: dict[str, dict[str, str]] = field(default_factory=dict)
    due: dict[str, dict[str, float]] = field(default_factory=dict)
    indexes: dict[str, list[str]] = field(default_factory=dict)
    events: dict[str, dict[str, str]] = field(default_factory=dict)


def event_generation(evt: dict[str, str]) -> int:
    if evt.get("generation"):
        return int(evt["generation"])
    snapshot = json.loads(evt.get("snapshot") or "{}")
    return int(snapshot.get("generation") or 1)


def parse_event_key(key: str) -> tuple[str, int]:
    """``"job.failed:2"`` -> (job.failed, 2); a bare type (the layout before) is generation 1."""
    kind, _, gen = key.rpartition(":")
    if kind and gen.isdigit():
        return kind, int(gen)
    return key, 1


def step(fn: Any) -> Any:
    """Marks the world unhealthy when a rule raises, so teardown does not pile a drain on top."""

    @functools.wraps(fn)
    def wrapper(self: OrchestratorModel, *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(self, *args, **kwargs)
        except BaseException:
            self.healthy = False
            raise
        self._observe()
        return result

    return wrapper


CHECKS: list[str] = []


def check(name: str) -> Any:
    """An invariant that ``MODEL_SKIP`` can turn off; a failure marks the world unhealthy."""

    def decorate(fn: Any) -> Any:
        CHECKS.append(fn.__name__)

        @functools.wraps(fn)
        def wrapper(self: OrchestratorModel) -> None:
            if name in SKIP:
                return
            try:
                fn(self)
            except BaseException:
                self.healthy = False
                raise

        return wrapper

    return decorate


def _raises(error: BaseException) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


def _killed_after_claim(name: str) -> reconcile_steps.Step:
    """The step ``name`` of a batch whose worker dies right after the batch's claim."""

    def killed(*args: Any) -> int:
        raise WorkerDied(f"reconcile batch {name} killed after its claim")

    return dataclasses.replace(reconcile_steps.STEPS_BY_NAME[name], handle=killed)


class _DeterministicSecrets:
    """ids use ``secrets.randbits``; a seeded stream keeps examples reproducible."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def randbits(self, k: int) -> int:
        return self._random.getrandbits(k)


# ----------------------------------------------------------------------------- the model


class OrchestratorModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.healthy = True
        self.mp = pytest.MonkeyPatch()
        self.clock = Clock()
        self.pending: list[tuple[str, tuple[str, ...]]] = []
        self.slow: list[SlowSubmit] = []
        self.jobs: list[str] = []
        self.gen: dict[str, int] = {}
        self.last_status: dict[str, str] = {}
        self.retried_now: set[str] = set()
        self.unconfirmed: dict[tuple[str, int], list[str]] = {}  # (job, gen) -> earlier charges
        self.callbacks: list[Callback] = []
        self.terminal_seen: dict[tuple[str, int], str] = {}
        # (job, generation) -> (month, micro-dollars committed, released since?)
        self.commits: dict[tuple[str, int], tuple[str, int, bool]] = {}
        self.violations: dict[str, list[str]] = defaultdict(list)
        self.log: list[str] = []  # what happened, for the failure report
        self.seen: set[str] = set()  # what the example exercised (--hypothesis-show-statistics)

        time_module = self.clock.module()
        self.mp.setattr(clock, "now", self.clock.now)
        self.mp.setattr(clock, "time", time_module)
        self.mp.setattr(ids, "time", time_module)
        self.mp.setattr(ids, "secrets", _DeterministicSecrets(7))
        try:  # key expiry (locks, probe, leases) follows the model clock too
            import fakeredis._socket._base as fake_socket

            self.mp.setattr(fake_socket, "time", time_module)
        except (ImportError, AttributeError):  # pragma: no cover - another fakeredis layout
            pass
        self.mp.setattr(enqueue, "send", self._enqueue)
        assert hasattr(delivery, "post"), "harness: delivery.post is gone; patch its transport"
        self.consumer = FakeConsumer()
        self.mp.setattr(delivery, "post", self.consumer.post)

        self.svc = build_services(
            SETTINGS,
            connection=fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True),
        )
        self.pixazo = FakePixazo(self)
        self.svc.pixazo = PixazoClient(
            SETTINGS.pixazo_base_url,
            SETTINGS.pixazo_api_key,
            SETTINGS.submit_timeout_seconds,
            session=self.pixazo,  # type: ignore[arg-type]
        )
        self.app = flask_app()
        self.app.extensions[EXTENSION_NAME] = self.svc
        self.web = self.app.test_client()
        self.client, _ = self.svc.clients.create("acme", CONSUMER_URL)

    # -- plumbing
    def _enqueue(self, task_name: str, *args: str) -> bool:
        self.pending.append((task_name, tuple(args)))
        return True

    def generation_of(self, job_id: str) -> int:
        return self.gen.get(job_id, 1)

    def _job(self, job_id: str) -> dict[str, str]:
        return dict(self.svc.redis.hgetall(keys.job(job_id)))

    def _record_commit(self, job_id: str, generation: int) -> None:
        """What a generation committed to the client's budget (the model's own ledger)."""
        raw = self._job(job_id)
        assert raw[budgets.JOB_STATE] == budgets.COMMITTED, raw
        micros = int(raw[budgets.JOB_MICROS])
        assert micros == budgets.to_micros(float(raw["estimated_cost_usd"])), raw
        self.commits[(job_id, generation)] = (raw[budgets.JOB_PERIOD], micros, False)

    def _pick_job(self, pick: int) -> str:
        return self.jobs[pick % len(self.jobs)]

    def _run(self, name: str, args: tuple[str, ...], answer: str, http: str, die: bool) -> None:
        self.pixazo.next_answer = answer
        self.pixazo.status_answer = http if http in ("ok", "5xx", "timeout") else "ok"
        self.consumer.answer = "died" if die else ("2xx" if http == "ok" else http)
        inbox = self.svc.inbox
        if die and name == enqueue.APPLY_CALLBACK:
            # Killed after the callback was applied, before the inbox entry was cleared.
            def done(inbox_id: str, pipe: Any = None) -> None:
                raise WorkerDied("killed before the inbox entry was cleared")

            inbox.done = done  # type: ignore[method-assign]
        try:
            with self.app.app_context(), pytest.MonkeyPatch.context() as mp:
                if die and name == enqueue.RECONCILE_BATCH:
                    self.seen.add("reconcile batch killed after its claim")
                    mp.setitem(reconcile_steps.STEPS_BY_NAME, args[0], _killed_after_claim(args[0]))
                TASKS[name].run(*args)
        except WorkerDied:
            pass
        finally:
            if die and name == enqueue.APPLY_CALLBACK:
                del inbox.done

    def _tick(self, inline: bool = True) -> None:
        """Beat's tick: its fan-out's batch messages run at once, in order (``inline``), or
        stay pending like any other message."""
        before = len(self.pending)
        with self.app.app_context():
            workers.reconcile.reconcile_tick.run()
        fanned = self.pending[before:]
        assert all(name == enqueue.RECONCILE_BATCH for name, _ in fanned), fanned
        if fanned and not inline:
            self.seen.add("reconcile batches left pending")
        if inline:
            del self.pending[before:]
            for name, args in fanned:
                with self.app.app_context():
                    TASKS[name].run(*args)

    def _observe(self) -> None:
        """After each step: status changes, generations that ended, fresh attempt budgets."""
        for job in self.jobs:
            raw = self._job(job)
            status = raw.get("status", "")
            prev = self.last_status.get(job)
            gen = self.gen[job]
            if prev in TERMINAL and status != prev:
                retried = prev == "failed" and job in self.retried_now and status not in TERMINAL
                if not retried:
                    self.violations["terminal"].append(
                        f"{job} went {prev} -> {status or 'missing'} without an operator retry"
                    )
            if status in TERMINAL:
                self.seen.add(f"{status} in generation {min(gen, 3)}{'+' if gen >= 3 else ''}")
                self.terminal_seen.setdefault((job, gen), status)
                error = json.loads(raw.get("error") or "null") or {}
                posts = self.pixazo.posts.get((job, gen), 0)
                if (
                    status == "failed"
                    and prev != "failed"
                    and error.get("code") == submission.UNAVAILABLE
                    and posts < BUDGET
                ):
                    self.violations["budget"].append(
                        f"{job} failed {submission.UNAVAILABLE} in generation {gen} after "
                        f"{posts} submit(s) of that generation; the budget is {BUDGET}"
                    )
            self.last_status[job] = status
            if (job, gen) in self.commits and raw.get(budgets.JOB_STATE) == budgets.RELEASED:
                period, micros, _ = self.commits[(job, gen)]
                self.commits[(job, gen)] = (period, micros, True)
                self.seen.add(f"budget released ({status})")
        self.retried_now.clear()

    def judge_charge(self, charge: Charge) -> None:
        """Called by Pixazo as it charges, before the charge enters the ledger."""
        job, gen = charge.job_id, charge.generation
        earlier = [c for c in self.pixazo.ledger if c.job_id == job and c.generation == gen]
        self.log.append(f"charge {charge.request_id} job={job[-6:]} gen={gen}")
        if (job, gen) in self.unconfirmed:
            self.violations["unconfirmed_retry"].append(
                f"{job}: a retry without confirmation led to submit {charge.request_id} "
                f"although Pixazo had charged {self.unconfirmed[(job, gen)]} before"
            )
        if not earlier:
            return
        self.seen.add("a second charge in one generation")
        problems = []
        for c in earlier:
            if c.outcome == "accepted":
                problems.append(f"{c.request_id} had been answered 202 and read")
        last = max(c.at for c in earlier)
        if charge.at - last < GRACE:
            problems.append(f"only {charge.at - last:.0f}s after the last charge (grace {GRACE}s)")
        rids = {c.request_id for c in earlier}
        for cb in self.callbacks:
            if cb.job_id == job and cb.request_id in rids and cb.job_state != "queued":
                problems.append(
                    f"a {cb.status} callback for {cb.request_id} was recorded while the job "
                    f"was {cb.job_state}"
                )
        if problems:
            self.violations["double_charge"].append(
                f"{job} generation {gen}: charge {charge.request_id} after "
                f"{[(c.request_id, c.answer or c.outcome) for c in earlier]}: "
                + "; ".join(problems)
            )

    def _release(self, handle: SlowSubmit, answer: str) -> None:
        """Let Pixazo answer a slow submit, and judge what the late answer did."""
        charge = handle.charge
        before = self._job(handle.job_id)
        handle.answer = answer
        handle.release.set()
        if not handle.done.wait(SLOW_WAIT_SECONDS):
            raise RuntimeError("harness: a released slow submit did not finish")
        assert handle.thread is not None
        handle.thread.join()
        self.log.append(f"late {answer} for {charge.request_id if charge else '?'}")
        self.seen.add(f"slow submit answered {answer}")
        if handle.error is not None and not isinstance(handle.error, WorkerDied):
            raise handle.error
        after = self._job(handle.job_id)
        if (
            charge is not None
            and answer == "202"
            and before.get("status") == "submitting"
            and before.get("attempts") != charge.attempts_field
            and after.get("status") != "submitting"
            and after.get("request_id") == charge.request_id
        ):
            self.violations["stale_answer"].append(
                f"{handle.job_id}: the late 202 of attempt {charge.attempts_field} "
                f"({charge.request_id}) settled the claim of attempt {before.get('attempts')} "
                f"(job went submitting -> {after.get('status')})"
            )

    # -- rules
    @initialize()
    def first_job(self) -> None:
        self._create()

    def _create(self) -> None:
        body = {"model": MODEL_ID, "input": {**MODEL_INPUT, "duration": 5}}
        job, created = create.submit_job(self.svc, self.client, body, None)
        assert created
        self.jobs.append(job["id"])
        self.gen[job["id"]] = 1
        self._record_commit(job["id"], 1)
        self.last_status[job["id"]] = "queued"

    @precondition(lambda self: len(self.jobs) < MAX_JOBS)
    @rule()
    @step
    def create_job(self) -> None:
        self._create()

    @precondition(lambda self: self.pending)
    @rule(
        pick=st.integers(0, 63),
        answer=st.sampled_from(SUBMIT_DRAWS),
        http=st.sampled_from(HTTP),
        die=st.sampled_from([False, False, False, True]),
        redeliver=st.sampled_from([False, False, True]),
    )
    @step
    def run_message(self, pick: int, answer: str, http: str, die: bool, redeliver: bool) -> None:
        """Run one pending message; ``redeliver`` leaves a copy behind (at-least-once), ``die``
        kills the worker between two of its steps (submits die through ``answer``)."""
        name, args = self.pending.pop(pick % len(self.pending))
        if redeliver:
            self.pending.append((name, args))
        self._run(name, args, answer, http, die)

    @precondition(lambda self: self.pending)
    @rule(pick=st.integers(0, 63))
    @step
    def drop_message(self, pick: int) -> None:
        """The broker loses a message: only the due-time sets can bring the work back."""
        self.pending.pop(pick % len(self.pending))

    @precondition(
        lambda self: len(self.slow) < 2 and any(n == enqueue.SUBMIT for n, _ in self.pending)
    )
    @rule(pick=st.integers(0, 63))
    @step
    def start_slow_submit(self, pick: int) -> None:
        """A submit that Pixazo charges at once but answers only when a later rule says."""
        submits = [i for i, (n, _) in enumerate(self.pending) if n == enqueue.SUBMIT]
        _, args = self.pending.pop(submits[pick % len(submits)])
        handle = SlowSubmit(args[0])

        def work() -> None:
            self.pixazo.local.slow = handle
            try:
                with self.app.app_context():
                    handle.result = workers.submit.submit_job.run(*args)
            except BaseException as exc:  # handed to the main thread
                handle.error = exc
            finally:
                handle.done.set()
                handle.reached.set()

        handle.thread = threading.Thread(target=work, name="slow-submit", daemon=True)
        handle.thread.start()
        if not handle.reached.wait(SLOW_WAIT_SECONDS):
            raise RuntimeError("harness: a slow submit neither reached Pixazo nor ended")
        if handle.done.is_set():  # it never got to Pixazo (skipped, paused, throttled)
            handle.thread.join()
            if handle.error is not None and not isinstance(handle.error, WorkerDied):
                raise handle.error
            return
        self.slow.append(handle)

    @precondition(lambda self: self.slow)
    @rule(pick=st.integers(0, 3), answer=st.sampled_from(SLOW_ANSWERS))
    @step
    def finish_slow_submit(self, pick: int, answer: str) -> None:
        self._release(self.slow.pop(pick % len(self.slow)), answer)

    @precondition(lambda self: self.pixazo.ledger)
    @rule(
        pick=st.integers(0, 63),
        status=st.sampled_from(UPSTREAM),
        apply=st.sampled_from(RECEIVER_APPLIES),
    )
    @step
    def pixazo_callback(self, pick: int, status: str, apply: str = "inline") -> None:
        """Pixazo calls back for any request it accepted for a job: any status, any order. The
        receiver applies a new one in the request (``inline``), or its process dies or Redis
        fails after the record (then beat's task applies it after the grace), or a late task
        overtakes its apply (between the apply's read and its move)."""
        charge = self.pixazo.ledger[pick % len(self.pixazo.ledger)]
        job_id = charge.job_id
        state = self._job(job_id).get("status", "")
        body = FakePixazo.status_body(charge.request_id, status)
        token = tokens.callback_token(SETTINGS.secret_key, job_id)
        recorded: list[Any] = []
        with pytest.MonkeyPatch.context() as mp:
            self._receiver_apply(mp, apply, recorded)
            try:
                answer = self.web.post(
                    f"/webhooks/pixazo/{job_id}/{token}",
                    data=json.dumps(body),
                    content_type="application/json",
                )
            except WorkerDied:
                answer = None
        if answer is not None:
            assert answer.status_code in (200, 404), answer.get_data(as_text=True)
        if recorded and recorded[0].known_job:
            assert answer is None or answer.status_code == 200, answer.get_data(as_text=True)
            self.seen.add(f"callback recorded while {state}")
            if recorded[0].inbox_id:
                self.seen.add(f"receiver apply {apply}")
            self.callbacks.append(
                Callback(job_id, charge.request_id, status, state, charge.generation)
            )
        self.pixazo.advance_status(charge.request_id, status)

    def _receiver_apply(self, mp: pytest.MonkeyPatch, apply: str, recorded: list[Any]) -> None:
        """Set up one of :data:`RECEIVER_APPLIES` for the next request; ``recorded`` gets what
        the inbox recorded."""
        svc = self.svc
        real_record = svc.inbox.record

        def record(*args: Any, **kwargs: Any) -> Any:
            rec = real_record(*args, **kwargs)
            recorded.append(rec)
            return rec

        mp.setattr(svc.inbox, "record", record)
        if apply == "died_before_apply":
            mp.setattr(receiver, "apply_recorded", _raises(WorkerDied("web died after the record")))
        elif apply == "redis_error":
            mp.setattr(receiver, "apply_recorded", _raises(redis.ConnectionError("Redis away")))
        elif apply == "died_before_done":  # after the move, before the binding and the done
            mp.setattr(svc.inbox, "done", _raises(WorkerDied("web died after the move")))
        elif apply == "task_overtakes":
            real_move = svc.states.transition
            overtaken: list[str] = []

            def move(*args: Any, **kwargs: Any) -> Any:
                if recorded and recorded[0].inbox_id and not overtaken:
                    overtaken.append(recorded[0].inbox_id)  # the task runs whole, once
                    TASKS[enqueue.APPLY_CALLBACK].run(recorded[0].inbox_id)
                return real_move(*args, **kwargs)

            mp.setattr(svc.states, "transition", move)

    @rule(advance=st.sampled_from(TICK_ADVANCES), inline=st.sampled_from([True, True, False]))
    @step
    def reconcile_tick(self, advance: float, inline: bool = True) -> None:
        self.clock.advance(advance)
        self._tick(inline)

    @rule(advance=st.sampled_from(ADVANCES[1:]))
    @step
    def time_passes(self, advance: float) -> None:
        self.clock.advance(advance)

    @rule(pick=st.integers(0, 7), confirm=st.booleans())
    @step
    def operator_retry(self, pick: int, confirm: bool) -> None:
        job = self._pick_job(pick)
        charged = [c.request_id for c in self.pixazo.ledger if c.job_id == job]
        result = actions.retry(self.svc, job, ACTOR, confirm_charge=confirm)
        self.seen.add(f"retry confirm={confirm} ok={result.ok}")
        if result.ok:
            self.gen[job] += 1
            self.retried_now.add(job)
            self._record_commit(job, self.gen[job])
            if not confirm and charged:
                self.unconfirmed[(job, self.gen[job])] = charged

    @rule(pick=st.integers(0, 7), really=st.integers(0, 3))
    @step
    def cancel(self, pick: int, really: int) -> None:
        """Cancels one time in four: a cancel ends a job's story, so it must not end most."""
        if really == 3:
            actions.cancel(self.svc, self._pick_job(pick), ACTOR)

    @rule(pick=st.integers(0, 7), which=st.integers(0, 7), whole_job=st.booleans())
    @step
    def redeliver(self, pick: int, which: int, whole_job: bool) -> None:
        job = self._pick_job(pick)
        if whole_job:
            outbound_redeliver.redeliver_job(self.svc, job, ACTOR)
            return
        event_ids = sorted(self.svc.jobs.event_ids(job).values())
        if event_ids:
            outbound_redeliver.redeliver(self.svc, event_ids[which % len(event_ids)], ACTOR)

    # -- invariants
    @check("no_double_charge")
    def no_double_charge(self) -> None:
        assert not self.violations["double_charge"], self.violations["double_charge"]

    @check("unconfirmed_retry_never_recharges")
    def unconfirmed_retry_never_recharges(self) -> None:
        assert not self.violations["unconfirmed_retry"], self.violations["unconfirmed_retry"]

    @check("stale_answer_never_settles_newer_claim")
    def stale_answer_never_settles_newer_claim(self) -> None:
        assert not self.violations["stale_answer"], self.violations["stale_answer"]

    @check("terminal_stays_terminal")
    def terminal_stays_terminal(self) -> None:
        assert not self.violations["terminal"], self.violations["terminal"]

    @check("fresh_budget_per_generation")
    def fresh_budget_per_generation(self) -> None:
        assert not self.violations["budget"], self.violations["budget"]

    @check("budget_committed_is_unreleased_jobs")
    def budget_committed_is_unreleased_jobs(self) -> None:
        jobs = self.snap.jobs
        expected: dict[str, int] = defaultdict(int)
        for period, micros, released in self.commits.values():
            expected[period] += 0 if released else micros
        counters = {
            p: int(self.svc.redis.get(keys.budget_committed(self.client.id, p)) or 0)
            for p in expected
        }
        assert counters == dict(expected), (counters, dict(expected), self.commits)
        for job, raw in jobs.items():
            gen = int(raw.get("generation") or 1)
            charged = [
                c.request_id for c in self.pixazo.ledger if (c.job_id, c.generation) == (job, gen)
            ]
            error = (json.loads(raw.get("error") or "null") or {}).get("code")
            uncharged_error = error in budgets.UNCHARGED_ERROR_CODES
            released = raw.get(budgets.JOB_STATE) == budgets.RELEASED
            assert not released or not charged or uncharged_error, (
                f"{job} released its cost though Pixazo charged {charged} in generation {gen}"
            )
            ended_uncharged = raw.get("status") in budgets.RELEASE_STATES and (
                raw.get(CHARGE_RISK) != "1" or uncharged_error
            )
            assert released or not ended_uncharged, (
                f"{job} ended {raw.get('status')} ({error}) uncharged and kept its cost"
            )

    def _events(self) -> list[dict[str, str]]:
        return list(self._snapshot().events.values())

    def _snapshot(self) -> Snapshot:
        """What the checks read, in one SCAN and one pipeline (the checks run every step)."""
        r = self.svc.redis
        names = list(r.scan_iter(count=100_000))
        indexes = sorted(k for k in names if k.startswith("idx:"))
        event_keys = sorted(k for k in names if k.startswith("evt:") and k.count(":") == 1)
        pipe = r.pipeline(transaction=False)
        for job in self.jobs:
            pipe.hgetall(keys.job(job))
            pipe.hgetall(keys.job_events(job))
        for due_set in keys.JOB_DUE_SETS:
            pipe.zrange(due_set, 0, -1, withscores=True)
        for index in indexes:
            pipe.zrange(index, 0, -1)
        for name in event_keys:
            pipe.hgetall(name)
        out = iter(pipe.execute())
        snap = Snapshot()
        for job in self.jobs:
            snap.jobs[job] = dict(next(out))
            snap.job_events[job] = event_ids_of(snap.jobs[job], next(out))
        for due_set in keys.JOB_DUE_SETS:
            snap.due[due_set] = dict(next(out))
        for index in indexes:
            snap.indexes[index] = list(next(out))
        for _ in event_keys:
            evt = dict(next(out))
            if evt:
                snap.events[evt["id"]] = evt
        return snap

    @check("one_event_per_job_type_generation")
    def one_event_per_job_type_generation(self) -> None:
        snap = self.snap
        groups: dict[tuple[str, str, int], list[str]] = defaultdict(list)
        for evt in snap.events.values():
            groups[(evt["job_id"], evt["type"], event_generation(evt))].append(evt["id"])
        duplicated = {k: v for k, v in groups.items() if len(v) > 1}
        assert not duplicated, f"several event ids for one job, type and generation: {duplicated}"
        for job in self.jobs:
            mapping = snap.job_events[job]
            assert len(set(mapping.values())) == len(mapping), f"{job}: shared ids {mapping}"
            for key, event_id in mapping.items():
                kind, gen = parse_event_key(key)
                evt = snap.events.get(event_id)
                assert evt, f"{job}: {key} -> {event_id}, which does not exist"
                assert (evt["job_id"], evt["type"], event_generation(evt)) == (job, kind, gen), (
                    f"{job}: {key} -> {event_id}, an event of {evt['job_id']} {evt['type']} "
                    f"generation {event_generation(evt)}"
                )
        missing = [
            (job, gen, status)
            for (job, gen), status in sorted(self.terminal_seen.items())
            if (job, EVENT_FOR_STATE[JobState(status)], gen) not in groups
        ]
        assert not missing, f"generations that ended without their event: {missing}"

    @check("active_job_has_one_due_time")
    def active_job_has_one_due_time(self) -> None:
        snap = self.snap
        for job in self.jobs:
            raw = snap.jobs[job]
            assert raw, f"{job} vanished"
            state = JobState(raw["status"])
            scores = {s: snap.due[s].get(job) for s in keys.JOB_DUE_SETS}
            if state in ACTIVE:
                sets = [
                    s for s in keys.JOB_DUE_SETS if s != keys.DUE_DEADLINE and scores[s] is not None
                ]
                assert sets == [STATE_DUE_SET.get(state)], (
                    f"{job} is {state} and sits in {sets} (want [{STATE_DUE_SET.get(state)}])"
                )
                assert scores[keys.DUE_DEADLINE] is not None, f"{job} is {state}, no deadline"
            else:
                sets = [s for s in keys.JOB_DUE_SETS if scores[s] is not None]
                assert not sets, f"{job} is {state} and still sits in {sets}"

    @check("indexes_point_at_jobs")
    def indexes_point_at_jobs(self) -> None:
        snap = self.snap
        known = {job for job, raw in snap.jobs.items() if raw}
        others = sorted({m for ms in snap.indexes.values() for m in ms} - known)
        if others:  # members that are not the model's jobs: are they jobs at all?
            pipe = self.svc.redis.pipeline(transaction=False)
            for member in others:
                pipe.exists(keys.job(member))
            known |= {m for m, found in zip(others, pipe.execute(), strict=True) if found}
        dangling = {i: [m for m in ms if m not in known] for i, ms in snap.indexes.items()}
        dangling = {i: ms for i, ms in dangling.items() if ms}
        assert not dangling, f"index entries of missing jobs: {dangling}"
        for job in self.jobs:
            public = PUBLIC_STATUS[JobState(snap.jobs[job]["status"])]
            holding = [
                i[len("idx:status:") :]
                for i, ms in snap.indexes.items()
                if i.startswith("idx:status:") and job in ms
            ]
            assert holding == [public], f"{job} is {public}, in status indexes {holding}"

    @invariant()
    def check_all(self) -> None:
        """Every check after every step. One invariant (not one per check) keeps Hypothesis'
        printed reproductions short; each check fails from its own line, so each kind of
        violation is still reported (and shrunk) as a distinct bug."""
        self.snap = self._snapshot()
        for name in CHECKS:
            getattr(self, name)()

    # -- teardown: finish in-flight work, drain, and check that everything settles
    def _settled(self) -> bool:
        if self.pending or self.slow or self.svc.redis.zcard(keys.DUE_CALLBACK):
            return False
        if any(self._job(job).get("status") not in TERMINAL for job in self.jobs):
            return False
        return all(e.get("state") in ("delivered", "dead") for e in self._events())

    def _drain(self) -> None:
        for _ in range(DRAIN_ROUNDS):
            for _ in range(500):
                if not self.pending:
                    break
                name, args = self.pending.pop(0)
                self._run(name, args, "202", "ok", False)
            self._observe()
            if self._settled():
                break
            self.clock.advance(DRAIN_STEP_SECONDS)
            self._tick()
            self._observe()
        self.check_all()
        if "drain" in SKIP:
            return
        unsettled = [
            (e["id"], e["type"], e.get("state"))
            for e in self._events()
            if e.get("state") not in ("delivered", "dead")
        ]
        assert not unsettled, f"events never delivered or dead-lettered: {unsettled}"
        unapplied = self.svc.redis.zrange(keys.DUE_CALLBACK, 0, -1)
        assert not unapplied, f"recorded callbacks never applied: {unapplied}"
        active = [(j, self._job(j).get("status")) for j in self.jobs]
        active = [(j, s) for j, s in active if s not in TERMINAL]
        assert not active, f"jobs still active after their deadline: {active}"

    def teardown(self) -> None:
        if currently_in_test_context():  # not when test_found.py replays an example by hand
            for what in sorted(self.seen):
                event(what)
        try:
            while self.slow:
                self._release(self.slow.pop(0), "died_after_charge")
            if self.healthy:
                self._drain()
        finally:
            self.mp.undo()


TestInvariants = OrchestratorModel.TestCase
TestInvariants.settings = settings.get_profile(PROFILE)
