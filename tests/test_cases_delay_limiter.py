"""BullMQ's delayed jobs and rate limiter (bullmq-semantics §9, delay.test.ts and rate_limiter.test.ts,
cases 33-42) on every backend.

Workers are driven through the step API. A BullMQ worker that finds nothing to do sleeps until the next due
time or the end of the limiter window; here the test asks :meth:`Worker.next_wake_ms` for that moment and moves
the clock there (instantly on fakeredis, by a short real sleep on Redis). Durations are kept small (≤ 300 ms)
so the real-Redis run stays quick. On a real Redis, key expiry and the client's clock can disagree by a
millisecond, hence the tiny tolerance in the timing assertions.
"""

from __future__ import annotations

import itertools

import pytest
from conftest import Env

from queuesim import Queue, RateLimitError, Worker
from queuesim.job import Job

# --- helpers -------------------------------------------------------------------------------------------------


def slack(env: Env) -> int:
    """Milliseconds of tolerance for timing assertions: none in virtual time, a little on a real Redis."""
    return 0 if env.is_fake else 3


def sleep_until_wake(env: Env, w: Worker) -> bool:
    """Move time to the worker's next wake-up; False when nothing is scheduled (the queue is idle)."""
    wake = w.next_wake_ms()
    if wake is None:
        return False
    env.advance(max(wake - env.now(), 1))
    return True


def process_all(env: Env, w: Worker, expected: int, max_rounds: int = 200) -> list[Job]:
    """Run a worker loop until ``expected`` jobs completed: fetch and complete, else sleep until the next wake-up.

    Returns the jobs in the order they started, re-read after completion (so ``processed_on`` is stored).
    """
    done: list[Job] = []
    for _ in range(max_rounds):
        if len(done) == expected:
            break
        job = w.fetch()
        if job is not None:
            w.complete(job)
            done.append(job)
        elif not sleep_until_wake(env, w):
            break
    return [w.queue.get_job(j.id) or j for j in done]


def start_times(jobs: list[Job]) -> list[int]:
    times = [j.processed_on for j in jobs]
    assert all(t is not None for t in times)
    return [int(t) for t in times if t is not None]


# --- 33-37: delayed jobs -------------------------------------------------------------------------------------


def test_case_33_a_delayed_job_emits_delayed_and_starts_no_earlier_than_its_delay(env: Env) -> None:
    q = env.queue()
    w = env.worker(q)
    job = q.add("test", {"delayed": "foobar"}, delay=200)
    assert str(q.get_job_state(job.id)) == "delayed"
    delayed = [e for e in env.events(q) if e.name == "delayed" and e.job_id == job.id]
    assert len(delayed) == 1
    assert delayed[0].value() == job.timestamp + 200, "the delayed event carries the absolute due time"
    assert w.fetch() is None, "a delayed job is not handed out before it is due"
    assert w.next_wake_ms() == job.timestamp + 200
    assert sleep_until_wake(env, w)
    started = w.fetch()
    assert started is not None
    assert started.id == job.id
    assert started.processed_on is not None
    assert started.processed_on - started.timestamp >= 200
    assert started.delay == 0, "a promoted job's delay field is reset to 0"
    w.complete(started)
    assert q.get_job_counts("delayed")["delayed"] == 0
    names = env.event_names(q, job.id)
    assert names[:2] == ["added", "delayed"]
    assert names[2:] == ["waiting", "active", "completed"]
    promoted = [e for e in env.events(q) if e.name == "waiting" and e.job_id == job.id]
    assert promoted[0].fields.get("prev") == "delayed"


def test_case_34_delay_0_goes_straight_to_wait_or_to_prioritized(env: Env) -> None:
    q = env.queue()
    plain = q.add("plain", {}, delay=0)
    ranked = q.add("ranked", {}, delay=0, priority=3)
    assert str(q.get_job_state(plain.id)) == "waiting"
    assert str(q.get_job_state(ranked.id)) == "prioritized"
    assert q.get_job_counts("delayed", "waiting", "prioritized") == {"delayed": 0, "waiting": 1, "prioritized": 1}
    assert "delayed" not in env.event_names(q), "no delayed event for a job added without delay"


def test_case_35_delayed_jobs_run_in_due_order_across_workers_and_fifo_when_due_together(env: Env) -> None:
    q = env.queue()
    base = env.now()
    # added out of order; the last three share one due time and must keep their insertion order
    specs = [("d300", 300), ("d100", 100), ("d200", 200), ("tie-a", 250), ("tie-b", 250), ("tie-c", 250)]
    for name, delay in specs:
        q.add(name, {}, delay=delay, timestamp=base)
    w1 = env.worker(q, concurrency=2)
    w2 = env.worker(q, concurrency=3)
    env.advance(400)
    order = []
    for w in (w1, w2, w1, w2, w2, w1):
        job = w.fetch()
        assert job is not None
        order.append(job.name)
    assert order == ["d100", "d200", "tie-a", "tie-b", "tie-c", "d300"]
    assert q.get_job_counts("delayed", "active") == {"delayed": 0, "active": 6}


def test_case_36_a_short_delay_added_after_a_long_one_is_not_blocked_and_lost_markers_do_not_wedge(
        env: Env) -> None:
    q = env.queue()
    w = env.worker(q)
    long_job = q.add("long", {}, delay=60_000)
    short = q.add("short", {}, delay=100)
    marker = env.conn.client.zscore(q.keys.marker, "1")
    assert marker is not None
    assert int(marker) == short.timestamp + 100, "the delay marker points at the earliest due job"
    assert w.next_wake_ms() == short.timestamp + 100
    env.conn.client.delete(q.keys.marker)  # markers may disappear (e.g. a pause); processing must go on
    assert w.fetch() is None
    assert sleep_until_wake(env, w)
    job = w.fetch()
    assert job is not None
    assert job.id == short.id
    assert str(q.get_job_state(long_job.id)) == "delayed"
    assert w.next_wake_ms() == long_job.timestamp + 60_000


def test_case_37_while_paused_due_delayed_jobs_still_move_to_paused(env: Env) -> None:
    q = env.queue()
    w = env.worker(q)
    q.pause()
    job = q.add("test", {}, delay=100)
    env.advance(150)
    assert w.fetch() is None, "paused: nothing is handed out"
    assert q.get_job_counts("waiting", "paused", "delayed") == {"waiting": 0, "paused": 1, "delayed": 0}
    assert str(q.get_job_state(job.id)) == "waiting"
    q.resume()
    started = w.fetch()
    assert started is not None
    assert started.id == job.id


# --- 38-42: rate limiter -------------------------------------------------------------------------------------


def test_case_38_rate_limited_jobs_stay_in_wait_and_are_never_moved_to_delayed(env: Env) -> None:
    q = env.queue()
    w = env.worker(q, concurrency=5, limiter={"max": 1, "duration": 200})
    q.add_bulk([("test", {"n": n}) for n in range(5)])
    first = w.fetch()
    assert first is not None
    for _ in range(4):  # the worker has room for four more, but the window allows one start
        assert w.fetch() is None
    assert q.get_job_counts("delayed", "waiting", "active") == {"delayed": 0, "waiting": 4, "active": 1}
    assert w.rate_limited_until > env.now()
    assert w.rate_limited_until - env.now() <= 200
    assert "delayed" not in env.event_names(q)
    w.complete(first)
    done = process_all(env, w, 4)
    assert len(done) == 4
    assert q.get_job_counts("delayed", "completed") == {"delayed": 0, "completed": 5}


def test_case_39_n_jobs_at_max_1_per_duration_take_at_least_n_minus_1_windows(env: Env) -> None:
    q = env.queue()
    duration = 150
    q.add_bulk([("test", {"n": n}) for n in range(5)])
    w = env.worker(q, concurrency=5, limiter={"max": 1, "duration": duration})
    starts = start_times(process_all(env, w, 5))
    assert len(starts) == 5
    for earlier, later in itertools.pairwise(starts):
        assert later - earlier >= duration - slack(env), "one start per window"
    assert starts[-1] - starts[0] >= 4 * duration - slack(env)


def test_case_39_a_global_rate_limit_throttles_workers_without_a_limiter_until_it_is_removed(env: Env) -> None:
    q = env.queue()
    duration = 150
    q.set_global_rate_limit(1, duration)
    assert q.backend.get_meta(q.name, "max") == "1"
    assert q.backend.get_meta(q.name, "duration") == str(duration)
    q.add_bulk([("test", {"n": n}) for n in range(4)])
    w = env.worker(q, concurrency=4)
    first = w.fetch()
    assert first is not None
    ttl = q.get_rate_limit_ttl()
    assert 0 < ttl <= duration, "the window is running: its ttl is reported"
    assert w.fetch() is None
    w.complete(first)
    starts = start_times([q.get_job(first.id) or first, *process_all(env, w, 2)])
    assert starts[1] - starts[0] >= duration - slack(env)
    assert starts[2] - starts[1] >= duration - slack(env)
    q.remove_global_rate_limit()
    assert q.backend.get_meta(q.name, "max") is None
    last = w.fetch()
    assert last is not None, "without the global limit the next job starts at once"


def test_case_39_without_any_limit_the_rate_limit_ttl_is_minus_2(env: Env) -> None:
    q = env.queue()
    assert q.get_rate_limit_ttl() == -2
    q.set_global_rate_limit(1, 500)
    q.remove_global_rate_limit()
    q.add("test", {})
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert q.get_rate_limit_ttl() == -2, "no limiter configured: nothing counts starts"


def test_case_40_queue_rate_limit_plus_rate_limit_error_delays_the_rerun_without_using_an_attempt(
        env: Env) -> None:
    q = env.queue()
    w = env.worker(q, limiter={"max": 1, "duration": 50})
    q.add("test", {}, attempts=1)
    job = w.fetch()
    assert job is not None
    q.rate_limit(250)
    ttl = q.get_rate_limit_ttl()
    assert 0 < ttl <= 250
    assert w.fail(job, RateLimitError()) == "rate-limited"
    back = q.get_job(job.id)
    assert back is not None
    assert str(q.get_job_state(job.id)) == "waiting"
    assert back.attempts_made == 0, "a rate-limit move-back uses no attempt"
    assert back.attempts_started == 1
    assert back.failed_reason is None
    assert 0 < w.rate_limited_until - env.now() <= 250
    assert w.fetch() is None
    other = env.worker(q, limiter={"max": 1, "duration": 50})
    assert other.fetch() is None, "the limiter key is shared: every worker with a limiter waits"
    waiting = [e for e in env.events(q) if e.name == "waiting" and e.job_id == job.id]
    assert waiting[-1].fields.get("prev") == "active"
    assert sleep_until_wake(env, w)
    again = w.fetch()
    while again is None and sleep_until_wake(env, w):
        again = w.fetch()
    assert again is not None
    assert again.id == job.id
    assert again.processed_on is not None
    assert job.processed_on is not None
    assert again.processed_on - job.processed_on >= 250 - slack(env)
    assert again.attempts_started == 2
    w.complete(again)
    final = q.get_job(job.id)
    assert final is not None
    assert final.attempts_made == 1


def test_case_40_rate_limit_ttl_is_0_below_max_jobs_and_the_window_ttl_at_or_above(env: Env) -> None:
    q = env.queue()
    q.add_bulk([("test", {}), ("test", {})])
    w = env.worker(q, limiter={"max": 2, "duration": 300})
    assert w.fetch() is not None
    assert q.get_rate_limit_ttl(2) == 0, "one start so far: below max 2"
    ttl = q.get_rate_limit_ttl(1)
    assert 0 < ttl <= 300, "one start reaches max 1: the remaining window is reported"
    assert w.fetch() is not None
    assert 0 < q.get_rate_limit_ttl(2) <= 300


def test_case_40_rate_limit_error_without_any_limiter_still_puts_the_job_back_at_the_head(env: Env) -> None:
    """§11.3: no limiter configured: the job goes back to the head of wait without using an attempt, the
    worker that raised pauses for the limiter key's ttl, and a worker without a limiter takes the job at once."""
    q = env.queue()
    first = q.add("first", {})
    second = q.add("second", {})
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert job.id == first.id
    q.rate_limit(300)
    assert w.fail(job, RateLimitError()) == "rate-limited"
    back = q.get_job(job.id)
    assert back is not None
    assert back.attempts_made == 0
    assert back.attempts_started == 1
    assert [j.id for j in q.get_waiting()] == [first.id, second.id], "back at the head of wait"
    assert 0 < w.rate_limited_until - env.now() <= 300
    assert w.fetch() is None, "the worker that hit the limit pauses"
    free = env.worker(q)
    again = free.fetch()
    assert again is not None, "without a limiter max the queue-wide key does not stop another worker"
    assert again.id == first.id
    assert again.attempts_started == 2


def test_case_41_with_max_1_priorities_are_still_obeyed_and_fifo_within_a_priority(env: Env) -> None:
    q = env.queue()
    q.pause()
    for i in range(8):
        q.add("test", {"i": i}, priority=(i % 4) + 1)
    q.resume()
    w = env.worker(q, limiter={"max": 1, "duration": 20})
    jobs = process_all(env, w, 8)
    assert [(j.priority, j.data["i"]) for j in jobs] == [(1, 0), (1, 4), (2, 1), (2, 5), (3, 2), (3, 6),
                                                          (4, 3), (4, 7)]


def test_case_41_rate_limit_errors_put_prioritized_jobs_back_at_the_head_of_their_band(env: Env) -> None:
    q = env.queue()
    for i in range(1, 5):
        q.add(str(i), {}, priority=((i - 1) % 2) + 1)
    w = env.worker(q, limiter={"max": 1, "duration": 20})
    job = w.fetch()
    assert job is not None
    assert job.name == "1"
    q.rate_limit(200)
    w.fail(job, RateLimitError())
    assert [j.name for j in q.get_prioritized()] == ["1", "3", "2", "4"]


def test_case_42_a_rate_limited_job_while_paused_goes_to_paused(env: Env) -> None:
    q = env.queue()
    q.add("test", {})
    w = env.worker(q, limiter={"max": 1, "duration": 100})
    job = w.fetch()
    assert job is not None
    q.pause()
    q.rate_limit(250)
    w.fail(job, RateLimitError())
    assert q.get_job_counts("paused", "waiting") == {"paused": 1, "waiting": 0}
    assert q.get_job_count_by_types("paused") == 1


def test_case_42_removing_the_limiter_key_lets_jobs_run_again_at_the_normal_pace(env: Env) -> None:
    q = env.queue()
    duration = 100
    w = env.worker(q, limiter={"max": 1, "duration": duration})
    q.rate_limit(10_000)
    q.add_bulk([("test", {}), ("test", {})])
    assert w.fetch() is None
    assert w.rate_limited_until - env.now() > duration, "blocked by the long manual limit"
    q.remove_rate_limit_key()
    w.rate_limited_until = 0  # BullMQ's test removes the key before the worker starts
    starts = start_times(process_all(env, w, 2))
    assert starts[1] - starts[0] >= duration - slack(env)
    assert starts[1] - starts[0] < 10_000


def test_case_42_a_rate_limited_worker_wakes_after_maximum_rate_limit_delay_and_promotes_delayed_jobs(
        env: Env) -> None:
    q = env.queue()
    w = env.worker(q, limiter={"max": 1, "duration": 5_000}, maximum_rate_limit_delay=200)
    q.add_bulk([("rate", {}), ("rate", {})])
    for _ in range(2):
        q.add("delayed", {}, delay=100)
    assert q.get_waiting_count() == 2
    assert q.get_job_counts("delayed")["delayed"] == 2
    job = w.fetch()
    assert job is not None
    w.complete(job)
    assert w.fetch() is None
    wake = w.next_wake_ms()
    assert wake is not None
    assert wake - env.now() <= 200, "the sleep is capped by maximum_rate_limit_delay"
    assert sleep_until_wake(env, w)
    assert w.fetch() is None, "still inside the 5 s window"
    assert q.get_waiting_count() == 3, "but the worker's fetch promoted the due delayed jobs"
    assert q.get_job_counts("delayed")["delayed"] == 0


def test_case_42_removing_the_global_rate_limit_is_noticed_after_maximum_rate_limit_delay(env: Env) -> None:
    q = env.queue()
    q.set_global_rate_limit(1, 10_000)
    q.add_bulk([("test", {}) for _ in range(4)])
    w = env.worker(q, maximum_rate_limit_delay=150)
    first = w.fetch()
    assert first is not None
    w.complete(first)
    assert w.fetch() is None
    q.remove_global_rate_limit()
    done = process_all(env, w, 3)
    assert len(done) == 3
    assert q.get_job_counts("completed")["completed"] == 4
    assert env.now() - (first.processed_on or 0) < 10_000, "did not wait for the 10 s window"


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_case_40_queue_rate_limit_needs_a_positive_whole_number_of_ms(env: Env, bad: object) -> None:
    from queuesim import OptionError

    q: Queue = env.queue()
    with pytest.raises(OptionError, match="ms"):
        q.rate_limit(bad)  # type: ignore[arg-type]
    assert env.conn.client.exists(q.keys.limiter) == 0
