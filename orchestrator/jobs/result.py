"""The gateways' ``result`` summary of a completed job: ``{url, duration, resolution}``.

aigateway.sh and EmpirioLabs clients read ``result.url`` once a job is completed (API.md, "Gateway
dialects"); it sits next to ``output`` in every job answer and event, so it is built here, where
the job object is rendered, and not in one route. Pixazo reports only the media URL, so
``duration`` and ``resolution`` are what the job asked for: ``resolution`` is the nominal frame
(``"1920x1080"``, the form aigateway.sh prints) when the aspect ratio is part of the input, and the
resolution tier (``"720p"``) when it is not (image-to-video keeps the image's ratio).
"""

from __future__ import annotations

from typing import Any

_TIER_SUFFIX = "p"


def result_of(status: str, job_input: dict[str, Any], output: Any) -> dict[str, Any] | None:
    """None until the job is completed with a media URL."""
    if status != "completed" or not isinstance(output, dict):
        return None
    urls = output.get("media_url")
    if not isinstance(urls, list) or not urls or not isinstance(urls[0], str):
        return None
    return {
        "url": urls[0],
        "duration": _duration(job_input.get("duration")),
        "resolution": _resolution(job_input.get("resolution"), job_input.get("aspect_ratio")),
    }


def _duration(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _resolution(tier: Any, aspect_ratio: Any) -> str | None:
    if not isinstance(tier, str):
        return None
    height = tier.removesuffix(_TIER_SUFFIX)
    ratio = aspect_ratio.split(":") if isinstance(aspect_ratio, str) else []
    if not height.isdigit() or len(ratio) != 2 or not all(part.isdigit() for part in ratio):
        return tier
    short = int(height)
    across, down = int(ratio[0]), int(ratio[1])
    if not across or not down:
        return tier
    if across >= down:  # landscape or square: the tier is the height
        return f"{round(short * across / down)}x{short}"
    return f"{short}x{round(short * down / across)}"
