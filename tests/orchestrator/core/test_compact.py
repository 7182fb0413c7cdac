"""Packed text and capped raw bodies (issue 12: Redis bytes per finished job)."""

from __future__ import annotations

import hashlib
import json
import zlib

import pytest

from orchestrator.core.compact import (
    RAW_BODY_CAP,
    TIMELINE_DICTIONARY_V1,
    clip,
    pack,
    pack_timeline,
    unpack,
    unpack_timeline,
)

DICTIONARY_V1_SHA256_16 = "8d9fdcba7efa23df"


def test_pack_round_trips_any_text_and_is_smaller_for_json() -> None:
    text = json.dumps([{"type": "transition", "from": "queued", "to": "submitting"}] * 10)
    packed = pack(text)
    assert unpack(packed) == text
    assert len(packed) < len(text) / 2
    assert unpack(pack("é ✓ \x00")) == "é ✓ \x00"
    packed.encode("ascii")  # a str any decoding client reads back unchanged


def test_clip_keeps_short_bodies_whole_and_says_when_it_cut() -> None:
    assert clip(None) is None
    assert clip("x" * RAW_BODY_CAP) == "x" * RAW_BODY_CAP
    cut = clip("y" * (RAW_BODY_CAP + 1))
    assert cut is not None and cut.startswith("y" * RAW_BODY_CAP)
    assert f"truncated: {RAW_BODY_CAP + 1} characters" in cut


def test_pack_timeline_round_trips_and_refuses_a_cut_value() -> None:
    text = json.dumps([{"at": "2026-11-22T05:28:40.032Z", "type": "intake", "to": "queued"}])
    packed = pack_timeline(text)
    assert unpack_timeline(packed) == text
    assert unpack_timeline(pack_timeline("é ✓ \x00")) == "é ✓ \x00"
    assert len(packed) < len(pack(text))
    packed.encode("ascii")
    with pytest.raises(zlib.error):
        unpack_timeline(packed[: len(packed) // 2 // 5 * 5])


def test_the_timeline_dictionary_is_frozen() -> None:
    """Stored heads unpack only with these exact bytes: a change needs a new prefix."""
    assert hashlib.sha256(TIMELINE_DICTIONARY_V1).hexdigest()[:16] == DICTIONARY_V1_SHA256_16
