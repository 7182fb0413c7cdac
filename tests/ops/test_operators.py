"""Operator accounts: argon2 hashes, unique names, sessions that end."""

from __future__ import annotations

import pytest

from ops.operators import OperatorError, OperatorStore


def test_passwords_are_stored_as_argon2id_hashes(fake_redis):
    store = OperatorStore(fake_redis)
    store.create("bob", "a long enough secret")
    stored = fake_redis.hgetall("operator:bob")
    assert stored["password_hash"].startswith("$argon2id$")
    assert "a long enough secret" not in str(stored)
    assert store.verify("bob", "a long enough secret")
    assert not store.verify("bob", "a long enough secreT")
    assert not store.verify("nobody", "a long enough secret")
    assert store.names() == ["bob"]


def test_names_are_unique_unless_replacing(fake_redis):
    store = OperatorStore(fake_redis)
    store.create("bob", "first password 1")
    with pytest.raises(OperatorError, match="exists"):
        store.create("bob", "second password 2")
    assert store.verify("bob", "first password 1")
    store.create("bob", "second password 2", replace=True)
    assert store.verify("bob", "second password 2")
    assert not store.verify("bob", "first password 1")


@pytest.mark.parametrize(
    ("name", "password"),
    [
        ("bob", "short"),
        ("", "long enough pw"),
        ("a b", "long enough pw"),
        ("bob\n", "long enough pw"),
        ("b" * 64, "long enough pw"),
    ],
)
def test_bad_names_and_short_passwords_are_refused(fake_redis, name, password):
    with pytest.raises(OperatorError):
        OperatorStore(fake_redis).create(name, password)
    assert OperatorStore(fake_redis).names() == []


def test_sessions_end_on_close_and_on_delete(fake_redis):
    store = OperatorStore(fake_redis)
    store.create("bob", "a long enough secret")
    first, second = store.open_session("bob"), store.open_session("bob")
    assert store.session_operator(first) == "bob"
    store.close_session(first)
    assert store.session_operator(first) is None
    assert store.session_operator(second) == "bob"
    assert store.delete("bob")
    assert store.session_operator(second) is None
