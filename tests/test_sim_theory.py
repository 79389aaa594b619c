"""Simulation against queueing theory: rows 1, 3, 4, 7, 9, 14, 15, 16 and 25 of theory-oracles.md.

Each test runs R independent replications of a scenario (seeded), drops the warm-up, and asserts that the exact
value lies inside the 95% t-interval of the replication means. The tolerance is that interval, nothing else; a
second assertion checks that the interval is narrow enough for the test to mean something.

Time unit: the mean service time is 1,000 ms, so rates per second are the oracle's λ and times divided by
1,000 are the oracle's times. The full set runs on the memory backend (much faster); a smaller set runs on
fakeredis, the Lua scripts of the Redis backend.
"""

from __future__ import annotations

from functools import partial

import pytest

from queuesim import theory
from queuesim.analysis.metrics import conservation, little_identity
from queuesim.sim import (
    Deterministic,
    Exponential,
    Failures,
    JobType,
    Law,
    Poisson,
    Replications,
    Simulation,
    replicate,
)

MS = 1_000.0  # one mean service time
SEED = 1


def queue_model(sim: Simulation, *, rate_per_s: float, servers: int, law: Law) -> None:
    """Poisson arrivals, ``servers`` workers of concurrency 1, a first-come-first-served queue."""
    sim.queue("q")
    sim.add_workers("q", count=servers)
    sim.add_arrivals("q", JobType("j", law, options={"remove_on_complete": True}), Poisson(rate_per_s))


def priority_model(sim: Simulation) -> None:
    """Two classes on one worker: 'high' (BullMQ priority 1, λ = 0.3) and 'low' (priority 2, λ = 0.5)."""
    sim.queue("q")
    sim.add_workers("q")
    for name, priority, rate in (("high", 1, 0.3), ("low", 2, 0.5)):
        sim.add_arrivals("q", JobType(name, Exponential(MS), priority=priority,
                                      options={"remove_on_complete": True}), Poisson(rate))


def retry_model(sim: Simulation, *, attempts: int, backoff_ms: int | None, rate_per_s: float = 0.5,
                p_fail: float = 0.2) -> None:
    """Each attempt fails with probability p at the end of a full exponential service (a RetryableError)."""
    sim.queue("q", dead_letter_queue="q-dlq")
    sim.add_workers("q")
    options: dict[str, object] = {"attempts": attempts, "remove_on_complete": True}
    if backoff_ms:
        options["backoff"] = {"type": "exponential", "delay": backoff_ms}
    sim.add_arrivals("q", JobType("j", Exponential(MS), failures=Failures(retryable=p_fail), options=options),
                     Poisson(rate_per_s))


def wait_by_class(sim: Simulation, warmup_ms: int, end_ms: int) -> dict[str, float]:
    jobs = sim.jobs()
    window = jobs[(jobs["created_ms"] >= warmup_ms) & (jobs["created_ms"] < end_ms)]
    out = {f"wait_{name}_ms": float(part["wait_ms"].astype(float).mean()) for name, part in window.groupby("name")}
    out["unfinished"] = float(window["final_state"].eq("unfinished").sum())
    return out


def simulate(model: object, *, backend: str, reps: int, warmup_s: int, window_s: int, tail_s: int,
             measure: object = None) -> Replications:
    end = (warmup_s + window_s) * 1000
    reps_out = replicate(model, replications=reps, seed=SEED, backend=backend, until_ms=end + tail_s * 1000,  # type: ignore[arg-type]
                         warmup_ms=warmup_s * 1000, end_ms=end, measure=measure, progress=False)  # type: ignore[arg-type]
    if "unfinished" in reps_out.results:
        # every job of the window finished before the run stopped, so no long sojourn was left out
        assert reps_out.results["unfinished"].sum() == 0
    return reps_out


def expect(reps: Replications, metric: str, exact: float, *, scale: float = 1.0, sharper_than: float) -> None:
    """The exact value lies in the 95% CI of ``metric`` (divided by ``scale``), and that CI is narrower than
    ``sharper_than`` (relative half-width), so the test could have failed."""
    result = reps.check(metric, exact, scale)
    print(f"{metric}: {result}")
    assert result.ok, f"{metric}: {result}"
    assert result.relative_half_width < sharper_than, f"{metric}: CI too wide to test anything: {result}"


# --- the memory backend: every row ---------------------------------------------------------------------------


@pytest.mark.slow
def test_row_01_mm1_at_rho_0_8() -> None:
    reps = simulate(partial(queue_model, rate_per_s=0.8, servers=1, law=Exponential(MS)), backend="memory",
                    reps=10, warmup_s=1_500, window_s=12_000, tail_s=300)
    exact = theory.mm1(0.8, 1.0)
    expect(reps, "utilisation", exact.rho, sharper_than=0.05)
    expect(reps, "mean_sojourn_ms", exact.mean_sojourn, scale=MS, sharper_than=0.15)
    expect(reps, "mean_in_system", exact.mean_in_system, sharper_than=0.15)
    expect(reps, "mean_queued", exact.mean_queue, sharper_than=0.2)


@pytest.mark.slow
def test_row_03_mm2_erlang_c_at_rho_0_8() -> None:
    reps = simulate(partial(queue_model, rate_per_s=1.6, servers=2, law=Exponential(MS)), backend="memory",
                    reps=8, warmup_s=900, window_s=6_000, tail_s=150)
    exact = theory.mmc(1.6, 1.0, 2)
    expect(reps, "p_wait", exact.p_wait, sharper_than=0.08)
    expect(reps, "mean_sojourn_ms", exact.mean_sojourn, scale=MS, sharper_than=0.12)
    expect(reps, "mean_queued", exact.mean_queue, sharper_than=0.2)


@pytest.mark.slow
def test_row_04_mm4_erlang_c_at_rho_0_8() -> None:
    reps = simulate(partial(queue_model, rate_per_s=3.2, servers=4, law=Exponential(MS)), backend="memory",
                    reps=8, warmup_s=450, window_s=3_000, tail_s=60)
    exact = theory.mmc(3.2, 1.0, 4)
    expect(reps, "p_wait", exact.p_wait, sharper_than=0.08)
    expect(reps, "mean_sojourn_ms", exact.mean_sojourn, scale=MS, sharper_than=0.1)
    expect(reps, "utilisation", exact.rho, sharper_than=0.05)


@pytest.mark.slow
def test_row_07_md1_pollaczek_khinchine() -> None:
    reps = simulate(partial(queue_model, rate_per_s=0.8, servers=1, law=Deterministic(MS)), backend="memory",
                    reps=12, warmup_s=600, window_s=14_000, tail_s=200)
    exact = theory.md1(0.8, 1.0)
    expect(reps, "mean_wait_ms", exact.mean_wait, scale=MS, sharper_than=0.15)
    expect(reps, "mean_queued", exact.mean_queue, sharper_than=0.15)


@pytest.mark.slow
def test_row_09_nonpreemptive_priorities_follow_cobham() -> None:
    reps = simulate(priority_model, backend="memory", reps=10, warmup_s=1_500, window_s=10_000, tail_s=600,
                    measure=wait_by_class)
    high, low = theory.priority_nonpreemptive([0.3, 0.5], [1.0, 1.0])
    expect(reps, "wait_high_ms", high, scale=MS, sharper_than=0.1)
    expect(reps, "wait_low_ms", low, scale=MS, sharper_than=0.15)


@pytest.mark.slow
def test_row_14_unlimited_immediate_retries() -> None:
    reps = simulate(partial(retry_model, attempts=1_000, backoff_ms=None), backend="memory", reps=8,
                    warmup_s=300, window_s=6_000, tail_s=200)
    exact = theory.retry_unlimited(0.5, 1.0, 0.2)
    expect(reps, "mean_attempts", exact.mean_attempts, sharper_than=0.03)
    expect(reps, "utilisation", exact.rho, sharper_than=0.05)
    expect(reps, "mean_sojourn_ms", exact.mean_sojourn, scale=MS, sharper_than=0.1)


@pytest.mark.slow
def test_row_15_three_attempts_retried_at_the_tail_of_the_queue() -> None:
    reps = simulate(partial(retry_model, attempts=3, backoff_ms=None), backend="memory", reps=8,
                    warmup_s=300, window_s=6_000, tail_s=200)
    same_worker = theory.retry_same_worker(0.5, 1.0, 0.2, 3)
    tail = theory.retry_via_queue(0.5, 1.0, 0.2, 3)  # BullMQ: a retry joins the tail of the queue
    expect(reps, "mean_attempts", same_worker.mean_attempts, sharper_than=0.03)
    expect(reps, "dlq_rate", same_worker.p_dead, sharper_than=0.5)
    expect(reps, "mean_sojourn_ms", tail.mean_sojourn, scale=MS, sharper_than=0.1)
    # the oracle's same-worker value (3.24) is within 0.7% of the tail value: inside the same interval
    expect(reps, "mean_sojourn_ms", same_worker.mean_sojourn, scale=MS, sharper_than=0.1)


@pytest.mark.slow
def test_row_16_backoff_off_the_worker() -> None:
    reps = simulate(partial(retry_model, attempts=3, backoff_ms=int(MS)), backend="memory", reps=8,
                    warmup_s=300, window_s=6_000, tail_s=200)
    exact = theory.retry_via_queue(0.5, 1.0, 0.2, 3, backoff=(1.0, 2.0))
    expect(reps, "utilisation", exact.rho, sharper_than=0.05)
    expect(reps, "mean_sojourn_ms", exact.mean_sojourn, scale=MS, sharper_than=0.1)
    expect(reps, "goodput_per_s", exact.goodput, sharper_than=0.05)


@pytest.mark.parametrize("backend", ["memory", "fakeredis"])
def test_row_25_littles_law_and_conservation_hold_exactly_for_mm4_at_rho_0_9(backend: str) -> None:
    sim = Simulation(seed=SEED, backend=backend)
    queue_model(sim, rate_per_s=3.6, servers=4, law=Exponential(MS))
    sim.run(until_ms=600_000 if backend == "memory" else 60_000, drain=True)
    log, jobs = sim.event_log(), sim.jobs()
    sides = little_identity(log, jobs, sim.now_ms)
    assert sides["area"] == sides["sojourn_sum"] == int(jobs["sojourn_ms"].sum())
    balance = conservation(jobs, sim.arrivals["q"])
    assert balance["balanced"] == 1
    assert balance["completed"] == balance["arrivals"] > 0
    assert sim.busy_ms == int(jobs["service_ms"].sum())


# --- fakeredis: a smaller set ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_row_04_mm4_at_rho_0_5_on_fakeredis() -> None:
    reps = simulate(partial(queue_model, rate_per_s=2.0, servers=4, law=Exponential(MS)), backend="fakeredis",
                    reps=6, warmup_s=30, window_s=300, tail_s=20)
    exact = theory.mmc(2.0, 1.0, 4)
    expect(reps, "utilisation", exact.rho, sharper_than=0.15)
    expect(reps, "mean_sojourn_ms", exact.mean_sojourn, scale=MS, sharper_than=0.12)


@pytest.mark.slow
def test_row_14_unlimited_retries_on_fakeredis() -> None:
    reps = simulate(partial(retry_model, attempts=1_000, backoff_ms=None), backend="fakeredis", reps=6,
                    warmup_s=60, window_s=1_000, tail_s=100)
    exact = theory.retry_unlimited(0.5, 1.0, 0.2)
    expect(reps, "mean_attempts", exact.mean_attempts, sharper_than=0.05)
    expect(reps, "mean_sojourn_ms", exact.mean_sojourn, scale=MS, sharper_than=0.25)
