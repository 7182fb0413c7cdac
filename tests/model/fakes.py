"""The outside world of the model test: a controllable clock, Pixazo with a charge ledger, and a
consumer endpoint. Everything here is deterministic and driven by the state machine's rules.

Pixazo is faked at the HTTP boundary (a ``requests.Session`` handed to the real
``PixazoClient``), so the product's own classification of answers (202, 4xx, 5xx, timeouts) is
what runs. A submit can be *slow*: the worker thread running it blocks inside Pixazo until a
rule lets Pixazo answer, which is how a late answer of an old attempt is modelled.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

START = 1_800_000_000.0  # the model's epoch (unix seconds); far from now, so nothing real mixes in
SLOW_WAIT_SECONDS = 30.0  # a blocked thread that waits longer than this is a harness bug

# What Pixazo does with one submit: (charged?, answer). The answer is what our worker sees.
SUBMIT_ANSWERS: dict[str, bool] = {
    "202": True,
    "400": False,
    "401": False,
    "403": False,
    "402": False,
    "429": False,
    "503": False,
    "500_after_accept": True,  # queued and charged, answered 500 (the simulator's case)
    "502_not_accepted": False,  # a 5xx before queueing: unknown to us, nothing charged
    "timeout_after_accept": True,  # charged; the read timed out (outcome unknown)
    "connect_error": False,  # nothing left our side
    "died_before_send": False,  # the worker was killed after its claim, before sending
    "died_after_charge": True,  # Pixazo charged, the worker was killed before reading
}
# What the submit rule draws from: the answers that need the orchestrator's care (charged, or
# of unknown outcome) twice as often as those that settle a job at once.
SUBMIT_DRAWS = (
    "202",
    "500_after_accept",
    "timeout_after_accept",
    "died_after_charge",
    "429",
    "503",
    "502_not_accepted",
    "connect_error",
    "died_before_send",
    "402",
    "202",
    "500_after_accept",
    "timeout_after_accept",
    "died_after_charge",
    "400",
    "401",
    "403",
)
# Answers of a slow submit (always charged: that is the interesting case).
SLOW_ANSWERS = ("202", "500_after_accept", "timeout_after_accept", "died_after_charge")
UPSTREAM_ORDER = {"QUEUED": 0, "PROCESSING": 1, "COMPLETED": 2, "FAILED": 2, "ERROR": 2}


class WorkerDied(BaseException):
    """A worker process killed mid-task (SIGKILL, OOM): nothing after this point runs."""


class Clock:
    """Model time. ``time`` mimics the ``time`` module for modules whose ``time`` we replace."""

    def __init__(self, start: float = START) -> None:
        self.value = start

    def now(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        assert seconds >= 0
        self.value += seconds

    def module(self) -> Any:
        """A stand-in for the ``time`` module: wall time is model time, the rest is real."""
        clock = self

        class _Time:
            def __getattr__(self, name: str) -> Any:
                return getattr(time, name)

            @staticmethod
            def time() -> float:
                return clock.value

        return _Time()


@dataclass
class Charge:
    """One submit Pixazo accepted into its queue (and billed)."""

    job_id: str
    generation: int  # the model's generation of the job when Pixazo received the submit
    request_id: str
    answer: str
    at: float
    attempts_field: str  # the job hash's ``attempts`` when the request was sent
    attempt_token: str  # the job hash's ``attempt_token`` (empty before the fix)
    outcome: str = "pending"  # pending (slow, unanswered) | accepted (a 202 was read) | unknown


class SlowSubmit:
    """A submit whose worker thread is blocked inside Pixazo until ``release``."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.thread: threading.Thread | None = None
        self.charge: Charge | None = None
        self.answer = "died_after_charge"
        self.error: BaseException | None = None
        self.result: Any = None
        self.reached = threading.Event()
        self.release = threading.Event()
        self.done = threading.Event()


def response(code: int, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    answer = requests.Response()
    answer.status_code = code
    answer._content = b"" if body is None else json.dumps(body).encode()
    answer.encoding = "utf-8"
    answer.headers.update(headers or {})
    answer.url = "http://pixazo.test/"
    return answer


@dataclass
class FakePixazo:
    """Pixazo's side: which requests it accepted (the ledger) and what each one's status is.

    ``model`` is the state machine; Pixazo asks it for the job's generation and lets it judge
    each charge at the moment it happens (the no-double-charge invariant).
    """

    model: Any
    ledger: list[Charge] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)  # request_id -> Pixazo's status
    next_answer: str = "202"  # the answer of the next (non-slow) submit
    status_answer: str = "ok"  # ok | 5xx | timeout, for the status route
    posts: dict[tuple[str, int], int] = field(default_factory=dict)  # (job, gen) -> submits
    _seq: int = 0
    local: threading.local = field(default_factory=threading.local)

    # -- the requests.Session surface PixazoClient uses
    def send(self, prepared: Any, **_: Any) -> Any:
        """PixazoClient prepares each request alone and sends it on the session."""
        if prepared.method == "GET":
            return self.get(prepared.url)
        return self.post(prepared.url, prepared.body, prepared.headers)

    def post(self, url: str, data: str, headers: dict[str, str], **_: Any) -> Any:
        job_id = headers["X-Webhook-URL"].split("/webhooks/pixazo/")[1].split("/")[0]
        generation = self.model.generation_of(job_id)
        key = (job_id, generation)
        self.posts[key] = self.posts.get(key, 0) + 1
        slow: SlowSubmit | None = getattr(self.local, "slow", None)
        answer = "202" if slow is not None else self.next_answer
        charged = slow is not None or SUBMIT_ANSWERS[answer]
        if answer == "died_before_send":
            raise WorkerDied("killed before the request left")
        charge = self._charge(job_id, generation) if charged else None
        if slow is not None:
            slow.charge = charge
            slow.reached.set()
            if not slow.release.wait(SLOW_WAIT_SECONDS):
                raise RuntimeError("harness: a slow submit was never released")
            answer = slow.answer
        return self._answer(answer, charge)

    def get(self, url: str, **_: Any) -> Any:
        request_id = url.rsplit("/", 1)[-1]
        if self.status_answer == "timeout":
            raise requests.ReadTimeout("status route timed out")
        if self.status_answer == "5xx":
            return response(500, {"error": "internal"})
        if request_id not in self.status:
            return response(404, {"error": "not found"})
        return response(200, self.status_body(request_id, self.status[request_id]))

    # -- Pixazo's behaviour
    def _charge(self, job_id: str, generation: int) -> Charge:
        self._seq += 1
        request_id = f"req-{self._seq:04d}"
        raw = self.model.svc.redis.hgetall(f"job:{job_id}")
        charge = Charge(
            job_id=job_id,
            generation=generation,
            request_id=request_id,
            answer="",
            at=self.model.clock.now(),
            attempts_field=raw.get("attempts", ""),
            attempt_token=raw.get("attempt_token", ""),
        )
        self.model.judge_charge(charge)  # before it enters the ledger: compares with the earlier
        self.ledger.append(charge)
        self.status[request_id] = "QUEUED"
        return charge

    def _answer(self, answer: str, charge: Charge | None) -> Any:
        if charge is not None:
            charge.answer = answer
            charge.outcome = "accepted" if answer == "202" else "unknown"
        if answer == "202":
            assert charge is not None
            return response(202, {"request_id": charge.request_id, "status": "QUEUED"})
        if answer in ("died_after_charge",):
            raise WorkerDied("killed after Pixazo charged, before the answer was read")
        if answer in ("timeout_after_accept",):
            raise requests.ReadTimeout("read timed out")
        if answer == "connect_error":
            raise requests.ConnectTimeout("connect timed out")
        if answer == "429":
            return response(429, {"error": "rate limited"}, {"Retry-After": "2"})
        code = int(answer.split("_")[0])
        return response(code, {"error": f"HTTP {code}"})

    def advance_status(self, request_id: str, status: str) -> None:
        """What a callback says Pixazo is at; forward-only, a terminal status sticks."""
        current = self.status.get(request_id, "QUEUED")
        if UPSTREAM_ORDER[current] < 2 and UPSTREAM_ORDER[status] > UPSTREAM_ORDER[current]:
            self.status[request_id] = status

    @staticmethod
    def status_body(request_id: str, status: str) -> dict[str, Any]:
        body: dict[str, Any] = {"request_id": request_id, "status": status}
        if status == "COMPLETED":
            body["output"] = {
                "media_url": [f"https://cdn.pixazo.test/{request_id}.mp4"],
                "media_type": "video/mp4",
            }
        elif status in ("FAILED", "ERROR"):
            body["error"] = f"{status.lower()} at Pixazo"
        return body


@dataclass
class FakeConsumer:
    """The consumer endpoint: answers every delivery attempt as the next rule said."""

    answer: str = "2xx"  # 2xx | 5xx | timeout | 429 | 410 | died
    received: list[str] = field(default_factory=list)  # event ids of every request sent

    def post(self, svc: Any, url: str, evt: dict[str, str], secrets: Any, *a: Any, **k: Any) -> Any:
        from webhooks.outbound import delivery

        self.received.append(evt.id)
        if self.answer == "died":
            raise WorkerDied("killed while the consumer was answering")
        if self.answer == "timeout":
            return delivery.Attempt(None, 15000, "", "ReadTimeoutError")
        if self.answer == "429":
            return delivery.Attempt(429, 5, "slow down", retry_after=30.0)
        code = {"2xx": 200, "5xx": 500, "410": 410}[self.answer]
        return delivery.Attempt(code, 5, "ok" if code == 200 else "no")
