"""The floor's arithmetic: which measured parts a job needs, and how often."""

from __future__ import annotations

from benchmarks.bench_floor import floor_parts_per_job


def test_a_job_needs_two_publishing_requests_two_hops_and_two_posts() -> None:
    per = {
        "bare": {"web": 1.0},
        "prefork": {"web": 2.0, "prefork": 3.0},
        "threads": {"threads": 2.5},
        "post": {"threads": 3.0},
    }
    parts = floor_parts_per_job(per)
    assert [(times, ms) for _label, times, ms in parts] == [
        (0, 1.0),
        (2, 2.0),
        (1, 3.0),
        (1, 2.5),
        (2, 0.5),  # the POST is what the posting task costs over the empty one
    ]
    assert sum(times * ms for _label, times, ms in parts) == 2 * 2.0 + 3.0 + 2.5 + 2 * 0.5


def test_a_post_measured_cheaper_than_noise_counts_as_nothing() -> None:
    per = {
        "bare": {"web": 1.0},
        "prefork": {"web": 2.0, "prefork": 3.0},
        "threads": {"threads": 2.5},
        "post": {"threads": 2.4},
    }
    assert floor_parts_per_job(per)[-1][2] == 0.0
