"""Run a dev server (simulator or consumer) until SIGINT/SIGTERM, announcing readiness on stdout.

Parent processes (tests, ``orchestrator demo``) wait for the one "listening on" line, so it is
printed only once the socket accepts connections, with the real port when 0 was asked for.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

import click
from flask import Flask
from werkzeug.serving import make_server

# werkzeug listens with a backlog of 128; a burst of ~500 simultaneous submits would overflow it
# and stall clients on SYN retransmits, so the listening socket's backlog is raised.
LISTEN_BACKLOG = 1024
POLL_INTERVAL_SECONDS = 0.2
STOP_CHECK_SECONDS = 0.5
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def url_for_bind(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def quiet_request_log(verbose: bool) -> None:
    """One log line per request would flood (and can block) a parent reading our stderr."""
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.WARNING)


def serve_until_signalled(
    app: Flask, host: str, port: int, banner: str, on_stop: Callable[[], None] | None = None
) -> None:
    server = make_server(host, port, app, threaded=True)
    server.socket.listen(LISTEN_BACKLOG)
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    thread = threading.Thread(
        target=server.serve_forever, args=(POLL_INTERVAL_SECONDS,), name=f"{banner}-http"
    )
    thread.start()
    click.echo(f"{banner} listening on {url_for_bind(host, server.server_port)}")
    click.get_text_stream("stdout").flush()
    try:
        while not stop.wait(STOP_CHECK_SECONDS):
            pass
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        if on_stop is not None:
            on_stop()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
