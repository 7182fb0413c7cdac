"""celery entry: ``celery -A workers.entry worker`` / ``celery -A workers.entry beat``."""

from orchestrator.app import create_app_or_exit

flask_app = create_app_or_exit()
celery_app = flask_app.extensions["celery"]
