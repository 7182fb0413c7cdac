"""Typed records built from their stored hashes, and the one ISO time parser."""

from __future__ import annotations

from datetime import UTC, datetime

from orchestrator.core import clock
from orchestrator.core.records import Job, job_from_store
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import NewJob, render


def test_a_job_record_holds_what_render_shows(svc):
    job_id = svc.jobs.create(
        NewJob("cli_a", "pixverse", {"prompt": "x"}, {"k": "v"}, None, None, "terminal")
    ).job_id
    raw = svc.jobs.get_raw(job_id)
    job = job_from_store(raw)
    shown = render(raw)
    assert job.id == shown["id"] and job.state is JobState.QUEUED
    assert (job.model, job.input, job.metadata) == (
        shown["model"],
        shown["input"],
        shown["metadata"],
    )
    assert (job.request_id, job.output, job.error, job.attempts, job.polls) == (
        None,
        None,
        None,
        0,
        0,
    )
    assert job.created_at == shown["created_at"] and job.updated_at == shown["updated_at"]
    assert job_from_store(None) is None
    assert Job.from_hash({**raw, "polls": "3", "request_id": "r_1"}).polls == 3


def test_parse_iso_reads_z_offsets_and_naive_times_as_utc():
    expected = datetime(2026, 5, 22, 13, 0, tzinfo=UTC)
    assert clock.parse_iso("2026-05-22T13:00:00Z") == expected
    assert clock.parse_iso("2026-05-22T13:00:00") == expected
    assert clock.parse_iso("2026-05-22T15:00:00+02:00") == expected
    assert clock.parse_iso(clock.iso(expected.timestamp())) == expected
    assert clock.parse_iso("") is None and clock.parse_iso(None) is None
    assert clock.parse_iso("yesterday") is None
