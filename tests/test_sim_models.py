"""Load and failure models: service-time laws, arrival processes, failure classes, dependencies, timeouts and the
health rules. Statistical checks use a fixed seed and a tolerance of several standard errors derived from the
law itself, not tuned to the output.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from queuesim import OptionError
from queuesim.sim import (
    Batch,
    Burst,
    Dependency,
    Deterministic,
    Diurnal,
    Empirical,
    Erlang,
    Exponential,
    Failures,
    Gamma,
    HealthRules,
    HyperExponential,
    JobType,
    Lognormal,
    Periodic,
    Piecewise,
    Poisson,
    Saga,
    SagaStep,
    Simulation,
    TraceReplay,
    Uniform,
)
from queuesim.sim.health import evaluate
from queuesim.sim.streams import Draws

N = 40_000


@pytest.mark.parametrize("law", [
    Exponential(1_000), Uniform(0, 2_000), Erlang(2, 1_000), Gamma(0.5, 1_000), Lognormal(1_000, 2_000),
    HyperExponential.balanced(1_000, 4.0), Empirical((100, 200, 300, 1_400)), Deterministic(750),
], ids=lambda law: type(law).__name__)
def test_each_law_has_the_mean_and_scv_it_announces(law: object) -> None:
    rng = np.random.default_rng(2024)
    x = np.array([law.sample(rng) for _ in range(N)])  # type: ignore[attr-defined]
    mean, scv = law.mean_ms, law.scv  # type: ignore[attr-defined]
    sd = math.sqrt(scv) * mean
    assert abs(x.mean() - mean) <= 5 * sd / math.sqrt(N) + 1e-9
    if scv > 0:
        # the sample variance has a standard error that grows with the tail; 20% is several of them for N = 40k
        assert abs(x.var() / x.mean() ** 2 - scv) <= 0.2 * scv
    else:
        assert x.var() == 0


def test_laws_refuse_impossible_parameters_naming_the_field() -> None:
    with pytest.raises(OptionError, match="mean_ms"):
        Exponential(0)
    with pytest.raises(OptionError, match="high_ms"):
        Uniform(5, 5)
    with pytest.raises(OptionError, match="probs"):
        HyperExponential((0.5, 0.6), (1.0, 2.0))
    with pytest.raises(OptionError, match="scv"):
        HyperExponential.balanced(1_000, 0.5)
    with pytest.raises(OptionError, match="k"):
        Erlang(0, 10)


def test_empirical_law_reads_a_csv_column(tmp_path: Path) -> None:
    path = tmp_path / "durations.csv"
    path.write_text("job,duration_ms\na,100\nb,300\n")
    law = Empirical.from_csv(path)
    assert law.mean_ms == 200
    bad = tmp_path / "bad.csv"
    bad.write_text("duration_ms\n100\nfast\n")
    with pytest.raises(OptionError, match="line 3"):
        Empirical.from_csv(bad)


def count_until(process: object, until_ms: float, seed: int = 5) -> list[tuple[float, int]]:
    out = []
    for t, n in process.epochs(np.random.default_rng(seed), 0.0):  # type: ignore[attr-defined]
        if t >= until_ms:
            break
        out.append((t, n))
    return out


@pytest.mark.parametrize("law", [
    Exponential(1_000), Uniform(0, 2_000), Erlang(3, 1_000), Gamma(0.5, 1_000), Lognormal(1_000, 2_000),
    Empirical((100, 200, 300, 1_400)), Deterministic(750),
], ids=lambda law: type(law).__name__)
def test_a_block_of_samples_is_the_same_as_one_sample_after_another(law: object) -> None:
    one_by_one = np.random.default_rng(7)
    by_block = np.random.default_rng(7)
    singles = [law.sample(one_by_one) for _ in range(700)]  # type: ignore[attr-defined]
    blocks = law.sample_block(by_block, 300) + law.sample_block(by_block, 400)  # type: ignore[attr-defined]
    assert blocks == singles
    assert all(type(x) is float for x in blocks)


def test_draws_give_the_single_samples_in_order_whatever_the_block_size() -> None:
    law = Lognormal(300, 500)
    rng = np.random.default_rng(11)
    singles = [law.sample(rng) for _ in range(1_000)]
    for size in (1, 7, 256, 5_000):
        draws = Draws.of_law(law, np.random.default_rng(11), size)
        assert [draws() for _ in range(1_000)] == singles
    uniform = Draws.uniform(np.random.default_rng(3), 64)
    rng = np.random.default_rng(3)
    assert [uniform() for _ in range(200)] == [rng.random() for _ in range(200)]
    # a law with no block draw (two kinds of draw per sample) is drawn one sample at a time
    hyper = HyperExponential.balanced(1_000, 4.0)
    draws = Draws.of_law(hyper, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    assert [draws() for _ in range(300)] == [hyper.sample(rng) for _ in range(300)]
    with pytest.raises(OptionError, match="size"):
        Draws(lambda n: [0.0] * n, 0)


def test_poisson_gaps_drawn_ahead_are_the_gaps_drawn_one_at_a_time() -> None:
    ahead = list(itertools.islice(Poisson(3.6).epochs(np.random.default_rng(9), 5.0), 1_000))
    single = list(itertools.islice(Poisson(3.6).epochs(np.random.default_rng(9), 5.0, block=1), 1_000))
    assert ahead == single
    rng = np.random.default_rng(9)
    t = 5.0
    for epoch in single[:50]:
        t += float(rng.exponential(1000 / 3.6))
        assert epoch == (t, 1)


def test_a_random_batch_size_draws_between_the_gaps_of_its_poisson_process() -> None:
    # the sizes come from the same stream as the gaps: gap, size, gap, size... as if drawn one by one
    size = Empirical((1, 2, 3))
    for process in (Batch(Poisson(2.0), size), Batch(Batch(Poisson(2.0), 2), size)):
        epochs = list(itertools.islice(process.epochs(np.random.default_rng(4), 0.0), 300))
        rng = np.random.default_rng(4)
        t = 0.0
        for epoch in epochs:
            t += float(rng.exponential(500.0))
            assert epoch == (t, max(1, round(size.sample(rng))))


def test_poisson_arrivals_come_at_their_rate_with_exponential_gaps() -> None:
    epochs = count_until(Poisson(2.0), 1_000_000)  # 2,000 expected
    assert abs(len(epochs) - 2_000) <= 5 * math.sqrt(2_000)
    gaps = np.diff([t for t, _ in epochs])
    assert abs(gaps.std() / gaps.mean() - 1) < 0.1  # exponential: sd = mean


def test_periodic_batch_and_burst_arrivals_are_exact() -> None:
    assert count_until(Periodic(250, offset_ms=10), 1_000) == [(10, 1), (260, 1), (510, 1), (760, 1)]
    assert count_until(Batch(Periodic(500), size=3), 1_200) == [(0, 3), (500, 3), (1000, 3)]
    assert count_until(Burst((700, 100), 5), 10_000) == [(100, 5), (700, 5)]
    sizes = [n for _, n in count_until(Batch(Poisson(1.0), size=Empirical((1, 2, 3))), 3_000_000)]
    assert set(sizes) == {1, 2, 3}


def test_piecewise_rates_are_followed_segment_by_segment_by_thinning() -> None:
    schedule = Piecewise(((0, 1.0), (1_000_000, 4.0), (2_000_000, 0.0)), cycle_ms=3_000_000)
    epochs = np.array([t for t, _ in count_until(schedule, 6_000_000)])
    for lo, hi, rate in ((0, 1e6, 1.0), (1e6, 2e6, 4.0), (3e6, 4e6, 1.0), (4e6, 5e6, 4.0)):
        n = int(((epochs >= lo) & (epochs < hi)).sum())
        expected = rate * 1_000
        assert abs(n - expected) <= 5 * math.sqrt(expected)
    assert not ((epochs >= 2e6) & (epochs < 3e6)).any()
    assert not ((epochs >= 5e6) & (epochs < 6e6)).any()


def test_a_diurnal_cycle_is_busiest_at_its_peak() -> None:
    day = Diurnal(2.0, 0.8, period_ms=1_000_000, peak_ms=250_000)
    assert math.isclose(day.rate(250_000), 3.6)
    assert math.isclose(day.rate(750_000), 0.4)
    epochs = np.array([t for t, _ in count_until(day, 10_000_000)])
    phase = epochs % 1_000_000
    near_peak = ((phase > 150_000) & (phase < 350_000)).sum()
    near_trough = ((phase > 650_000) & (phase < 850_000)).sum()
    assert near_peak > 3 * near_trough
    assert abs(len(epochs) - 20_000) <= 5 * math.sqrt(20_000)


def test_trace_replay_reads_timestamps_from_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("timestamp_ms,user\n1700000000500,a\n1700000000000,b\n1700000002000,c\n")
    trace = TraceReplay.from_csv(path)
    assert count_until(trace, 10**13) == [(0.0, 1), (500.0, 1), (2000.0, 1)]
    secs = tmp_path / "secs.csv"
    secs.write_text("t\n1.5\n3\n")
    assert count_until(TraceReplay.from_csv(secs, column="t", unit="s", relative=False), 10**9) == [
        (1500.0, 1), (3000.0, 1)]
    with pytest.raises(OptionError, match="column"):
        TraceReplay.from_csv(secs)


def test_a_trace_replayed_in_a_simulation_adds_jobs_at_the_recorded_times() -> None:
    sim = Simulation(seed=1, backend="memory")
    sim.queue("q")
    sim.add_workers("q")
    sim.add_arrivals("q", JobType("j", Deterministic(1)), TraceReplay((5_000.4, 5_100, 9_999.6)), start_ms=1_000)
    sim.run(until_ms=20_000)
    assert list(sim.jobs()["created_ms"]) == [1_000, 1_100, 5_999]


def test_arrivals_stop_at_until_ms_and_after_limit_jobs() -> None:
    sim = Simulation(seed=1, backend="memory")
    sim.queue("q")
    sim.add_workers("q")
    sim.add_arrivals("q", JobType("a", Deterministic(1)), Periodic(100), until_ms=1_000)
    sim.add_arrivals("q", JobType("b", Deterministic(1)), Batch(Periodic(100), size=4), limit=10)
    sim.run(until_ms=5_000)
    names = sim.jobs()["name"].value_counts()
    assert (names["a"], names["b"]) == (10, 10)


def one_job(job: JobType, until_ms: int = 60_000, **worker_options: object) -> Simulation:
    sim = Simulation(seed=1, backend="memory")
    sim.queue("q", dead_letter_queue="q-dlq")
    sim.add_workers("q", **worker_options)
    sim.add_backlog("q", job, 1)
    return sim.run(until_ms=until_ms)


def test_a_permanent_error_fails_the_job_at_once_whatever_attempts_are_left() -> None:
    sim = one_job(JobType("j", Deterministic(100), failures=Failures(permanent=1.0), options={"attempts": 5}))
    job = sim.jobs().iloc[0]
    assert (job["final_state"], job["attempts"], job["finish_ms"]) == ("dlq", 1, 100)
    assert sim.event_log().iloc[-1]["reason"] == "job 1: permanent error"


def test_a_failure_decided_early_ends_the_attempt_there() -> None:
    sim = one_job(JobType("j", Deterministic(1_000), failures=Failures(retryable=1.0, decide_at=0.25)))
    job = sim.jobs().iloc[0]
    assert (job["finish_ms"], job["service_ms"]) == (250, 250)


def test_a_job_timeout_cuts_the_attempt_short() -> None:
    sim = one_job(JobType("j", Deterministic(5_000), options={"timeout": 1_000, "attempts": 1}))
    last = sim.event_log().iloc[-1]
    assert (last["time_ms"], last["to"]) == (1_000, "dlq")
    assert "timed out after 1000 ms" in last["reason"]


def test_an_outage_fails_the_calls_made_during_it() -> None:
    down = Dependency("payments", outages=((1_000, 2_000),))
    sim = Simulation(seed=1, backend="memory")
    sim.queue("q")
    sim.add_workers("q", count=2)
    sim.add_arrivals("q", JobType("pay", Deterministic(200), dependency=down), Periodic(300), until_ms=3_000)
    sim.run(until_ms=5_000)
    jobs = sim.jobs()
    decided = jobs["created_ms"] + 200  # each call is made at the end of its 200 ms of work
    in_outage = (decided >= 1_000) & (decided < 2_000)
    assert (jobs.loc[in_outage, "final_state"] == "failed").all()
    assert (jobs.loc[~in_outage, "final_state"] == "completed").all()
    assert in_outage.sum() == 3


def test_an_upstream_quota_rate_limits_the_extra_calls_without_using_attempts() -> None:
    quota = Dependency("geo", max_calls=2, window_ms=1_000)
    sim = Simulation(seed=1, backend="memory")
    sim.queue("q")
    sim.add_workers("q", count=5)
    sim.add_backlog("q", JobType("lookup", Deterministic(100), dependency=quota, options={"attempts": 1}), 5)
    sim.run(until_ms=10_000)
    jobs = sim.jobs()
    assert jobs["final_state"].eq("completed").all()
    assert jobs["attempts"].eq(1).all()  # a rate-limited answer uses no attempt
    done = jobs["finish_ms"].astype(int)
    assert (done // 1_000).value_counts().max() <= 2
    limited = sim.event_log().query("`from` == 'active' and to == 'waiting'")
    assert len(limited) >= 3
    assert limited["reason"].str.contains("rate limited").all()


def test_bad_scenario_input_is_refused_naming_the_field() -> None:
    with pytest.raises(OptionError, match="retryable"):
        Failures(retryable=0.7, permanent=0.5)
    with pytest.raises(OptionError, match="decide_at"):
        Failures(decide_at=0)
    with pytest.raises(OptionError, match="priority"):
        JobType("j", Exponential(1), options={"priority": -1})
    with pytest.raises(OptionError, match=r"j\.service"):
        JobType("j", 1000)  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="outage_error"):
        Dependency("x", outage_error="sometimes")
    with pytest.raises(OptionError, match=r"outages\[0\]"):
        Dependency("x", outages=((5, 1),))
    with pytest.raises(OptionError, match="steps"):
        Saga("s", [])
    with pytest.raises(OptionError, match="timeout"):
        Saga("s", [SagaStep("a", Exponential(1))], options={"timeout": 5})
    sim = Simulation(backend="memory")
    with pytest.raises(OptionError, match="queue"):
        sim.add_workers("nowhere")
    sim.queue("q")
    with pytest.raises(OptionError, match="process"):
        sim.add_arrivals("q", JobType("j", Exponential(1)), 5)  # type: ignore[arg-type]
    sim.add_arrivals("q", JobType("j", Exponential(1)), Poisson(1))
    with pytest.raises(OptionError, match="job"):
        sim.add_arrivals("q", JobType("j", Exponential(2)), Poisson(1))  # same name, different type
    with pytest.raises(OptionError, match="lock_duration"):
        sim.add_workers("q", lock_duration=0)
    assert sim.workers == {}


def test_health_rules_follow_the_seed() -> None:
    rules = HealthRules()
    assert evaluate(rules, waiting=5, paused=False, completed_recently=10, failed_recently=0,
                    avg_processing_ms=1_000) == ("healthy", [])
    assert evaluate(rules, waiting=1_001, paused=False, completed_recently=10, failed_recently=0,
                    avg_processing_ms=0) == ("warning", ["High queue backlog: 1001 jobs waiting"])
    assert evaluate(rules, waiting=0, paused=False, completed_recently=7, failed_recently=3,
                    avg_processing_ms=0) == ("warning", ["Elevated error rate: 30.0%"])
    assert evaluate(rules, waiting=0, paused=False, completed_recently=4, failed_recently=6,
                    avg_processing_ms=0) == ("critical", ["High error rate: 60.0%"])
    assert evaluate(rules, waiting=0, paused=False, completed_recently=1, failed_recently=0,
                    avg_processing_ms=31_000) == ("warning", ["Slow processing: 31.0s average"])
    assert evaluate(rules, waiting=3, paused=False, completed_recently=0, failed_recently=0,
                    avg_processing_ms=0) == ("critical", ["No jobs being processed despite queue backlog"])
    status, alerts = evaluate(rules, waiting=2_000, paused=True, completed_recently=0, failed_recently=0,
                              avg_processing_ms=0)
    assert status == "critical"
    assert alerts[0] == "Queue is paused"
    with pytest.raises(OptionError, match="interval_ms"):
        HealthRules(interval_ms=0)


def test_the_health_monitor_raises_alerts_on_a_timeline() -> None:
    sim = Simulation(seed=1, backend="memory")
    sim.queue("q")
    sim.add_workers("q")
    sim.add_arrivals("q", JobType("j", Deterministic(100)), Periodic(1_000), until_ms=300_000)
    sim.pause_queue("q", at_ms=100_000)
    sim.resume_queue("q", at_ms=175_000)
    monitor = sim.monitor_health()
    sim.run(until_ms=300_000)
    checks = monitor.check_log()
    assert list(checks["time_ms"][:3]) == [30_000, 60_000, 90_000]
    assert len(checks) == 9
    by_time = checks.set_index("time_ms")["status"]
    assert list(by_time.loc[[30_000, 60_000, 90_000]]) == ["healthy"] * 3
    assert list(by_time.loc[[120_000, 150_000]]) == ["critical"] * 2
    assert by_time.loc[240_000] == "healthy"
    alerts = monitor.alert_log()
    assert set(alerts["time_ms"]) == {120_000, 150_000}
    assert set(alerts["alert"]) == {"Queue is paused"}
    assert checks.set_index("time_ms").loc[60_000, "throughput_per_min"] == 60
