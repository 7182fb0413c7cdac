"""Client services: their API keys (stored only as hashes) and webhook settings.

API keys carry 256 random bits, so a plain SHA-256 is the right hash: it cannot be brute-forced
and lets a request be authenticated with one lookup (as Stripe and GitHub store tokens).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import redis

from orchestrator.core import budgets, clock, keys, lua
from orchestrator.core.budgets import UnpricedPolicy
from orchestrator.core.ids import new_id

API_KEY_PREFIX = "pxo_"
WEBHOOK_SECRET_PREFIX = "whsec_"
_KEY_BYTES = 32
_SECRET_BYTES = 24
OLD_SECRET_KEEP_SECONDS = 24 * 3600  # how long a rotated-out secret keeps signing (as Svix)
DEFAULT_EVENT_TYPES = ("job.completed", "job.failed", "job.canceled")
ALL_EVENT_TYPES = (*DEFAULT_EVENT_TYPES, "job.processing")
# Key hashes whose client this process has seen (a hint only: every request still checks the
# stored key in Redis); past this many it starts again from none, so made-up keys cannot grow it.
KNOWN_KEYS_MAX = 4096
_KEY_MOVED = 0  # authenticate.lua: the key does not name the client expected


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    callback_url: str | None
    webhook_secrets: tuple[str, ...] = field(repr=False)
    event_types: tuple[str, ...]
    endpoint_disabled: bool = False
    created_at: str = ""
    budget_micros: int | None = None  # the monthly budget (orchestrator/core/budgets.py)
    unpriced: UnpricedPolicy = UnpricedPolicy.ALLOW

    @property
    def monthly_budget_usd(self) -> float | None:
        return None if self.budget_micros is None else budgets.to_usd(self.budget_micros)

    @classmethod
    def from_hash(cls, data: Mapping[str, str]) -> Client:
        """The one place a client is built from its stored hash (``client:<id>``)."""
        return cls(
            id=data["id"],
            name=data["name"],
            callback_url=data.get("callback_url") or None,
            webhook_secrets=_live_secrets(data),
            event_types=tuple(json.loads(data.get("event_types") or "[]")),
            endpoint_disabled=data.get("endpoint_disabled") == "1",
            created_at=data.get("created_at", ""),
            budget_micros=int(data[budgets.CLIENT_BUDGET])
            if data.get(budgets.CLIENT_BUDGET)
            else None,
            unpriced=UnpricedPolicy(data.get(budgets.CLIENT_UNPRICED) or UnpricedPolicy.ALLOW),
        )

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "callback_url": self.callback_url,
            "event_types": list(self.event_types),
            "endpoint_disabled": self.endpoint_disabled,
            "created_at": self.created_at,
        }


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


class ClientStore:
    def __init__(self, r: redis.Redis) -> None:
        self._redis = r
        self._authenticate = r.register_script(lua.source("authenticate"))
        self._known: dict[str, str] = {}  # API key hash -> client id, as last confirmed

    def create(
        self,
        name: str,
        callback_url: str | None = None,
        event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES,
    ) -> tuple[Client, str]:
        """Returns the client and its API key; the key is shown once and never stored."""
        client_id = new_id("cli")
        api_key = API_KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)
        secret = new_webhook_secret()
        stamp = clock.iso()
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(
            keys.client(client_id),
            mapping={
                "id": client_id,
                "name": name,
                "api_key_hash": hash_api_key(api_key),
                "callback_url": callback_url or "",
                "webhook_secrets": json.dumps([secret]),
                "event_types": json.dumps(list(event_types)),
                "endpoint_disabled": "0",
                "created_at": stamp,
            },
        )
        pipe.set(keys.api_key(hash_api_key(api_key)), client_id)
        pipe.sadd(keys.CLIENTS, client_id)
        pipe.execute()
        return self.get(client_id), api_key  # type: ignore[return-value]

    def get(self, client_id: str) -> Client | None:
        raw = cast("dict[str, str]", self._redis.hgetall(keys.client(client_id)))
        if not raw:
            return None
        return Client.from_hash(raw)

    def authenticate(self, api_key: str) -> Client | None:
        client_id = self._client_id(api_key)
        return self.get(client_id) if client_id else None

    def authenticate_counted(
        self, api_key: str, counter: Callable[[str], str], counter_ttl_seconds: int
    ) -> tuple[Client, int] | None:
        """:meth:`authenticate`, and count one request in ``counter(client_id)`` (expiring
        after ``counter_ttl_seconds``), in one round trip (``authenticate.lua``) once this
        process has seen the key's client, two before. The script checks the stored key on
        every request, so a key stops working the moment its stored hash is gone (what is
        remembered is only which client to ask about); an unknown key counts nothing."""
        if not api_key.startswith(API_KEY_PREFIX):
            return None
        key_hash = hash_api_key(api_key)
        client_id = self._known.get(key_hash) or self._stored_owner(key_hash)
        for _ in range(2):  # a second try only if the key names another client than remembered
            if not client_id:
                break
            counter_key = counter(client_id)
            count, answer = self._authenticate(
                keys=[keys.api_key(key_hash), keys.client(client_id), counter_key],
                args=[client_id, counter_ttl_seconds],
            )
            if count != _KEY_MOVED:
                self._remember(key_hash, client_id)
                raw = dict(zip(answer[::2], answer[1::2], strict=True))
                return (Client.from_hash(raw), int(count)) if raw else None
            self._known.pop(key_hash, None)
            client_id = answer
        return None

    def _stored_owner(self, key_hash: str) -> str | None:
        return cast("str | None", self._redis.get(keys.api_key(key_hash)))

    def _remember(self, key_hash: str, client_id: str) -> None:
        if len(self._known) >= KNOWN_KEYS_MAX:
            self._known.clear()
        self._known[key_hash] = client_id

    def _client_id(self, api_key: str) -> str | None:
        if not api_key.startswith(API_KEY_PREFIX):
            return None
        return self._stored_owner(hash_api_key(api_key))

    def update(
        self,
        client_id: str,
        *,
        callback_url: str | None = None,
        event_types: tuple[str, ...] | None = None,
        endpoint_disabled: bool | None = None,
        monthly_budget_usd: Decimal | None = None,
        no_budget: bool = False,
        unpriced: UnpricedPolicy | None = None,
    ) -> Client | None:
        """Change what is given; ``monthly_budget_usd`` sets the budget, ``no_budget`` removes
        it (intake reads both in its budget check, in the same Lua step as the commit)."""
        if monthly_budget_usd is not None and no_budget:
            raise ValueError("a budget and no budget at once")
        if not self._redis.exists(keys.client(client_id)):
            return None
        changes: dict[Any, str] = {}
        if monthly_budget_usd is not None:
            amount = budgets.parse_usd(monthly_budget_usd)
            changes[budgets.CLIENT_BUDGET] = str(budgets.to_micros(amount))
        if unpriced is not None:
            changes[budgets.CLIENT_UNPRICED] = UnpricedPolicy(unpriced).value
        if no_budget:
            self._redis.hdel(keys.client(client_id), budgets.CLIENT_BUDGET)
        if callback_url is not None:
            changes["callback_url"] = callback_url
            stored = self._redis.hget(keys.client(client_id), "callback_url") or ""
            if endpoint_disabled is None and callback_url != stored:
                changes["endpoint_disabled"] = "0"  # a new endpoint starts enabled
        if event_types is not None:
            changes["event_types"] = json.dumps(list(event_types))
        if endpoint_disabled is not None:
            changes["endpoint_disabled"] = "1" if endpoint_disabled else "0"
        if changes:
            self._redis.hset(keys.client(client_id), mapping=changes)
        return self.get(client_id)

    def rotate_secret(
        self, client_id: str, keep_old_seconds: float = OLD_SECRET_KEEP_SECONDS
    ) -> str | None:
        """Add a new secret in front; the previous one keeps signing (events carry both
        signatures) for ``keep_old_seconds`` or until :meth:`drop_old_secrets`."""
        current = self.get(client_id)
        if current is None:
            return None
        secret = new_webhook_secret()
        kept = [secret, *current.webhook_secrets[:1]]
        self._redis.hset(
            keys.client(client_id),
            mapping={
                "webhook_secrets": json.dumps(kept),
                "old_secret_expires_at": repr(clock.now() + keep_old_seconds),
            },
        )
        return secret

    def drop_old_secrets(self, client_id: str) -> bool:
        """Keep only the newest secret; False when there is no such client."""
        current = self.get(client_id)
        if current is None:
            return False
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(
            keys.client(client_id),
            "webhook_secrets",
            json.dumps(list(current.webhook_secrets[:1])),
        )
        pipe.hdel(keys.client(client_id), "old_secret_expires_at")
        pipe.execute()
        return True

    def all_ids(self) -> list[str]:
        return sorted(cast("set[str]", self._redis.smembers(keys.CLIENTS)))


def _live_secrets(data: Mapping[str, str]) -> tuple[str, ...]:
    """The newest secret, plus the previous one until its expiry passes."""
    stored = tuple(json.loads(data.get("webhook_secrets") or "[]"))
    expires = data.get("old_secret_expires_at")
    if len(stored) > 1 and expires and float(expires) <= clock.now():
        return stored[:1]
    return stored
