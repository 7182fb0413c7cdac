"""The job-list queries the console and CLI share (orchestrator.jobs): index choice, time
ranges and the bound on how many jobs a filtered page may read."""

from __future__ import annotations

import time

from orchestrator.core import keys
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import JobFilter, index_for

OTHER = "pixverse-c1-text-to-video"


def test_each_filter_reads_the_narrowest_index(svc):
    r = svc.redis
    assert index_for(JobFilter(), r) == (keys.ALL_JOBS, None)
    assert index_for(JobFilter(status="failed"), r) == (keys.status_index("failed"), None)
    assert index_for(JobFilter(client_id="c", status="failed"), r) == (
        keys.client_status_index("c", "failed"),
        None,
    )
    assert index_for(JobFilter(client_id="c", model=OTHER), r) == (
        keys.client_model_index("c", OTHER),
        None,
    )
    assert index_for(JobFilter(model=OTHER), r) == (keys.model_index(OTHER), None)
    index, keep = index_for(JobFilter(status="failed", error_code="upstream_error"), r)
    assert index == keys.status_index("failed") and keep is not None


def test_status_and_model_read_the_smaller_index(svc, make_job):
    for _ in range(3):
        make_job("c", JobState.FAILED, model=OTHER)
    make_job("c", JobState.QUEUED)
    index, keep = index_for(JobFilter(status="failed", model=OTHER), svc.redis)
    assert index == keys.status_index("failed")
    make_job("c", JobState.QUEUED, model="pixverse")
    index, keep = index_for(JobFilter(status="queued", model="pixverse"), svc.redis)
    assert index == keys.model_index("pixverse")
    assert keep({"model": "pixverse", "status": "submitting"})  # sub-state of "queued"
    assert not keep({"model": "pixverse", "status": "failed"})


def test_time_range_bounds_the_page(svc, make_job):
    now = time.time()
    ids = [make_job("c", now=now - 100 * i) for i in range(5)]  # newest first
    page = svc.jobs.list_range(
        keys.ALL_JOBS, 10, since_ms=int((now - 350) * 1000), until_ms=int((now - 50) * 1000)
    )
    assert page.ids == ids[1:4] and page.next_cursor is None


def test_a_rare_match_ends_the_page_at_the_examination_cap_and_the_cursor_goes_on(svc, make_job):
    now = time.time()
    rare = make_job("c", JobState.FAILED, error_code="timeout", now=now - 100)
    for i in range(30):
        make_job("c", JobState.FAILED, now=now - i)
    index, keep = index_for(JobFilter(status="failed", error_code="timeout"), svc.redis)
    page = svc.jobs.list_range(index, 10, keep=keep, max_examined=20)
    assert page.ids == [] and not page.examined_all and page.next_cursor
    page = svc.jobs.list_range(index, 10, page.next_cursor, keep=keep, max_examined=20)
    assert page.ids == [rare] and page.examined_all and page.next_cursor is None
