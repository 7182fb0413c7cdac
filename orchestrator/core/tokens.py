"""Per-job callback tokens: Pixazo signs nothing, so the callback URL itself is the credential.

Each job's ``X-Webhook-URL`` carries an HMAC of the job id under the orchestrator's secret key;
only Pixazo (and we) know the URL, and a forged or guessed one is refused without touching Redis.
"""

from __future__ import annotations

import hashlib
import hmac

_CONTEXT = b"pixazo-callback:"


def callback_token(secret_key: str, job_id: str) -> str:
    # hmac.digest: the one-shot form (no HMAC object per call), the same bytes as hmac.new.
    return hmac.digest(secret_key.encode(), _CONTEXT + job_id.encode(), hashlib.sha256).hex()


def verify_callback_token(secret_key: str, job_id: str, token: str) -> bool:
    """Constant-time, so the answer time says nothing about how much of a guess was right.

    Compared as bytes: ``compare_digest`` raises on a str with non-ASCII characters, and a
    forged URL may carry any.
    """
    return hmac.compare_digest(callback_token(secret_key, job_id).encode(), token.encode())


def callback_url(public_base_url: str, secret_key: str, job_id: str) -> str:
    return f"{public_base_url}/webhooks/pixazo/{job_id}/{callback_token(secret_key, job_id)}"
