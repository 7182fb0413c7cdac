"""The dev stack's supervisor restarts what exits on its own, and never what it stopped."""

from __future__ import annotations

import os
import signal
import sys
import time

from devtools.devstack import Stack

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _wait(check, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_a_supervised_process_that_dies_is_started_again():
    stack = Stack(supervise=True)
    try:
        proc = stack.spawn("sleeper", SLEEPER, restart=True)
        first = proc.popen.pid
        os.killpg(first, signal.SIGKILL)
        assert _wait(lambda: proc.restarts == 1 and proc.alive)
        assert proc.popen.pid != first
    finally:
        stack.stop_all()
    assert not proc.alive


def test_a_stopped_or_unsupervised_process_stays_down():
    stack = Stack(supervise=True)
    try:
        supervised = stack.spawn("kept", SLEEPER, restart=True)
        plain = stack.spawn("plain", SLEEPER)
        stack.stop(supervised)
        os.killpg(plain.popen.pid, signal.SIGKILL)
        time.sleep(1.5)
        assert not supervised.alive and supervised.restarts == 0
        assert not plain.alive and plain.restarts == 0
    finally:
        stack.stop_all()
