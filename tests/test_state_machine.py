"""A hypothesis state machine over the engine: random operations, invariants checked after every step.

Invariants (the engine's promises):
* every job is in exactly one state, and that is the state ``get_state`` reports;
* the counts equal the contents of the state lists and sets;
* attempts_made never exceeds the job's attempts (stall recoveries do not count);
* no waiting, delayed or finished job holds a lock; every active job held by a live worker does;
* a delayed job's score encodes its due time (score // 4096);
* the last event of each job in the stream agrees with its state.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import queuesim
from queuesim import Queue, RateLimitError, UnrecoverableError, VirtualClock, Worker

STATES = ("wait", "paused", "active", "prioritized", "delayed", "completed", "failed")
#: the state a job's latest event leaves it in (None: the event says nothing definite about the state)
EVENT_STATE = {
    "waiting": {"wait", "paused", "prioritized"}, "delayed": {"delayed"}, "active": {"active"},
    "completed": {"completed"}, "failed": {"failed"}, "added": None, "progress": None,
    "retries-exhausted": {"failed"}, "stalled": {"wait", "paused", "active"}, "duplicated": None,
    "removed": set(), "deduplicated": None, "debounced": None,
}


class EngineMachine(RuleBasedStateMachine):
    """Drives one queue on the embedded server in virtual time."""

    @initialize()
    def setup(self) -> None:
        self.clock = VirtualClock()
        self.conn = queuesim.connect(clock=self.clock)
        self.q = Queue("sm", self.conn)
        self.workers = [Worker(self.q, worker_id=f"w{i}", lock_duration=1000, stalled_interval=500,
                               max_stalled_count=2) for i in range(2)]
        self.job_ids: set[str] = set()
        self.removed: set[str] = set()

    def teardown(self) -> None:
        if hasattr(self, "conn"):
            self.conn.close()

    # --- rules -------------------------------------------------------------------------------------------

    @rule(priority=st.sampled_from([0, 0, 1, 5]), delay=st.sampled_from([0, 0, 300, 2000]),
          attempts=st.integers(0, 3), backoff=st.sampled_from([None, 100, {"type": "exponential", "delay": 50}]),
          lifo=st.booleans())
    def add(self, priority: int, delay: int, attempts: int, backoff: Any, lifo: bool) -> None:
        job = self.q.add("j", {"n": len(self.job_ids)}, priority=priority, delay=delay, attempts=attempts,
                         backoff=backoff, lifo=lifo)
        self.job_ids.add(job.id)

    @rule(w=st.integers(0, 1))
    def fetch(self, w: int) -> None:
        self.workers[w].fetch()

    @rule(w=st.integers(0, 1), how=st.sampled_from(["complete", "fail", "unrecoverable", "rate", "fetch_next"]))
    def finish(self, w: int, how: str) -> None:
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
        self.clock.advance(ms)

    @rule(w=st.integers(0, 1))
    def renew(self, w: int) -> None:
        lost = self.workers[w].extend_locks()
        for job_id in lost:
            self.workers[w].active.pop(job_id, None)

    @rule()
    def stalled_check(self) -> None:
        self.workers[0].check_stalled()

    @rule(w=st.integers(0, 1))
    def crash(self, w: int) -> None:
        self.workers[w].forget()

    @rule(pause=st.booleans())
    def pause_or_resume(self, pause: bool) -> None:
        if pause:
            self.q.pause()
        else:
            self.q.resume()

    @precondition(lambda self: bool(self.job_ids))
    @rule(data=st.data())
    def admin(self, data: st.DataObject) -> None:
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
        c = self.conn.client
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
    def attempts_and_locks_and_due_times_are_consistent(self) -> None:
        if not hasattr(self, "q"):
            return
        c = self.conn.client
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
            assert due - job.timestamp >= 0

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


EngineMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None,
                                           derandomize=True, suppress_health_check=[HealthCheck.too_slow])
test_engine_state_machine = EngineMachine.TestCase
