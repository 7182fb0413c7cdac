"""Reading py-spy's raw stacks: self, total, product frames, parent vs children."""

from __future__ import annotations

from pathlib import Path

from benchmarks.profile_summary import read

PARENT = 'process 1:"celery worker"'
CHILD = 'process 2:"celery worker"'
TASK = "submit_job (workers/submit.py:10)"
SEND = "send (orchestrator/core/enqueue.py:40)"
PUBLISH = "Producer._publish (kombu/messaging.py:200)"


def test_read_attributes_samples(tmp_path: Path) -> None:
    raw = tmp_path / "worker.txt"
    raw.write_text(
        "\n".join(
            [
                f"{PARENT};{CHILD};{TASK};{SEND};{PUBLISH} 3",
                f"{PARENT};{CHILD};{TASK};send (orchestrator/core/enqueue.py:41) 1",
                f"{PARENT};Hub.fire_timers (kombu/asynchronous/hub.py:1) 2",
                "not a stack line",
            ]
        )
    )
    profile = read(raw)
    assert profile.samples == 6
    assert profile.self_time["Producer._publish (kombu/messaging.py)"] == 3
    assert profile.self_time["send (orchestrator/core/enqueue.py)"] == 1  # lines merged
    assert profile.total_time["send (orchestrator/core/enqueue.py)"] == 4
    assert profile.entry["submit_job (workers/submit.py)"] == 4
    assert profile.under_product["send (orchestrator/core/enqueue.py)"] == 4
    assert profile.under_product["(no product frame)"] == 2
    assert profile.by_process == {"children": 4, "parent": 2}
    assert profile.by_package["kombu"] == 5
    assert profile.by_package["orchestrator/core"] == 1
