"""The Lua scripts of outbound delivery (``orchestrator/core/lua/<name>.lua``), run by name.

Each script is registered once per process: a Script keeps its SHA and runs EVALSHA on the
connection it is given, loading the text on that server only when it does not know it yet.
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import Script

from orchestrator.core import lua
from orchestrator.core.services import Services

_SCRIPTS: dict[str, Script] = {}


def run_script(svc: Services, name: str, keys_: list[str], args: list[Any]) -> Any:
    """Run ``lua/<name>.lua`` on the services' connection."""
    script = _SCRIPTS.get(name)
    if script is None:
        script = _SCRIPTS.setdefault(name, svc.redis.register_script(lua.source(name)))
    return script(keys=keys_, args=args, client=svc.redis)
