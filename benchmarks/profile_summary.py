"""Summarise py-spy's raw (collapsed) stacks: where one process tree spends its samples.

``python -m benchmarks.profile_summary FILE...`` (files written by ``bench_pipeline --profile``)
prints, per file, the samples of the parent process and of its forked children, the top frames
by self and by total samples, the outermost product frame of each sample (the task or view it
serves) and the deepest (the product function it runs under; product: orchestrator/,
webhooks/, workers/, ops/), and self samples by package. Line numbers are dropped so that a
function's samples add up.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TOP = 15
PRODUCT_PREFIXES = ("orchestrator/", "webhooks/", "workers/", "ops/")
# Wrappers around every task: the task they run is the frame below them.
ENTRY_WRAPPERS = ("orchestrator/celery_app.py",)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::\d+)?\)$")


@dataclass
class Profile:
    samples: int = 0
    self_time: Counter[str] = field(default_factory=Counter)
    total_time: Counter[str] = field(default_factory=Counter)
    under_product: Counter[str] = field(default_factory=Counter)
    entry: Counter[str] = field(default_factory=Counter)
    by_process: Counter[str] = field(default_factory=Counter)
    by_package: Counter[str] = field(default_factory=Counter)


def frame_name(raw: str) -> tuple[str, str] | None:
    """(``func (file)``, file) for a Python frame; None for py-spy's process/thread frames."""
    match = _FRAME.match(raw)
    if raw.startswith(("process ", "thread ")) or match is None:
        return None
    return f"{match['func']} ({match['file']})", match["file"]


def package(path: str) -> str:
    if path.startswith(PRODUCT_PREFIXES):
        return "/".join(path.split("/")[:2])
    return path.split("/")[0].removesuffix(".py")


def read(path: Path) -> Profile:
    profile = Profile()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw_frames = stack.split(";")
        depth = sum(1 for raw in raw_frames if raw.startswith("process "))
        frames = [f for f in (frame_name(raw) for raw in raw_frames) if f is not None]
        if not frames:
            continue
        profile.samples += count
        name, file = frames[-1]
        profile.self_time[name] += count
        profile.by_package[package(file)] += count
        for unique in {f[0] for f in frames}:
            profile.total_time[unique] += count
        product = [f[0] for f in frames if f[1].startswith(PRODUCT_PREFIXES)]
        entries = [
            f[0]
            for f in frames
            if f[1].startswith(PRODUCT_PREFIXES) and not f[1].startswith(ENTRY_WRAPPERS)
        ]
        profile.under_product[product[-1] if product else "(no product frame)"] += count
        profile.entry[entries[0] if entries else "(no product frame)"] += count
        profile.by_process["parent" if depth <= 1 else "children"] += count
    return profile


def show(title: str, counts: Counter[str], samples: int, top: int) -> None:
    print(f"\n{title}")
    for name, count in counts.most_common(top):
        print(f"  {100.0 * count / samples:5.1f}%  {name}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=TOP)
    args = parser.parse_args(argv)
    for path in args.files:
        profile = read(path)
        print(f"\n##### {path.name}: {profile.samples} samples (busy threads only)")
        if not profile.samples:
            continue
        show("self", profile.self_time, profile.samples, args.top)
        show("total (inclusive)", profile.total_time, profile.samples, args.top)
        show("by process (parent / forked children)", profile.by_process, profile.samples, 2)
        show("outermost product frame (task, view)", profile.entry, profile.samples, args.top)
        show("deepest product frame", profile.under_product, profile.samples, args.top)
        show("self by package", profile.by_package, profile.samples, args.top)


if __name__ == "__main__":
    main()
