"""HTTP face of the simulator: Pixazo's routes, the media CDN stand-in, and /_sim admin routes."""

from __future__ import annotations

import io
import time
from functools import cache, partial
from importlib import resources

from flask import Flask, Response, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from devtools.sim.engine import SimEngine, SubmitAttempt
from devtools.sim.replies import Reply
from devtools.sim.rules import MODELS
from devtools.sim.timeline import MEDIA_FILENAME

API_KEY_HEADER = "Ocp-Apim-Subscription-Key"
MAX_BODY_BYTES = 1024 * 1024
SAMPLE_MEDIA = ("media", "sample.mp4")
NOT_FOUND_MESSAGE = "Resource not found"


@cache
def sample_video() -> bytes:
    return resources.files("devtools.sim").joinpath(*SAMPLE_MEDIA).read_bytes()


def _respond(reply: Reply) -> Response:
    if reply.delay_seconds > 0:
        time.sleep(reply.delay_seconds)
    response = jsonify(reply.body)
    response.status_code = reply.status
    response.headers.update(reply.headers)
    return response


def _base_url() -> str:
    return request.host_url.rstrip("/")


def _submit(engine: SimEngine, model_id: str) -> Response:
    attempt = SubmitAttempt(
        model_id=model_id,
        api_key=request.headers.get(API_KEY_HEADER),
        webhook_url=request.headers.get("X-Webhook-URL"),
        webhook_mode=request.headers.get("X-Webhook-Mode"),
        body=request.get_json(force=True, silent=True),
        base_url=_base_url(),
    )
    return _respond(engine.submit(attempt))


def _register_pixazo_routes(app: Flask, engine: SimEngine) -> None:
    for rules in MODELS.values():
        view = partial(_submit, engine, rules.model_id)
        app.add_url_rule(rules.route, f"submit_{rules.model_id}", view, methods=["POST"])

    @app.get("/v2/requests/status/<path:request_id>")
    def status(request_id: str) -> Response:
        return _respond(engine.status(request_id, request.headers.get(API_KEY_HEADER)))

    @app.get(f"/media/<path:request_id>/{MEDIA_FILENAME}")
    def media(request_id: str) -> Response:
        if not engine.has_media(request_id):
            return _respond(Reply(404, {"error": "Not Found", "message": "no such media"}))
        return send_file(io.BytesIO(sample_video()), mimetype="video/mp4", conditional=True)


def _register_admin_routes(app: Flask, engine: SimEngine) -> None:
    @app.get("/_sim/stats")
    def stats() -> Response:
        return jsonify(engine.stats())

    @app.get("/_sim/requests")
    def list_requests() -> Response:
        return jsonify(engine.list_requests())

    @app.get("/_sim/requests/<path:request_id>")
    def get_request(request_id: str) -> Response:
        record = engine.get_request(request_id)
        if record is None:
            return _respond(Reply(404, {"error": "Not Found", "message": "no such request"}))
        return jsonify(record)

    @app.post("/_sim/requests/<path:request_id>/resend")
    def resend(request_id: str) -> Response:
        return _respond(engine.resend(request_id))

    @app.get("/_sim/config")
    def get_config() -> Response:
        return jsonify(engine.config.to_dict())

    @app.post("/_sim/config")
    def set_config() -> Response:
        try:
            return jsonify(engine.configure(request.get_json(force=True, silent=True)))
        except ValueError as error:
            return _respond(Reply(400, {"error": "Bad Request", "message": str(error)}))

    @app.post("/_sim/reset")
    def reset() -> Response:
        options = request.get_json(force=True, silent=True) or {}
        engine.reset(config=isinstance(options, dict) and options.get("config") is True)
        return jsonify({"reset": True, "config": engine.config.to_dict()})


def create_sim_app(engine: SimEngine) -> Flask:
    app = Flask("devtools.sim")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    _register_pixazo_routes(app, engine)
    _register_admin_routes(app, engine)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        """Azure APIM answers unknown routes with its own small JSON, not an HTML page."""
        code = error.code or 500
        message = NOT_FOUND_MESSAGE if code == 404 else error.description or error.name
        response = jsonify({"statusCode": code, "message": message})
        response.status_code = code
        return response

    return app
