"""BullMQ's worker behaviour (bullmq-semantics §9, worker.test.ts, cases 1-26) on every backend.

The tests drive workers through the step API (``fetch`` / ``complete`` / ``fail`` / ``extend_locks`` /
``check_stalled`` / ``forget``), so they run in virtual time on fakeredis and with short real waits on a real
Redis. A few behaviours only exist in the live runner (threads, blocking waits, lock renewal timers); those get
one extra test on the real-Redis backend only.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Env, wait_until

from queuesim import (
    Connection,
    DelayedError,
    JobNotFoundError,
    JobStateError,
    LockError,
    OptionError,
    Queue,
    UnrecoverableError,
    VirtualClock,
    WaitingError,
    WallClock,
    Worker,
)
from queuesim.backends.redis_backend import RedisBackend
from queuesim.job import Job

#: Run a test on the real-Redis backend only (for the live runner, which needs wall time).
live_only = pytest.mark.parametrize("env", [pytest.param("redis", marks=pytest.mark.real_redis)], indirect=True)


# --- helpers -------------------------------------------------------------------------------------------------


def clocked_queue(env: Env) -> tuple[Queue, VirtualClock]:
    """A queue whose timestamps come from a virtual clock, on either backend.

    Keep policies by age are counted in whole seconds of ``finishedOn``; on a real Redis we cannot wait
    minutes, so the scripts get their "now" from a virtual clock (BullMQ's scripts also take every timestamp
    from the client). Nothing here depends on Redis key expiry, which would still follow wall time.
    """
    if env.is_fake:
        return env.queue(), env.clock
    clock = VirtualClock(WallClock().now_ms())
    conn = Connection(RedisBackend(env.conn.client, clock, env.conn.backend.prefix), env.conn.url)
    q = Queue(f"q-{uuid.uuid4().hex[:10]}", conn)
    env.queues.append(q)
    return q, clock


def run_all(w: Worker, result: Callable[[Job], Any] = lambda job: None) -> list[Job]:
    """Fetch and complete jobs until none is ready; returns them in the order they ran."""
    done = []
    while (job := w.fetch()) is not None:
        w.complete(job, result(job))
        done.append(job)
    return done


def fields_of(env: Env, q: Queue, job_id: str) -> dict[str, str]:
    """The raw job hash (empty when the job is gone)."""
    raw = env.conn.client.hgetall(q.keys.job(job_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


def events_for(env: Env, q: Queue, job_id: str, name: str) -> list[dict[str, str]]:
    return [e.fields for e in env.events(q) if e.job_id == job_id and e.name == name]


# --- 1, 2: order and serial processing ----------------------------------------------------------------------


def test_case_01_lifo_jobs_added_while_paused_run_in_reverse_order_after_resume(env: Env) -> None:
    q = env.queue()
    w = env.worker(q)
    q.pause()
    for n in range(1, 5):
        q.add("test", {"n": n}, lifo=True)
    assert w.fetch() is None, "a paused queue hands out no job"
    assert q.get_job_counts("paused", "waiting") == {"paused": 4, "waiting": 0}
    q.resume()
    assert [job.data["n"] for job in run_all(w)] == [4, 3, 2, 1]


def test_case_02_jobs_added_before_the_worker_exists_are_processed_one_after_another(env: Env) -> None:
    q = env.queue()
    ids = [q.add("test", {"n": n}).id for n in range(5)]
    w = env.worker(q, concurrency=1)
    seen = []
    while len(w.active) < w.opts.concurrency and (job := w.fetch()) is not None:
        assert q.get_job_counts("active")["active"] == 1, "concurrency 1: only one job active at a time"
        seen.append(job.id)
        w.complete(job)
    assert seen == ids
    assert q.get_job_counts("completed", "waiting", "active") == {"completed": 5, "waiting": 0, "active": 0}


@live_only
def test_case_02_live_worker_with_concurrency_one_never_overlaps_two_jobs(env: Env) -> None:
    q = env.queue()
    ids = [q.add("test", {"n": n}).id for n in range(4)]
    running, overlap, order = [0], [0], []
    guard = threading.Lock()

    def processor(job: Job) -> int:
        with guard:
            running[0] += 1
            overlap[0] = max(overlap[0], running[0])
            order.append(job.id)
        time.sleep(0.05)
        with guard:
            running[0] -= 1
        return job.data["n"]

    w = Worker(q, processor, concurrency=1).start()
    try:
        assert wait_until(lambda: q.get_job_counts("completed")["completed"] == 4)
    finally:
        w.close()
    assert overlap[0] == 1
    assert order == ids


# --- 3, 4, 5: results and progress --------------------------------------------------------------------------


def test_case_03_return_value_is_stored_as_json_in_returnvalue(env: Env) -> None:
    q = env.queue()
    w = env.worker(q)
    q.add("test", {"n": 1})
    job = w.fetch()
    assert job is not None
    w.complete(job, {"sum": 3, "parts": [1, 2], "note": None})
    assert json.loads(fields_of(env, q, job.id)["returnvalue"]) == {"sum": 3, "parts": [1, 2], "note": None}
    done = q.get_job(job.id)
    assert done is not None
    assert done.return_value == {"sum": 3, "parts": [1, 2], "note": None}
    assert events_for(env, q, job.id, "completed")[0]["returnvalue"] == fields_of(env, q, job.id)["returnvalue"]


def test_case_03_a_circular_return_value_is_refused_and_the_job_can_then_be_failed(env: Env) -> None:
    q = env.queue()
    w = env.worker(q)
    q.add("test", {})
    job = w.fetch()
    assert job is not None
    circular: dict[str, Any] = {}
    circular["self"] = circular
    with pytest.raises(OptionError) as info:
        w.complete(job, circular)
    assert info.value.field == "return_value"
    assert str(q.get_job_state(job.id)) == "active", "nothing was written: the job is still active"
    assert "returnvalue" not in fields_of(env, q, job.id)
    assert w.fail(job, info.value) == "failed"
    failed = q.get_job(job.id)
    assert failed is not None
    assert "return_value" in (failed.failed_reason or "")


@live_only
def test_case_03_live_worker_fails_a_job_whose_return_value_is_circular(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}).id

    def processor(job: Job) -> Any:
        loop: list[Any] = []
        loop.append(loop)
        return loop

    w = Worker(q, processor).start()
    try:
        assert wait_until(lambda: str(q.get_job_state(job_id)) == "failed")
    finally:
        w.close()
    failed = q.get_job(job_id)
    assert failed is not None
    assert failed.return_value is None
    assert "return_value" in (failed.failed_reason or "")


def test_case_04_progress_may_be_a_number_object_string_or_boolean_and_arrives_in_progress_events(env: Env) -> None:
    q = env.queue()
    w = env.worker(q)
    q.add("test", {})
    job = w.fetch()
    assert job is not None
    values: list[Any] = [42, {"total": 120, "done": 60}, "halfway", True, False]
    for value in values:
        job.update_progress(value)
        stored = q.get_job(job.id)
        assert stored is not None
        assert stored.progress == value
    progress = [e for e in env.events(q) if e.name == "progress" and e.job_id == job.id]
    assert [e.value() for e in progress] == values
    assert [type(e.value()) for e in progress] == [type(v) for v in values]


def test_case_05_progress_events_obey_a_max_len_of_10(env: Env) -> None:
    q = env.queue(max_len_events=10)
    w = env.worker(q)
    q.add("test", {})
    job = w.fetch()
    assert job is not None
    for i in range(500):
        job.update_progress(i)
    length = env.conn.client.xlen(q.keys.events)
    assert 10 <= length < 510, f"the stream must be trimmed near 10 entries, has {length}"
    # the newest progress survives the trimming
    assert [e.value() for e in env.events(q) if e.name == "progress"][-1] == 499


# --- 6, 7: priorities and wake-up ---------------------------------------------------------------------------


def test_case_06_bulk_priorities_run_lowest_number_first_and_fifo_within_a_priority(env: Env) -> None:
    q = env.queue()
    batch = [{"name": "test", "data": {"p": p, "i": i}, "opts": {"priority": p}}
             for i in range(6) for p in (2, 3, 1)]
    q.add_bulk(batch)
    ran = [(job.data["p"], job.data["i"]) for job in run_all(env.worker(q))]
    assert ran == [(p, i) for p in (1, 2, 3) for i in range(6)]


def test_case_06_the_highest_priority_number_keeps_fifo_and_one_more_is_rejected(env: Env) -> None:
    q = env.queue()
    for i in range(3):
        q.add("test", {"i": i}, priority=2_097_151)
    counter_before = env.conn.client.get(q.keys.id)
    with pytest.raises(OptionError) as info:
        q.add("test", {"i": 99}, priority=2_097_152)
    assert info.value.field == "priority"
    assert "2097151" in str(info.value)
    assert env.conn.client.get(q.keys.id) == counter_before, "a rejected add uses no id"
    assert [job.data["i"] for job in run_all(env.worker(q))] == [0, 1, 2]


def test_case_07_a_ready_job_added_after_a_delayed_one_is_fetched_at_once(env: Env) -> None:
    q = env.queue()
    w = env.worker(q)
    delayed = q.add("later", {}, delay=60_000)
    assert w.fetch() is None
    wake = w.next_wake_ms()
    assert wake is not None
    assert wake == delayed.timestamp + 60_000, "an idle worker knows when the delayed job is due"
    now_job = q.add("now", {})
    job = w.fetch()
    assert job is not None, "the new job must not wait behind the delayed one"
    assert job.id == now_job.id
    assert str(q.get_job_state(delayed.id)) == "delayed"


@live_only
def test_case_07_live_idle_worker_wakes_for_a_new_job_despite_a_far_delayed_one(env: Env) -> None:
    q = env.queue()
    q.add("later", {}, delay=20_000)
    w = Worker(q, lambda job: "ok", drain_delay_s=5).start()
    try:
        time.sleep(0.3)  # the worker is now blocked on the marker, up to its 5 s drain delay
        added = time.monotonic()
        job_id = q.add("now", {}).id
        assert wait_until(lambda: str(q.get_job_state(job_id)) == "completed", 3.0)
        assert time.monotonic() - added < 1.5, "the marker must wake the worker, not the drain delay"
    finally:
        w.close()


# --- 8, 9: keeping finished jobs ----------------------------------------------------------------------------


def test_case_08_remove_on_complete_3_keeps_the_newest_three_and_drops_the_logs_of_the_rest(env: Env) -> None:
    q = env.queue()
    ids = [q.add("test", {"i": i}, remove_on_complete=3).id for i in range(15)]
    w = env.worker(q)
    while (job := w.fetch()) is not None:
        job.log(f"processing {job.id}")
        w.complete(job, job.data["i"])
        env.advance(2)  # distinct finishedOn scores, so "newest" is well defined
    assert [j.id for j in q.get_completed()] == list(reversed(ids[-3:]))
    for job_id in ids[:-3]:
        assert q.get_job(job_id) is None
        assert q.get_job_logs(job_id) == []
    for job_id in ids[-3:]:
        assert q.get_job_logs(job_id) == [f"processing {job_id}"]


def _finish_one_per_second(q: Queue, clock: VirtualClock, w: Worker, n: int, fail: bool = False,
                           **job_opts: Any) -> list[str]:
    ids = [q.add("test", {"i": i}, **job_opts).id for i in range(n)]
    for _ in range(n):
        job = w.fetch()
        assert job is not None
        if fail:
            assert w.fail(job, RuntimeError("boom")) == "failed"
        else:
            w.complete(job, None)
        clock.advance(1000)
    return ids


def test_case_09_remove_on_complete_by_age_keeps_the_jobs_of_the_last_7_seconds(env: Env) -> None:
    q, clock = clocked_queue(env)
    ids = _finish_one_per_second(q, clock, Worker(q), 15, remove_on_complete={"age": 7})
    # the last job finished at t=14 s; age 7 removes everything finished at or before t=7 s
    assert sorted(j.id for j in q.get_completed()) == sorted(ids[8:])


def test_case_09_age_and_count_together_keep_the_smaller_set(env: Env) -> None:
    q, clock = clocked_queue(env)
    ids = _finish_one_per_second(q, clock, Worker(q), 15, remove_on_complete={"age": 7, "count": 5})
    assert sorted(j.id for j in q.get_completed()) == sorted(ids[10:])


def test_case_09_worker_keep_policy_with_age_10_keeps_10_jobs(env: Env) -> None:
    q, clock = clocked_queue(env)
    w = Worker(q, remove_on_complete={"age": 10, "limit": 2})
    ids = _finish_one_per_second(q, clock, w, 15)
    assert sorted(j.id for j in q.get_completed()) == sorted(ids[5:])


def test_case_09_limit_caps_how_many_old_jobs_one_finish_removes(env: Env) -> None:
    q, clock = clocked_queue(env)
    ids = _finish_one_per_second(q, clock, Worker(q), 10)  # kept: no policy
    clock.advance(20_000)
    late = q.add("late", {}).id
    w = Worker(q, remove_on_complete={"age": 10, "limit": 2})
    job = w.fetch()
    assert job is not None
    w.complete(job, None)
    # all ten old jobs are past the age, but one finish removes at most two, the oldest first
    assert sorted(j.id for j in q.get_completed()) == sorted([*ids[2:], late])


def test_case_09_remove_on_fail_count_0_keeps_no_failed_job(env: Env) -> None:
    q, clock = clocked_queue(env)
    ids = _finish_one_per_second(q, clock, Worker(q), 3, fail=True, remove_on_fail={"count": 0})
    assert q.get_job_counts("failed")["failed"] == 0
    assert all(q.get_job(i) is None for i in ids)


def test_case_09_remove_on_fail_true_deletes_the_job_and_its_logs(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}, remove_on_fail=True).id
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    job.log("about to fail")
    assert w.fail(job, RuntimeError("boom")) == "failed"
    assert q.get_job(job_id) is None
    assert q.get_job_logs(job_id) == []
    assert q.get_job_counts("failed")["failed"] == 0
    assert events_for(env, q, job_id, "failed")[0]["failedReason"] == "boom"


# --- 10, 11: backoff ----------------------------------------------------------------------------------------


def test_case_10_exponential_backoff_doubles_the_delay_and_the_final_failure_leaves_delay_0(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}, attempts=3, backoff={"type": "exponential", "delay": 200}).id
    w = env.worker(q)
    for n in (1, 2):
        job = w.fetch()
        assert job is not None
        assert job.delay == 0, "a promoted job has delay 0"
        before = env.now()
        assert w.fail(job, RuntimeError(f"failure {n}")) == "delayed"
        after = env.now()
        expected = 2 ** (n - 1) * 200
        stored = q.get_job(job_id)
        assert stored is not None
        assert stored.delay == expected
        due = int(events_for(env, q, job_id, "delayed")[-1]["delay"])
        assert before + expected <= due <= after + expected, "the delayed event carries the absolute due time"
        assert w.fetch() is None, "not before the backoff has passed"
        env.advance(expected)
    job = w.fetch()
    assert job is not None
    assert w.fail(job, RuntimeError("failure 3")) == "failed"
    final = q.get_job(job_id)
    assert final is not None
    assert final.delay == 0
    assert final.attempts_made == 3
    assert str(q.get_job_state(job_id)) == "failed"


def test_case_11_fixed_backoff_waits_exactly_the_delay(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}, attempts=3, backoff={"type": "fixed", "delay": 150}).id
    w = env.worker(q)
    for _ in range(2):
        job = w.fetch()
        assert job is not None
        assert w.fail(job, RuntimeError("boom")) == "delayed"
        stored = q.get_job(job_id)
        assert stored is not None
        assert stored.delay == 150
        env.advance(150)
    assert w.fetch() is not None


def test_case_11_jittered_fixed_backoff_stays_between_delay_times_one_minus_jitter_and_delay(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}, attempts=7, backoff={"type": "fixed", "delay": 100, "jitter": 0.5}).id
    w = env.worker(q)
    delays = []
    for _ in range(6):
        job = w.fetch()
        assert job is not None
        assert w.fail(job, RuntimeError("boom")) == "delayed"
        stored = q.get_job(job_id)
        assert stored is not None
        delays.append(stored.delay)
        env.advance(stored.delay)
    assert all(50 <= d <= 100 for d in delays), delays
    assert min(delays) < 100, f"jitter must shorten some delays: {delays}"


# --- 12, 13, 14, 15: attempts and failure bookkeeping -------------------------------------------------------


def test_case_12_a_final_failure_emits_retries_exhausted_and_a_success_never_does(env: Env) -> None:
    q = env.queue()
    failing = q.add("test", {}, attempts=1).id
    without_attempts = q.add("test", {}).id
    succeeding = q.add("test", {}, attempts=1).id
    w = env.worker(q)
    for expected in (failing, without_attempts):
        job = w.fetch()
        assert job is not None
        assert job.id == expected
        assert w.fail(job, RuntimeError("boom")) == "failed"
    job = w.fetch()
    assert job is not None
    w.complete(job, "fine")
    for job_id in (failing, without_attempts):
        assert events_for(env, q, job_id, "retries-exhausted") == [{"attemptsMade": "1"}]
        assert str(q.get_job_state(job_id)) == "failed"
    assert events_for(env, q, succeeding, "retries-exhausted") == []


def test_case_13_three_attempts_always_failing_run_exactly_three_times(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}, attempts=3).id
    w = env.worker(q)
    local_failures: list[str] = []
    w.on("failed", lambda job, err, prev: local_failures.append(prev))
    outcomes = []
    while (job := w.fetch()) is not None:
        outcomes.append(w.fail(job, RuntimeError("always")))
    assert outcomes == ["retried", "retried", "failed"]
    assert local_failures == ["active"] * 3, "the worker-local failed event fires on every attempt"
    assert events_for(env, q, job_id, "failed") == [{"failedReason": "always", "prev": "active"}]
    assert events_for(env, q, job_id, "retries-exhausted") == [{"attemptsMade": "3"}]
    assert events_for(env, q, job_id, "waiting")[1:] == [{"prev": "active"}] * 2


def test_case_14_a_job_waiting_for_its_retry_already_has_its_failed_reason(env: Env) -> None:
    q = env.queue()
    with_backoff = q.add("test", {}, attempts=2, backoff=5_000).id
    without_backoff = q.add("test", {}, attempts=2).id
    w = env.worker(q)
    for job_id, outcome, state in ((with_backoff, "delayed", "delayed"), (without_backoff, "retried", "waiting")):
        job = w.fetch()
        assert job is not None
        assert job.id == job_id
        assert w.fail(job, RuntimeError(f"reason {job_id}")) == outcome
        stored = q.get_job(job_id)
        assert stored is not None
        assert str(q.get_job_state(job_id)) == state
        assert stored.failed_reason == f"reason {job_id}"
        assert len(stored.stacktrace) == 1
        assert "RuntimeError" in stored.stacktrace[0]


def test_case_15_a_job_that_fails_once_then_succeeds_sees_attempts_made_0_then_1(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}, attempts=3).id
    w = env.worker(q)
    first = w.fetch()
    assert first is not None
    assert first.attempts_made == 0
    assert w.fail(first, RuntimeError("once")) == "retried"
    second = w.fetch()
    assert second is not None
    assert second.attempts_made == 1
    w.complete(second, "ok")
    done = q.get_job(job_id)
    assert done is not None
    assert done.attempts_made == 2
    assert done.attempts_started == 2
    assert done.failed_reason == "once", "a later success does not clear failedReason"


def test_case_16_an_immediate_retry_promotes_due_delayed_jobs_first_and_priority_still_decides(env: Env) -> None:
    q = env.queue()
    delayed = q.add("delayed", {}, delay=100, priority=10).id
    retried = q.add("retried", {}, priority=1, attempts=2).id
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert job.id == retried
    env.advance(150)
    assert w.fail(job, RuntimeError("again")) == "retried"
    waiting = [(e.job_id, e.fields.get("prev")) for e in env.events(q) if e.name == "waiting"]
    assert waiting[-2:] == [(delayed, "delayed"), (retried, "active")], "the retry promotes due jobs first"
    assert [j.id for j in run_all(w)] == [retried, delayed], "priority 1 beats 10 although promoted later"


def test_case_17_an_unrecoverable_error_fails_the_job_despite_attempts_left(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}, attempts=3, backoff=1000).id
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert w.fail(job, UnrecoverableError("card is invalid")) == "failed"
    failed = q.get_job(job_id)
    assert failed is not None
    assert str(q.get_job_state(job_id)) == "failed"
    assert failed.attempts_made == 1
    assert failed.failed_reason == "card is invalid"
    assert events_for(env, q, job_id, "retries-exhausted") == [], "1 attempt made < 3 allowed"


# --- 18, 19: custom backoff and step jobs -------------------------------------------------------------------


def test_case_18_custom_backoff_strategies_pick_the_delay_per_type_and_minus_1_stops_retrying(env: Env) -> None:
    q = env.queue()
    seen: list[tuple[int, str, str]] = []

    def linear(attempts_made: int, kind: str, err: BaseException | None, job: Job) -> int:
        seen.append((attempts_made, kind, str(err)))
        return attempts_made * job.data["step_ms"] + (50 if "slow" in str(err) else 0)

    def never(attempts_made: int, kind: str, err: BaseException | None, job: Job) -> int:
        return -1

    async def later(attempts_made: int, kind: str, err: BaseException | None, job: Job) -> int:
        await asyncio.sleep(0)
        return 70

    w = env.worker(q, backoff_strategies={"linear": linear, "never": never, "later": later,
                                          "now": lambda *args: 0})
    lin = q.add("a", {"step_ms": 100}, attempts=3, backoff={"type": "linear"}).id
    nev = q.add("b", {}, attempts=3, backoff={"type": "never"}).id
    asy = q.add("c", {}, attempts=3, backoff={"type": "later"}).id
    imm = q.add("d", {}, attempts=3, backoff={"type": "now"}).id
    outcomes = {}
    for _ in range(4):
        job = w.fetch()
        assert job is not None
        outcomes[job.id] = w.fail(job, RuntimeError("slow upstream" if job.id == lin else "boom"))
    assert outcomes == {lin: "delayed", nev: "failed", asy: "delayed", imm: "retried"}
    assert seen == [(1, "linear", "slow upstream")]
    stored = {i: q.get_job(i) for i in (lin, asy)}
    assert stored[lin] is not None
    assert stored[lin].delay == 150
    assert stored[asy] is not None
    assert stored[asy].delay == 70
    assert str(q.get_job_state(imm)) == "waiting"
    assert str(q.get_job_state(nev)) == "failed"


def test_case_19_a_step_job_moved_to_delayed_keeps_its_data_and_uses_no_attempt(env: Env) -> None:
    q = env.queue()
    job_id = q.add("steps", {"step": "initial"}, attempts=1).id
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    job.update_data({"step": "second"})
    job.move_to_delayed(env.now() + 100)
    assert w.fail(job, DelayedError()) == "moved"
    assert str(q.get_job_state(job_id)) == "delayed"
    assert w.fetch() is None
    env.advance(100)
    job = w.fetch()
    assert job is not None
    assert job.data == {"step": "second"}
    assert job.attempts_made == 0, "moving itself to delayed does not count as an attempt"
    job.update_data({"step": "third"})
    job.move_to_wait()
    assert w.fail(job, WaitingError()) == "moved"
    again = w.fetch()
    assert again is not None, "a job moved back to wait runs again at once"
    assert again.id == job_id
    assert again.data == {"step": "third"}
    w.complete(again, "finished")
    done = q.get_job(job_id)
    assert done is not None
    assert (done.attempts_made, done.attempts_started) == (1, 3)
    assert [e.name for e in env.events(q) if e.job_id == job_id and e.name in ("failed", "completed")] \
        == ["completed"]


def test_case_19_max_started_attempts_fails_a_job_once_exceeded(env: Env) -> None:
    q = env.queue()
    job_id = q.add("steps", {}, attempts=5).id
    w = env.worker(q, max_started_attempts=2)
    for _ in range(2):
        job = w.fetch()
        assert job is not None
        job.move_to_wait()
        assert w.fail(job, WaitingError()) == "moved"
    assert w.fetch() is None, "the third start exceeds the limit: failed without running"
    failed = q.get_job(job_id)
    assert failed is not None
    assert str(q.get_job_state(job_id)) == "failed"
    assert failed.failed_reason == "job started more than allowable limit"
    assert (failed.attempts_started, failed.attempts_made) == (3, 1)


# --- 20, 21: manual retry -----------------------------------------------------------------------------------


def _failed_job(env: Env, q: Queue, **opts: Any) -> Job:
    job_id = q.add("test", {}, **opts).id
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert w.fail(job, RuntimeError("boom")) == "failed"
    stored = q.get_job(job_id)
    assert stored is not None
    return stored


def test_case_20_retrying_a_failed_job_runs_it_again(env: Env) -> None:
    q = env.queue()
    failed = _failed_job(env, q)
    failed.retry("failed")
    assert str(q.get_job_state(failed.id)) == "waiting"
    assert events_for(env, q, failed.id, "waiting")[-1] == {"prev": "failed"}
    again = q.get_job(failed.id)
    assert again is not None
    assert (again.failed_reason, again.finished_on) == (None, None)
    assert again.attempts_made == 1, "without reset, attemptsMade stays"
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    w.complete(job, "second time lucky")
    assert str(q.get_job_state(failed.id)) == "completed"


def test_case_20_retrying_a_completed_job_with_reset_flags_zeroes_the_counters(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}).id
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    w.complete(job, "first")
    done = q.get_job(job_id)
    assert done is not None
    assert (done.attempts_made, done.attempts_started) == (1, 1)
    done.retry("completed", reset_attempts_made=True, reset_attempts_started=True)
    again = q.get_job(job_id)
    assert again is not None
    assert (again.attempts_made, again.attempts_started, again.return_value) == (0, 0, None)
    assert events_for(env, q, job_id, "waiting")[-1] == {"prev": "completed"}
    assert w.fetch() is not None


def test_case_20_a_retry_while_the_queue_is_paused_lands_in_paused(env: Env) -> None:
    q = env.queue()
    failed = _failed_job(env, q)
    q.pause()
    failed.retry()
    assert q.get_job_counts("paused", "waiting") == {"paused": 1, "waiting": 0}
    assert env.worker(q).fetch() is None
    q.resume()
    assert env.worker(q).fetch() is not None


def test_case_21_a_job_cannot_be_retried_twice_while_active_or_after_removal(env: Env) -> None:
    q = env.queue()
    failed = _failed_job(env, q)
    failed.retry()
    with pytest.raises(JobStateError, match="is not in the failed state"):
        failed.retry()
    w = env.worker(q)
    active = w.fetch()
    assert active is not None
    with pytest.raises(JobStateError):
        active.retry()
    assert str(q.get_job_state(active.id)) == "active"
    assert w.fail(active, RuntimeError("again")) == "failed"
    q.remove(active.id)
    with pytest.raises(JobNotFoundError):
        active.retry()


# --- 22, 23: concurrency and option validation --------------------------------------------------------------


def test_case_22_a_worker_with_concurrency_3_holds_three_locked_jobs_at_once(env: Env) -> None:
    q = env.queue()
    for i in range(5):
        q.add("test", {"i": i})
    w = env.worker(q, concurrency=3)
    while len(w.active) < w.concurrency and w.fetch() is not None:
        pass
    assert len(w.active) == 3
    assert q.get_job_counts("active", "waiting") == {"active": 3, "waiting": 2}
    tokens = {env.conn.client.get(q.keys.job_lock(i)) for i in w.active}
    assert len(tokens) == 3, "each active job has its own lock token"
    w.concurrency = 5
    while len(w.active) < w.concurrency and w.fetch() is not None:
        pass
    assert len(w.active) == 5


@pytest.mark.parametrize("bad", [0, -1, float("nan"), 1.5, "2"])
def test_case_22_concurrency_must_be_a_whole_number_of_at_least_1(env: Env, bad: Any) -> None:
    q = env.queue()
    with pytest.raises(OptionError) as info:
        Worker(q, concurrency=bad)
    assert info.value.field == "concurrency"
    w = env.worker(q, concurrency=2)
    with pytest.raises(OptionError):
        w.concurrency = bad
    assert w.concurrency == 2


@live_only
def test_case_22_live_worker_runs_n_jobs_in_parallel_and_a_runtime_change_takes_effect(env: Env) -> None:
    q = env.queue()
    for i in range(8):
        q.add("test", {"i": i})
    release = threading.Event()
    running, peak = [0], [0]
    guard = threading.Lock()

    def processor(job: Job) -> None:
        with guard:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(10)
        with guard:
            running[0] -= 1

    w = Worker(q, processor, concurrency=2).start()
    try:
        assert wait_until(lambda: running[0] == 2)
        time.sleep(0.2)
        assert peak[0] == 2, "never more than the concurrency"
        w.concurrency = 4
        assert wait_until(lambda: running[0] == 4)
        time.sleep(0.2)
        assert peak[0] == 4
        release.set()
        assert wait_until(lambda: q.get_job_counts("completed")["completed"] == 8)
    finally:
        release.set()
        w.close()


@pytest.mark.parametrize(("option", "value"), [
    ("max_stalled_count", -1),
    ("max_started_attempts", -1),
    ("stalled_interval", 0),
    ("drain_delay_s", 0),
    ("concurrency", 0),
    ("concurrency", float("nan")),
])
def test_case_23_invalid_worker_options_raise_an_option_error_naming_the_field(env: Env, option: str,
                                                                              value: Any) -> None:
    q = env.queue()
    keys_before = sorted(env.conn.client.keys(f"{q.keys.base}*"))
    with pytest.raises(OptionError) as info:
        Worker(q, **{option: value})
    assert info.value.field == option
    assert option in str(info.value)
    assert sorted(env.conn.client.keys(f"{q.keys.base}*")) == keys_before, "nothing was written"


# --- 24, 25, 26: locks, processedBy, manual processing ------------------------------------------------------


def test_case_24_finishing_a_job_whose_lock_expired_raises_missing_lock(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}).id
    w = env.worker(q, lock_duration=300)
    job = w.fetch()
    assert job is not None
    env.advance(400)
    with pytest.raises(LockError) as info:
        w.complete(job, "too late")
    assert str(info.value) == f"Missing lock for job {job_id}. moveToFinished"
    assert info.value.code == -2
    assert str(q.get_job_state(job_id)) == "active", "a refused finish changes nothing"
    assert "returnvalue" not in fields_of(env, q, job_id)


def test_case_24_finishing_a_job_whose_lock_another_worker_took_raises_lock_mismatch(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}).id
    first = env.worker(q, lock_duration=300)
    second = env.worker(q, lock_duration=300, stalled_interval=200)
    job = first.fetch()
    assert job is not None
    second.check_stalled()  # marks the active job
    env.advance(400)  # first's lock expires without renewal
    assert second.check_stalled() == [job_id]
    stolen = second.fetch()
    assert stolen is not None
    assert stolen.id == job_id
    with pytest.raises(LockError) as info:
        first.complete(job, "mine")
    assert str(info.value).startswith(f"Lock mismatch for job {job_id}. Cmd moveToFinished")
    assert info.value.code == -6
    with pytest.raises(LockError):
        first.fail(job, RuntimeError("mine"))
    second.complete(stolen, "theirs")
    done = q.get_job(job_id)
    assert done is not None
    assert done.return_value == "theirs"


@live_only
def test_case_24_live_worker_reports_a_lost_lock_as_an_error_event(env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}).id
    errors: list[BaseException] = []
    w = Worker(q, lambda job: time.sleep(0.5), lock_duration=200, skip_lock_renewal=True,
               skip_stalled_check=True)
    w.on("error", errors.append)
    w.start()
    try:
        assert wait_until(lambda: len(errors) >= 1, 3.0)
    finally:
        w.close()
    assert isinstance(errors[0], LockError)
    assert str(errors[0]) == f"Missing lock for job {job_id}. moveToFinished"


def test_case_25_worker_name_is_stored_as_processed_by_and_a_completed_job_leaves_the_stalled_set(
        env: Env) -> None:
    q = env.queue()
    job_id = q.add("test", {}).id
    w = env.worker(q, name="email-worker-7")
    job = w.fetch()
    assert job is not None
    assert job.processed_by == "email-worker-7"
    assert fields_of(env, q, job_id)["pb"] == "email-worker-7"
    w.check_stalled()
    assert env.conn.client.sismember(q.keys.stalled, job_id), "the check marks every active job"
    w.complete(job, None)
    assert not env.conn.client.sismember(q.keys.stalled, job_id)


def test_case_26_manual_fetch_then_complete_or_fail(env: Env) -> None:
    q = env.queue()
    ok = q.add("test", {"n": 1}).id
    bad = q.add("test", {"n": 2}).id
    w = env.worker(q)
    first = w.fetch()
    assert first is not None
    assert first.id == ok
    assert first.token is not None
    assert env.conn.client.get(q.keys.job_lock(ok)).decode() == first.token
    w.complete(first, {"done": True})
    second = w.fetch()
    assert second is not None
    assert second.id == bad
    assert w.fail(second, RuntimeError("manual failure")) == "failed"
    assert str(q.get_job_state(ok)) == "completed"
    assert str(q.get_job_state(bad)) == "failed"
    assert env.conn.client.exists(q.keys.job_lock(ok), q.keys.job_lock(bad)) == 0


def test_case_26_fetching_a_job_with_a_deferred_failure_fails_it_and_returns_the_next_job(env: Env) -> None:
    q = env.queue()
    doomed = q.add("test", {}, attempts=3).id
    nxt = q.add("test", {}).id
    env.conn.client.hset(q.keys.job(doomed), "defa", "a reason decided earlier")
    w = env.worker(q)
    local_failed: list[tuple[str, str]] = []
    w.on("failed", lambda job, err, prev: local_failed.append((job.id, str(err))))
    job = w.fetch()
    assert job is not None
    assert job.id == nxt
    assert local_failed == [(doomed, "a reason decided earlier")]
    failed = q.get_job(doomed)
    assert failed is not None
    assert str(q.get_job_state(doomed)) == "failed", "attempts left do not matter"
    assert failed.failed_reason == "a reason decided earlier"
    assert failed.deferred_failure is None, "the deferred failure is cleared once applied"
    assert failed.attempts_made == 1
    assert events_for(env, q, doomed, "failed") == [{"failedReason": "a reason decided earlier", "prev": "active"}]
