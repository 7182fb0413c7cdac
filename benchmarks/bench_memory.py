"""``make bench-memory``: Redis bytes and keys per finished job, through the real code paths.

The Procfile deployment of ``bench_pipeline`` (gunicorn, the prefork worker, the delivery
worker, beat) on a private redis-server, with the Pixazo simulator and a verifying consumer:
N jobs go through intake, submit, the simulator's callback and the delivery of their event.
Printed: the ``used_memory`` delta per finished job, new keys per finished job, and
``MEMORY USAGE`` per key type over every key the run made (the private server holds nothing
else, so a ``SCAN`` here is the bench reading its own store, never product code).

Run the same file on an older checkout to compare layouts in one session. The target (issue
12: at most 2 KB per finished job at the default retention) is printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict

import redis
import requests

from benchmarks.bench_pipeline import (
    JOB_BODY,
    SAMPLE_EVERY_SECONDS,
    TARGET_BYTES_PER_JOB,
    deployment,
    drained,
    finished_jobs,
    redis_footprint,
)
from benchmarks.loadgen import offer
from orchestrator.core import keys
from orchestrator.core.clients import ClientStore
from orchestrator.jobs import timeline as timelines

JOBS = 500
RATE = 25  # jobs/s offered: well under saturation, so the run measures memory, not backlog
DRAIN_SECONDS = 120.0
SCAN_COUNT = 1000
TIMELINE_ENTRIES = 1000
ACCEPTED = 202
# Ids in key names (job_..., evt_..., Pixazo's request ids, digests) become placeholders.
_ID = re.compile(r"(?<=:)[^:]*\d[^:]*")


def key_type(name: str) -> str:
    if name.startswith(keys.request_binding("")):  # a digest may have no digit
        return keys.request_binding("ID")
    return _ID.sub("ID", name)


def dataset_bytes(r: redis.Redis) -> int:
    """``used_memory_dataset``: used_memory less the server's overhead (client buffers, the
    Lua cache, the replication backlog), which a few hundred jobs would otherwise blur."""
    return int(r.info("memory")["used_memory_dataset"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--drain", type=float, default=DRAIN_SECONDS, help="bound, seconds")
    parser.add_argument(
        "--listpack-value",
        type=int,
        help="override the server's hash-max-listpack-value before the run (default: the "
        "production setting devstack.redis_argv starts Redis with)",
    )
    parser.add_argument(
        "--sample", action="store_true", help="print one finished job's keys field by field"
    )
    args = parser.parse_args(argv)
    with deployment() as dep:
        orch, r = dep.orch, dep.r
        if args.listpack_value:
            r.config_set("hash-max-listpack-value", args.listpack_value)
        print(f"hash-max-listpack-value {r.config_get('hash-max-listpack-value')}")
        # Redis 7 allocates a latency histogram (~24 KB) for each command the first time it
        # runs: a fixed cost per server, which the run's first uses of ~20 commands would put
        # in the delta (~1 KB a job at 500 jobs). Measured without it, the delta is per job.
        r.config_set("latency-tracking", "no")
        client, api_key = ClientStore(r).create("mem", f"{orch.consumer_url}/hooks/mem")
        requests.post(
            f"{orch.consumer_url}/_consumer/config",
            json={"name": "mem", "secret": client.webhook_secrets[0]},
            timeout=5,
        ).raise_for_status()
        before_keys = {str(k) for k in r.scan_iter(count=SCAN_COUNT)}
        memory_before, keys_before = redis_footprint(r)
        dataset_before = dataset_bytes(r)
        headers = {"Authorization": f"Bearer {api_key}"}

        def send(session: requests.Session) -> tuple[int, str | None]:
            answer = session.post(
                f"{orch.web_url}/v1/jobs", json=JOB_BODY, headers=headers, timeout=10
            )
            return answer.status_code, answer.json().get(
                "id"
            ) if answer.status_code == 202 else None

        offered = offer(args.rate, args.jobs / args.rate, send, lambda _t: None)
        accepted = len(offered.accepted_ids)
        started = time.monotonic()
        while not drained(r, client.id, accepted):
            if time.monotonic() - started > args.drain:
                print("not drained within the bound: figures include unfinished jobs")
                break
            time.sleep(SAMPLE_EVERY_SECONDS)
        time.sleep(2.0)  # the last events' settling
        memory_after, keys_after = redis_footprint(r)
        dataset_after = dataset_bytes(r)
        finished = finished_jobs(r, client.id)
        events = requests.get(
            f"{orch.consumer_url}/_consumer/events", params={"name": "mem"}, timeout=30
        ).json()
        by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        encodings: dict[str, str] = {}
        for name in r.scan_iter(count=SCAN_COUNT):
            if str(name) in before_keys:
                continue
            usage = by_type[key_type(str(name))]
            encodings.setdefault(key_type(str(name)), str(r.object("encoding", name)))
            usage[0] += 1
            usage[1] += int(r.memory_usage(name, samples=0) or 0)
        per_job = (memory_after - memory_before) / max(finished, 1)
        verdict = "met" if per_job <= TARGET_BYTES_PER_JOB else "missed"
        print(f"jobs accepted {accepted}, finished {finished}, events received {len(events)}")
        print(
            f"used_memory delta per finished job: {per_job:,.0f} B "
            f"(target <= {TARGET_BYTES_PER_JOB} B: {verdict})"
        )
        print(
            "used_memory_dataset delta per finished job (without client buffers and other "
            f"overhead): {(dataset_after - dataset_before) / max(finished, 1):,.0f} B"
        )
        print(f"new keys per finished job: {(keys_after - keys_before) / max(finished, 1):.2f}")
        in_keys = sum(size for _count, size in by_type.values())
        print(
            f"MEMORY USAGE of the run's keys per finished job: {in_keys / max(finished, 1):,.0f} B"
        )
        print(f"{'key type':<44} {'encoding':<10} {'keys':>6} {'bytes/key':>10} {'bytes/job':>10}")
        for name, (count, size) in sorted(by_type.items(), key=lambda kv: -kv[1][1]):
            print(
                f"{name:<44} {encodings[name]:<10} {count:>6} {size / count:>10,.0f}"
                f" {size / max(finished, 1):>10,.1f}"
            )
        print("(index sorted sets hold every job: their bytes/job are their members' share)")
        if args.sample and offered.accepted_ids:
            print_sample(r, offered.accepted_ids[0])


def print_sample(r: redis.Redis, job_id: str) -> None:
    """One finished job's keys as stored (its own, its events'): each hash field's length, each
    list element's; then its timeline decoded."""
    names = {str(k) for k in r.scan_iter(match=f"*{job_id}*", count=SCAN_COUNT)}
    events = r.hgetall(keys.job(job_id)) | r.hgetall(keys.job_events(job_id))
    names |= {keys.event(v) for v in events.values() if v.startswith("evt_")}
    for name in sorted(names):
        kind = str(r.type(name))
        print(f"{name} {kind} {r.object('encoding', name)} {r.memory_usage(name, samples=0)} B")
        if kind == "hash":
            for field, value in sorted(r.hgetall(name).items()):
                print(f"  {field:<28} {len(value):>5}  {value[:90]!r}")
        elif kind == "list":
            for value in r.lrange(name, 0, -1):
                print(f"  [{len(value):>5}] {value[:90]!r}")
    entries = timelines.read(r, job_id, TIMELINE_ENTRIES)
    print(f"timeline of {job_id}, decoded: {json.dumps(entries)}")


if __name__ == "__main__":
    main()
