"""Operator accounts for the console: names and argon2 password hashes, and their sessions.

Passwords are hashed with argon2id (argon2-cffi's defaults), the memory-hard hash made for
passwords. Sessions live in Redis, not only in the signed cookie, so that signing out (or
removing an operator) ends a session even if its cookie was copied.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from orchestrator import clock

OPERATORS_KEY = "operators"  # set of operator names
SESSION_SECONDS = 12 * 3600
MIN_PASSWORD_LENGTH = 10
MAX_FAILED_SIGN_INS = 10  # per name and window; then sign-in is refused until the window ends
FAILED_WINDOW_SECONDS = 15 * 60
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$")
_hasher = PasswordHasher()
# Verified when the name is unknown, so that a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class OperatorError(ValueError):
    """A name or password that cannot be used; the message says why."""


@dataclass(frozen=True)
class Operator:
    name: str
    created_at: str


def _key(name: str) -> str:
    return f"operator:{name}"


def _session_key(session_id: str) -> str:
    return f"ops:session:{session_id}"


def _failures_key(name: str) -> str:
    return f"ops:signin_failures:{name}"


class OperatorStore:
    def __init__(self, r: redis.Redis) -> None:
        self._redis = r

    def create(self, name: str, password: str, *, replace: bool = False) -> Operator:
        """Add an operator (or, with ``replace``, set a new password for an existing one)."""
        if not NAME_PATTERN.match(name):
            raise OperatorError("a name is 1-63 letters, digits, '.', '_' or '-'")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise OperatorError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
        stamp = clock.iso()
        fields = {"name": name, "password_hash": _hasher.hash(password), "created_at": stamp}
        if not replace and not self._redis.hsetnx(_key(name), "name", name):
            raise OperatorError(f"operator {name!r} exists (use --replace to set a new password)")
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(_key(name), mapping=fields)
        pipe.sadd(OPERATORS_KEY, name)
        pipe.delete(_failures_key(name))
        pipe.execute()
        return Operator(name, stamp)

    def get(self, name: str) -> Operator | None:
        created = self._redis.hget(_key(name), "created_at")
        return Operator(name, created) if created else None

    def names(self) -> list[str]:
        return sorted(self._redis.smembers(OPERATORS_KEY))

    def delete(self, name: str) -> bool:
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(_key(name))
        pipe.srem(OPERATORS_KEY, name)
        return bool(pipe.execute()[0])

    def verify(self, name: str, password: str) -> bool:
        """True if the password is the operator's; counts failures to slow down guessing."""
        if self.locked_out(name):
            return False
        stored = self._redis.hget(_key(name), "password_hash") if NAME_PATTERN.match(name) else None
        try:
            ok = _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok:
            pipe = self._redis.pipeline(transaction=False)
            pipe.incr(_failures_key(name))
            pipe.expire(_failures_key(name), FAILED_WINDOW_SECONDS)
            pipe.execute()
            return False
        if _hasher.check_needs_rehash(stored):
            self._redis.hset(_key(name), "password_hash", _hasher.hash(password))
        self._redis.delete(_failures_key(name))
        return True

    def locked_out(self, name: str) -> bool:
        return int(self._redis.get(_failures_key(name)) or 0) >= MAX_FAILED_SIGN_INS

    # ------------------------------------------------------------------ sessions

    def open_session(self, name: str) -> str:
        session_id = secrets.token_urlsafe(32)
        self._redis.set(_session_key(session_id), name, ex=SESSION_SECONDS)
        return session_id

    def session_operator(self, session_id: str) -> str | None:
        """The operator a live session belongs to (None if it ended or they were removed)."""
        name = self._redis.get(_session_key(session_id))
        if not name or not self._redis.sismember(OPERATORS_KEY, name):
            return None
        return name

    def close_session(self, session_id: str) -> None:
        self._redis.delete(_session_key(session_id))
