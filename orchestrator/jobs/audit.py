"""The operators' audit log: who did what to which target, newest first, bounded."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.core import clock, keys
from orchestrator.core.services import Services

AUDIT_KEEP = 10_000


def audit(svc: Services, actor: str, action: str, target: str, detail: str = "") -> None:
    entry = {
        "at": clock.iso(),
        "actor": actor,
        "action": action,
        "target": target,
        "detail": detail,
    }
    pipe = svc.redis.pipeline(transaction=False)
    pipe.lpush(keys.AUDIT, json.dumps(entry))
    pipe.ltrim(keys.AUDIT, 0, AUDIT_KEEP - 1)
    pipe.execute()


def audit_log(svc: Services, limit: int = 100) -> list[dict[str, Any]]:
    return [json.loads(x) for x in svc.redis.lrange(keys.AUDIT, 0, limit - 1)]
