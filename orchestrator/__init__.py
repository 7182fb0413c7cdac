"""Webhook-driven job orchestrator for PixVerse video generation through Pixazo."""
