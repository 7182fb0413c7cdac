"""aigateway.sh (``gateway-aigateway-pixverse-5-6.txt``): ``POST /v1/videos/generations`` with
``model: "pixverse/v5.6"``, ``duration`` (seconds) and ``aspect_ratio``; poll ``GET /v1/jobs/<id>``
until ``status === "completed"``, then read ``result.url``.

Its page documents no defaults, so nothing of its own is filled in: Pixazo's v5.6 needs
aspect ratio, resolution and duration, and the shared route fills the gateways' common ones
(``videos.COMMON_DEFAULTS``). Its answer fields (``id``, lowercase ``status``, ``created``,
``result``) are in every job object (``orchestrator.jobs.store.render``).
"""

from __future__ import annotations

from orchestrator.core import catalog

NAME = "aigateway.sh"
ROUTE = "POST /v1/videos/generations, GET /v1/jobs/{id}"
MODEL_NAMES: dict[str, tuple[str, str]] = {"pixverse/v5.6": (catalog.V56_T2V, catalog.V56_I2V)}
