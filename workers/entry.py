"""celery entry: ``celery -A workers.entry worker`` / ``celery -A workers.entry beat``."""

from orchestrator.app import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
