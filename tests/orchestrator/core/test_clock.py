"""clock.iso: the one ISO 8601 form of our timestamps."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from orchestrator.core import clock


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_800_000_000.1239, "2027-01-15T08:00:00.123Z"),
        (1_795_335_663.0005, "2026-11-22T08:21:03.000Z"),
    ],
)
def test_iso_is_utc_with_milliseconds_and_a_z(ts, text):
    assert clock.iso(ts) == text


def test_iso_spells_what_strftime_spells():
    for ts in (random.uniform(0, 4_000_000_000) for _ in range(2000)):
        moment = datetime.fromtimestamp(ts, tz=UTC)
        expected = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        assert clock.iso(ts) == expected
        assert clock.parse_iso(clock.iso(ts)) == moment.replace(
            microsecond=moment.microsecond // 1000 * 1000
        )
