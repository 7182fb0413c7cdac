"""Pixazo: its HTTP client, submitting (limited, paused on 402, never resent blindly), polling,
and applying the statuses that callbacks and polls report."""
