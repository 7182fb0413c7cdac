"""The floor's arithmetic: which measured parts a job needs, and how often."""

from __future__ import annotations

from benchmarks.bench_floor import floor_parts_per_job


def measured(posting_task_ms: float) -> dict[str, dict[str, float]]:
    """Scenario -> process -> CPU ms per request, as bench_floor.measure gives them."""
    return {
        "bare": {"web": 1.0},
        "prefork": {"web": 2.0, "prefork": 3.0},
        "threads": {"threads": 2.5},
        "post": {"threads": posting_task_ms},
    }


def test_a_job_needs_two_publishing_requests_two_hops_and_two_posts() -> None:
    parts = floor_parts_per_job(measured(3.0))
    assert [(times, ms) for _label, times, ms in parts] == [
        (0, 1.0),
        (2, 2.0),
        (1, 3.0),
        (1, 2.5),
        (2, 0.5),  # the POST is what the posting task costs over the empty one
    ]
    assert sum(times * ms for _label, times, ms in parts) == 2 * 2.0 + 3.0 + 2.5 + 2 * 0.5


def test_a_post_measured_cheaper_than_noise_counts_as_nothing() -> None:
    assert floor_parts_per_job(measured(2.4))[-1][2] == 0.0
