"""Shared fixtures: one parametrised ``env`` fixture runs a test on every backend.

* ``fake``  — the embedded fakeredis server with a virtual clock: time only moves when the test moves it.
* ``memory`` — the pure-Python memory backend with a virtual clock (same engine semantics, no Redis).
* ``redis`` — a real Redis (``QUEUESIM_REDIS_URL``, or a private ``redis-server`` started on a free port when
  one is on PATH) with the wall clock: ``env.advance(ms)`` really sleeps, so tests keep their times short.
  Without a server these tests are skipped with the reason, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import queuesim
from queuesim import Queue, VirtualClock, Worker, connect
from queuesim.backends.memory import MemoryBackend

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout_s`` passes (live-runner tests, in wall time)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a reachable real Redis, or skip (fail under CI=true) with the reason."""
    url = os.environ.get("QUEUESIM_REDIS_URL")
    if url:
        if _ping(url):
            yield url
            return
        reason = f"QUEUESIM_REDIS_URL={url} is not reachable"
    elif shutil.which("redis-server"):
        port = _free_port()
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            if _ping(url):
                break
            time.sleep(0.05)
        try:
            yield url
        finally:
            proc.terminate()
            proc.wait(5)
        return
    else:
        reason = "no real Redis: set QUEUESIM_REDIS_URL or put redis-server on PATH"
    if IN_CI:
        pytest.fail(f"CI=true needs a real Redis: {reason}")
    pytest.skip(reason)


@dataclass
class Env:
    """One backend for a test: a connection, its clock, and helpers that hide fake/real differences."""

    kind: str
    conn: queuesim.Connection
    clock: Any
    queues: list[Queue] = field(default_factory=list)

    @property
    def is_fake(self) -> bool:
        """Virtual time (fakeredis or the memory backend): ``advance`` is instant and exact."""
        return self.kind in ("fake", "memory")

    def advance(self, ms: int) -> None:
        """Let ``ms`` milliseconds pass: instantly on the virtual clock, by sleeping on a real Redis."""
        if self.is_fake:
            self.clock.advance(ms)
        else:
            time.sleep(ms / 1000)

    def now(self) -> int:
        return self.clock.now_ms()

    def queue(self, name: str | None = None, **kwargs: Any) -> Queue:
        """A queue with a name unique to this test (real Redis is shared between tests)."""
        q = Queue(name or f"q-{uuid.uuid4().hex[:10]}", self.conn, **kwargs)
        self.queues.append(q)
        return q

    def worker(self, queue: Queue, **kwargs: Any) -> Worker:
        import numpy as np

        kwargs.setdefault("rng", np.random.default_rng(1))
        return Worker(queue, **kwargs)

    def events(self, queue: Queue) -> list[queuesim.Event]:
        """Every event still in the queue's stream, oldest first."""
        return queuesim.QueueEvents(queue.name, self.conn, "0").read()

    def event_names(self, queue: Queue, job_id: str | None = None) -> list[str]:
        return [e.name for e in self.events(queue) if job_id is None or e.job_id == job_id]


@pytest.fixture(params=["fake", "memory", pytest.param("redis", marks=pytest.mark.real_redis)])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    """Run the test on fakeredis (virtual time), on the memory backend (virtual time) and on a real Redis (wall
    time). On the memory backend ``env.conn.client`` is a read view of its state under Redis key names (see
    ``memory_keyspace.py``), so tests that inspect keys run there too."""
    if request.param == "fake":
        clock = VirtualClock()
        e = Env("fake", connect(clock=clock), clock)
    elif request.param == "memory":
        from memory_keyspace import MemoryTestConnection

        clock = VirtualClock()
        e = Env("memory", MemoryTestConnection(MemoryBackend(clock), "memory://"), clock)
    else:
        url = request.getfixturevalue("redis_url")
        e = Env("redis", connect(url), queuesim.WallClock())
    yield e
    if not e.is_fake:
        for q in e.queues:
            q.obliterate(force=True)
            dlq = q.backend.get_meta(q.name, "dlq")
            if dlq:
                Queue(dlq, e.conn).obliterate(force=True)
    e.conn.close()


@pytest.fixture
def fake_env() -> Iterator[Env]:
    """Only the embedded backend (for tests about virtual time itself)."""
    clock = VirtualClock()
    e = Env("fake", connect(clock=clock), clock)
    yield e
    e.conn.close()
