"""``orchestrator demo``: one command runs every model end to end, and Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.demo import DEMO_INPUTS

pytestmark = pytest.mark.integration
READY_LINE = "running; press Ctrl-C to stop every process"
DEMO_SECONDS = 240


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid``, read from /proc (children that changed session included)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_demo_runs_every_model_and_ctrl_c_stops_every_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # embedded Redis
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "demo"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + DEMO_SECONDS
        while READY_LINE not in log.read_text() and time.monotonic() < deadline:
            assert demo.poll() is None, log.read_text()
            time.sleep(0.5)
        text = log.read_text()
        assert READY_LINE in text, text
        children = _descendants(demo.pid)
        assert len(children) >= 6  # redis, sim, consumer, web, worker, beat (+ their children)
        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    text = log.read_text()
    rows = [line for line in text.splitlines() if line.split(" ", 1)[0] in DEMO_INPUTS]
    table = [line for line in rows if "/media/" in line]
    assert len(table) == len(DEMO_INPUTS) and all(" completed " in line for line in table)
    assert f"consumer received {len(DEMO_INPUTS)} event(s), {len(DEMO_INPUTS)} with a valid" in text
    assert "/docs" in text and "/openapi.json" in text
    time.sleep(1)
    assert [pid for pid in children if _alive(pid)] == []
