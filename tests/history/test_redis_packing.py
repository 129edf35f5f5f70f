"""The runtime's Redis connections write commands with hiredis's packer (in C) and what
they write is byte for byte what redis-py's own packer writes, over every kind of URL."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

from overture.history.redis_ledger import redis_client

COMMANDS = [
    ("EVALSHA", "a" * 40, 2, "p:staging:v:customer:C1", "p:staging:p:customer:C1", 5, 1.5),
    ("SCRIPT LOAD", "return redis.call('GET', KEYS[1])"),
    ("SET", "clé", "valeur é ✓", "PX", 1000),
    (b"ZADD", b"k", 1733480000.123, b"member"),
    ("HSET", "h", "f", bytearray(b"raw"), "g", memoryview(b"view")),
    ("ZRANGEBYSCORE", "k", -1e300, 2**63 - 1),
]


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("redis://127.0.0.1:6379/0", Connection),
        ("rediss://127.0.0.1:6380/0", SSLConnection),
        ("unix:///tmp/redis.sock", UnixDomainSocketConnection),
    ],
)
def test_commands_are_written_as_redis_py_writes_them(url: str, base: type) -> None:
    client = redis_client(url)  # (no connection is made)
    packed = client.connection_pool.connection_class
    assert issubclass(packed, base) and packed is not base
    ours, theirs = packed(), Connection()
    for command in COMMANDS:
        assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))
