"""Simulated workers drive the real engine: virtual time, idle waiting, lock renewal, stalled checks and faults.

Most tests run on both simulation backends (the embedded fakeredis server and the memory backend) with tiny
scenarios whose expected times follow from BullMQ's rules (lock expiry, stalled-check cadence, backoff).
"""

from __future__ import annotations

import pandas as pd
import pytest

from queuesim import OptionError
from queuesim.sim import Burst, Deterministic, Exponential, Failures, JobType, Periodic, Poisson, Simulation

BACKENDS = ["memory", "fakeredis"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def rows(sim: Simulation, job_id: str, queue: str = "q") -> pd.DataFrame:
    log = sim.event_log()
    return log[(log["job_id"] == job_id) & (log["queue"] == queue)].reset_index(drop=True)


def only_job(sim: Simulation) -> pd.Series:
    jobs = sim.jobs()
    assert len(jobs) == 1
    return jobs.iloc[0]


def test_engine_timestamps_are_the_simpy_time_in_ms(backend: str) -> None:
    sim = Simulation(seed=1, backend=backend)
    q = sim.queue("q")
    sim.add_workers("q")
    sim.add_arrivals("q", JobType("j", Deterministic(500)), Burst((1234,), 1))
    sim.run(until_ms=5000)
    job = q.get_job("1")
    assert job is not None
    assert (job.timestamp, job.processed_on, job.finished_on) == (1234, 1234, 1734)
    assert list(rows(sim, "1")["time_ms"]) == [1234, 1234, 1734]


def test_idle_workers_do_not_poll_between_arrivals() -> None:
    # Given 4 idle workers and one job every 10 minutes for an hour
    sim = Simulation(seed=1, backend="memory")
    sim.queue("q")
    sim.add_workers("q", count=4)
    sim.add_arrivals("q", JobType("j", Deterministic(1000)), Periodic(600_000, offset_ms=1))
    backend = sim.connection.backend
    fetches = 0
    original = backend.move_to_active

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal fetches
        fetches += 1
        return original(*args, **kwargs)

    backend.move_to_active = counting  # type: ignore[method-assign]
    steps = 0
    step = sim.env.step

    def counting_step() -> None:
        nonlocal steps
        steps += 1
        step()

    sim.env.step = counting_step  # type: ignore[method-assign]
    sim.run(until_ms=3_600_000)
    # Then each job costs one fetch for the woken worker (plus the first fetch of each worker); and the scheduler
    # only handled timers (lock renewals, stalled checks), nothing per simulated millisecond
    assert sim.jobs()["final_state"].eq("completed").sum() == 6
    assert fetches <= 4 + 6
    stalled_checks = 4 * (3_600_000 // 30_001 + 1)
    renewal_ticks = 4 * (3_600_000 // 7_500)  # BullMQ's renewal timer: every lock_renew_time / 2
    assert steps < 2 * (stalled_checks + renewal_ticks) + 100


def test_lock_renewal_keeps_a_long_job_from_stalling(backend: str) -> None:
    sim = Simulation(seed=1, backend=backend)
    sim.queue("q")
    sim.add_workers("q", count=2, lock_duration=10_000, stalled_interval=5_000)
    sim.add_backlog("q", JobType("long", Deterministic(60_000)), 1)
    sim.run(until_ms=70_000)
    job = only_job(sim)
    assert (job["final_state"], job["stalls"], job["starts"]) == ("completed", 0, 1)


def test_a_simulated_long_job_is_renewed_on_bullmqs_timer(backend: str) -> None:
    sim = Simulation(seed=1, backend=backend)
    sim.queue("q")
    [worker] = sim.add_workers("q", lock_duration=10_000, stalled_interval=30_000)
    sim.add_backlog("q", JobType("short", Deterministic(3_000)), 1)
    sim.add_backlog("q", JobType("long", Deterministic(20_000)), 1)
    engine = sim.workers[worker].engine
    renewals: list[tuple[int, list[str]]] = []
    extend = engine.backend.extend_locks

    def spy(queue: str, jobs: list[tuple[str, str]], duration: int) -> list[str]:
        renewals.append((int(sim.env.now), [job_id for job_id, _ in jobs]))
        return extend(queue, jobs, duration)

    engine.backend.extend_locks = spy  # type: ignore[method-assign]
    sim.run(until_ms=30_000)
    # renewal time 5 s: the timer fires every 2.5 s and renews locks older than 2.5 s. The short job is 2.5 s
    # old at the first tick, so it is never renewed; the long one, taken at 3 s, is renewed at 7.5 s (4.5 s
    # old), skipped at 10 s (2.5 s since), renewed at 12.5 s, and so on until it ends at 23 s
    assert renewals == [(7_500, ["2"]), (12_500, ["2"]), (17_500, ["2"]), (22_500, ["2"])]


def test_without_lock_renewal_the_same_job_stalls() -> None:
    sim = Simulation(seed=1, backend="memory")
    sim.queue("q")
    [holder] = sim.add_workers("q", lock_duration=10_000, stalled_interval=5_000, skip_lock_renewal=True)
    sim.add_backlog("q", JobType("long", Deterministic(60_000)), 1)
    sim.add_workers("q", at_ms=1, lock_duration=10_000, stalled_interval=5_000)
    sim.run(until_ms=150_000)
    job = only_job(sim)
    assert job["stalls"] >= 1
    stalled = rows(sim, "1").query("reason == 'stalled'")
    assert stalled.iloc[0]["worker"] == holder
    # the lock lapsed at 10,000 ms; checks run every 5,001 ms, so it is found at the second check after that
    assert 10_000 < stalled.iloc[0]["time_ms"] <= 10_000 + 2 * 5_001


def test_a_crashed_workers_job_comes_back_through_another_workers_stalled_check(backend: str) -> None:
    # Given two workers, one job of 30 s; the worker holding it crashes at 12 s
    sim = Simulation(seed=1, backend=backend)
    sim.queue("q")
    sim.add_workers("q", count=2, lock_duration=10_000, stalled_interval=5_000)
    sim.add_backlog("q", JobType("work", Deterministic(30_000)), 1)
    sim.run(until_ms=1)
    holder = rows(sim, "1").iloc[-1]["worker"]
    sim.crash_worker(holder, at_ms=12_000)
    sim.run(until_ms=120_000)
    log = rows(sim, "1")
    # Then the job stalls (the crashed worker named), restarts on the other worker and completes once
    assert list(log["to"]) == ["waiting", "active", "waiting", "active", "completed"]
    stall = log.iloc[2]
    assert (stall["reason"], stall["worker"], stall["attempt"]) == ("stalled", holder, 1)
    # its lock was last renewed at 10,000 ms (every 5,000 ms): gone after 20,000, found within two checks
    assert 20_000 < stall["time_ms"] <= 20_000 + 2 * 5_001
    assert log.iloc[3]["worker"] != holder
    job = only_job(sim)
    assert (job["attempts"], job["starts"], job["stalls"], job["final_state"]) == (1, 2, 1, "completed")
    incidents = sim.recorder.incident_log()
    assert list(incidents["kind"]) == ["crash"]
    assert incidents.iloc[0]["detail"] == "1"


def test_a_crash_with_no_other_worker_leaves_the_job_active() -> None:
    sim = Simulation(seed=1, backend="memory")
    q = sim.queue("q")
    [w] = sim.add_workers("q", lock_duration=5_000, stalled_interval=5_000)
    sim.add_backlog("q", JobType("work", Deterministic(30_000)), 1)
    sim.crash_worker(w, at_ms=1_000)
    sim.run(until_ms=100_000)
    assert only_job(sim)["final_state"] == "unfinished"
    assert q.get_job_counts("active")["active"] == 1


def test_a_worker_frozen_past_its_lock_loses_the_job_and_its_late_result_is_discarded(backend: str) -> None:
    sim = Simulation(seed=1, backend=backend)
    sim.queue("q")
    [w1] = sim.add_workers("q", lock_duration=5_000, stalled_interval=2_000)
    sim.add_backlog("q", JobType("work", Deterministic(30_000)), 1)
    [w2] = sim.add_workers("q", at_ms=1, lock_duration=5_000, stalled_interval=2_000)
    sim.freeze_worker(w1, at_ms=1_000, duration_ms=20_000)
    sim.run(until_ms=100_000)
    log = rows(sim, "1")
    assert list(log["to"]) == ["waiting", "active", "waiting", "active", "completed"]
    assert list(log["worker"].iloc[1:]) == [w1, w1, w2, w2]
    # the frozen worker ran the job to its end too, but its finishing call lost: the lock is someone else's
    # (after thawing at 21 s its lock renewals fail first: the job is not its own any more)
    incidents = sim.recorder.incident_log()
    kinds = list(incidents["kind"])
    assert kinds[0] == "freeze"
    assert kinds[-1] == "lock-lost"
    assert set(kinds[1:-1]) == {"lock-renewal-failed"}
    assert incidents.iloc[1]["time_ms"] >= 21_000
    assert (incidents.iloc[-1]["worker"], incidents.iloc[-1]["time_ms"]) == (w1, 30_000)
    job = only_job(sim)
    assert (job["starts"], job["stalls"], job["attempts"]) == (2, 1, 1)


def test_max_stalled_count_zero_fails_a_stalled_job_at_its_next_fetch(backend: str) -> None:
    sim = Simulation(seed=1, backend=backend)
    sim.queue("q")
    [w1] = sim.add_workers("q", lock_duration=5_000, stalled_interval=2_000, max_stalled_count=0)
    sim.add_backlog("q", JobType("work", Deterministic(30_000), options={"attempts": 3}), 1)
    [w2] = sim.add_workers("q", at_ms=1, lock_duration=5_000, stalled_interval=2_000, max_stalled_count=0)
    sim.crash_worker(w1, at_ms=1_000)
    sim.run(until_ms=60_000)
    log = rows(sim, "1")
    assert list(log["to"]) == ["waiting", "active", "waiting", "active", "failed"]
    last = log.iloc[-1]
    assert (last["worker"], last["reason"]) == (w2, "job stalled more than allowable limit")
    # failed without running: the fetch and the failure happen at the same instant, attempts are ignored
    assert log.iloc[3]["time_ms"] == last["time_ms"]
    assert only_job(sim)["attempts"] == 1


def test_graceful_removal_finishes_the_running_job_and_takes_no_more() -> None:
    sim = Simulation(seed=1, backend="memory")
    sim.queue("q")
    w1, w2 = sim.add_workers("q", count=2)
    sim.add_backlog("q", JobType("work", Deterministic(10_000)), 6)
    sim.remove_workers(w1, at_ms=5_000)
    sim.run(until_ms=100_000)
    log = sim.event_log()
    by_w1 = log[(log["worker"] == w1) & (log["to"] == "active")]
    assert list(by_w1["time_ms"]) == [0]
    assert sim.workers[w1].state == "closed"
    assert sim.jobs()["final_state"].eq("completed").all()
    assert log[log["to"] == "completed"]["time_ms"].max() == 50_000  # w2 did the other five, one after another
    assert (sim.faults()["action"] == "remove-workers").sum() == 1
    assert w2 in set(log["worker"])


def test_pausing_the_queue_stops_new_starts_until_it_resumes(backend: str) -> None:
    sim = Simulation(seed=1, backend=backend)
    sim.queue("q")
    sim.add_workers("q", count=2)
    sim.add_arrivals("q", JobType("j", Deterministic(300)), Periodic(1_000), until_ms=20_000)
    sim.pause_queue("q", at_ms=5_000)
    sim.resume_queue("q", at_ms=12_500)
    sim.run(until_ms=25_000)
    starts = sim.event_log().query("to == 'active'")["time_ms"]
    assert not ((starts > 5_000) & (starts < 12_500)).any()
    assert (starts == 12_500).sum() == 2  # both idle workers woken at once by the resume
    assert sim.jobs()["final_state"].eq("completed").all()


def test_a_backlog_is_processed_from_time_zero(backend: str) -> None:
    sim = Simulation(seed=1, backend=backend)
    sim.queue("q")
    sim.add_workers("q", count=2)
    sim.add_backlog("q", JobType("j", Deterministic(100)), 20)
    sim.run(until_ms=5_000)
    jobs = sim.jobs()
    assert jobs["final_state"].eq("completed").all()
    assert int(jobs["finish_ms"].max()) == 1_000  # 20 jobs of 100 ms on 2 workers, back to back


def test_an_idle_worker_starts_a_delayed_job_exactly_when_it_is_due(backend: str) -> None:
    sim = Simulation(seed=1, backend=backend)
    sim.queue("q")
    sim.add_workers("q")
    sim.add_arrivals("q", JobType("later", Deterministic(10), options={"delay": 5_000}), Burst((700,), 1))
    sim.run(until_ms=10_000)
    log = rows(sim, "1")
    assert list(zip(log["time_ms"], log["from"], log["to"], strict=True)) == [
        (700, "", "delayed"), (5_700, "delayed", "waiting"), (5_700, "waiting", "active"),
        (5_710, "active", "completed")]


def test_a_backoff_retry_restarts_exactly_at_its_due_time(backend: str) -> None:
    sim = Simulation(seed=1, backend=backend)
    sim.queue("q")
    sim.add_workers("q")
    flaky = JobType("flaky", Deterministic(100), failures=Failures(retryable=1.0),
                    options={"attempts": 3, "backoff": {"type": "exponential", "delay": 1_000}})
    sim.add_backlog("q", flaky, 1)
    sim.run(until_ms=10_000)
    log = rows(sim, "1")
    starts = list(log.query("to == 'active'")["time_ms"])
    assert starts == [0, 1_100, 3_200]  # backoffs 1,000 then 2,000 ms, counted from each failure
    assert list(log.query("to == 'active'")["attempt"]) == [1, 2, 3]
    assert log.iloc[-1]["to"] == "failed"
    assert only_job(sim)["attempts"] == 3


def test_a_worker_limiter_caps_the_starts_per_window(backend: str) -> None:
    sim = Simulation(seed=1, backend=backend)
    sim.queue("q")
    sim.add_workers("q", concurrency=4, limiter={"max": 2, "duration": 1_000})
    sim.add_backlog("q", JobType("j", Deterministic(10)), 8)
    sim.run(until_ms=10_000)
    starts = sim.event_log().query("to == 'active'")["time_ms"]
    assert len(starts) == 8
    assert (starts // 1_000).value_counts().max() <= 2
    assert starts.max() >= 3_000  # 8 starts at 2 per second need at least 4 windows


def test_scheduling_a_fault_for_an_unknown_worker_is_refused_before_anything_runs() -> None:
    sim = Simulation(seed=1, backend="memory")
    sim.queue("q")
    later = sim.add_workers("q", at_ms=5_000)
    with pytest.raises(OptionError, match="worker_id"):
        sim.crash_worker("q-w9", at_ms=1_000)
    with pytest.raises(OptionError, match="duration_ms"):
        sim.freeze_worker(later[0], at_ms=6_000, duration_ms=0)
    sim.crash_worker(later[0], at_ms=6_000)  # a worker announced for later is fine
    sim.run(until_ms=10_000)
    assert list(sim.faults()["action"]) == ["add-workers", "crash-worker"]


def test_a_real_redis_is_refused_because_its_ttls_run_in_wall_time() -> None:
    with pytest.raises(OptionError, match=r"backend.*wall time"):
        Simulation(backend="redis://127.0.0.1:6379/0")
    with pytest.raises(OptionError, match=r"backend.*fakeredis, memory"):
        Simulation(backend="postgres")
    assert Simulation().connection.is_fake


def test_poisson_arrivals_keep_running_until_the_run_ends() -> None:
    sim = Simulation(seed=3, backend="memory")
    sim.queue("q")
    sim.add_workers("q", count=3)
    sim.add_arrivals("q", JobType("j", Exponential(500)), Poisson(2.0))
    sim.run(until_ms=200_000)
    assert 300 < sim.arrivals["q"] < 500  # 400 expected, ±5 standard deviations
    assert sim.jobs()["created_ms"].max() < 200_000


def test_a_delay_from_the_queues_default_options_also_wakes_an_idle_worker_when_due() -> None:
    sim = Simulation(seed=1, backend="memory")
    sim.queue("q", default_job_options={"delay": 2_000})
    sim.add_workers("q")
    sim.add_arrivals("q", JobType("j", Deterministic(10)), Burst((100,), 1))
    sim.run(until_ms=5_000)
    assert list(sim.event_log().query("to == 'active'")["time_ms"]) == [2_100]


def test_a_job_without_a_job_type_stops_the_run_with_a_clear_error() -> None:
    sim = Simulation(seed=1, backend="memory")
    q = sim.queue("q")
    sim.add_workers("q")
    q.add("stranger")  # added behind the simulation's back: nothing says how long it takes
    with pytest.raises(OptionError, match="stranger"):
        sim.run(until_ms=1_000)


def test_running_until_the_current_time_is_allowed_and_changes_nothing() -> None:
    sim = Simulation(seed=1, backend="memory")
    sim.queue("q")
    sim.add_workers("q")
    sim.add_backlog("q", JobType("work", Deterministic(1_000)), 2)
    sim.run(until_ms=1_500)
    before = sim.jobs()
    assert sim.run(until_ms=1_500).now_ms == 1_500
    pd.testing.assert_frame_equal(sim.jobs(), before)
    sim.run(until_ms=1_500, drain=True)  # a drain from there still runs the queue empty
    assert sim.jobs()["final_state"].eq("completed").sum() == 2
    with pytest.raises(OptionError, match="until_ms"):
        sim.run(until_ms=1_499)
