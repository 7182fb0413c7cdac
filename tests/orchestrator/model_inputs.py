"""Valid and invalid inputs for each of the six models, shared by unit and system tests."""

from __future__ import annotations

from typing import Any

IMAGE = "https://images.example.com/cat.png"

VALID_INPUTS: dict[str, dict[str, Any]] = {
    "pixverse-v6-text-to-video": {"prompt": "a cat surfing"},
    "pixverse-v6-image-to-video": {"prompt": "the cat waves", "image_url": IMAGE},
    "pixverse-c1-text-to-video": {"prompt": "a dog skiing"},
    "pixverse-c1-image-to-video": {"prompt": "the dog jumps", "image_url": IMAGE},
    "pixverse": {
        "prompt": "a fox in snow",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "duration": 5,
    },
    "pixverse-i2v": {
        "prompt": "the fox runs",
        "image_url": IMAGE,
        "resolution": "720p",
        "duration": "5",
    },
}

# One documented irregularity per model: (input, the field path the 422 must name).
INVALID_INPUTS: dict[str, tuple[dict[str, Any], str]] = {
    "pixverse-v6-text-to-video": ({"prompt": "x", "duration": "5"}, "input.duration"),
    "pixverse-v6-image-to-video": (
        {"prompt": "x", "image_url": IMAGE, "resolution": "540p"},
        "input.resolution",
    ),
    "pixverse-c1-text-to-video": ({"prompt": "x", "resolution": "2160p"}, "input.resolution"),
    "pixverse-c1-image-to-video": (
        {"prompt": "x", "image_url": IMAGE, "style": "anime"},
        "input.style",
    ),
    "pixverse": (
        {"prompt": "x", "aspect_ratio": "16:9", "resolution": "720p", "duration": 6},
        "input.duration",
    ),
    "pixverse-i2v": (
        {"prompt": "x", "image_url": IMAGE, "resolution": "720p", "duration": 5},
        "input.duration",
    ),
}
