"""Inbound webhooks: Pixazo's callbacks."""
