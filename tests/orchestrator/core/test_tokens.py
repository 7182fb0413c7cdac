"""Per-job callback tokens."""

from __future__ import annotations

import hmac

from orchestrator.core import tokens
from orchestrator.core.tokens import callback_token, callback_url, verify_callback_token

SECRET = "s" * 32


def test_token_verifies_for_its_job_and_secret_only():
    token = callback_token(SECRET, "job_a")
    assert len(token) == 64 and verify_callback_token(SECRET, "job_a", token)
    assert not verify_callback_token(SECRET, "job_b", token)
    assert not verify_callback_token("t" * 32, "job_a", token)
    assert not verify_callback_token(
        SECRET, "job_a", token[:-1] + ("0" if token[-1] != "0" else "1")
    )
    assert not verify_callback_token(SECRET, "job_a", "")
    assert callback_token(SECRET, "job_a") != callback_token(SECRET, "job_b")


def test_verify_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    verify_callback_token(SECRET, "job_a", "guess")
    assert len(calls) == 1 and calls[0][1] == b"guess"


def test_non_ascii_guess_is_refused_not_raised():
    assert not verify_callback_token(SECRET, "job_a", "é" * 64)


def test_callback_url_carries_job_and_token():
    url = callback_url("https://o.example", SECRET, "job_a")
    assert url == f"https://o.example/webhooks/pixazo/job_a/{callback_token(SECRET, 'job_a')}"
