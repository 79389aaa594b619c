"""``connect()``: one object that holds a backend and its clock.

* ``connect()`` — the embedded default: an in-process fakeredis server, nothing to install or start;
* ``connect("redis://:password@host:6379/0")`` or ``rediss://`` — a real Redis (wall-clock time only);
* ``connect(clock=VirtualClock())`` — fakeredis in virtual time, for tests, notebooks and simulations;
* ``connect("memory://", clock=VirtualClock())`` — the pure-Python memory backend: the same semantics as the
  Redis backend (proven by differential tests), many times faster, for large simulations; no raw Redis client.

Several producers and workers share one connection (or several connections to the same server).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import fakeredis
import redis

from queuesim.backends.fake import make_fake_client
from queuesim.backends.memory import MemoryBackend
from queuesim.backends.redis_backend import RedisBackend
from queuesim.clock import Clock, WallClock
from queuesim.errors import OptionError

__all__ = ["Connection", "connect"]

SCHEMES = ("fakeredis", "memory", "redis", "rediss", "unix")


class Connection:
    """A backend plus its clock. Create it with :func:`connect`.

    Attributes:
        backend: the object that owns every state transition.
        clock: the clock every timestamp comes from.
        url: what it connects to (``fakeredis://`` for the embedded server, ``memory://`` for the memory backend).
    """

    def __init__(self, backend: RedisBackend | MemoryBackend, url: str,
                 fake_server: fakeredis.FakeServer | None = None) -> None:
        self.backend = backend
        self.clock = backend.clock
        self.url = url
        self.fake_server = fake_server

    @property
    def client(self) -> redis.Redis:
        """The raw redis-py client, for looking at the keys (read-only use is advised).

        The memory backend has no Redis underneath, so it has no client: use the Queue / Job getters instead.
        """
        if isinstance(self.backend, MemoryBackend):
            raise TypeError("a memory:// connection has no Redis client; read state through Queue and Job getters")
        return self.backend.client

    @property
    def is_fake(self) -> bool:
        return self.fake_server is not None

    @property
    def is_memory(self) -> bool:
        return isinstance(self.backend, MemoryBackend)

    def duplicate(self) -> Connection:
        """A second connection to the same server (e.g. for a blocking reader), same clock and prefix."""
        if isinstance(self.backend, MemoryBackend):
            return Connection(self.backend, self.url)
        if self.fake_server is not None:
            client = make_fake_client(self.clock, self.fake_server)
        else:
            client = redis.Redis(connection_pool=redis.ConnectionPool.from_url(self.url))
        return Connection(RedisBackend(client, self.clock, self.backend.prefix), self.url, self.fake_server)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Connection({self.url!r}, clock={self.clock!r})"


def connect(url: str | None = None, clock: Clock | None = None, prefix: str = "bull",
            server: fakeredis.FakeServer | None = None) -> Connection:
    """Connect to a queue store.

    Args:
        url: ``None`` or ``fakeredis://`` for the embedded server; ``memory://`` for the pure-Python memory
            backend (each call makes a new, empty store); ``redis://[:password@]host[:port][/db]``,
            ``rediss://…`` (TLS) or ``unix://…`` for a real Redis.
        clock: where "now" comes from; wall time by default. A virtual clock is only allowed on fakeredis,
            because a real Redis expires locks and limiter keys in wall time.
        prefix: key prefix (BullMQ's ``bull`` by default).
        server: an existing fakeredis server to share (several connections to one embedded store).
    """
    clock = clock if clock is not None else WallClock()
    if not hasattr(clock, "now_ms"):
        raise OptionError("clock", f"must have a now_ms() method (WallClock, VirtualClock), got {clock!r}")
    if url is None or url.startswith("fakeredis://"):
        fake = server if server is not None else fakeredis.FakeServer(version=(7, 2))
        client = make_fake_client(clock, fake)
        return Connection(RedisBackend(client, clock, prefix), url or "fakeredis://", fake)
    if url.startswith("memory://"):
        if url != "memory://":
            raise OptionError("url", f"memory:// takes no host or path, got {url!r}")
        return Connection(MemoryBackend(clock, prefix), url)
    scheme = urlparse(url).scheme
    if scheme not in SCHEMES:
        raise OptionError("url", f"unknown scheme {scheme!r}; allowed: {', '.join(s + '://' for s in SCHEMES)}")
    if getattr(clock, "virtual", False):
        raise OptionError("clock", "a real Redis expires keys in wall time; use WallClock() (or fakeredis:// for "
                                   "virtual time)")
    client = redis.Redis.from_url(url)
    return Connection(RedisBackend(client, clock, prefix), url)
