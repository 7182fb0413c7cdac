"""The SSRF guard: consumer URLs are https and public, at registration and at send time."""

from __future__ import annotations

import socket

import pytest

from orchestrator.core import urls
from orchestrator.core.urls import UnsafeUrl, check_consumer_url, pinned_target

PRIVATE_TARGETS = (
    "https://127.0.0.1/hook",
    "https://10.0.0.5/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://[::ffff:10.0.0.5]/hook",
    "https://0.0.0.0/hook",
    "https://192.168.1.10/hook",
    "https://172.16.0.1/hook",
    "https://100.64.0.1/hook",  # carrier-grade NAT
    "https://[fd00::1]/hook",
    "https://[fe80::1]/hook",
    "https://localhost/hook",
    "https://metadata.google.internal/computeMetadata/v1/",
)
PUBLIC_ADDRESS = "93.184.216.34"


def fake_dns(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> list[str]:
    """Answer getaddrinfo from ``table`` (no network); returns the names looked up."""
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in table[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("url", PRIVATE_TARGETS)
def test_private_loopback_link_local_and_metadata_targets_are_refused(url):
    with pytest.raises(UnsafeUrl):
        check_consumer_url(url, allow_http=False)
    with pytest.raises(UnsafeUrl):
        pinned_target(url, allow_http=False)


def test_a_hostname_that_resolves_to_a_private_address_is_refused(monkeypatch):
    fake_dns(monkeypatch, {"hooks.evil.example": ["10.0.0.5"]})
    with pytest.raises(UnsafeUrl, match="resolves to a private"):
        check_consumer_url("https://hooks.evil.example/x", allow_http=False)


def test_one_private_address_among_public_ones_is_enough_to_refuse(monkeypatch):
    fake_dns(monkeypatch, {"mixed.example": [PUBLIC_ADDRESS, "169.254.169.254"]})
    with pytest.raises(UnsafeUrl):
        pinned_target("https://mixed.example/x", allow_http=False)


def test_a_public_https_url_is_accepted_and_pinned_to_its_checked_address(monkeypatch):
    asked = fake_dns(monkeypatch, {"hooks.acme.example": [PUBLIC_ADDRESS]})
    check_consumer_url("https://hooks.acme.example/video?x=1", allow_http=False)
    target = pinned_target("https://hooks.acme.example:8443/video?x=1", allow_http=False)
    assert target.address == PUBLIC_ADDRESS and target.host == "hooks.acme.example"
    assert target.port == 8443 and target.path == "/video?x=1"
    assert target.host_header == "hooks.acme.example:8443"
    assert asked == ["hooks.acme.example", "hooks.acme.example"]  # once per check, no more


def test_pinning_resolves_once_so_a_rebinding_cannot_slip_in(monkeypatch):
    """The address checked is the address returned: no second lookup to rebind."""
    answers = iter([[PUBLIC_ADDRESS], ["127.0.0.1"]])
    calls = []

    def getaddrinfo(host, port, *args, **kwargs):
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in next(answers)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    target = pinned_target("https://rebind.example/x", allow_http=False)
    assert target.address == PUBLIC_ADDRESS and len(calls) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.acme.example/x",
        "ftp://hooks.acme.example/x",
        "/relative",
        "",
        "https://",
        "https://user:pw@hooks.acme.example/x",
        "https://hooks.acme.example:99999/x",
        "https://" + "a" * 3000 + ".example/",
    ],
)
def test_malformed_or_plain_http_urls_are_refused(url, monkeypatch):
    fake_dns(monkeypatch, {"hooks.acme.example": [PUBLIC_ADDRESS]})
    with pytest.raises(UnsafeUrl):
        check_consumer_url(url, allow_http=False)


def test_a_name_that_does_not_resolve_is_refused(monkeypatch):
    fake_dns(monkeypatch, {})
    with pytest.raises(UnsafeUrl, match="does not resolve"):
        check_consumer_url("https://nowhere.example/x", allow_http=False)


def test_allow_http_accepts_http_and_loopback_for_dev():
    check_consumer_url("http://127.0.0.1:8091/hooks/a", allow_http=True)
    target = pinned_target("http://127.0.0.1:8091/hooks/a", allow_http=True)
    assert target.address == "127.0.0.1" and target.host_header == "127.0.0.1:8091"
    assert urls.DEFAULT_PORTS["http"] == pinned_target("http://127.0.0.1/", True).port


# ---------------------------------------------------------------- through the API (allow_http off)

REFUSED_CALLBACKS = (
    "https://127.0.0.1/hook",
    "https://10.0.0.5/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://private.acme.example/hook",  # resolves to 10.1.2.3 (monkeypatched DNS)
)


@pytest.fixture
def api(app, client_factory, monkeypatch):
    fake_dns(
        monkeypatch, {"private.acme.example": ["10.1.2.3"], "hooks.acme.example": [PUBLIC_ADDRESS]}
    )
    client, key = client_factory("acme")
    return app.test_client(), {"Authorization": f"Bearer {key}"}, client


@pytest.mark.parametrize("url", REFUSED_CALLBACKS)
def test_the_api_refuses_private_callback_urls_for_jobs_and_the_client_endpoint(
    api, url, svc, settings
):
    assert settings.allow_http is False
    http, headers, client = api
    answer = http.post(
        "/v1/jobs",
        headers=headers,
        json={
            "model": "pixverse-v6-text-to-video",
            "input": {"prompt": "a cat"},
            "callback_url": url,
        },
    )
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert "callback_url" in answer.get_json()["error"]["details"]
    answer = http.patch("/v1/client", headers=headers, json={"callback_url": url})
    assert answer.status_code == 422
    assert "callback_url" in answer.get_json()["error"]["details"]
    assert svc.clients.get(client.id).callback_url is None
    assert svc.redis.zcard("idx:jobs") == 0


def test_the_api_accepts_a_public_endpoint_and_re_enables_a_disabled_one(api, svc):
    http, headers, client = api
    svc.clients.update(client.id, callback_url="https://old.acme.example/h")
    svc.clients.update(client.id, endpoint_disabled=True)
    answer = http.patch(
        "/v1/client",
        headers=headers,
        json={"callback_url": "https://hooks.acme.example/video", "event_types": ["job.completed"]},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["callback_url"] == "https://hooks.acme.example/video"
    assert body["event_types"] == ["job.completed"] and body["endpoint_disabled"] is False


# ---------------------------------------------------------------- issue 8: SSRF and IDN

EMBEDDED_OR_SPECIAL_TARGETS = (
    "https://[2002:a9fe:a9fe::]/",  # 6to4 around 169.254.169.254
    "https://192.0.0.8/",  # IPv4 dummy address (IETF protocol assignments)
    "https://[64:ff9b::a9fe:a9fe]/",  # NAT64 well-known prefix around the metadata address
    "https://[64:ff9b:1::a9fe:a9fe]/",  # NAT64 local-use prefix
    "https://[::a9fe:a9fe]/",  # IPv4-compatible
    "https://[::ffff:0:a9fe:a9fe]/",  # IPv4-translated
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    "https://224.0.0.1/",  # multicast
    "https://[ff0e::1]/",  # global-scope multicast
    "https://198.18.0.1/",  # benchmarking
)


@pytest.mark.parametrize("url", EMBEDDED_OR_SPECIAL_TARGETS)
def test_only_global_addresses_pass_embedded_ipv4_included(url):
    with pytest.raises(UnsafeUrl):
        check_consumer_url(url, allow_http=False)
    with pytest.raises(UnsafeUrl):
        pinned_target(url, allow_http=False)


@pytest.mark.parametrize("address", ["2002:a9fe:a9fe::", "192.0.0.8", "64:ff9b::a00:5"])
def test_a_name_resolving_to_a_wrapped_private_address_is_refused(monkeypatch, address):
    fake_dns(monkeypatch, {"sneaky.example": [address]})
    with pytest.raises(UnsafeUrl, match="resolves to a private"):
        pinned_target("https://sneaky.example/x", allow_http=False)


@pytest.mark.parametrize("address", [PUBLIC_ADDRESS, "2606:4700:4700::1111", "64:ff9b::5db8:d822"])
def test_global_addresses_and_nat64_of_a_public_ipv4_are_accepted(monkeypatch, address):
    fake_dns(monkeypatch, {"hooks.acme.example": [address]})
    assert pinned_target("https://hooks.acme.example/x", allow_http=False).address == address


def test_an_idn_host_is_refused_at_registration_with_its_a_label(monkeypatch):
    fake_dns(
        monkeypatch, {"bücher.example": [PUBLIC_ADDRESS], "xn--bcher-kva.example": [PUBLIC_ADDRESS]}
    )
    with pytest.raises(UnsafeUrl, match=r"xn--bcher-kva\.example"):
        check_consumer_url("https://bücher.example/hook", allow_http=False)
    check_consumer_url("https://xn--bcher-kva.example/hook", allow_http=False)


def test_a_stored_idn_url_is_sent_to_its_a_label(monkeypatch):
    """URLs registered before the check are still deliverable: name, SNI and Host in ASCII."""
    asked = fake_dns(monkeypatch, {"xn--e1afmkfd.example": [PUBLIC_ADDRESS]})
    target = pinned_target("https://пример.example/hook", allow_http=False)
    assert target.host == "xn--e1afmkfd.example" and target.host_header.isascii()
    assert asked == ["xn--e1afmkfd.example"]


def test_safe_url_hides_query_and_credentials():
    assert urls.safe_url("https://u:p@hooks.acme.example:8443/h?token=s3cret") == (
        "https://hooks.acme.example:8443/h?…"
    )
    assert urls.safe_url("https://hooks.acme.example/h") == "https://hooks.acme.example/h"
    assert urls.safe_url("") == ""
