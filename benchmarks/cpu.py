"""CPU seconds of a process tree, for per-job costs: psutil, children included."""

from __future__ import annotations

import contextlib

import psutil


def tree_cpu_seconds(pid: int) -> float:
    """User + system seconds of ``pid``, its reaped children and its live descendants (gunicorn
    workers, Celery's prefork pool). 0.0 once the process is gone."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        descendants = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return float(total)


def snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {name: tree_cpu_seconds(pid) for name, pid in pids.items()}


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in before}
