"""One Redis URL form for a Sentinel-managed primary, translated for redis-py, kombu, RedBeat."""

from __future__ import annotations

import pytest
import redis
from redis._parsers import _HiredisParser
from redis.sentinel import SentinelConnectionPool

from orchestrator.core import redis_conn
from orchestrator.core.redis_conn import SentinelTarget

URL = "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380/mymaster/2"


def test_parse_names_every_sentinel_the_primary_and_the_db():
    target = redis_conn.parse_sentinel(URL)
    assert target == SentinelTarget(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380)),
        master_name="mymaster",
        db=2,
        password="s3cret",
    )
    assert "s3cret" not in repr(target)


def test_defaults_db_0_port_26379_and_no_password():
    target = redis_conn.parse_sentinel("redis+sentinel://sentinel.local/prod")
    assert target.sentinels == (("sentinel.local", 26379),)
    assert (target.master_name, target.db, target.password, target.username) == (
        "prod",
        0,
        None,
        None,
    )


def test_user_and_password_and_ipv6():
    target = redis_conn.parse_sentinel("redis+sentinel://app:p%40ss@[::1]:26379/m")
    assert (target.username, target.password, target.sentinels) == (
        "app",
        "p@ss",
        (("::1", 26379),),
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://h:1/",  # no master name
        "redis+sentinel:///m",  # no sentinel
        "redis+sentinel://h:port/m",
        "redis+sentinel://h:1/m/zero",
        "redis+sentinel://h:1/m/0/extra",
        "redis+sentinel://h:99999/m",
    ],
)
def test_malformed_sentinel_urls_are_refused(url):
    with pytest.raises(ValueError, match=r"sentinel|master_name|database"):
        redis_conn.check_url(url)


@pytest.mark.parametrize("url", ["redis://h:6379/0", "rediss://h/1", "unix:///tmp/r.sock", URL])
def test_every_redis_form_passes(url):
    redis_conn.check_url(url)


@pytest.mark.parametrize("url", ["amqp://h//", "http://h", "sentinel://h:1"])
def test_other_schemes_are_not_redis(url):
    with pytest.raises(ValueError, match="redis://"):
        redis_conn.check_url(url)


def test_connect_builds_a_client_that_asks_the_sentinels_for_the_primary():
    client = redis_conn.connect(URL, decode_responses=True, socket_timeout=3)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "mymaster"
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["password"] == "s3cret"
    assert pool.connection_kwargs["decode_responses"] is True
    assert [
        (c.connection_pool.connection_kwargs["host"], c.connection_pool.connection_kwargs["port"])
        for c in pool.sentinel_manager.sentinels
    ] == [
        ("10.0.0.1", 26379),
        ("10.0.0.2", 26380),
    ]


def test_connect_passes_plain_urls_to_redis_py():
    client = redis_conn.connect("redis://127.0.0.1:6390/3", decode_responses=True)
    assert isinstance(client, redis.Redis)
    assert client.connection_pool.connection_kwargs["db"] == 3


def test_kombu_gets_one_sentinel_url_per_sentinel_and_the_master_name_as_an_option():
    url, options = redis_conn.kombu_broker(URL)
    assert url == "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://10.0.0.2:26380"
    assert options == {"master_name": "mymaster"}
    assert redis_conn.kombu_broker("amqp://g:g@h//") == ("amqp://g:g@h//", {})


def test_redbeat_gets_its_redis_sentinel_url_and_sentinels_option():
    url, options = redis_conn.redbeat_options(URL)
    assert url.startswith("redis-sentinel")
    assert options["sentinels"] == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    assert (options["service_name"], options["db"], options["password"]) == (
        "mymaster",
        2,
        "s3cret",
    )
    assert redis_conn.redbeat_options("redis://h/0") == ("redis://h/0", {})


def test_replies_are_parsed_by_hiredis() -> None:
    """setup.cfg asks for redis[hiredis]: each round trip's reply is parsed in C, about a third
    of the client CPU a round trip costs with redis-py's Python parser (issue 12)."""
    client = redis_conn.connect("redis://127.0.0.1:6379/15")
    connection = client.connection_pool.make_connection()
    assert isinstance(connection._parser, _HiredisParser)
