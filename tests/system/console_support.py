"""Signing an operator into the console of a running system over HTTP (system tests)."""

from __future__ import annotations

import re

import requests

from ops.operators import OperatorStore
from tests.helpers import System

OPERATOR = "oncall"
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def signed_in(system: System) -> requests.Session:
    """A session signed in as a fresh operator, through the login form as a person would."""
    OperatorStore(system.redis).create(OPERATOR, PASSWORD)
    session = requests.Session()
    form = session.get(f"{system.web}/ops/login", timeout=10).text
    found = _CSRF.search(form)
    assert found, "no CSRF field on the login page"
    answer = session.post(
        f"{system.web}/ops/login",
        data={"name": OPERATOR, "password": PASSWORD, "csrf_token": found.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.text
    return session
