"""Packed text and capped raw bodies (issue 12: Redis bytes per finished job)."""

from __future__ import annotations

import json

from orchestrator.core.compact import RAW_BODY_CAP, clip, pack, unpack


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
