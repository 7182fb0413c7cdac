"""Sampling a running process tree with py-spy (the dev extra), without changing it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Samples a second: py-spy's default 100 falls behind on two shared cores. Only the thread
# holding the GIL is sampled: what costs CPU, not the pool threads waiting for work (py-spy's
# idle detection counts those as busy). Non-blocking reads tore a fifth of the samples.
RATE = 50


def record(pid: int, seconds: int, output: Path) -> subprocess.Popen[bytes]:
    """Start ``py-spy record`` on ``pid`` and its children (gunicorn workers, Celery's pool),
    writing raw collapsed stacks to ``output`` (read them with ``benchmarks.profile_summary``)
    and py-spy's own messages next to it."""
    output.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        str(Path(sys.executable).parent / "py-spy"),
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--duration",
        str(seconds),
        "--rate",
        str(RATE),
        "--gil",
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    with open(output.with_suffix(".log"), "wb") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
