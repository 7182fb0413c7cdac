"""The Lua scripts, one per file, each headed by the KEYS and ARGV it takes.

A script may start with ``--@include NAME`` lines: the named fragment (``NAME.lua``, shared
Lua functions) is put in front of it, so that two scripts that need one rule share one text.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

_INCLUDE = "--@include "


@cache
def source(name: str) -> str:
    """The text of ``NAME.lua`` with its includes resolved."""
    text = resources.files(__name__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
    lines = text.splitlines()
    parts = [
        source(line.removeprefix(_INCLUDE).strip()) for line in lines if line.startswith(_INCLUDE)
    ]
    return "\n".join([*parts, text])
