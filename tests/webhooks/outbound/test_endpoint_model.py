"""Stateful model of the per-endpoint cap and its hand-on (Hypothesis), on the real delivery code.

Actors, in any order: an event's attempt starts (a first delivery, or beat's re-send once its
back-off is due), an attempt in flight ends (delivered, or failed), a handed-on task runs. An
attempt that starts may be interrupted after any of its Redis round trips by other workers:
attempts in flight ending, queued tasks running. The moments between one attempt's steps are
where two workers meet.

After every step (every attempt either returned or waiting on the consumer):
- the cap holds: at most ``ENDPOINT_MAX_IN_FLIGHT`` attempts in flight, and as many leases;
- nothing is stranded: while the endpoint is healthy (the last attempt to end delivered), no
  pending event waits for a slot with no attempt in flight and no task queued to send it: it
  would sit out its back-off and beat's tick with the endpoint idle;
- a handed-on task is never refused as "locked" by an attempt that has given its event up.

On the code before the deferral became one step with the lease check (03f1e8b), the default
profile's 200 examples find both: an event stranded (every attempt in flight ended between the
check and the wait) and a handed-on task refused because the deferring attempt still held the
event's lock.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import fakeredis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from orchestrator.core import clock, enqueue, keys
from orchestrator.services import build_services
from tests.helpers import make_settings, on_round_trips
from tests.webhooks.outbound.test_delivery import make_due, make_event
from webhooks.outbound import delivery
from webhooks.outbound.transport import Attempt

EVENTS = 7
MAX_INTERRUPT_AFTER = 6  # round trips of a starting attempt; 0: not interrupted
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.001
URL = "http://consumer.test/h"
IN_POST = "in post"


class _Gate:
    """An attempt waiting on the consumer until the model ends it."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.status = 200


class _Interrupt:
    """Runs ``action`` once, in ``thread``, right after its ``after``-th Redis round trip."""

    def __init__(self, r: Any) -> None:
        self.thread: threading.Thread | None = None
        self.after = 0
        self.action: Callable[[], None] = lambda: None
        self._count = 0
        on_round_trips(None, r, after=self._tick)

    def arm(self, thread: threading.Thread, after: int, action: Callable[[], None]) -> None:
        self.thread, self.after, self.action, self._count = thread, after, action, 0

    def disarm(self) -> None:
        self.thread = None

    def _tick(self) -> None:
        if self.thread is not threading.current_thread():
            return
        self._count += 1
        if self._count == self.after:
            self.thread = None
            self.action()


class EndpointModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        connection = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
        self.svc = build_services(
            make_settings(
                allow_http=True, delivery_timeout_seconds=0.5, delivery_retry_schedule=(0, 1, 1, 1)
            ),
            connection=connection,
        )
        self.queued: list[tuple[int, str]] = []  # DELIVER tasks sent, not yet run: (seq, id)
        self.sent = 0  # tasks sent so far
        self.in_post: dict[str, _Gate] = {}
        self.running: dict[str, threading.Thread] = {}
        # Attempts under way (between two of their steps): event id -> tasks sent before it began.
        self.starting: dict[str, int] = {}
        self.last_end_ok = True
        self.errors: list[BaseException] = []
        self._real_send, self._real_post = enqueue.send, delivery.post
        enqueue.send = self._send  # type: ignore[assignment]
        delivery.post = self._post  # type: ignore[assignment]
        client, _ = self.svc.clients.create("acme", URL)
        self.events = [make_event(self.svc, client.id) for _ in range(EVENTS)]
        self.interrupt = _Interrupt(self.svc.redis)

    def teardown(self) -> None:
        for gate in list(self.in_post.values()):
            gate.released.set()
        for thread in list(self.running.values()):
            thread.join(WAIT_SECONDS)
        enqueue.send, delivery.post = self._real_send, self._real_post  # type: ignore[assignment]

    # the seams: the broker and the consumer

    def _send(self, task_name: str, *args: str) -> bool:
        if task_name == enqueue.DELIVER:
            self.queued.append((self.sent, args[0]))
            self.sent += 1
        return True

    def _post(self, svc: Any, url: str, evt: Any, secrets: Any) -> Attempt:
        gate = self.in_post[evt.id] = _Gate()
        assert gate.released.wait(WAIT_SECONDS), "an attempt in flight was never ended"
        ok = gate.status == 200
        return Attempt(gate.status, 1, "", "" if ok else f"HTTP {gate.status}")

    # actors

    def _attempt(self, event_id: str, interrupt: tuple[int, Callable[[], None]] | None) -> str:
        """Run one attempt until it returns (its outcome) or waits on the consumer."""
        outcome: dict[str, str] = {}

        def run() -> None:
            try:
                outcome["o"] = delivery.deliver(self.svc, event_id)
            except BaseException as exc:  # raised again in the model's thread
                self.errors.append(exc)
                raise

        thread = threading.Thread(target=run, daemon=True)
        if interrupt is not None:
            self.interrupt.arm(thread, *interrupt)
        self.starting[event_id] = self.sent
        thread.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while thread.is_alive() and event_id not in self.in_post:
            assert time.monotonic() < deadline, "an attempt neither ended nor reached the consumer"
            time.sleep(POLL_SECONDS)
        self.interrupt.disarm()  # only while this step runs: not when it resumes later
        self.starting.pop(event_id, None)
        self._raise_errors()
        if thread.is_alive():
            self.running[event_id] = thread
            return IN_POST
        return outcome["o"]

    def _end(self, event_id: str, ok: bool) -> None:
        gate = self.in_post.pop(event_id)
        gate.status = 200 if ok else 500
        gate.released.set()
        self.running.pop(event_id).join(WAIT_SECONDS)
        self._raise_errors()
        self.last_end_ok = ok

    def _raise_errors(self) -> None:
        if self.errors:
            raise self.errors[0]

    def _state(self, event_id: str) -> str:
        return str(self.svc.redis.hget(keys.event(event_id), "state") or "")

    @rule(data=st.data())
    def start(self, data: st.DataObject) -> None:
        """A first delivery, or beat's re-send once the event's back-off is due; maybe, after any
        of its round trips, other workers act: attempts in flight end, queued tasks run."""
        free = [e for e in self.events if e not in self.running]
        pending = [e for e in free if self._state(e) == delivery.PENDING]
        if not pending:
            return
        event_id = data.draw(st.sampled_from(pending))
        make_due(self.svc, event_id)
        interrupt = None
        ending = (
            data.draw(st.lists(st.sampled_from(sorted(self.in_post)), unique=True))
            if self.in_post
            else []
        )
        if ending or self.queued:
            after = data.draw(st.integers(1, MAX_INTERRUPT_AFTER))
            ends = [(e, data.draw(st.booleans())) for e in ending]
            tasks = data.draw(st.integers(0, len(self.queued) + len(ending)))
            interrupt = (after, lambda: self._others_act(ends, tasks))
        self._attempt(event_id, interrupt)

    def _others_act(self, ends: list[tuple[str, bool]], tasks: int) -> None:
        for event_id, ok in ends:
            self._end(event_id, ok)
        for _ in range(tasks):
            self.run_a_queued_task()

    @rule(data=st.data())
    def end(self, data: st.DataObject) -> None:
        if self.in_post:
            self._end(data.draw(st.sampled_from(sorted(self.in_post))), data.draw(st.booleans()))

    @rule()
    def run_a_queued_task(self) -> None:
        if not self.queued:
            return
        seq, event_id = self.queued.pop(0)
        if event_id in self.running or seq < self.starting.get(event_id, -1):
            # An attempt of that event is under way (beat's re-send), begun before this task was
            # sent: it is the one the task would make. A task sent after it began was handed on
            # by an attempt that found the event waiting: that attempt had given the event up.
            return
        outcome = self._attempt(event_id, None)
        assert outcome != "locked", f"handed-on {event_id} refused: locked by nobody running"

    # invariants

    @invariant()
    def the_cap_holds(self) -> None:
        lease = keys.endpoint_in_flight(delivery.endpoint_hash(URL))
        assert len(self.in_post) <= delivery.ENDPOINT_MAX_IN_FLIGHT
        assert self.svc.redis.zcard(lease) <= delivery.ENDPOINT_MAX_IN_FLIGHT

    @invariant()
    def nothing_is_stranded(self) -> None:
        waiting_key = keys.endpoint_waiting(delivery.endpoint_hash(URL))
        waiting = [
            e
            for e in self.svc.redis.zrange(waiting_key, 0, -1)
            if self._state(e) == delivery.PENDING
        ]
        stranded = waiting and not self.in_post and not self.queued and self.last_end_ok
        assert not stranded, f"{waiting} wait with the endpoint idle and healthy, at {clock.now()}"


TestEndpointModel = EndpointModel.TestCase
# Derandomized like the job model (tests/model): the same examples on every run; the long
# profile (``make test-model``) explores more.
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
TestEndpointModel.settings = settings(
    max_examples=1000 if LONG else 200,
    stateful_step_count=25,
    deadline=None,
    derandomize=not LONG,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
