"""/docs in real headless Chromium: Swagger UI renders our spec, the request body of
``POST /v1/jobs`` shows each model's example and its ``model``/``input`` schema, and the page
loads nothing from any host but this server (no CDN). The app runs on loopback in a thread
(fakeredis): the page reads no job data, only the spec. A screenshot goes to ``artifacts/``."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, sync_playwright
from werkzeug.serving import make_server

from orchestrator.core import catalog
from tests.helpers import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"
LOOPBACK = "127.0.0.1"
STEP_MS = 15_000


@pytest.fixture
def base_url(app) -> Iterator[str]:
    server = make_server(LOOPBACK, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def page_and_requests() -> Iterator[tuple[Page, list[str]]]:
    if not os.path.exists(CHROMIUM):
        # In CI a missing browser is a failure (.ci/run installs it); on a laptop, a skip.
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    requested: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            context.set_default_timeout(STEP_MS)

            def record_and_keep_local(route, request):
                # Record every request the page makes; anything not on loopback is aborted (so a
                # CDN reference would both fail the test and never reach the network).
                requested.append(request.url)
                if urlsplit(request.url).hostname == LOOPBACK:
                    route.continue_()
                else:
                    route.abort()

            context.route("**/*", record_and_keep_local)
            yield context.new_page(), requested
        finally:
            browser.close()


def test_docs_shows_the_create_job_request_body_from_loopback_only(base_url, page_and_requests):
    page, requested = page_and_requests
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base_url}/docs")
    operation = page.locator("#operations-jobs-createJob")
    operation.wait_for()
    operation.locator(".opblock-summary").first.click()
    body = operation.locator(".opblock-section-request-body")
    body.wait_for()
    # The example shown first is the first model's, with its model id and input.
    first = next(iter(catalog.MODELS.values()))
    example = body.locator(".microlight, .highlight-code").first
    example.wait_for()
    text = example.inner_text()
    assert f'"model": "{first.id}"' in text, text
    assert '"input"' in text and catalog.EXAMPLE_INPUTS[first.id]["prompt"] in text, text
    # Every model's example is offered.
    options = body.locator("select option").all_inner_texts()
    assert {spec.title for spec in catalog.MODELS.values()} <= set(options), options
    # The schema tab shows the oneOf over models with model and input.
    body.get_by_text("Schema", exact=True).first.click()
    schema_text = body.inner_text()
    assert "One of" in schema_text, schema_text
    for spec in catalog.MODELS.values():
        assert spec.title in schema_text and spec.id in schema_text, spec.id
    assert "model" in schema_text and "input" in schema_text and "callback_url" in schema_text
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "docs-create-job.png"), full_page=False)

    assert errors == []
    assert f"{base_url}/openapi.json" in requested
    assert any(url.endswith("/docs/assets/swagger-ui-bundle.js") for url in requested)
    foreign = [url for url in requested if urlsplit(url).hostname != LOOPBACK]
    assert foreign == []
