"""Fault injection suite, run by test_fault_injection.py in an inner pytest of its own."""

from __future__ import annotations

import pytest
import redis as redis_py

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.services.redis.spec import RedisInfo


def test_before_a_restart(redis: redis_py.Redis) -> None:
    # leaves the database's emptying connection open, for the restart below to break
    assert redis.set("before", 1)


def test_restart_drops_data_keeps_port(
    redis: redis_py.Redis, redis_service: ServiceHandle[RedisInfo]
) -> None:
    if not redis_service.owned:
        pytest.skip("fault injection needs a server the plugin owns")
    redis.set("volatile", 1)
    port = redis_service.info.port
    redis_service.restart()
    assert redis_service.info.port == port
    assert redis.get("volatile") is None  # no persistence configured: a restart loses data
    redis.set("after-restart", 1)  # emptied after this test on a connection the restart broke


def test_next_test_after_a_restart_starts_empty(redis: redis_py.Redis) -> None:
    assert redis.dbsize() == 0
    assert redis.set("k", 1)


def test_paused_server_times_out(redis_service: ServiceHandle[RedisInfo]) -> None:
    if not redis_service.owned:
        pytest.skip("fault injection needs a server the plugin owns")
    info = redis_service.info
    client = redis_py.Redis(
        host=info.host, port=info.port, password=info.password or None, socket_timeout=0.3
    )
    redis_service.pause()
    try:
        with pytest.raises(redis_py.exceptions.TimeoutError):
            client.ping()
    finally:
        redis_service.resume()
    assert client.ping()
    client.close()
