"""The application factory: one call builds a configured web app (and its Celery app)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from flask import Flask, Request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from ops.console import bp as ops_bp
from orchestrator import health
from orchestrator.celery_app import celery_init_app
from orchestrator.core import instrumentation
from orchestrator.core.config import ConfigError, Settings, load_settings
from orchestrator.core.errors import register_error_handlers
from orchestrator.core.observability import configure_logging, init_sentry
from orchestrator.intake import api, dialect_routes, openapi
from orchestrator.services import EXTENSION_NAME, build_services
from webhooks.inbound.receiver import bp as webhooks_bp


class InsertionOrderJSONProvider(DefaultJSONProvider):
    """JSON answers keep their keys in the order the code builds them (Flask sorts by default)."""

    sort_keys = False


class LazySessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions (the console's), opened without building a signing
    serializer when the request carries no cookie at all: every API request and callback, for
    which Flask built one (about 4% of a callback's CPU) only to find no session cookie. Saving
    is Flask's own: a new session nobody touched writes nothing."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.environ.get("HTTP_COOKIE"):
            return self.session_class()
        return super().open_session(app, request)


def create_app(config: Settings | Mapping[str, str] | None = None) -> Flask:
    """``config`` is Settings, or environment-style overrides on top of ``os.environ``."""
    settings = (
        config if isinstance(config, Settings) else load_settings({**os.environ, **(config or {})})
    )
    configure_logging(settings)
    init_sentry(settings)
    app = Flask("orchestrator")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not settings.allow_http,
    )
    app.json = InsertionOrderJSONProvider(app)
    app.session_interface = LazySessionInterface()
    app.extensions[EXTENSION_NAME] = build_services(settings)
    register_error_handlers(app)
    instrumentation.install(app)
    for blueprint in (api.bp, dialect_routes.bp, webhooks_bp, health.bp, openapi.bp, ops_bp):
        app.register_blueprint(blueprint)
    celery_init_app(app, settings)
    return app


# gunicorn treats this exit code as "the app cannot boot" and stops instead of respawning.
BOOT_ERROR_EXIT_CODE = 3


def create_app_or_exit() -> Flask:
    """For the process entry points: bad configuration is one line naming the variable."""
    try:
        return create_app()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(BOOT_ERROR_EXIT_CODE) from None
