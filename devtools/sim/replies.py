"""What the simulator answers, in the shapes Pixazo's gateway uses: Azure APIM's
``{"statusCode", "message"}`` in front, the queue's ``{"error", "message"}`` behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UNAUTHORIZED_BODY = {
    "statusCode": 401,
    "message": "Access denied due to invalid subscription key. "
    "Make sure to provide a valid key for an active subscription.",
}
FORBIDDEN_BODY = {"statusCode": 403, "message": "Forbidden"}
RATE_LIMITED_BODY = {"statusCode": 429, "message": "Rate limit is exceeded. Try again later."}
INSUFFICIENT_BALANCE_BODY = {
    "error": "Insufficient Balance",
    "message": "Your wallet does not have enough balance.",
}
INTERNAL_ERROR_BODY = {
    "error": "Internal Server Error",
    "message": "An unexpected error occurred while processing the request.",
}


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0  # sleep before answering (after the state change is made)


def bad_request(message: str) -> Reply:
    return Reply(400, {"error": "Bad Request", "message": message})


def model_not_found(model_id: str) -> Reply:
    message = f"Model '{model_id}' not found or is disabled"
    return Reply(400, {"error": "Model not found", "message": message})
