"""BullMQ's queue administration, global concurrency, deduplication and job schedulers (bullmq-semantics §9,
pause / clean / obliterate / concurrency / deduplication / job_scheduler tests, cases 57-62) on every backend.

Workers are driven through the step API; time moves with ``env.advance`` (virtual on fakeredis, short real
sleeps on Redis), so periods and ttls are kept to a few hundred ms. One behaviour exists only in the live
runner (a worker's local pause waiting for its running jobs); that test runs on the real-Redis backend only.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
from conftest import Env

from queuesim import JobStateError, OptionError, Queue, UnrecoverableError, Worker
from queuesim.events import Event
from queuesim.job import Job

live_only = pytest.mark.parametrize("env", [pytest.param("redis", marks=pytest.mark.real_redis)], indirect=True)

LOCK_MS = 300
STALLED_INTERVAL_MS = 200


# --- helpers -------------------------------------------------------------------------------------------------


def key_suffixes(env: Env, q: Queue) -> set[str]:
    """What follows ``<prefix>:<queue>:`` in every key of this queue."""
    base = q.keys.base
    return {k.decode()[len(base):] for k in env.conn.client.scan_iter(match=base + "*", count=1000)}


def named(env: Env, q: Queue, name: str) -> list[Event]:
    return [e for e in env.events(q) if e.name == name]


def finish_all(w: Worker) -> list[Job]:
    done = []
    while (job := w.fetch()) is not None:
        w.complete(job)
        done.append(job)
    return done


def stall_round(env: Env, checker: Worker) -> list[str]:
    """Mark the active jobs, let their locks and the check's lease lapse, and check again."""
    env.advance(STALLED_INTERVAL_MS + 50)
    checker.check_stalled()
    env.advance(LOCK_MS + 100)
    return checker.check_stalled()


def due_of(job_id: str) -> int:
    """The due time encoded in a scheduler iteration's id ``repeat:<schedulerId>:<dueMs>``."""
    return int(job_id.rsplit(":", 1)[1])


# --- 57: pause -----------------------------------------------------------------------------------------------


def test_case_57_a_paused_queue_hands_out_nothing_until_resumed_and_emits_paused_and_resumed(env: Env) -> None:
    q = env.queue()
    w = env.worker(q)
    assert not q.is_paused()
    q.pause()
    assert q.is_paused()
    job = q.add("test", {})
    assert w.fetch() is None
    assert q.get_job_counts("paused", "waiting") == {"paused": 1, "waiting": 0}
    q.resume()
    assert not q.is_paused()
    started = w.fetch()
    assert started is not None
    assert started.id == job.id
    names = env.event_names(q)
    assert names.index("paused") < names.index("resumed") < names.index("active")


def test_case_57_an_immediate_retry_during_a_pause_lands_in_paused(env: Env) -> None:
    q = env.queue()
    q.add("test", {}, attempts=2)
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    q.pause()
    assert w.fail(job, RuntimeError("again")) == "retried"
    assert q.get_job_counts("paused", "waiting", "active") == {"paused": 1, "waiting": 0, "active": 0}


def test_case_57_a_locally_paused_worker_takes_no_job_but_may_finish_the_ones_it_holds(env: Env) -> None:
    q = env.queue()
    q.add_bulk([("a", {}), ("b", {})])
    w = env.worker(q)
    seen: list[str] = []
    w.on("paused", lambda: seen.append("paused"))
    w.on("resumed", lambda: seen.append("resumed"))
    job = w.fetch()
    assert job is not None
    w.pause()
    assert w.is_paused()
    assert not q.is_paused(), "a worker's pause is local"
    assert w.complete(job, fetch_next=True) is None, "no fetch-next while paused"
    assert w.fetch() is None
    assert q.get_job_counts("waiting")["waiting"] == 1
    other = env.worker(q)
    assert other.fetch() is not None, "other workers are not affected"
    w.resume()
    assert seen == ["paused", "resumed"]
    q.add("c", {})
    assert w.fetch() is not None


@live_only
def test_case_57_live_worker_pause_waits_for_its_running_job(env: Env) -> None:
    q = env.queue()
    release = threading.Event()

    def slow(job: Job) -> str:
        release.wait(5)
        return "done"

    first = q.add("slow", {})
    w = Worker(q, slow).start()
    try:
        deadline = time.monotonic() + 5
        while str(q.get_job_state(first.id)) != "active" and time.monotonic() < deadline:
            time.sleep(0.01)
        threading.Timer(0.2, release.set).start()
        started = time.monotonic()
        w.pause()
        assert time.monotonic() - started >= 0.15, "pause() returned before the running job finished"
        assert str(q.get_job_state(first.id)) == "completed"
        second = q.add("next", {})
        time.sleep(0.3)
        assert str(q.get_job_state(second.id)) == "waiting", "a paused worker takes no new job"
        w.resume()
        deadline = time.monotonic() + 5
        while str(q.get_job_state(second.id)) != "completed" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert str(q.get_job_state(second.id)) == "completed"
    finally:
        release.set()
        w.close()


# --- 58: clean -----------------------------------------------------------------------------------------------


def test_case_58_clean_removes_only_completed_jobs_older_than_the_grace_period(env: Env) -> None:
    q = env.queue()
    w = env.worker(q)
    old = [q.add("old", {}).id for _ in range(3)]
    finish_all(w)
    env.advance(300)
    new = [q.add("new", {}).id for _ in range(2)]
    finish_all(w)
    removed = q.clean(150)
    assert sorted(removed) == sorted(old)
    assert sorted(j.id for j in q.get_completed()) == sorted(new)
    assert named(env, q, "cleaned")[-1].fields == {"count": "3"}
    assert not named(env, q, "removed")


def test_case_58_clean_honours_its_limit(env: Env) -> None:
    q = env.queue()
    q.add_bulk([("t", {}) for _ in range(5)])
    w = env.worker(q)
    while (job := w.fetch()) is not None:
        w.fail(job, UnrecoverableError("x"))
    env.advance(10)
    assert len(q.clean(0, 2, "failed")) == 2
    assert q.get_job_counts("failed")["failed"] == 3
    assert len(q.clean(0, 0, "failed")) == 3, "limit 0 means all"


@pytest.mark.parametrize("state", ["wait", "waiting"])
def test_case_58_clean_accepts_wait_and_waiting(env: Env, state: str) -> None:
    q = env.queue()
    ids = [q.add("t", {}).id for _ in range(3)]
    env.advance(10)
    assert sorted(q.clean(0, 0, state)) == sorted(ids)
    assert q.get_job_counts("waiting")["waiting"] == 0


def test_case_58_clean_of_delayed_and_prioritized_jobs_and_bad_types(env: Env) -> None:
    q = env.queue()
    delayed = q.add("d", {}, delay=60_000).id
    ranked = q.add("p", {}, priority=3).id
    env.advance(10)
    assert q.clean(0, 0, "delayed") == [delayed]
    assert q.clean(0, 0, "prioritized") == [ranked]
    with pytest.raises(OptionError, match="type"):
        q.clean(0, 0, "everything")


def test_case_58_clean_spares_a_job_scheduler_pending_iteration(env: Env) -> None:
    q = env.queue()
    every = q.upsert_job_scheduler("every", every=60_000)
    cron = q.upsert_job_scheduler("cron", pattern="0 0 1 1 *")
    assert every is not None
    assert cron is not None
    plain = q.add("plain", {}).id
    later = q.add("later", {}, delay=60_000).id
    env.advance(10)
    assert q.clean(0, 0, "wait") == [plain]
    assert q.clean(0, 0, "delayed") == [later]
    assert str(q.get_job_state(every.id)) == "waiting"
    assert str(q.get_job_state(cron.id)) == "delayed"


# --- 59: obliterate ------------------------------------------------------------------------------------------


def test_case_59_obliterate_refuses_while_jobs_are_active_and_leaves_the_queue_paused(env: Env) -> None:
    q = env.queue()
    q.add_bulk([("a", {}), ("b", {})])
    w = env.worker(q)
    assert w.fetch() is not None
    with pytest.raises(JobStateError, match="Cannot obliterate queue with active jobs"):
        q.obliterate()
    assert q.is_paused(), "§11.6: the client paused the queue before it checked"
    assert q.get_job_counts("active", "paused") == {"active": 1, "paused": 1}


def test_case_59_obliterate_with_force_removes_every_key_logs_and_schedulers_included(env: Env) -> None:
    q = env.queue()
    job = q.add("logged", {})
    job.log("a line")
    q.add("later", {}, delay=60_000)
    q.add("ranked", {}, priority=2)
    q.add("dedup", {}, deduplication={"id": "d1"})
    q.upsert_job_scheduler("tick", every=60_000, data={"n": 1})
    w = env.worker(q)
    running = w.fetch()
    assert running is not None
    finished = w.fetch()
    assert finished is not None
    w.complete(finished)
    assert {"logged:logs" if job.id == running.id else f"{job.id}:logs", "repeat", "repeat:tick"} & key_suffixes(
        env, q)
    q.obliterate(force=True)
    assert key_suffixes(env, q) == set()
    assert not q.is_paused(), "§11.6: meta is gone, so the queue is no longer paused"
    assert q.get_job_schedulers() == []
    assert q.add("fresh", {}).id == "1", "§11.6: the id counter is gone too"


def test_case_59_obliterate_without_active_jobs_needs_no_force(env: Env) -> None:
    q = env.queue()
    q.add_bulk([("a", {}), ("b", {})])
    q.obliterate()
    assert key_suffixes(env, q) == set()


# --- 60: global concurrency ----------------------------------------------------------------------------------


def test_case_60_global_concurrency_1_allows_one_active_job_whatever_the_worker_concurrency(env: Env) -> None:
    q = env.queue()
    q.set_global_concurrency(1)
    assert q.get_global_concurrency() == 1
    q.add_bulk([("t", {"i": i}) for i in range(4)])
    w1 = env.worker(q, concurrency=10)
    w2 = env.worker(q, concurrency=10)
    order = []
    job = w1.fetch()
    while job is not None:
        assert w1.fetch() is None, "the queue is maxed"
        assert w2.fetch() is None
        assert q.is_maxed()
        assert q.get_job_counts("active")["active"] == 1
        order.append(job.data["i"])
        job = w1.complete(job, None, fetch_next=True)
    assert order == [0, 1, 2, 3]
    assert not q.is_maxed()
    q.remove_global_concurrency()
    q.add_bulk([("t", {}), ("t", {})])
    assert w1.fetch() is not None
    assert w1.fetch() is not None, "without the global cap the worker takes two"


# --- 61: deduplication ---------------------------------------------------------------------------------------


def test_case_61_a_duplicate_returns_the_owner_and_emits_debounced_then_deduplicated(env: Env) -> None:
    q = env.queue()
    first = q.add("t", {"v": 1}, deduplication={"id": "same"})
    second = q.add("t", {"v": 2}, deduplication={"id": "same"})
    assert second.id == first.id
    stored = q.get_job(first.id)
    assert stored is not None
    assert stored.data == {"v": 1}
    assert q.count() == 1
    tail = [e for e in env.events(q) if e.name in ("debounced", "deduplicated")]
    assert [e.name for e in tail] == ["debounced", "deduplicated"], "§11.5 order"
    assert tail[0].job_id == first.id
    assert tail[0].fields["debounceId"] == "same"
    assert tail[1].fields == {"deduplicationId": "same", "deduplicatedJobId": "2"}, (
        "§11.5: the id the dropped job would have had (the counter moved)")


def test_case_61_without_ttl_the_key_lives_until_the_owner_finishes(env: Env) -> None:
    q = env.queue()
    first = q.add("t", {}, deduplication={"id": "k"})
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert q.add("t", {}, deduplication={"id": "k"}).id == first.id, "still deduplicated while active"
    w.complete(job)
    fresh = q.add("t", {}, deduplication={"id": "k"})
    assert fresh.id != first.id
    q.remove(fresh.id)
    assert q.add("t", {}, deduplication={"id": "k"}).id not in (first.id, fresh.id), "removal releases the key"


def test_case_61_with_a_ttl_duplicates_are_ignored_until_it_expires_even_after_the_job_finished(env: Env) -> None:
    q = env.queue()
    opts = {"deduplication": {"id": "thr", "ttl": 200}}
    first = q.add("t", {}, **opts)
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    w.complete(job)
    assert q.add("t", {}, **opts).id == first.id, "the throttle window outlives the job"
    env.advance(120)
    assert q.add("t", {}, **opts).id == first.id, "a duplicate does not extend a throttle window"
    env.advance(120)
    assert q.add("t", {}, **opts).id != first.id


def test_case_61_extend_restarts_the_ttl_with_every_duplicate(env: Env) -> None:
    q = env.queue()
    opts = {"deduplication": {"id": "deb", "ttl": 200, "extend": True}}
    first = q.add("t", {}, **opts)
    env.advance(150)
    assert q.add("t", {}, **opts).id == first.id
    env.advance(120)
    assert q.add("t", {}, **opts).id == first.id, "without extend the window would have closed at 200 ms"
    env.advance(260)
    assert q.add("t", {}, **opts).id != first.id


def test_case_61_replace_swaps_a_still_delayed_owner_for_the_newest_job(env: Env) -> None:
    q = env.queue()
    opts = {"delay": 5_000, "deduplication": {"id": "rep", "ttl": 10_000, "extend": True, "replace": True}}
    first = q.add("t", {"v": 1}, **opts)
    second = q.add("t", {"v": 2}, **opts)
    assert second.id != first.id
    assert q.get_job(first.id) is None
    stored = q.get_job(second.id)
    assert stored is not None
    assert stored.data == {"v": 2}
    assert str(q.get_job_state(second.id)) == "delayed"
    assert q.get_job_counts("delayed")["delayed"] == 1
    removed = named(env, q, "removed")
    assert [(e.job_id, e.fields["prev"]) for e in removed] == [(first.id, "delayed")]
    dedup = named(env, q, "deduplicated")[-1]
    assert dedup.job_id == second.id
    assert dedup.fields["deduplicatedJobId"] == first.id
    q.promote(second.id)
    w = env.worker(q)
    running = w.fetch()
    assert running is not None
    third = q.add("t", {"v": 3}, **opts)
    assert third.id == second.id, "an owner that is no longer delayed is kept"


def test_case_61_keep_last_if_active_enqueues_the_newest_duplicate_when_the_owner_finishes(env: Env) -> None:
    q = env.queue()
    opts = {"deduplication": {"id": "kl", "keep_last_if_active": True}}
    owner = q.add("t", {"v": 0}, **opts)
    assert q.add("t", {"v": "queued"}, **opts).id == owner.id, "a waiting owner just deduplicates"
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert q.add("t", {"v": 1}, **opts).id == owner.id
    last = q.add("t", {"v": 2}, **opts)
    assert last.id == owner.id
    assert q.count() == 0, "nothing is queued while the owner runs"
    kept = env.conn.client.hgetall(q.keys.key("dn:kl"))
    assert kept[b"data"] == b'{"v":2}', "the newest duplicate wins"
    w.complete(job)
    waiting = q.get_waiting()
    assert [j.data for j in waiting] == [{"v": 2}]
    assert waiting[0].id == kept[b"jid"].decode(), "the kept job gets the id it would have had"
    assert env.conn.client.get(q.keys.key("de:kl")).decode() == waiting[0].id
    assert q.add("t", {"v": 3}, **opts).id == waiting[0].id, "at most one waiting job per id"
    assert q.count() == 1


def test_case_61_a_kept_duplicate_with_a_delay_becomes_delayed_from_the_owners_finish(env: Env) -> None:
    q = env.queue()
    opts = {"deduplication": {"id": "kd", "keep_last_if_active": True}}
    owner = q.add("t", {"v": 0}, **opts)
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert job.id == owner.id
    assert q.add("t", {"v": 1}, delay=500, priority=3, **opts).id == owner.id
    env.advance(40)
    finished_at = env.now()
    w.complete(job)
    delayed = q.get_delayed()
    assert [j.data for j in delayed] == [{"v": 1}]
    kept = delayed[0]
    assert q.get_job_counts("delayed", "waiting", "prioritized") == {"delayed": 1, "waiting": 0, "prioritized": 0}
    events = [e for e in env.events(q) if e.job_id == kept.id]
    assert [e.name for e in events] == ["added", "delayed"]
    due = int(events[1].fields["delay"])
    assert finished_at <= due - 500 <= env.now(), "due 500 ms after the owner finished"
    env.advance(600)
    nxt = w.fetch()
    assert nxt is not None
    assert nxt.id == kept.id, "once due it is taken like any job"


# --- 62: job schedulers --------------------------------------------------------------------------------------


def test_case_62_every_creates_one_job_per_period_and_the_next_when_the_current_starts(env: Env) -> None:
    q = env.queue()
    every = 200
    first = q.upsert_job_scheduler("tick", every=every, data={"foo": "bar"})
    assert first is not None
    assert first.id == f"repeat:tick:{first.timestamp}", "BullMQ's iteration id, ':' and all"
    assert str(q.get_job_state(first.id)) == "waiting", "the first run is now"
    w = env.worker(q)
    runs: list[Job] = []
    while len(runs) < 4:
        job = w.fetch()
        if job is None:
            wake = w.next_wake_ms()
            assert wake is not None
            env.advance(max(wake - env.now(), 1))
            continue
        assert q.get_job_counts("delayed")["delayed"] == 1, "the next iteration exists as soon as one starts"
        assert job.data == {"foo": "bar"}
        assert job.scheduler_id == "tick"
        assert job.processed_on is not None
        assert job.processed_on >= due_of(job.id)
        runs.append(job)
        w.complete(job)
    dues = [due_of(j.id) for j in runs]
    assert [b - a for a, b in itertools.pairwise(dues)] == [every] * 3
    scheduler = q.get_job_scheduler("tick")
    assert scheduler is not None
    assert scheduler["iterationCount"] == 5
    assert scheduler["next"] == dues[-1] + every
    assert scheduler["every"] == every


def test_case_62_upserting_again_keeps_one_scheduler_and_one_pending_iteration(env: Env) -> None:
    q = env.queue()
    for minutes in (5, 5, 5):
        q.upsert_job_scheduler("test", every=minutes * 60_000)
        env.advance(1)
    assert q.get_job_schedulers_count() == 1
    assert q.get_job_count_by_types("delayed", "waiting") == 1
    q.upsert_job_scheduler("test", pattern="0 0 1 1 *", data={"v": 2})
    assert q.get_job_schedulers_count() == 1
    assert q.get_job_counts("delayed", "waiting") == {"delayed": 1, "waiting": 0}
    pending = q.get_delayed()[0]
    assert pending.data == {"v": 2}
    assert len(named(env, q, "removed")) == 3, "each upsert replaced the pending iteration"


def test_case_62_upsert_with_a_running_iteration_moves_to_the_next_free_slot(env: Env) -> None:
    q = env.queue()
    minute = 60_000
    first = q.upsert_job_scheduler("test", every=minute)
    assert first is not None
    w = env.worker(q)
    running = w.fetch()
    assert running is not None
    before = env.now()
    q.upsert_job_scheduler("test", every=2 * minute)
    after = env.now()  # on a real Redis the upsert reads a clock that may have moved on by a millisecond
    scheduler = q.get_job_scheduler("test")
    assert scheduler is not None
    running_due = due_of(running.id)
    if scheduler["next"] == running_due + 2 * minute:  # the fresh start collided with the running iteration
        assert before <= running_due <= after
    else:
        assert before <= scheduler["next"] <= after
        assert scheduler["next"] != running_due
    assert scheduler["iterationCount"] == 2
    assert q.get_job_count_by_types("delayed", "waiting") == 1


def test_case_62_limit_stops_the_schedule_after_that_many_jobs(env: Env) -> None:
    q = env.queue()
    q.upsert_job_scheduler("five", every=50, limit=5)
    w = env.worker(q)
    done = []
    for _ in range(100):
        job = w.fetch()
        if job is not None:
            w.complete(job)
            done.append(job.id)
            continue
        wake = w.next_wake_ms()
        if wake is None:
            break
        env.advance(max(wake - env.now(), 1))
    assert len(done) == 5
    assert len(set(done)) == 5
    assert q.get_job_count_by_types("delayed", "waiting") == 0
    assert q.get_job_counts("completed")["completed"] == 5


def test_case_62_end_date_stops_the_schedule(env: Env) -> None:
    q = env.queue()
    start = env.now()
    first = q.upsert_job_scheduler("ending", every=100, end_date=start + 490)
    assert first is not None
    # on a real Redis the upsert reads a clock that may be a millisecond later than ``start``
    origin = due_of(first.id)
    assert 0 <= origin - start <= 5
    w = env.worker(q)
    done = []
    for _ in range(100):
        job = w.fetch()
        if job is not None:
            w.complete(job)
            done.append(due_of(job.id) - origin)
            continue
        wake = w.next_wake_ms()
        if wake is None:
            break
        env.advance(max(wake - env.now(), 1))
    # iterations started up to the end date each create one successor; the one started after it creates none
    assert done == [0, 100, 200, 300, 400, 500]
    assert q.get_job_count_by_types("delayed", "waiting") == 0
    with pytest.raises(OptionError, match="End date must be greater than current timestamp") as err:
        q.upsert_job_scheduler("late", every=100, end_date=env.now() - 1)
    assert err.value.field == "end_date"
    assert q.get_job_scheduler("late") is None


def test_case_62_the_pending_iteration_cannot_be_removed_drained_or_cleaned(env: Env) -> None:
    q = env.queue()
    pending = q.upsert_job_scheduler("cron", pattern="*/10 * * * * *")
    assert pending is not None
    assert str(q.get_job_state(pending.id)) == "delayed"
    with pytest.raises(JobStateError) as err:
        q.remove(pending.id)
    assert err.value.code == -8
    q.drain(delayed=True)
    env.advance(10)
    assert q.clean(0, 0, "delayed") == []
    assert str(q.get_job_state(pending.id)) == "delayed"
    first = q.upsert_job_scheduler("now", every=60_000)
    assert first is not None
    q.drain()
    assert str(q.get_job_state(first.id)) == "waiting", "a waiting pending iteration survives drain too"
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert job.id == first.id
    w.complete(job)
    assert q.remove(first.id) is True, "a finished iteration is an ordinary job"
    assert str(q.get_job_state(first.id)) == "unknown", "its id holds ':', which a removal must keep whole"
    assert q.get_job(first.id) is None
    removed = [e for e in env.events(q) if e.name == "removed"]
    assert [(e.job_id, e.fields["prev"]) for e in removed] == [(first.id, "completed")]


def test_case_62_scheduler_jobs_survive_any_number_of_stalls_while_a_normal_job_fails_at_once(env: Env) -> None:
    q = env.queue()
    checker = env.worker(q, lock_duration=LOCK_MS, stalled_interval=STALLED_INTERVAL_MS, max_stalled_count=0)
    normal = q.add("normal", {})
    crashed = env.worker(q, lock_duration=LOCK_MS)
    assert crashed.fetch() is not None
    crashed.forget()
    assert stall_round(env, checker) == [normal.id]
    assert checker.fetch() is None, "the fetch fails the over-stalled job without running it"
    failed = q.get_job(normal.id)
    assert failed is not None
    assert failed.failed_reason == "job stalled more than allowable limit"
    scheduled = q.upsert_job_scheduler("tick", every=60_000)
    assert scheduled is not None
    for round_no in range(1, 4):
        crashed = env.worker(q, lock_duration=LOCK_MS)
        job = crashed.fetch()
        assert job is not None
        assert job.id == scheduled.id
        crashed.forget()
        assert stall_round(env, checker) == [scheduled.id]
        stored = q.get_job(scheduled.id)
        assert stored is not None
        assert stored.stalled_counter == round_no
        assert stored.deferred_failure is None, "a live scheduler's job is never failed by stalls"
    assert q.get_job_counts("delayed")["delayed"] == 1, "re-fetching a stalled iteration creates no new one"
    job = checker.fetch()
    assert job is not None
    assert job.id == scheduled.id
    checker.complete(job)
    assert str(q.get_job_state(scheduled.id)) == "completed"
    assert q.get_job_counts("delayed")["delayed"] == 1


def test_case_62_after_its_scheduler_is_removed_a_stalled_iteration_fails_like_any_job(env: Env) -> None:
    q = env.queue()
    scheduled = q.upsert_job_scheduler("tick", every=60_000)
    assert scheduled is not None
    crashed = env.worker(q, lock_duration=LOCK_MS)
    assert crashed.fetch() is not None
    crashed.forget()
    assert q.remove_job_scheduler("tick") is True
    assert q.remove_job_scheduler("tick") is False
    assert q.get_job_count_by_types("delayed", "waiting") == 0, "removal took the pending delayed iteration"
    checker = env.worker(q, lock_duration=LOCK_MS, stalled_interval=STALLED_INTERVAL_MS, max_stalled_count=0)
    assert stall_round(env, checker) == [scheduled.id]
    assert checker.fetch() is None
    stored = q.get_job(scheduled.id)
    assert stored is not None
    assert stored.failed_reason == "job stalled more than allowable limit"


def test_case_62_remove_job_scheduler_deletes_it_and_its_delayed_iteration(env: Env) -> None:
    q = env.queue()
    pending = q.upsert_job_scheduler("cron", pattern="*/2 * * * * *", data={"foo": "bar"})
    assert pending is not None
    assert q.get_job_schedulers_count() == 1
    assert q.remove_job_scheduler("cron") is True
    assert q.get_job(pending.id) is None
    assert q.get_job_scheduler("cron") is None
    assert q.get_job_schedulers() == []
    assert [(e.job_id, e.fields["prev"]) for e in named(env, q, "removed")] == [(pending.id, "delayed")]
    assert not {"repeat", "repeat:cron"} & key_suffixes(env, q)


def test_case_62_a_cron_scheduler_follows_its_pattern_with_seconds_first(env: Env) -> None:
    q = env.queue()
    pending = q.upsert_job_scheduler("two-seconds", pattern="*/2 * * * * *", data={"foo": "bar"})
    assert pending is not None
    due = due_of(pending.id)
    assert due % 2000 == 0
    assert 0 < due - pending.timestamp <= 2000
    assert pending.delay == due - pending.timestamp
    scheduler = q.get_job_scheduler("two-seconds")
    assert scheduler == {"key": "two-seconds", "name": "two-seconds", "next": due, "iterationCount": 1,
                         "pattern": "*/2 * * * * *", "template": {"data": {"foo": "bar"}}}


@pytest.mark.parametrize(("repeat", "field"), [
    ({"every": 1000, "pattern": "* * * * *"}, "repeat"),
    ({}, "repeat"),
    ({"every": 0}, "repeat.every"),
    ({"pattern": "not a cron"}, "repeat.pattern"),
    ({"every": 1000, "immediately": True, "start_date": 1}, "immediately"),
])
def test_case_62_bad_scheduler_settings_raise_an_option_error_and_write_nothing(
        env: Env, repeat: dict[str, Any], field: str) -> None:
    q = env.queue()
    with pytest.raises(OptionError) as err:
        q.upsert_job_scheduler("bad", **repeat)
    assert err.value.field == field
    assert key_suffixes(env, q) <= {"meta"}
    with pytest.raises(OptionError) as err:
        q.upsert_job_scheduler("bad:id", every=1000)
    assert err.value.field == "scheduler_id"
    with pytest.raises(OptionError) as err:
        q.upsert_job_scheduler("ok", every=1000, opts={"delay": 5})
    assert err.value.field == "opts.delay"
    assert key_suffixes(env, q) <= {"meta"}
