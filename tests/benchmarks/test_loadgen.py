"""The open-loop generator sends every planned request and tallies the answers."""

from __future__ import annotations

import itertools

import requests

from benchmarks.loadgen import offer


def test_offer_sends_the_planned_requests_and_counts_answers() -> None:
    counter = itertools.count()
    ticks: list[float] = []

    def send(session: requests.Session) -> tuple[int, str | None]:
        n = next(counter)
        if n % 5 == 4:
            raise requests.ConnectionError("refused")
        return (202, f"job_{n}") if n % 5 else (429, None)

    result = offer(50, 1.2, send, ticks.append)
    assert result.planned == 60
    assert result.answered == {202: 36, 429: 12}
    assert dict(result.errors) == {"ConnectionError": 12}
    assert len(result.accepted_ids) == 36
    assert ticks == [1.0]
