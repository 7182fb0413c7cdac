"""The codes a failed or canceled job carries in ``error.code`` (API.md, "Error codes").

One list for the code that sets them, the OpenAPI document and the console's filter. A module of
its own (no Flask, no marshmallow), so the workers can import it.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    UPSTREAM_REJECTED = "upstream_rejected"  # Pixazo answered 400
    UPSTREAM_AUTH = "upstream_auth"  # 401/403: our credentials
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"  # 429/5xx/unsent until the retry budget ran out
    INSUFFICIENT_BALANCE = "insufficient_balance"  # 402, once the balance pause gave up
    UPSTREAM_FAILED = "upstream_failed"  # Pixazo reported FAILED
    UPSTREAM_ERROR = "upstream_error"  # Pixazo reported ERROR
    TIMEOUT = "timeout"  # the job's deadline passed
    CANCELED = "canceled"  # by its client or an operator
