"""Who is signed in to the console, and the CSRF token every form carries.

The Flask session cookie (signed with ``ORCHESTRATOR_SECRET_KEY``) holds only a session id and
the CSRF token; the session itself lives in Redis (:mod:`ops.operators`), so signing out ends it
for every copy of the cookie. Every POST must echo the session's CSRF token, compared in
constant time: a page on another site cannot read it, so it cannot forge an action.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import g, request, session

from ops.operators import OperatorStore
from orchestrator.core.services import current

SESSION_ID = "ops_sid"
CSRF_SESSION_KEY = "ops_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
HOME = "/ops/"


def operators() -> OperatorStore:
    return OperatorStore(current().redis)


def signed_in_operator() -> str | None:
    session_id = session.get(SESSION_ID)
    return operators().session_operator(session_id) if session_id else None


def csrf_token() -> str:
    token = session.get(CSRF_SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


def csrf_ok() -> bool:
    expected = session.get(CSRF_SESSION_KEY) or ""
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def sign_in(name: str) -> None:
    """A fresh session (and CSRF token) on every sign-in: no fixation of an earlier one."""
    session.clear()
    session[SESSION_ID] = operators().open_session(name)
    session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
    g.operator = name


def sign_out() -> None:
    session_id = session.get(SESSION_ID)
    if session_id:
        operators().close_session(session_id)
    session.clear()


def wants_json() -> bool:
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and "text/html" not in request.headers.get("Accept", "")


def safe_next(target: str | None) -> str:
    """Only a path inside the console: never an open redirect to another host."""
    if not target:
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ops") or "\\" in target:
        return HOME
    return target
