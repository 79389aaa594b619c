"""One Redis connection shared by many coroutines, with many commands in flight at once.

Node BullMQ's worker overlaps its jobs on one event loop: its Redis client writes a command as soon as a job
asks for it and matches the replies to the callers in order, because Redis answers the commands of one
connection in the order they arrived. :class:`PipelinedConnection` does the same for queuesim's live worker
when its processor is an ``async`` function: fifty running jobs cost fifty small writes (gathered into one
system call per turn of the event loop) and one stream of replies, with no thread per job.

Only what the hot path needs is here: sending protocol bytes that :class:`~queuesim.backends.scripts.Script`
already packed, and reading the replies with hiredis' parser. Everything else keeps using redis-py.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
import redis

from queuesim.backends.scripts import resp_command

__all__ = ["PipelinedConnection", "connection_settings"]


def connection_settings(client: redis.Redis) -> dict[str, Any] | None:
    """How to reach the server behind a redis-py ``client``: host and port or a Unix socket path, db and
    credentials; None when this module cannot open such a connection itself (TLS, or the embedded fakeredis
    server)."""
    pool = client.connection_pool
    kw = pool.connection_kwargs
    if pool.connection_class is redis.Connection:
        where: dict[str, Any] = {"host": kw.get("host", "localhost"), "port": int(kw.get("port", 6379))}
    elif pool.connection_class is redis.UnixDomainSocketConnection:
        where = {"path": kw["path"]}
    else:
        return None
    return {**where, "db": int(kw.get("db", 0) or 0), "username": kw.get("username"),
            "password": kw.get("password")}


class _Pending:
    """Replies awaited by one caller: ``count`` of them, in order."""

    __slots__ = ("count", "future", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], count: int) -> None:
        self.future = future
        self.count = count
        self.replies: list[Any] = []


class PipelinedConnection(asyncio.Protocol):
    """A Redis connection for one event loop. :meth:`send` may be awaited by many coroutines at once.

    An error reply comes back as a :class:`redis.exceptions.ResponseError` *value* in the reply list (the
    caller decides what it means); a lost connection fails every caller still waiting with
    :class:`redis.exceptions.ConnectionError`, and the next :meth:`send` connects again.
    """

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self._transport: asyncio.Transport | None = None
        self._reader = hiredis.Reader(replyError=redis.exceptions.ResponseError)
        self._pending: deque[_Pending] = deque()
        self._connecting: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- asyncio.Protocol --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        pending = self._pending
        while True:
            reply = reader.gets()
            if reply is False:
                return
            head = pending[0]
            head.replies.append(reply)
            if len(head.replies) == head.count:
                pending.popleft()
                if not head.future.done():
                    head.future.set_result(head.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._reader = hiredis.Reader(replyError=redis.exceptions.ResponseError)
        error = redis.exceptions.ConnectionError(f"connection to Redis lost: {exc or 'closed'}")
        while self._pending:
            waiting = self._pending.popleft()
            if not waiting.future.done():
                waiting.future.set_exception(error)

    # --- use ---------------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        if self._connecting is not None:
            await asyncio.shield(self._connecting)
            return
        self._connecting = loop.create_future()
        try:
            self._loop = loop
            s = self.settings
            try:
                if "path" in s:
                    await loop.create_unix_connection(lambda: self, s["path"])
                else:
                    await loop.create_connection(lambda: self, s["host"], s["port"])
            except OSError as exc:  # refused, unreachable…: the same error redis-py raises
                where = s.get("path") or f"{s['host']}:{s['port']}"
                raise redis.exceptions.ConnectionError(f"cannot connect to Redis at {where}: {exc}") from exc
            hello: list[list[Any]] = []
            if s.get("password"):
                hello.append(["AUTH", *([s["username"]] if s.get("username") else []), s["password"]])
            if s.get("db"):
                hello.append(["SELECT", s["db"]])
            for command in hello:
                reply = (await self._send_now(resp_command(b"", 0, command), 1))[0]
                if isinstance(reply, redis.exceptions.ResponseError):
                    raise redis.exceptions.ConnectionError(f"Redis refused {command[0]}: {reply}")
            self._connecting.set_result(None)
        except BaseException as exc:
            self._connecting.set_exception(exc)
            self._connecting.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            self.close()
            raise
        finally:
            self._connecting = None

    def _send_now(self, packets: bytes, count: int) -> asyncio.Future[list[Any]]:
        if self._transport is None or self._loop is None:
            raise redis.exceptions.ConnectionError("connection to Redis lost")
        future: asyncio.Future[list[Any]] = self._loop.create_future()
        self._pending.append(_Pending(future, count))
        # written at once, not gathered until the end of the loop's turn: Redis then starts on the first
        # command while the other jobs are still being handled here (gathering made it wait for all of them)
        self._transport.write(packets)
        return future

    async def send(self, packets: bytes, count: int) -> list[Any]:
        """Write ``packets`` (``count`` commands in the Redis protocol) and return their ``count`` replies."""
        if self._transport is None:
            await self._connect()
        return await self._send_now(packets, count)

    def close(self) -> None:
        """Close the connection; callers still waiting get a ConnectionError."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

