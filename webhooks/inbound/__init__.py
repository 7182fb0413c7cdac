"""Pixazo's callbacks to us: the receiver route and the inbox that records and deduplicates."""
