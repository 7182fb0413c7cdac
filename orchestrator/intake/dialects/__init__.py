"""Gateway dialects: the request and answer forms of the resellers in ``upstream-docs/``.

Clients written against a gateway work against us unchanged but for the base URL and the key
(API.md, "Gateway dialects"). Each module here holds one gateway's words (its model names, its
defaults) or one shared translation; a dialect request ends as an ordinary /v1/jobs body, so the
job it makes is an ordinary job (same store, events, console, idempotency, isolation). Pixazo's own
model rules stay in :mod:`orchestrator.core.catalog`.
"""
