"""Example programs for users of the API (a client and an event receiver), run as scripts.

They are not part of the product: nothing in orchestrator, webhooks, workers or ops imports
them (``make lint`` checks), and the tests run them against the real stack.
"""
