"""``orchestrator worker ping``: which answers count (tests/system/test_celery_tools.py runs it
against real workers, live and dead)."""

from __future__ import annotations

import socket
from types import SimpleNamespace

from ops.cli import cli
from ops.cli.worker import _answered

HOST = socket.gethostname()


class FakeControl:
    def __init__(self, replies: list[dict]) -> None:
        self.replies = replies
        self.asked: list[tuple[object, float]] = []

    def ping(self, destination=None, timeout=1.0):
        self.asked.append((destination, timeout))
        return self.replies


def fake_celery(*nodes: str) -> SimpleNamespace:
    return SimpleNamespace(control=FakeControl([{n: {"ok": "pong"}} for n in nodes]))


def test_without_names_only_this_hosts_workers_count():
    celery = fake_celery(f"worker1@{HOST}", "worker1@elsewhere", f"delivery@{HOST}")
    assert sorted(_answered(celery, [], 2.0)) == [f"delivery@{HOST}", f"worker1@{HOST}"]
    assert celery.control.asked == [(None, 2.0)]


def test_named_workers_are_asked_by_name_and_strangers_ignored():
    celery = fake_celery("worker1@a", "intruder@a")
    assert _answered(celery, ["worker1@a", "worker2@a"], 1.0) == ["worker1@a"]
    assert celery.control.asked == [(["worker1@a", "worker2@a"], 1.0)]


def test_the_command_is_registered_with_help():
    ping = cli.commands["worker"].commands["ping"]
    assert ping.help and "exit" in ping.help.lower()
    assert all(option.help for option in ping.params if option.name != "help")
