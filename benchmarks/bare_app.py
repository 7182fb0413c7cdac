"""The yardstick of ``make bench-http``: a bare Flask view, served by the same gunicorn line as
the product, reading the same request body and answering a small JSON object."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.route("/", methods=["GET", "POST"])
def bare() -> Response:
    request.get_data()
    return jsonify({"ok": True})
