"""Operator accounts for the console: names and argon2 password hashes, and their sessions.

Passwords are hashed with argon2id (argon2-cffi's defaults), the memory-hard hash made for
passwords. Sessions live in Redis, not only in the signed cookie, so that signing out (or
removing an operator) ends a session even if its cookie was copied.

Sign-in is open to anyone, so it must not be a lever against operators or the host: a name is
checked against the name rule before it reaches Redis or argon2; failures are counted per name
*and source address* and answered with growing delays (never a lockout of the name, which an
anonymous client could impose on a real operator); one address has a cap on attempts per
minute whatever the names; and argon2 verifies (64 MiB each) are capped per second for the
whole host.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any, cast

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from orchestrator.core import clock, keys, lua

SESSION_SECONDS = 12 * 3600
MIN_PASSWORD_LENGTH = 10
NAME_PATTERN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}", re.ASCII)  # whole name: fullmatch
FREE_FAILURES = 5  # per name and source address and window, before delays start
FIRST_DELAY_SECONDS = 1  # then doubled per failure ...
MAX_DELAY_SECONDS = 60  # ... up to this: a wait, never a lockout
FAILED_WINDOW_SECONDS = 15 * 60  # a name + address's failures are forgotten after this quiet
ADDRESS_ATTEMPTS_PER_MINUTE = 30  # one address, whatever names it tries
MAX_VERIFIES_PER_SECOND = 10  # argon2 verifies for the whole host (each takes 64 MiB)
_ADDRESS_WINDOW_SECONDS = 60

_hasher = PasswordHasher()
# Verified when the name is unknown, so that a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class OperatorError(ValueError):
    """A name or password that cannot be used; the message says why."""


@dataclass(frozen=True)
class Operator:
    name: str
    created_at: str


@dataclass(frozen=True)
class SignIn:
    ok: bool
    retry_after: int = 0  # > 0: throttled, nothing was verified; seconds to wait


def valid_name(name: str) -> bool:
    """The name rule, checked before a name is used in a Redis key or costs a hash verify."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def _digest(*parts: str) -> str:
    """A fixed-size stand-in for what a client sent, so a key's size never depends on it."""
    return hashlib.sha256("\0".join(parts).encode("utf-8", "replace")).hexdigest()[:32]


class OperatorStore:
    def __init__(self, r: redis.Redis) -> None:
        self._redis = r
        self._attempt = r.register_script(lua.source("signin_attempt"))

    def create(self, name: str, password: str, *, replace: bool = False) -> Operator:
        """Add an operator (or, with ``replace``, set a new password for an existing one)."""
        if not valid_name(name):
            raise OperatorError("a name is 1-63 letters, digits, '.', '_' or '-'")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise OperatorError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
        stamp = clock.iso()
        fields = {"name": name, "password_hash": _hasher.hash(password), "created_at": stamp}
        if not replace and not self._redis.hsetnx(keys.operator(name), "name", name):
            raise OperatorError(f"operator {name!r} exists (use --replace to set a new password)")
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(keys.operator(name), mapping=dict[Any, Any](fields))
        pipe.sadd(keys.OPERATORS, name)
        pipe.execute()
        return Operator(name, stamp)

    def get(self, name: str) -> Operator | None:
        created = cast(str | None, self._redis.hget(keys.operator(name), "created_at"))
        return Operator(name, created) if created else None

    def names(self) -> list[str]:
        return sorted(cast(set[str], self._redis.smembers(keys.OPERATORS)))

    def delete(self, name: str) -> bool:
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(keys.operator(name))
        pipe.srem(keys.OPERATORS, name)
        return bool(pipe.execute()[0])

    def sign_in(self, name: str, password: str, source: str) -> SignIn:
        """A console sign-in from the address ``source``: throttled (see the module), then
        verified. An invalid name is a failure that writes nothing and hashes nothing."""
        if not valid_name(name):
            return SignIn(False)
        now_ms = int(clock.now() * 1000)
        address = _digest(source)
        pair = keys.signin_throttle(_digest(name, source))
        reason, wait_ms = self._attempt(
            keys=[
                pair,
                keys.signin_address(address, now_ms // (_ADDRESS_WINDOW_SECONDS * 1000)),
                keys.signin_verifies(now_ms // 1000),
            ],
            args=[
                now_ms,
                FREE_FAILURES,
                FIRST_DELAY_SECONDS * 1000,
                MAX_DELAY_SECONDS * 1000,
                FAILED_WINDOW_SECONDS,
                ADDRESS_ATTEMPTS_PER_MINUTE,
                MAX_VERIFIES_PER_SECOND,
            ],
        )
        if int(reason):
            return SignIn(False, max(1, math.ceil(int(wait_ms) / 1000)))
        if not self.verify(name, password):
            return SignIn(False)
        self._redis.delete(pair)
        return SignIn(True)

    def verify(self, name: str, password: str) -> bool:
        """True if the password is the operator's (no throttling: see :meth:`sign_in`)."""
        if not valid_name(name):
            return False
        stored = cast(str | None, self._redis.hget(keys.operator(name), "password_hash"))
        try:
            ok = _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if ok and stored is not None and _hasher.check_needs_rehash(stored):
            self._redis.hset(keys.operator(name), "password_hash", _hasher.hash(password))
        return ok

    # ------------------------------------------------------------------ sessions

    def open_session(self, name: str) -> str:
        session_id = secrets.token_urlsafe(32)
        self._redis.set(keys.operator_session(session_id), name, ex=SESSION_SECONDS)
        return session_id

    def session_operator(self, session_id: str) -> str | None:
        """The operator a live session belongs to (None if it ended or they were removed)."""
        name = cast(str | None, self._redis.get(keys.operator_session(session_id)))
        if not name or not self._redis.sismember(keys.OPERATORS, name):
            return None
        return name

    def close_session(self, session_id: str) -> None:
        self._redis.delete(keys.operator_session(session_id))
