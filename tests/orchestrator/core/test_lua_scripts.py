"""The Lua scripts live in orchestrator/lua, each headed by the KEYS and ARGV it takes."""

from __future__ import annotations

import inspect
import re

import pytest

from ops import operators
from orchestrator.core import clients, lua
from orchestrator.jobs import state, store
from orchestrator.reconcile import steps
from orchestrator.upstream import limiter, pause

SCRIPTS = (
    "authenticate",
    "create_job",
    "due_claim",
    "limiter_acquire",
    "signin_attempt",
    "event_finish",
    "event_due_now",
    "timeline_compact",
    "transition",
)


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_script_documents_every_key_and_argument_it_reads(name) -> None:
    text = lua.source(name)
    header = "\n".join(line for line in text.splitlines() if line.startswith("--"))
    code = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    for kind in ("KEYS", "ARGV"):
        used = {int(n) for n in re.findall(rf"{kind}\[(\d+)\]", code)}
        documented = {int(n) for n in re.findall(rf"{kind}\[(\d+)\]", header)}
        assert used <= documented, (name, kind, used - documented)


@pytest.mark.parametrize("module", [store, limiter, state, steps, pause, operators, clients])
def test_no_inline_lua(module) -> None:
    source = inspect.getsource(module)
    assert "redis.call(" not in source and ".eval(" not in source
