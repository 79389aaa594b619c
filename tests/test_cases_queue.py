"""BullMQ's queue, getters and job behaviour (bullmq-semantics §9, queue.test.ts, getters.test.ts and
job.test.ts, cases 48-56) on every backend.

Bad input must raise an :class:`~queuesim.OptionError` naming the field and write nothing: those tests check
the ``id`` counter (BullMQ increments it on every add that reaches Redis, §11.7) and the events stream.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from conftest import Env

from queuesim import (
    JobFailedError,
    JobNotFoundError,
    JobStateError,
    OptionError,
    Queue,
    UnrecoverableError,
)

# --- helpers -------------------------------------------------------------------------------------------------


def id_counter(env: Env, q: Queue) -> int | None:
    raw = env.conn.client.get(q.keys.id)
    return None if raw is None else int(raw)


def key_suffixes(env: Env, q: Queue) -> set[str]:
    """What follows ``<prefix>:<queue>:`` in every key of this queue."""
    base = q.keys.base
    return {k.decode()[len(base):] for k in env.conn.client.scan_iter(match=base + "*", count=1000)}


def state(q: Queue, job_id: str) -> str:
    return str(q.get_job_state(job_id))


# --- 48: ids and queue names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("job_id", "text"), [("2", "Custom Id cannot be integers"),
                                              ("1:0", "Custom Id cannot contain :")])
def test_case_48_invalid_custom_ids_are_refused_before_any_id_is_used(env: Env, job_id: str, text: str) -> None:
    q = env.queue()
    with pytest.raises(OptionError, match=text) as err:
        q.add("test", {}, job_id=job_id)
    assert err.value.field == "job_id"
    assert id_counter(env, q) is None, "a refused add must not increment the id counter"
    assert env.event_names(q) == []
    assert q.add("test", {}).id == "1", "the first real add still gets id 1"


@pytest.mark.parametrize("name", ["", "a:b", ":", "queue:"])
def test_case_48_a_queue_name_must_be_non_empty_and_without_colon(env: Env, name: str) -> None:
    with pytest.raises(OptionError) as err:
        Queue(name, env.conn)
    assert err.value.field == "queue name"


# --- 49: drain ----------------------------------------------------------------------------------------------


def test_case_49_drain_removes_waiting_and_prioritized_jobs_and_leaves_only_queue_keys(env: Env) -> None:
    q = env.queue()
    waiting = [q.add("w", {"i": i}).id for i in range(3)]
    ranked = [q.add("p", {"i": i}, priority=i + 1).id for i in range(2)]
    delayed = q.add("d", {}, delay=60_000)
    events_before = env.event_names(q)
    q.drain()
    assert q.get_job_counts("waiting", "prioritized", "delayed") == {"waiting": 0, "prioritized": 0, "delayed": 1}
    for job_id in waiting + ranked:
        assert q.get_job(job_id) is None
    assert q.get_job(delayed.id) is not None, "delayed jobs stay unless drain(delayed=True)"
    assert env.event_names(q) == events_before, "drain writes no event (§11.9)"
    q.drain(delayed=True)
    assert q.get_job(delayed.id) is None
    assert q.count() == 0
    assert key_suffixes(env, q) <= {"id", "meta", "events", "pc", "marker"}


def test_case_49_drain_works_while_the_queue_is_paused(env: Env) -> None:
    q = env.queue()
    q.pause()
    q.add_bulk([("a", {}), ("b", {})])
    assert q.get_job_counts("paused")["paused"] == 2
    q.drain()
    assert q.get_job_counts("paused", "waiting") == {"paused": 0, "waiting": 0}
    assert q.is_paused()


def test_case_49_drain_never_touches_active_completed_or_failed_jobs(env: Env) -> None:
    q = env.queue()
    q.add_bulk([("a", {}), ("b", {}), ("c", {}), ("d", {})])
    w = env.worker(q, concurrency=3)
    done, failed, running = w.fetch(), w.fetch(), w.fetch()
    assert done is not None
    assert failed is not None
    assert running is not None
    w.complete(done)
    w.fail(failed, UnrecoverableError("no"))
    q.drain(delayed=True)
    assert q.get_job_counts("completed", "failed", "active", "waiting") == {
        "completed": 1, "failed": 1, "active": 1, "waiting": 0}


# --- 50: retryJobs / promoteJobs -----------------------------------------------------------------------------


def test_case_50_retry_jobs_moves_every_failed_job_back_to_wait_ignoring_priority(env: Env) -> None:
    q = env.queue()
    q.add_bulk([{"name": "t", "data": {"i": i}, "opts": {"priority": 5}} for i in range(3)])
    w = env.worker(q)
    while (job := w.fetch()) is not None:
        assert w.fail(job, RuntimeError("boom")) == "failed"
    assert q.retry_jobs() == 3
    assert q.get_job_counts("failed", "waiting", "prioritized") == {"failed": 0, "waiting": 3, "prioritized": 0}
    again = [e for e in env.events(q) if e.name == "waiting" and e.fields.get("prev") == "failed"]
    assert len(again) == 3
    job = q.get_waiting()[0]
    assert job.failed_reason is None, "a manual retry clears failedReason"
    assert job.finished_on is None


def test_case_50_retry_jobs_can_retry_completed_jobs_and_lands_in_paused_while_paused(env: Env) -> None:
    q = env.queue()
    q.add_bulk([("a", {}), ("b", {})])
    w = env.worker(q)
    while (job := w.fetch()) is not None:
        w.complete(job, "ok")
    q.pause()
    assert q.retry_jobs(state="completed") == 2
    assert q.get_job_counts("completed", "paused", "waiting") == {"completed": 0, "paused": 2, "waiting": 0}
    assert all(j.return_value is None for j in q.get_waiting())


def test_case_50_retry_jobs_with_a_timestamp_only_retries_jobs_that_failed_before_it(env: Env) -> None:
    q = env.queue()
    early = [q.add("early", {}).id for _ in range(2)]
    late = q.add("late", {}).id
    w = env.worker(q)
    for job_id in early:
        job = w.fetch()
        assert job is not None
        assert job.id == job_id
        w.fail(job, RuntimeError("x"))
    env.advance(50)
    cutoff = env.now()
    env.advance(50)
    job = w.fetch()
    assert job is not None
    assert job.id == late
    w.fail(job, RuntimeError("x"))
    assert q.retry_jobs(timestamp=cutoff) == 2
    assert sorted(j.id for j in q.get_waiting()) == sorted(early)
    assert state(q, late) == "failed"


def test_case_50_promote_jobs_makes_every_delayed_job_ready(env: Env) -> None:
    q = env.queue()
    for delay in (1_000, 5_000, 60_000):
        q.add("d", {"delay": delay}, delay=delay)
    assert q.promote_jobs() == 3
    assert q.get_job_counts("delayed", "waiting") == {"delayed": 0, "waiting": 3}
    promoted = [e for e in env.events(q) if e.name == "waiting" and e.fields.get("prev") == "delayed"]
    assert len(promoted) == 3
    assert all(j.delay == 0 for j in q.get_waiting())


# --- 51: counts ----------------------------------------------------------------------------------------------


def test_case_51_get_job_counts_covers_every_state_and_count_includes_prioritized(env: Env) -> None:
    q = env.queue()
    w = env.worker(q, concurrency=3)
    for name in ("done", "bad", "busy"):
        q.add(name, {})
    done, bad, busy = w.fetch(), w.fetch(), w.fetch()
    assert done is not None
    assert bad is not None
    assert busy is not None
    w.complete(done)
    w.fail(bad, UnrecoverableError("no"))
    q.add("later", {}, delay=60_000)
    for p in (1, 2, 2):
        q.add("ranked", {}, priority=p)
    for _ in range(4):
        q.add("plain", {})
    assert q.get_job_counts() == {"active": 1, "completed": 1, "delayed": 1, "failed": 1, "paused": 0,
                                  "prioritized": 3, "waiting": 4, "waiting-children": 0}
    assert q.count() == 4 + 1 + 3
    assert q.get_counts_per_priority([0, 1, 2, 3]) == {0: 4, 1: 1, 2: 2, 3: 0}
    q.pause()
    counts = q.get_job_counts("waiting", "paused")
    assert counts == {"waiting": 0, "paused": 4}, "§11.1: waiting and paused are reported separately"
    assert q.get_waiting_count() == 4, "the summing helper adds paused to waiting"
    assert q.count() == 8
    assert q.get_counts_per_priority([0]) == {0: 4}


# --- 52: invalid add options write nothing -------------------------------------------------------------------


@pytest.mark.parametrize(("opts", "field", "text"), [
    ({"size_limit": 10}, "data", "The size of job test exceeds the limit 10 bytes"),
    ({"delay": 100, "repeat": {"every": 1000}}, "delay", "repeat"),
    ({"priority": 1.5}, "priority", "Priority should not be float"),
    ({"priority": 2_097_152}, "priority", "Priority should be between 0 and 2097151"),
    ({"deduplication": {"id": ""}}, "deduplication.id", "non-empty"),
    ({"backoff": {"type": "fixed", "delay": 100, "jitter": 1.5}}, "backoff.jitter", "between 0 and 1"),
    ({"backoff": {"type": "fixed", "delay": 100, "jitter": -0.1}}, "backoff.jitter", "between 0 and 1"),
])
def test_case_52_add_refuses_bad_options_naming_the_field_and_writes_nothing(
        env: Env, opts: dict[str, Any], field: str, text: str) -> None:
    q = env.queue()
    with pytest.raises(OptionError, match=text) as err:
        q.add("test", {"payload": "more than ten bytes"}, **opts)
    assert err.value.field == field
    assert id_counter(env, q) is None, "§11.7: a refused add uses no id"
    assert env.event_names(q) == []
    assert key_suffixes(env, q) <= {"meta"}


def test_case_52_add_bulk_with_one_bad_job_adds_none_of_them(env: Env) -> None:
    q = env.queue()
    with pytest.raises(OptionError) as err:
        q.add_bulk([("ok", {}), {"name": "bad", "data": {}, "opts": {"priority": 1.5}}])
    assert err.value.field == "jobs[1].priority"
    assert id_counter(env, q) is None
    assert q.count() == 0


# --- 53: logs and stack traces -------------------------------------------------------------------------------


def test_case_53_keep_logs_keeps_the_last_n_lines_and_clear_logs_trims_or_empties(env: Env) -> None:
    q = env.queue()
    job = q.add("test", {}, keep_logs=2)
    kept = [job.log(f"line {i}") for i in range(1, 6)]
    assert kept == [1, 2, 2, 2, 2]
    assert job.get_logs() == ["line 4", "line 5"]
    other = q.add("test", {})
    for i in range(1, 5):
        other.log(f"entry {i}")
    other.clear_logs(1)
    assert other.get_logs() == ["entry 4"]
    other.clear_logs()
    assert other.get_logs() == []
    with pytest.raises(OptionError):
        other.clear_logs(-1)


@pytest.mark.parametrize(("limit", "expected"), [(None, 2), (1, 1), (0, 0)])
def test_case_53_stack_trace_limit_keeps_the_last_n_traces_and_0_keeps_none(
        env: Env, limit: int | None, expected: int) -> None:
    q = env.queue()
    opts: dict[str, Any] = {"attempts": 3}
    if limit is not None:
        opts["stack_trace_limit"] = limit
    job = q.add("test", {}, **opts)
    w = env.worker(q)
    for n in range(2):
        fetched = w.fetch()
        assert fetched is not None
        assert w.fail(fetched, RuntimeError(f"failure {n}")) == "retried"
    stored = q.get_job(job.id)
    assert stored is not None
    assert len(stored.stacktrace) == expected
    if expected:
        assert "failure 1" in stored.stacktrace[-1]


# --- 54: failing with attempts left --------------------------------------------------------------------------


def test_case_54_a_failure_with_attempts_left_goes_back_to_wait_without_backoff(env: Env) -> None:
    q = env.queue()
    job = q.add("test", {}, attempts=2)
    w = env.worker(q)
    fetched = w.fetch()
    assert fetched is not None
    assert w.fail(fetched, RuntimeError("try again")) == "retried"
    stored = q.get_job(job.id)
    assert stored is not None
    assert state(q, job.id) == "waiting"
    assert stored.attempts_made == 1
    assert stored.failed_reason == "try again"
    waiting = [e for e in env.events(q) if e.name == "waiting" and e.job_id == job.id]
    assert waiting[-1].fields.get("prev") == "active"
    assert "failed" not in env.event_names(q, job.id), "no failed event before the final failure"


def test_case_54_a_failure_with_attempts_left_and_a_backoff_goes_to_delayed(env: Env) -> None:
    q = env.queue()
    job = q.add("test", {}, attempts=2, backoff=1000)
    w = env.worker(q)
    fetched = w.fetch()
    assert fetched is not None
    before = env.now()
    assert w.fail(fetched, RuntimeError("later")) == "delayed"
    assert state(q, job.id) == "delayed"
    delayed = [e for e in env.events(q) if e.name == "delayed" and e.job_id == job.id]
    assert before + 1000 <= delayed[-1].value() <= env.now() + 1000
    stored = q.get_job(job.id)
    assert stored is not None
    assert stored.attempts_made == 1


# --- 55: changeDelay, changePriority, promote ----------------------------------------------------------------


def test_case_55_change_delay_only_works_on_delayed_jobs_and_counts_from_now(env: Env) -> None:
    q = env.queue()
    waiting = q.add("now", {})
    with pytest.raises(JobStateError) as err:
        q.change_delay(waiting.id, 500)
    assert err.value.code == -3
    with pytest.raises(JobNotFoundError):
        q.change_delay("missing", 500)
    job = q.add("later", {}, delay=60_000)
    env.advance(20)
    before = env.now()
    q.change_delay(job.id, 300)
    stored = q.get_job(job.id)
    assert stored is not None
    assert stored.delay == 300
    due = [e for e in env.events(q) if e.name == "delayed" and e.job_id == job.id][-1].value()
    assert before + 300 <= due <= env.now() + 300
    w = env.worker(q)
    assert w.next_wake_ms() == due


def test_case_55_change_priority_reorders_and_lifo_puts_the_job_at_the_head_of_its_band(env: Env) -> None:
    q = env.queue()
    a, b, c = (q.add(n, {}, priority=5).id for n in ("a", "b", "c"))
    q.change_priority(c, 5, lifo=True)
    assert [j.name for j in q.get_prioritized()] == ["c", "a", "b"]
    q.change_priority(b, 1)
    assert [j.name for j in q.get_prioritized()] == ["b", "c", "a"]
    q.change_priority(a, 0)
    assert state(q, a) == "waiting", "priority 0 moves the job to wait"
    w = env.worker(q)
    order = []
    while (job := w.fetch()) is not None:
        order.append(job.name)
        w.complete(job)
    assert order == ["a", "b", "c"]
    with pytest.raises(JobNotFoundError):
        q.change_priority("missing", 3)


def test_case_55_change_priority_works_while_paused(env: Env) -> None:
    q = env.queue()
    q.pause()
    first, second = q.add("first", {}).id, q.add("second", {}).id
    q.change_priority(second, 0, lifo=True)
    q.change_priority(first, 3)
    assert q.get_job_counts("paused", "prioritized") == {"paused": 1, "prioritized": 1}
    q.resume()
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert job.id == second


def test_case_55_promote_only_works_on_delayed_jobs_and_keeps_the_priority(env: Env) -> None:
    q = env.queue()
    waiting = q.add("now", {})
    with pytest.raises(JobStateError) as err:
        q.promote(waiting.id)
    assert err.value.code == -3
    job = q.add("later", {}, delay=60_000, priority=4)
    job.promote()
    assert state(q, job.id) == "prioritized"
    stored = q.get_job(job.id)
    assert stored is not None
    assert stored.priority == 4
    assert stored.delay == 0
    with pytest.raises(JobStateError):
        q.promote(job.id)


# --- 56: getState and waitUntilFinished ----------------------------------------------------------------------


def test_case_56_get_state_reports_every_state(env: Env) -> None:
    q = env.queue()
    w = env.worker(q, concurrency=3)
    done, bad, busy = (q.add(n, {}).id for n in ("done", "bad", "busy"))
    fetched = [w.fetch() for _ in range(3)]
    assert all(j is not None for j in fetched)
    w.complete(fetched[0])  # type: ignore[arg-type]
    w.fail(fetched[1], UnrecoverableError("no"))  # type: ignore[arg-type]
    waiting = q.add("waiting", {}).id
    ranked = q.add("ranked", {}, priority=2).id
    later = q.add("later", {}, delay=60_000).id
    assert {job_id: state(q, job_id) for job_id in (done, bad, busy, waiting, ranked, later, "nope")} == {
        done: "completed", bad: "failed", busy: "active", waiting: "waiting", ranked: "prioritized",
        later: "delayed", "nope": "unknown"}
    q.pause()
    assert state(q, waiting) == "waiting", "a paused job reports waiting"


def test_case_56_wait_until_finished_answers_at_once_for_finished_jobs(env: Env) -> None:
    q = env.queue()
    ok, bad = q.add("ok", {}), q.add("bad", {})
    w = env.worker(q)
    first = w.fetch()
    assert first is not None
    w.complete(first, {"answer": 42})
    second = w.fetch()
    assert second is not None
    w.fail(second, UnrecoverableError("it broke"))
    assert ok.wait_until_finished(timeout_ms=50) == {"answer": 42}
    with pytest.raises(JobFailedError, match="it broke") as err:
        bad.wait_until_finished(timeout_ms=50)
    assert err.value.job_id == bad.id


def test_case_56_wait_until_finished_waits_for_the_completion_or_failure_event(env: Env) -> None:
    q = env.queue()
    ok = q.add("ok", {}, attempts=1)
    bad = q.add("bad", {}, attempts=1)
    w = env.worker(q)

    def work() -> None:
        time.sleep(0.1)
        job = w.fetch()
        assert job is not None
        w.complete(job, "done")
        time.sleep(0.05)
        job = w.fetch()
        assert job is not None
        w.fail(job, RuntimeError("nope"))

    t = threading.Thread(target=work)
    t.start()
    try:
        assert ok.wait_until_finished(timeout_ms=5_000) == "done"
        with pytest.raises(JobFailedError, match="nope"):
            bad.wait_until_finished(timeout_ms=5_000)
    finally:
        t.join()


def test_case_56_wait_until_finished_times_out_and_refuses_missing_jobs(env: Env) -> None:
    q = env.queue()
    job = q.add("never", {})
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="timed out"):
        job.wait_until_finished(timeout_ms=150)
    assert time.monotonic() - started >= 0.14
    q.remove(job.id)
    with pytest.raises(JobNotFoundError):
        job.wait_until_finished(timeout_ms=50)
