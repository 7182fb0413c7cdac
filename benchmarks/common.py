"""What the benchmarks share: settings for a private Redis."""

from __future__ import annotations

from typing import Any

from orchestrator.core.config import Settings


def bench_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": url,
        "broker_url": url,
        "pixazo_api_key": "bench-key",
        "public_base_url": "https://bench.test",
        "secret_key": "bench-secret-key-0123456789",
    }
    values.update(overrides)
    return Settings(**values)
