"""Nothing a client sends gets a 500: seeded random bodies against both intake routes."""

from __future__ import annotations

import random

import pytest

from orchestrator.core import catalog
from tests.orchestrator.model_inputs import VALID_INPUTS

SEED = 20261121
CASES = 1500
_NAMES = [*catalog.MODELS, "pixverse-v6", "pixverse-5-6", "pixverse/v5.6", "pixverse-v5-6", "x"]
_KEYS = [
    "prompt",
    "image_url",
    "image",
    "duration",
    "resolution",
    "aspect_ratio",
    "style",
    "seed",
    "negative_prompt",
    "generate_audio_switch",
    "generate_audio",
    "generate_multi_clip_switch",
    "thinking_type",
    "resolution_ratio",
    "model",
    "input",
    "metadata",
    "callback_url",
    "",
]


def _value(rng: random.Random, depth: int = 0):
    pick = rng.randrange(12 if depth < 3 else 8)
    return (
        [
            None,
            True,
            False,
            0,
            5,
            -1,
            10**30,
            1.5,
            "",
            "5",
            "720p",
            "https://a.example/x.png",
            "é" * 3,
            "\x00",
            {},
            [],
        ][pick]
        if pick < 8 or depth >= 3
        else (
            {rng.choice(_KEYS): _value(rng, depth + 1) for _ in range(rng.randrange(4))}
            if pick < 10
            else [_value(rng, depth + 1) for _ in range(rng.randrange(3))]
        )
    )


def _body(rng: random.Random):
    model = rng.choice(_NAMES)
    base = dict(VALID_INPUTS.get(model, {"prompt": "p"}))
    for _ in range(rng.randrange(4)):
        base[rng.choice(_KEYS)] = _value(rng)
    if rng.random() < 0.1:
        return _value(rng)
    return model, base


@pytest.fixture
def http(app):
    return app.test_client()


def test_no_500_on_random_bodies(http, svc, client_factory):
    svc.settings = svc.settings.with_overrides(client_rate_limit_per_minute=10**6)
    key = client_factory("fuzz")[1]
    headers = {"Authorization": f"Bearer {key}"}
    rng = random.Random(SEED)
    codes: dict[int, int] = {}
    for _ in range(CASES):
        made = _body(rng)
        if isinstance(made, tuple):
            model, data = made
            jobs_body = {"model": model, "input": data}
            if rng.random() < 0.3:
                jobs_body[rng.choice(["metadata", "callback_url", "extra"])] = _value(rng)
            flat = {"model": model, **data}
        else:
            jobs_body = flat = made
        for path, body in (("/v1/jobs", jobs_body), ("/v1/videos/generations", flat)):
            answer = http.post(path, json=body, headers=headers)
            codes[answer.status_code] = codes.get(answer.status_code, 0) + 1
            assert answer.status_code < 500, (path, body, answer.get_data(as_text=True))
            if answer.status_code >= 400:
                assert set(answer.get_json()["error"]) == {"code", "message", "details"}
    assert codes.get(202, 0) > 0 and codes.get(422, 0) > 0, codes


_FRAGMENTS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b'"model"',
    b":",
    b",",
    b'"pixverse"',
    b'"input"',
    b"null",
    b"1e999",
    b"-0",
    b"NaN",
    b'"\\ud800"',
    b"\xff",
    b"\xc3\xa9",
    b'"prompt"',
    b" ",
    b'"status"',
    b'"COMPLETED"',
    b'"request_id"',
    b'"r"',
    b"true",
    b"\x00",
]


def _raw(rng: random.Random) -> bytes:
    return b"".join(rng.choice(_FRAGMENTS) for _ in range(rng.randrange(1, 30)))


def test_no_500_on_random_bytes(http, svc, client_factory):
    from orchestrator.core.tokens import callback_token
    from orchestrator.jobs.store import NewJob

    svc.settings = svc.settings.with_overrides(client_rate_limit_per_minute=10**6)
    key = client_factory("bytes")[1]
    job_id = svc.jobs.create(NewJob("cli_x", "pixverse", {}, {}, None, None, "terminal")).job_id
    hook = f"/webhooks/pixazo/{job_id}/{callback_token(svc.settings.secret_key, job_id)}"
    rng = random.Random(SEED + 1)
    for _ in range(CASES // 2):
        data = _raw(rng)
        for path in ("/v1/jobs", "/v1/videos/generations", hook):
            answer = http.post(
                path,
                data=data,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            assert answer.status_code < 500, (path, data, answer.get_data(as_text=True))
