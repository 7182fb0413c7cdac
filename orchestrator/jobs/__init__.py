"""The job: its state machine (one compare-and-set per move), its store and queries, what
operators do to it, and how long it is kept."""
