"""BullMQ's stalled-job behaviour (bullmq-semantics §4 and §9, stalled_jobs.test.ts, cases 27-32).

A job stalls when the worker that holds it stops renewing its lock (it crashed, or its event loop was blocked).
The stalled check runs in two phases: one run *marks* every active job, the next run (at least
``stalled_interval`` later) moves back to wait every marked job whose lock has expired meanwhile. In these
tests a worker "crashes" with :meth:`Worker.forget`, locks last 300 ms and the check interval is 200 ms, so a
stall takes well under a second on a real Redis and no time at all on the virtual clock.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from conftest import Env

from queuesim import Job, Queue, Worker
from queuesim.flows import add_flow

LOCK_MS = 300
STALLED_INTERVAL_MS = 200

live_only = pytest.mark.parametrize("env", [pytest.param("redis", marks=pytest.mark.real_redis)], indirect=True)


def crashing_worker(env: Env, q: Queue, n: int, lock_ms: int = LOCK_MS) -> list[str]:
    """A worker takes ``n`` jobs and dies holding them; returns their ids."""
    w = env.worker(q, lock_duration=lock_ms)
    ids = []
    for _ in range(n):
        job = w.fetch()
        assert job is not None
        ids.append(job.id)
    w.forget()
    return ids


def stall_round(env: Env, checker: Worker) -> list[str]:
    """Mark the active jobs, let their locks and the check's lease lapse, and check again."""
    env.advance(STALLED_INTERVAL_MS + 50)  # the previous check's lease is over
    checker.check_stalled()
    env.advance(LOCK_MS + 100)
    return checker.check_stalled()


def checker(env: Env, q: Queue, **opts: Any) -> Worker:
    return env.worker(q, lock_duration=LOCK_MS, stalled_interval=STALLED_INTERVAL_MS, **opts)


def test_case_27_a_second_worker_recovers_the_four_jobs_of_a_crashed_one_and_completes_them(env: Env) -> None:
    q = env.queue()
    for i in range(4):
        q.add("test", {"i": i})
    ids = crashing_worker(env, q, 4)
    bystander = q.add("test", {"i": "waiting all along"}).id
    b = checker(env, q)
    local: list[tuple[str, str]] = []
    b.on("stalled", lambda job_id, prev: local.append((job_id, prev)))
    assert sorted(stall_round(env, b)) == sorted(ids)
    assert sorted(local) == sorted((i, "active") for i in ids)
    events = env.events(q)
    assert sorted(e.job_id or "" for e in events if e.name == "stalled") == sorted(ids)
    for job_id in ids:
        mine = [(e.name, e.fields.get("prev")) for e in events if e.job_id == job_id]
        assert mine[-2:] == [("waiting", "active"), ("stalled", None)]
    done = []
    for _ in ids:
        job = b.fetch()
        assert job is not None
        assert job.id in ids, "recovered jobs go to the head of wait, before the job that was waiting"
        assert job.stalled_counter == 1
        assert job.attempts_made == 0, "a stall does not use an attempt"
        assert job.attempts_started == 2
        b.complete(job, "recovered")
        done.append(job.id)
    assert sorted(done) == sorted(ids)
    last = b.fetch()
    assert last is not None
    assert last.id == bystander
    assert q.get_job_counts("completed", "active") == {"completed": 4, "active": 1}


def test_case_27_a_job_is_not_stalled_before_its_lock_expires(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}).id
    crashing_worker(env, q, 1, lock_ms=1500)
    b = checker(env, q)
    assert b.check_stalled() == [], "the first run only marks"
    env.advance(STALLED_INTERVAL_MS + 50)
    assert b.check_stalled() == [], "marked, but the lock is still alive"
    assert q.get_job_counts("active")["active"] == 1
    env.advance(1500)
    assert b.check_stalled() == [job_id], "once the lock has expired, the next check recovers it"


def test_case_28_a_worker_with_skip_stalled_check_does_not_recover_stalled_jobs(env: Env) -> None:
    q = env.queue()
    q.add("test", {})
    q.add("test", {})
    ids = crashing_worker(env, q, 2)
    skipping = checker(env, q, skip_stalled_check=True)
    assert stall_round(env, skipping) == []
    assert skipping.fetch() is None
    assert q.get_job_counts("active")["active"] == 2
    assert "stalled" not in env.event_names(q)
    # a worker that does check recovers them (so the jobs really were stalled)
    assert sorted(stall_round(env, checker(env, q))) == sorted(ids)


@live_only
def test_case_28_live_worker_with_skip_stalled_check_leaves_stalled_jobs_alone(env: Env) -> None:
    q = env.queue()
    q.add("test", {})
    crashing_worker(env, q, 1)
    w = Worker(q, lambda job: "ran", lock_duration=LOCK_MS, stalled_interval=100, skip_stalled_check=True).start()
    try:
        time.sleep(1.0)
    finally:
        w.close()
    assert q.get_job_counts("active", "completed") == {"active": 1, "completed": 0}
    assert "stalled" not in env.event_names(q)


def test_case_29_max_stalled_count_0_fails_the_job_at_its_first_stall(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}, attempts=3, backoff=1000).id
    crashing_worker(env, q, 1)
    b = checker(env, q, max_stalled_count=0)
    ran: list[str] = []
    assert stall_round(env, b) == [job_id]
    assert b.fetch() is None, "the next fetch fails it without running it"
    assert ran == []
    failed = q.get_job(job_id)
    assert failed is not None
    assert str(q.get_job_state(job_id)) == "failed", "attempts and backoff are ignored"
    assert failed.failed_reason == "job stalled more than allowable limit"
    assert failed.finished_on is not None
    assert (failed.attempts_started, failed.attempts_made, failed.stalled_counter) == (2, 1, 1)
    names = env.event_names(q, job_id)
    assert names[-4:] == ["waiting", "stalled", "active", "failed"]
    failed_event = next(e for e in env.events(q) if e.job_id == job_id and e.name == "failed")
    assert failed_event.fields == {"failedReason": "job stalled more than allowable limit", "prev": "active"}


def test_case_30_max_stalled_count_2_allows_two_stalls_and_fails_at_the_third(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}).id
    b = checker(env, q, max_stalled_count=2)
    for stalls in (1, 2):
        crashing_worker(env, q, 1)
        assert stall_round(env, b) == [job_id]
        stored = q.get_job(job_id)
        assert stored is not None
        assert stored.stalled_counter == stalls
        assert stored.deferred_failure is None
    crashing_worker(env, q, 1)
    assert stall_round(env, b) == [job_id]
    assert b.fetch() is None
    failed = q.get_job(job_id)
    assert failed is not None
    assert failed.stalled_counter == 3
    assert failed.failed_reason == "job stalled more than allowable limit"


def test_case_30_the_stalled_counter_survives_a_retry(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}, attempts=3).id
    crashing_worker(env, q, 1)
    b = checker(env, q, max_stalled_count=1)
    assert stall_round(env, b) == [job_id]
    job = b.fetch()
    assert job is not None
    assert b.fail(job, RuntimeError("boom")) == "retried"
    again = b.fetch()
    assert again is not None
    assert again.stalled_counter == 1
    b.forget()
    assert stall_round(env, b) == [job_id]
    assert b.fetch() is None, "the second stall exceeds max_stalled_count 1 although attempts are left"
    failed = q.get_job(job_id)
    assert failed is not None
    assert (failed.stalled_counter, failed.attempts_made) == (2, 2)
    assert failed.failed_reason == "job stalled more than allowable limit"


# --- 31: stalled children of a flow -------------------------------------------------------------------------


def _flow_with_stalling_child(env: Env, q: Queue, child_opts: dict[str, Any], sibling: bool = False,
                              ) -> tuple[str, str, str | None, Job | None]:
    """A parent with one child (plus an optional well-behaved sibling added after it); the child stalls past
    the limit and the next fetch fails it without running it. That fetch then takes the next ready job, as a
    running BullMQ worker does. Returns (parent id, child id, sibling id, the job that fetch returned)."""
    children = [{"name": "child", "queue": q.name, "data": {"role": "stalls"}, "opts": child_opts}]
    if sibling:
        children.append({"name": "sibling", "queue": q.name, "data": {"role": "ok"}})
    tree = add_flow(env.conn, {"name": "parent", "queue": q.name, "data": {}, "children": children})
    child_id = tree.children[0].job.id
    sibling_id = tree.children[1].job.id if sibling else None
    w = env.worker(q, lock_duration=LOCK_MS)
    job = w.fetch()
    assert job is not None
    assert job.id == child_id
    w.forget()
    b = checker(env, q, max_stalled_count=0)
    assert stall_round(env, b) == [child_id]
    fetched = b.fetch()
    assert str(q.get_job_state(child_id)) in ("failed", "unknown")
    if q.get_job(child_id) is not None:
        failed = q.get_job(child_id)
        assert failed is not None
        assert failed.failed_reason == "job stalled more than allowable limit"
    return tree.job.id, child_id, sibling_id, fetched


def test_case_31_a_stall_failed_child_with_fail_parent_on_failure_fails_the_parent(env: Env) -> None:
    q = env.queue()
    parent_id, child_id, _, fetched = _flow_with_stalling_child(env, q, {"fail_parent_on_failure": True})
    child_key = q.keys.job(child_id)
    assert fetched is None, "the released parent carries a deferred failure: failed in the same fetch"
    assert env.conn.client.zscore(q.keys.job(parent_id) + ":unsuccessful", child_key) is not None
    parent = q.get_job(parent_id)
    assert parent is not None
    assert str(q.get_job_state(parent_id)) == "failed"
    assert parent.failed_reason == f"child {child_key} failed"
    assert parent.attempts_made == 1
    names = env.event_names(q, parent_id)
    assert names[-5:] == ["waiting-children", "waiting", "active", "failed", "retries-exhausted"]


def test_case_31_a_stall_failed_child_with_continue_parent_on_failure_releases_the_parent(env: Env) -> None:
    q = env.queue()
    parent_id, child_id, sibling_id, fetched = _flow_with_stalling_child(
        env, q, {"continue_parent_on_failure": True}, sibling=True)
    child_key = q.keys.job(child_id)
    failed = env.conn.client.hgetall(q.keys.job(parent_id) + ":failed")
    assert failed == {child_key.encode(): b"job stalled more than allowable limit"}
    assert fetched is not None
    assert fetched.id == parent_id, "released at once, at the head of wait, although the sibling is pending"
    assert sibling_id is not None
    assert str(q.get_job_state(sibling_id)) == "waiting"


def test_case_31_a_stall_failed_child_with_ignore_dependency_on_failure_is_recorded_and_ignored(env: Env) -> None:
    q = env.queue()
    parent_id, child_id, sibling_id, fetched = _flow_with_stalling_child(
        env, q, {"ignore_dependency_on_failure": True}, sibling=True)
    parent_key = q.keys.job(parent_id)
    assert env.conn.client.hget(parent_key + ":failed", q.keys.job(child_id)) == \
        b"job stalled more than allowable limit"
    assert str(q.get_job_state(parent_id)) == "waiting-children", "the sibling is still pending"
    assert fetched is not None
    assert fetched.id == sibling_id
    w = checker(env, q)
    w.complete(fetched, "fine")
    assert str(q.get_job_state(parent_id)) == "waiting"
    parent = w.fetch()
    assert parent is not None
    assert parent.id == parent_id
    w.complete(parent, "done despite a failed child")
    assert str(q.get_job_state(parent_id)) == "completed"


def test_case_31_a_stall_failed_child_with_remove_dependency_on_failure_is_dropped(env: Env) -> None:
    q = env.queue()
    parent_id, _, sibling_id, fetched = _flow_with_stalling_child(
        env, q, {"remove_dependency_on_failure": True}, sibling=True)
    parent_key = q.keys.job(parent_id)
    assert sibling_id is not None
    assert env.conn.client.smembers(parent_key + ":dependencies") == {q.keys.job(sibling_id).encode()}
    assert env.conn.client.exists(parent_key + ":failed") == 0, "rdof does not record the failure"
    assert str(q.get_job_state(parent_id)) == "waiting-children"
    assert fetched is not None
    assert fetched.id == sibling_id
    w = checker(env, q)
    w.complete(fetched, "fine")
    assert str(q.get_job_state(parent_id)) == "waiting"


def test_case_31_without_a_failure_policy_the_parent_keeps_waiting_for_the_stall_failed_child(env: Env) -> None:
    q = env.queue()
    parent_id, child_id, _, fetched = _flow_with_stalling_child(env, q, {})
    assert fetched is None
    assert str(q.get_job_state(parent_id)) == "waiting-children"
    assert env.conn.client.smembers(q.keys.job(parent_id) + ":dependencies") == {q.keys.job(child_id).encode()}


@pytest.mark.parametrize("remove_on_fail", [True, 1, {"age": 1}])
def test_case_31_remove_on_fail_applies_to_stall_failed_children(env: Env, remove_on_fail: Any) -> None:
    q = env.queue()
    opts = {"fail_parent_on_failure": True, "remove_on_fail": remove_on_fail}
    first_parent, first_child, _, _ = _flow_with_stalling_child(env, q, opts)
    assert str(q.get_job_state(first_parent)) == "failed", "the parent is failed even if the child is deleted"
    if remove_on_fail is True:
        assert q.get_job(first_child) is None, "removeOnFail true deletes the stall-failed child"
        assert q.get_job_logs(first_child) == []
        return
    assert str(q.get_job_state(first_child)) == "failed"
    env.advance(1100)  # past an age of 1 s
    _, second_child, _, _ = _flow_with_stalling_child(env, q, opts)
    assert q.get_job(first_child) is None, "the older failed child is trimmed when the next one fails"
    assert str(q.get_job_state(second_child)) == "failed"


# --- 32: lock renewal ---------------------------------------------------------------------------------------


def test_case_32_jobs_whose_locks_are_renewed_never_stall(env: Env) -> None:
    q = env.queue()
    for i in range(4):
        q.add("test", {"i": i})
    w = checker(env, q)
    jobs = [w.fetch() for _ in range(4)]
    stalled: list[str] = []
    w.on("stalled", lambda job_id, prev: stalled.append(job_id))
    for _ in range(7):  # about 3.5 lock durations and 5 check intervals
        env.advance(LOCK_MS // 2)
        assert w.extend_locks() == []
        assert w.check_stalled() == []
    assert stalled == []
    for job in jobs:
        assert job is not None
        w.complete(job, "long job done")
    assert q.get_job_counts("completed")["completed"] == 4
    assert all((j := q.get_job(job.id)) is not None and j.stalled_counter == 0 for job in jobs if job)


@pytest.mark.parametrize("env", ["fake", "memory"], indirect=True)  # exact milliseconds need virtual time
def test_the_renewal_timer_renews_only_locks_older_than_half_the_renewal_time(env: Env) -> None:
    # lock 10 s: renewal time 5 s, so BullMQ's timer fires every 2.5 s and renews locks older than 2.5 s
    q = env.queue()
    q.add("a", {})
    q.add("b", {})
    w = env.worker(q, lock_duration=10_000, stalled_interval=60_000)
    renewed: list[tuple[int, list[str]]] = []
    extend = w.backend.extend_locks

    def spy(queue: str, jobs: list[tuple[str, str]], duration: int) -> list[str]:
        renewed.append((env.now(), [job_id for job_id, _ in jobs]))
        return extend(queue, jobs, duration)

    w.backend.extend_locks = spy  # type: ignore[method-assign]
    start = env.now()
    a = w.fetch()
    env.advance(1_000)
    b = w.fetch()
    assert a is not None
    assert b is not None
    env.advance(1_500)  # a is 2.5 s old: not more than half the renewal time yet
    assert w.renew_due_locks() == []
    assert renewed == []
    env.advance(1)
    assert w.renew_due_locks() == []
    assert renewed == [(start + 2_501, [a.id])], "only a is due"
    env.advance(1_000)  # b is 3.5 s old, a was renewed 1 s ago
    w.renew_due_locks()
    assert renewed[-1] == (start + 3_501, [b.id])
    env.advance(2_000)
    assert w.renew_due_locks() == []
    assert renewed[-1] == (start + 5_501, [a.id])
    w.complete(a, "done")
    env.advance(1_000)
    w.renew_due_locks()
    assert renewed[-1] == (start + 6_501, [b.id]), "a finished job is not renewed"
    # the lock was renewed to the full 10 s: b survives a stalled check 9.9 s later, with no renewal between
    env.advance(9_900)
    assert w.check_stalled() == []
    assert w.check_stalled() == []
    assert str(q.get_job_state(b.id)) == "active"


@live_only
def test_case_32_live_jobs_longer_than_the_lock_duration_keep_their_locks(env: Env) -> None:
    q = env.queue()
    ids = [q.add("test", {"i": i}).id for i in range(4)]
    stalled: list[str] = []
    finished = threading.Event()

    def slow(job: Any) -> str:
        time.sleep(1.0)  # five lock durations
        return "ok"

    w = Worker(q, slow, concurrency=4, lock_duration=200, stalled_interval=100)
    w.on("stalled", lambda job_id, prev: stalled.append(job_id))
    w.on("completed", lambda job, result, prev: finished.set()
         if q.get_job_counts("completed")["completed"] == 4 else None)
    w.start()
    try:
        assert finished.wait(5)
    finally:
        w.close()
    assert stalled == []
    assert "stalled" not in env.event_names(q)
    for job_id in ids:
        done = q.get_job(job_id)
        assert done is not None
        assert (done.stalled_counter, done.attempts_started) == (0, 1)
