"""Celery tasks: thin wrappers that pass ids to the orchestrator's domain functions."""
