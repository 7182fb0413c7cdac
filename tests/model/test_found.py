"""The violations the model found on the code before issue 8's fixes, pinned as plain examples.

Each is a (hand-shortened) failing example of ``test_invariants.py``, replayed through the same
state machine exactly as Hypothesis runs one: the rules in order, every check after every step,
then teardown (drain and settle). They failed on d38d225, one per defect:

1. a callback recorded while the job's submit was of unknown outcome did not claim the job:
   the grace passed and the job was charged again;
2. a retry without confirmation of a job Pixazo had charged (no ``request_id``: its outcome had
   been unknown) resubmitted it; and a late 202 of an old attempt settled a newer one's claim;
3. a retried job failing again got no ``job.failed`` event (events were per job and type), and
   a retry did not start a fresh attempt budget.
"""

from __future__ import annotations

from typing import Any

from tests.model.test_invariants import GRACE, SUBMITTING_FOR, OrchestratorModel

DEADLINE = 1801.0


def replay(*steps: tuple[str, dict[str, Any]]) -> OrchestratorModel:
    machine = OrchestratorModel()
    try:
        machine.first_job()
        machine.check_all()
        for name, arguments in steps:
            getattr(machine, name)(**arguments)
            machine.check_all()
    except BaseException:
        machine.healthy = False
        raise
    finally:
        machine.teardown()
    return machine


def submit(answer: str, pick: int = 0) -> tuple[str, dict[str, Any]]:
    return (
        "run_message",
        {"pick": pick, "answer": answer, "http": "ok", "die": False, "redeliver": False},
    )


def tick(advance: float) -> tuple[str, dict[str, Any]]:
    return ("reconcile_tick", {"advance": advance})


def test_callback_during_unknown_outcome_claims_the_job() -> None:
    """Defect 1 (no_double_charge): charged + answered 500, Pixazo's QUEUED callback arrives,
    the grace passes before the callback task runs: the job must not be submitted again."""
    replay(
        submit("500_after_accept"),
        ("pixazo_callback", {"pick": 0, "status": "QUEUED"}),
        tick(GRACE + 1),
        submit("202", pick=2),  # pending: [apply_callback, apply_callback, submit]
    )


def test_unconfirmed_retry_of_a_charged_job_is_refused() -> None:
    """Defect 2 (unconfirmed_retry_never_recharges): Pixazo charged, the worker died; the job
    failed at its deadline with no request_id. A retry without confirmation must not resend."""
    replay(
        submit("died_after_charge"),
        tick(DEADLINE),
        ("operator_retry", {"pick": 0, "confirm": False}),
        submit("202", pick=1),  # pending: [deliver job.failed, submit]
    )


def test_late_answer_of_an_old_attempt_does_not_settle_a_new_claim() -> None:
    """Defect 2 (stale_answer_never_settles_newer_claim): attempt 1 hangs inside Pixazo, beat
    calls it lost, the grace passes, attempt 2 is charged and its worker dies (the job sits in
    submitting under attempt 2); then attempt 1's 202 arrives."""
    replay(
        ("start_slow_submit", {"pick": 0}),
        tick(SUBMITTING_FOR + 1),
        tick(GRACE + 1),
        submit("died_after_charge"),
        ("finish_slow_submit", {"pick": 0, "answer": "202"}),
    )


def test_a_retried_generation_gets_its_own_failed_event() -> None:
    """Defect 3 (one_event_per_job_type_generation): failed at the deadline, retried, failed
    again: the second failure is an event of its own."""
    replay(
        tick(DEADLINE),
        ("operator_retry", {"pick": 0, "confirm": False}),
        tick(DEADLINE),
    )


def test_a_retry_starts_a_fresh_attempt_budget() -> None:
    """Defect 3 (fresh_budget_per_generation): three 429s spend the budget and fail the job;
    after a retry, one 429 must not fail it again."""
    replay(
        submit("429"),
        tick(31),
        submit("429"),
        tick(31),
        submit("429"),
        ("operator_retry", {"pick": 0, "confirm": False}),
        submit("429", pick=1),  # pending: [deliver job.failed, submit]
    )
