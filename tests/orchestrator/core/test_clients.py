"""Client store: hashed keys, secret rotation with expiry, endpoint updates."""

from __future__ import annotations

from orchestrator.core import clock, keys
from orchestrator.core.clients import WEBHOOK_SECRET_PREFIX, hash_api_key
from tests.helpers import named_round_trips


def test_api_keys_are_stored_only_as_hashes(svc):
    client, api_key = svc.clients.create("acme", "https://hooks.acme.example/h")
    stored = svc.redis.hgetall(keys.client(client.id))
    assert api_key not in str(stored) and stored["api_key_hash"] == hash_api_key(api_key)
    assert svc.clients.authenticate(api_key).id == client.id
    assert svc.clients.authenticate(api_key + "x") is None
    assert client.webhook_secrets[0].startswith(WEBHOOK_SECRET_PREFIX)


def test_rotation_keeps_both_secrets_until_the_old_one_expires(svc, monkeypatch):
    client, _ = svc.clients.create("acme")
    old = client.webhook_secrets[0]
    new = svc.clients.rotate_secret(client.id, keep_old_seconds=3600)
    assert svc.clients.get(client.id).webhook_secrets == (new, old)
    later = clock.now() + 3601
    monkeypatch.setattr(clock, "now", lambda: later)
    assert svc.clients.get(client.id).webhook_secrets == (new,)


def test_drop_old_secrets_ends_the_overlap_at_once(svc):
    client, _ = svc.clients.create("acme")
    new = svc.clients.rotate_secret(client.id)
    assert len(svc.clients.get(client.id).webhook_secrets) == 2
    assert svc.clients.drop_old_secrets(client.id) is True
    assert svc.clients.get(client.id).webhook_secrets == (new,)
    assert svc.clients.drop_old_secrets("cli_missing") is False


def test_a_second_rotation_keeps_only_the_two_newest(svc):
    client, _ = svc.clients.create("acme")
    first = svc.clients.rotate_secret(client.id)
    second = svc.clients.rotate_secret(client.id)
    assert svc.clients.get(client.id).webhook_secrets == (second, first)


def test_a_new_endpoint_url_re_enables_delivery_but_the_same_url_does_not(svc):
    client, _ = svc.clients.create("acme", "https://a.example/h")
    svc.clients.update(client.id, endpoint_disabled=True)
    assert svc.clients.update(client.id, callback_url="https://a.example/h").endpoint_disabled
    updated = svc.clients.update(client.id, callback_url="https://b.example/h")
    assert updated.endpoint_disabled is False and updated.callback_url == "https://b.example/h"
    assert svc.clients.update("cli_missing", callback_url="https://x.example") is None


def _counter(client_id: str) -> str:
    return keys.rate_limit(client_id, 7)


def test_authenticate_counted_counts_each_request_of_a_known_key(svc):
    client, api_key = svc.clients.create("acme")
    found = [svc.clients.authenticate_counted(api_key, _counter, 120) for _ in range(3)]
    assert [(c.id, n) for c, n in found] == [(client.id, 1), (client.id, 2), (client.id, 3)]
    assert 0 < svc.redis.ttl(_counter(client.id)) <= 120


def test_authenticate_counted_counts_nothing_for_an_unknown_key(svc):
    client, api_key = svc.clients.create("acme")
    assert svc.clients.authenticate_counted(api_key + "x", _counter, 120) is None
    assert svc.clients.authenticate_counted("not-a-key", _counter, 120) is None
    assert not svc.redis.exists(_counter(client.id))


def test_a_revoked_key_stops_working_at_once(svc):
    """Nothing is cached: the request after the key's removal is refused."""
    _, api_key = svc.clients.create("acme")
    assert svc.clients.authenticate_counted(api_key, _counter, 120) is not None
    svc.redis.delete(keys.api_key(hash_api_key(api_key)))
    assert svc.clients.authenticate_counted(api_key, _counter, 120) is None
    assert svc.clients.authenticate(api_key) is None


def test_a_known_key_costs_one_round_trip(svc, monkeypatch):
    """Once the process has seen a key's client, authenticating and counting a request is one
    script (before: a GET of the key, then the client and the counter in a pipeline)."""
    client, api_key = svc.clients.create("acme")
    assert svc.clients.authenticate_counted(api_key, _counter, 120)[0].id == client.id
    trips = named_round_trips(monkeypatch, svc.redis)
    found = [svc.clients.authenticate_counted(api_key, _counter, 120) for _ in range(3)]
    assert [(c.id, n) for c, n in found] == [(client.id, 2), (client.id, 3), (client.id, 4)]
    assert trips == ["EVALSHA"] * 3
    assert 0 < svc.redis.ttl(_counter(client.id)) <= 120


def test_a_revoked_key_seen_before_is_refused_and_counts_nothing(svc):
    client, api_key = svc.clients.create("acme")
    assert svc.clients.authenticate_counted(api_key, _counter, 120) is not None
    svc.redis.delete(keys.api_key(hash_api_key(api_key)))
    for _ in range(2):
        assert svc.clients.authenticate_counted(api_key, _counter, 120) is None
    assert svc.redis.get(_counter(client.id)) == "1"


def test_a_key_that_names_another_client_now_counts_for_that_one(svc):
    first, api_key = svc.clients.create("acme")
    second, _ = svc.clients.create("other")
    assert svc.clients.authenticate_counted(api_key, _counter, 120)[0].id == first.id
    svc.redis.set(keys.api_key(hash_api_key(api_key)), second.id)
    found, count = svc.clients.authenticate_counted(api_key, _counter, 120)
    assert (found.id, count) == (second.id, 1)
    assert svc.redis.get(_counter(first.id)) == "1"


def test_a_deleted_client_is_refused_though_its_key_remains(svc):
    client, api_key = svc.clients.create("acme")
    assert svc.clients.authenticate_counted(api_key, _counter, 120) is not None
    svc.redis.delete(keys.client(client.id))
    assert svc.clients.authenticate_counted(api_key, _counter, 120) is None
