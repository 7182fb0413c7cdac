"""An operator's pause and resume: the one place that changes the pause and audits it."""

from __future__ import annotations

from orchestrator.core import keys
from orchestrator.jobs.audit import audit_log
from orchestrator.upstream import pause


def test_operator_pause_and_resume_are_audited_each_time(svc) -> None:
    assert pause.pause_by_operator(svc, "ops:alice", "maintenance") is True
    assert pause.pause_by_operator(svc, "ops:bob", "again") is False  # already paused
    assert svc.redis.hgetall(keys.SUBMISSIONS_PAUSED)["by"] == "ops:alice"
    assert pause.resume_by_operator(svc, "ops:alice") is True
    assert pause.resume_by_operator(svc, "ops:alice") is False
    assert pause.paused(svc.redis) is None
    assert [(e["actor"], e["action"], e["target"], e["detail"]) for e in audit_log(svc)] == [
        ("ops:alice", "resume", "submissions", ""),
        ("ops:alice", "resume", "submissions", ""),
        ("ops:bob", "pause", "submissions", "again"),
        ("ops:alice", "pause", "submissions", "maintenance"),
    ]
