"""Replications: independent runs in parallel through an Executor, t-based CIs, common random numbers."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from functools import partial

import pytest

from queuesim import OptionError
from queuesim.sim import Exponential, JobType, Poisson, SerialExecutor, Simulation, compare, replicate


def mmc(sim: Simulation, servers: int = 2, rate_per_s: float = 1.2) -> None:
    """An M/M/c queue with mean service 1 s (module level, so a process pool can pickle it)."""
    sim.queue("q")
    sim.add_workers("q", count=servers)
    sim.add_arrivals("q", JobType("j", Exponential(1_000), options={"remove_on_complete": True}),
                     Poisson(rate_per_s))


def measure_count(sim: Simulation, warmup_ms: int, end_ms: int) -> dict[str, float]:
    jobs = sim.jobs()
    return {"jobs": float(len(jobs)), "first_ms": float(jobs["created_ms"].min())}


def run(executor: object = None, seed: int = 3, reps: int = 4, **kw: object) -> object:
    return replicate(partial(mmc, servers=2), replications=reps, seed=seed, backend="memory", until_ms=200_000,
                     warmup_ms=20_000, end_ms=180_000, executor=executor, progress=False, **kw)  # type: ignore[arg-type]


def test_replications_give_one_row_per_run_and_a_t_interval_per_metric() -> None:
    reps = run(SerialExecutor())
    assert len(reps) == 4
    est = reps.estimate("mean_sojourn_ms")
    values = reps.results["mean_sojourn_ms"]
    assert est.n == 4
    assert est.mean == pytest.approx(values.mean())
    assert est.half_width == pytest.approx(3.182446 * values.std(ddof=1) / 2, rel=1e-6)  # t(0.975, 3) s/sqrt(4)
    assert est.low == pytest.approx(est.mean - est.half_width)
    table = reps.table()
    assert {"mean", "half_width", "low", "high", "n"} <= set(table.columns)
    assert "utilisation" in table.index


def test_the_replications_are_independent_and_reproducible() -> None:
    a = run(SerialExecutor())
    b = run(SerialExecutor())
    c = run(SerialExecutor(), seed=4)
    assert a.results.equals(b.results)
    assert not a.results.equals(c.results)
    assert a.results["mean_sojourn_ms"].nunique() == 4  # four different runs, not one repeated


def test_a_process_pool_gives_the_same_results_as_running_in_process() -> None:
    with ProcessPoolExecutor(2) as pool:
        parallel = run(pool)
    assert parallel.results.equals(run(SerialExecutor()).results)


def test_the_default_executor_is_a_process_pool_and_the_progress_bar_reports(capsys: pytest.CaptureFixture[str],
                                                                            ) -> None:
    reps = replicate(mmc, replications=2, seed=1, backend="memory", until_ms=20_000, measure=measure_count,
                     progress=True)
    assert list(reps.results.columns) == ["jobs", "first_ms"]
    assert "2/2" in capsys.readouterr().err


def test_common_random_numbers_make_the_paired_difference_sharper() -> None:
    variants = {"two": partial(mmc, servers=2), "three": partial(mmc, servers=3)}
    comparison = compare(variants, replications=6, seed=5, backend="memory", until_ms=150_000, warmup_ms=20_000,
                         end_ms=130_000, executor=SerialExecutor(), progress=False)
    # the same arrivals and first service times in both variants: the same number of jobs
    assert comparison["two"].results["arrivals"].equals(comparison["three"].results["arrivals"])
    diff = comparison.difference("two", "three", "mean_sojourn_ms")
    assert diff.mean > 0  # a third worker shortens the sojourn
    separate = comparison["two"].estimate("mean_sojourn_ms").half_width
    assert diff.half_width < separate
    assert list(comparison.table("mean_sojourn_ms").index) == ["two", "three"]


def test_replicate_refuses_a_window_outside_the_run() -> None:
    with pytest.raises(OptionError, match="warmup_ms"):
        replicate(mmc, replications=2, until_ms=10_000, warmup_ms=10_000, executor=SerialExecutor())
    with pytest.raises(OptionError, match="model"):
        replicate("mmc", replications=2, until_ms=10_000)  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="replications"):
        replicate(mmc, replications=0, until_ms=10_000)
    with pytest.raises(OptionError, match="metric"):
        run(SerialExecutor(), reps=2).estimate("nope")


def broken(sim: Simulation) -> None:
    sim.add_workers("missing")  # no such queue


def test_a_scenario_error_raised_in_a_worker_process_reaches_the_caller_intact() -> None:
    with pytest.raises(OptionError, match="unknown queue 'missing'") as info:
        replicate(broken, replications=2, until_ms=1_000, progress=False)  # default: a process pool
    assert info.value.field == "queue"


def test_a_model_that_cannot_reach_a_worker_process_is_refused_with_the_fix_named() -> None:
    def local_model(sim: Simulation) -> None:  # defined inside a function: not picklable
        mmc(sim)

    with pytest.raises(OptionError, match="SerialExecutor"):
        replicate(local_model, replications=2, until_ms=1_000, progress=False)
    reps = replicate(local_model, replications=2, until_ms=1_000, progress=False, executor=SerialExecutor(),
                     backend="memory")
    assert len(reps) == 2
