"""A hypothesis state machine over the engine: random operations, invariants checked after every step, on every
backend.

Invariants (the engine's promises):
* every job is in exactly one state, and that is the state ``get_state`` reports;
* the counts equal the contents of the state lists and sets, and the backend lists exactly those ids;
* attempts_made never exceeds the job's attempts (stall recoveries do not count);
* no waiting, delayed or finished job holds a lock; every active job held by a live worker does;
* a delayed job's score encodes its due time (score // 4096);
* the last event of each job in the stream agrees with its state.

The same machine runs on three stores:

* ``fakeredis`` — the embedded server running BullMQ's Lua scripts, in virtual time;
* ``memory`` — the pure-Python memory backend, in virtual time. It has no Redis keys, so the invariants read its
  state through a Redis-shaped view under the same key names (``memory_keyspace.py``);
* ``redis`` — a real Redis (a smaller sample, since its locks expire in wall time: every ``advance`` sleeps until
  the wall clock has caught up). Each example uses its own key prefix and deletes its keys afterwards.

Each test prints how many examples and steps it ran (``pytest -s``); ``docs/reliability.md`` quotes them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import queuesim
from queuesim import Queue, RateLimitError, UnrecoverableError, VirtualClock, Worker

STATES = ("wait", "paused", "active", "prioritized", "delayed", "completed", "failed")
#: the public state name of each list or set (what ``get_state`` answers and ``get_jobs`` takes)
PUBLIC = {"wait": "waiting", "paused": "paused", "active": "active", "prioritized": "prioritized",
          "delayed": "delayed", "completed": "completed", "failed": "failed"}
#: the state a job's latest event leaves it in (None: the event says nothing definite about the state)
EVENT_STATE = {
    "waiting": {"wait", "paused", "prioritized"}, "delayed": {"delayed"}, "active": {"active"},
    "completed": {"completed"}, "failed": {"failed"}, "added": None, "progress": None,
    "retries-exhausted": {"failed"}, "stalled": {"wait", "paused", "active"}, "duplicated": None,
    "removed": set(), "deduplicated": None, "debounced": None,
}

#: examples per store: the virtual-time stores are fast, a real Redis spends wall time in every advance
VIRTUAL_EXAMPLES = 60
REAL_EXAMPLES = 12
MAX_STEPS = 40


# --- the stores ---------------------------------------------------------------------------------------------------


@dataclass
class Store:
    """A connection to one backend, its clock, and a redis-py-like client the invariants read keys through."""

    kind: str
    conn: queuesim.Connection
    clock: Any
    client: Any
    cleanup: Callable[[], None] = lambda: None


@dataclass
class Tally:
    """What one test ran: examples (machines started), steps (rules executed), stores opened."""

    examples: int = 0
    steps: int = 0
    prefixes: list[str] = field(default_factory=list)


def open_fakeredis() -> Store:
    clock = VirtualClock()
    conn = queuesim.connect(clock=clock)
    return Store("fakeredis", conn, clock, conn.client)


def open_memory() -> Store:
    from memory_keyspace import MemoryKeyspace

    clock = VirtualClock()
    conn = queuesim.connect("memory://", clock=clock)
    return Store("memory", conn, clock, MemoryKeyspace(conn.backend))  # type: ignore[arg-type]


def real_redis_opener(url: str, tally: Tally) -> Callable[[], Store]:
    """Stores on a real Redis, each with its own key prefix (so examples and other tests never share a key);
    the cleanup deletes every key under that prefix."""
    from differential import SyncedClock

    def open_real() -> Store:
        prefix = f"sm-{uuid.uuid4().hex[:10]}"
        tally.prefixes.append(prefix)
        clock = SyncedClock()
        conn = queuesim.connect(url, clock=clock, prefix=prefix)
        client = conn.client

        def cleanup() -> None:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
            if keys:
                client.delete(*keys)

        return Store("redis", conn, clock, client, cleanup)

    return open_real


# --- the machine --------------------------------------------------------------------------------------------------


class EngineMachine(RuleBasedStateMachine):
    """Drives one queue and two workers on a store, in (virtual or synced) time.

    Subclasses say which store through :meth:`open_store` and where to count through ``tally``.
    """

    tally: Tally = Tally()

    def open_store(self) -> Store:
        raise NotImplementedError

    @initialize()
    def setup(self) -> None:
        self.store = self.open_store()
        self.tally.examples += 1
        self.clock = self.store.clock
        self.conn = self.store.conn
        self.q = Queue("sm", self.conn)
        self.workers = [Worker(self.q, worker_id=f"w{i}", lock_duration=1000, stalled_interval=500,
                               max_stalled_count=2) for i in range(2)]
        self.job_ids: set[str] = set()
        self.removed: set[str] = set()

    def teardown(self) -> None:
        if hasattr(self, "store"):
            try:
                self.store.cleanup()
            finally:
                self.conn.close()

    def _step(self) -> None:
        self.tally.steps += 1

    # --- rules -------------------------------------------------------------------------------------------

    @rule(priority=st.sampled_from([0, 0, 1, 5]), delay=st.sampled_from([0, 0, 300, 2000]),
          attempts=st.integers(0, 3), backoff=st.sampled_from([None, 100, {"type": "exponential", "delay": 50}]),
          lifo=st.booleans())
    def add(self, priority: int, delay: int, attempts: int, backoff: Any, lifo: bool) -> None:
        self._step()
        job = self.q.add("j", {"n": len(self.job_ids)}, priority=priority, delay=delay, attempts=attempts,
                         backoff=backoff, lifo=lifo)
        self.job_ids.add(job.id)

    @rule(w=st.integers(0, 1))
    def fetch(self, w: int) -> None:
        self._step()
        self.workers[w].fetch()

    @rule(w=st.integers(0, 1), how=st.sampled_from(["complete", "fail", "unrecoverable", "rate", "fetch_next"]))
    def finish(self, w: int, how: str) -> None:
        self._step()
        worker = self.workers[w]
        if not worker.active:
            return
        job = next(iter(worker.active.values()))
        try:
            if how == "complete":
                worker.complete(job, {"ok": 1})
            elif how == "fetch_next":
                worker.complete(job, None, fetch_next=True)
            elif how == "fail":
                worker.fail(job, RuntimeError("boom"))
            elif how == "unrecoverable":
                worker.fail(job, UnrecoverableError("bad input"))
            else:
                worker.fail(job, RateLimitError(retry_after_ms=200))
        except queuesim.LockError:
            worker.active.pop(job.id, None)  # the lock lapsed and another worker owns it now

    @rule(ms=st.sampled_from([10, 250, 600, 1200]))
    def advance(self, ms: int) -> None:
        self._step()
        self.clock.advance(ms)

    @rule(w=st.integers(0, 1))
    def renew(self, w: int) -> None:
        self._step()
        lost = self.workers[w].extend_locks()
        for job_id in lost:
            self.workers[w].active.pop(job_id, None)

    @rule()
    def stalled_check(self) -> None:
        self._step()
        self.workers[0].check_stalled()

    @rule(w=st.integers(0, 1))
    def crash(self, w: int) -> None:
        self._step()
        self.workers[w].forget()

    @rule(pause=st.booleans())
    def pause_or_resume(self, pause: bool) -> None:
        self._step()
        if pause:
            self.q.pause()
        else:
            self.q.resume()

    @precondition(lambda self: bool(self.job_ids))
    @rule(data=st.data())
    def admin(self, data: st.DataObject) -> None:
        self._step()
        job_id = data.draw(st.sampled_from(sorted(self.job_ids)))
        op = data.draw(st.sampled_from(["promote", "remove", "retry", "priority"]))
        state = self.q.get_job_state(job_id)
        if op == "promote" and state == "delayed":
            self.q.promote(job_id)
        elif op == "remove" and state != "active":
            if self.q.remove(job_id):
                self.removed.add(job_id)
        elif op == "retry" and state == "failed":
            self.q.get_job(job_id).retry()  # type: ignore[union-attr]
        elif op == "priority" and state in ("waiting", "prioritized"):
            self.q.change_priority(job_id, data.draw(st.sampled_from([0, 2, 7])))

    # --- invariants --------------------------------------------------------------------------------------

    def _members(self) -> dict[str, list[str]]:
        """The ids in each state list or set, read from the keys (or the memory backend's view of them)."""
        c = self.store.client
        k = self.q.keys
        out: dict[str, list[str]] = {}
        for s in STATES:
            key = k.key(s)
            if s in ("wait", "paused", "active"):
                out[s] = [m.decode() for m in c.lrange(key, 0, -1)]
            else:
                out[s] = [m.decode() for m in c.zrange(key, 0, -1)]
        return out

    @invariant()
    def every_job_is_in_exactly_one_state(self) -> None:
        if not hasattr(self, "q"):
            return
        members = self._members()
        seen: dict[str, str] = {}
        for state, ids in members.items():
            for job_id in ids:
                assert job_id not in seen, f"job {job_id} in {seen[job_id]} and {state}"
                seen[job_id] = state
        for job_id in self.job_ids - self.removed:
            assert job_id in seen, f"job {job_id} is in no state"
            reported = self.q.get_job_state(job_id)
            expected = "waiting" if seen[job_id] in ("wait", "paused") else seen[job_id]
            assert reported == expected
        counts = self.q.get_job_counts()
        assert counts["waiting"] == len(members["wait"])
        assert counts["paused"] == len(members["paused"])
        for s in ("active", "prioritized", "delayed", "completed", "failed"):
            assert counts[s] == len(members[s])

    @invariant()
    def the_getters_list_exactly_the_jobs_of_each_state(self) -> None:
        if not hasattr(self, "q"):
            return
        for s, ids in self._members().items():
            listed = self.q.backend.get_ids(self.q.name, PUBLIC[s], 0, -1, True)
            assert sorted(listed) == sorted(ids), f"get_ids({PUBLIC[s]!r}) = {listed}, keys hold {ids}"

    @invariant()
    def attempts_and_locks_and_due_times_are_consistent(self) -> None:
        if not hasattr(self, "q"):
            return
        c = self.store.client
        members = self._members()
        held = {job_id: job.token for w in self.workers for job_id, job in w.active.items()}
        for state, ids in members.items():
            for job_id in ids:
                job = self.q.get_job(job_id)
                assert job is not None
                assert job.attempts_made <= max(job.opts.attempts, 1)
                lock = c.get(self.q.keys.job_lock(job_id))
                if state != "active":
                    assert lock is None, f"{state} job {job_id} holds a lock"
                elif job_id in held and lock is not None:
                    assert lock.decode() == held[job_id]
        for job_id, score in c.zrange(self.q.keys.delayed, 0, -1, withscores=True):
            job = self.q.get_job(job_id.decode())
            assert job is not None
            due = int(score) // 4096
            assert due >= job.timestamp

    @invariant()
    def the_last_event_of_each_job_agrees_with_its_state(self) -> None:
        if not hasattr(self, "q"):
            return
        last: dict[str, str] = {}
        for ev in queuesim.QueueEvents("sm", self.conn, "0").read():
            if ev.job_id is not None and EVENT_STATE.get(ev.name) is not None:
                last[ev.job_id] = ev.name
        members = self._members()
        where = {job_id: s for s, ids in members.items() for job_id in ids}
        for job_id, name in last.items():
            allowed = EVENT_STATE[name]
            assert allowed is not None
            if job_id in self.removed and job_id not in where:
                continue
            assert where.get(job_id) in allowed, f"job {job_id}: last event {name}, state {where.get(job_id)}"


def machine_on(open_store: Callable[[], Store], tally: Tally) -> type[EngineMachine]:
    """The machine class bound to one kind of store."""

    class Machine(EngineMachine):
        def open_store(self) -> Store:
            return open_store()

    Machine.tally = tally
    return Machine


def run_machine(kind: str, open_store: Callable[[], Store], examples: int) -> Tally:
    tally = Tally()
    started = time.monotonic()
    run_state_machine_as_test(
        machine_on(open_store, tally),
        settings=settings(max_examples=examples, stateful_step_count=MAX_STEPS, deadline=None, derandomize=True,
                          database=None, suppress_health_check=[HealthCheck.too_slow]))
    print(f"\nstate machine on {kind}: {tally.examples} examples, {tally.steps} steps, "
          f"{time.monotonic() - started:.1f} s")
    # a run that stops early or never gets past setup would check nothing
    assert tally.examples >= examples
    assert tally.steps >= examples * 5
    return tally


# --- one test per store -------------------------------------------------------------------------------------------


def test_engine_invariants_hold_on_fakeredis() -> None:
    run_machine("fakeredis", open_fakeredis, VIRTUAL_EXAMPLES)


def test_engine_invariants_hold_on_the_memory_backend() -> None:
    run_machine("memory", open_memory, VIRTUAL_EXAMPLES)


@pytest.mark.real_redis
def test_engine_invariants_hold_on_a_real_redis(redis_url: str) -> None:
    import redis

    tally = Tally()
    try:
        run_state_machine_as_test(
            machine_on(real_redis_opener(redis_url, tally), tally),
            settings=settings(max_examples=REAL_EXAMPLES, stateful_step_count=MAX_STEPS, deadline=None,
                              derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]))
    finally:
        client = redis.Redis.from_url(redis_url)
        left = [k for p in tally.prefixes for k in client.scan_iter(match=f"{p}:*", count=500)]
        client.close()
    print(f"\nstate machine on a real Redis: {tally.examples} examples, {tally.steps} steps")
    assert tally.examples >= REAL_EXAMPLES
    assert tally.steps >= REAL_EXAMPLES * 5
    assert len(set(tally.prefixes)) == tally.examples  # every example had its own prefix...
    assert left == []  # ...and left no key behind


def test_the_machine_notices_a_memory_backend_that_misreports_a_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """The invariants are not vacuous on the memory backend: one whose state lookup forgets the prioritized set
    (it answers "waiting" for a prioritized job) is caught."""
    from queuesim.backends.memory import MemoryBackend

    original = MemoryBackend.get_state

    def forgetful(self: MemoryBackend, queue: str, job_id: str) -> str:
        state = original(self, queue, job_id)
        return "waiting" if state == "prioritized" else state

    monkeypatch.setattr(MemoryBackend, "get_state", forgetful)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            machine_on(open_memory, Tally()),
            settings=settings(max_examples=30, stateful_step_count=MAX_STEPS, deadline=None, derandomize=True,
                              database=None, suppress_health_check=[HealthCheck.too_slow]))
