"""Our events to consumers: the outbox, signing, the guarded transport, and delivery."""
