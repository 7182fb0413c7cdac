"""Ids: the exact shape ``new_id`` makes, and nothing else, passes ``is_id``."""

from __future__ import annotations

import pytest

from orchestrator.core.ids import is_id, new_id

MADE = new_id("job", 1_800_000_000.0)


def test_what_new_id_makes_passes():
    assert is_id(MADE, "job") and is_id(new_id("evt"), "evt")
    assert is_id("job_" + "0" * 26, "job") and is_id("job_" + "z" * 26, "job")


@pytest.mark.parametrize(
    "value",
    [
        MADE + ":timeline",
        MADE + ":events",
        MADE + "\n",
        MADE[:-1],
        MADE + "0",
        MADE.upper(),
        "JOB_" + MADE[4:],
        "evt_" + MADE[4:],
        "job_" + "i" * 26,  # Crockford base32 leaves out i, l, o and u
        "job_" + "u" * 26,
        "job_" + "\uff10" * 26,  # fullwidth digits
        "job_" + "é" * 26,
        "job__" + MADE[5:],
        "",
        "job_",
        "x" * 100_000,
        None,
        26,
    ],
)
def test_anything_else_fails(value):
    assert not is_id(value, "job")
