"""Plumbing every layer uses: configuration, time, ids, errors, observability, the Redis key
schema and its Lua scripts, the due-time sets, the task queue names, the client registry."""
