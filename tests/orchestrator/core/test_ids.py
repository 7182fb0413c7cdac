"""Ids: the exact shape ``new_id`` makes, and nothing else, passes ``is_id``."""

from __future__ import annotations

import random

import pytest

from orchestrator.core import ids
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


def _base32(value: int, length: int) -> str:
    """The spelling by definition: one character per five bits, most significant first."""
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    return "".join(alphabet[(value >> (5 * i)) & 31] for i in reversed(range(length)))


@pytest.mark.parametrize("length", [1, 2, 9, 10, 16, 17])
def test_encoding_is_base32_most_significant_first(length):
    values = [
        0,
        1,
        31,
        32,
        2 ** (5 * length) - 1,
        *(random.getrandbits(5 * length) for _ in range(500)),
    ]
    assert [ids._encode(v, length) for v in values] == [_base32(v, length) for v in values]


def test_an_id_spells_its_milliseconds_then_80_random_bits():
    made = new_id("job", 1_800_000_000.123)
    assert made[4:14] == _base32(1_800_000_000_123, 10)
    assert ids.created_at(made) == 1_800_000_000.123
