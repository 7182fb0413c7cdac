"""The ops console blueprint (``/ops``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ops", __name__, url_prefix="/ops", template_folder="templates")
