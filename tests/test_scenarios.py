"""Scenario files: validation with messages naming file and field, overrides, the resolved configuration, the
run's tables and summary, and the closed-form model a scenario maps to."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from queuesim import theory
from queuesim.analysis.metrics import integral, state_counts
from queuesim.scenario import (
    ScenarioError,
    builtin_scenarios,
    dump_toml,
    load_scenario,
    run_scenario,
    theory_for,
)
from queuesim.scenario.runner import JOBS_CSV_COLUMNS, jobs_table, run_many, scenario_laws, timeseries
from queuesim.scenario.schema import OverloadFailures, Scenario
from queuesim.scenario.theory import mmc_sojourn_cdf, quantile_from_cdf

EXPECTED_BUILTINS = {"email-queue", "notifications", "file-processing", "daily-reports", "batch-emails",
                     "order-saga", "email-outage", "crashing-workers", "retry-storm", "mmc-basics",
                     "priority-zero-surprise"}

MINIMAL = """
name = "tiny"
[horizon]
duration_s = 60
[[queues]]
name = "q"
[[jobs]]
name = "j"
service = { law = "exponential", mean_ms = 100 }
arrivals = { process = "poisson", rate_per_s = 2 }
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problem(tmp_path: Path, text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text))
    return info.value


# --- built-ins ------------------------------------------------------------------------------------------------


def test_every_scenario_the_issue_lists_is_built_in() -> None:
    assert set(builtin_scenarios()) >= EXPECTED_BUILTINS


@pytest.mark.parametrize("name", sorted(EXPECTED_BUILTINS))
def test_each_built_in_validates_and_its_resolved_toml_reads_back_to_the_same_scenario(name: str) -> None:
    loaded = load_scenario(name)
    text = dump_toml(loaded.config)
    again = load_scenario(tomllib.loads(text))
    assert again.config == loaded.config
    assert again.hash == loaded.hash
    assert loaded.scenario.title
    assert loaded.scenario.description


def test_the_email_queue_follows_the_seed_priorities_attempts_and_delay() -> None:
    s = load_scenario("email-queue").scenario
    jobs = {j.name: j for j in s.jobs}
    assert jobs["send-welcome-email"].priority == 10
    assert (jobs["send-password-reset"].priority, jobs["send-password-reset"].options.attempts) == (15, 5)
    assert jobs["send-newsletter"].priority == 5
    assert jobs["send-newsletter"].options.delay_s > 0
    assert s.queues[0].default_job_options.backoff.type == "exponential"


# --- bad files ------------------------------------------------------------------------------------------------


def test_a_misspelt_field_names_the_file_the_path_and_the_allowed_fields(tmp_path: Path) -> None:
    err = problem(tmp_path, MINIMAL.replace("rate_per_s = 2", "rate_per_sec = 2"))
    text = str(err)
    assert "s.toml" in text
    assert err.path == "jobs[0] (j).arrivals.rate_per_sec"
    assert "unknown field" in err.problems[0][1]
    assert "rate_per_s" in err.problems[0][1]
    assert "(line 10)" in text


def test_a_wrong_type_says_what_was_expected_and_what_was_given(tmp_path: Path) -> None:
    err = problem(tmp_path, MINIMAL.replace("mean_ms = 100", 'mean_ms = "fast"'))
    assert err.path == "jobs[0] (j).service.mean_ms"
    assert "must be a number, got 'fast' (string)" in str(err)


def test_a_string_is_not_silently_turned_into_a_number(tmp_path: Path) -> None:
    err = problem(tmp_path, MINIMAL.replace("duration_s = 60", 'duration_s = "60"'))
    assert err.path == "horizon.duration_s"


def test_a_negative_rate_is_refused_with_the_bound(tmp_path: Path) -> None:
    err = problem(tmp_path, MINIMAL.replace("rate_per_s = 2", "rate_per_s = -2"))
    assert err.path == "jobs[0] (j).arrivals.rate_per_s"
    assert "must be > 0, got -2" in str(err)


def test_absurd_sizes_are_refused_with_their_bound(tmp_path: Path) -> None:
    err = problem(tmp_path, MINIMAL.replace("rate_per_s = 2", "rate_per_s = 1e300"))
    assert err.path == "jobs[0] (j).arrivals.rate_per_s"
    assert "must be <= 1e+06, got 1e+300" in str(err)
    err = problem(tmp_path, MINIMAL.replace("duration_s = 60", "duration_s = 1e300"))
    assert err.path == "horizon.duration_s"
    big = 'name = "q"\nworkers = { count = 10000, concurrency = 1000 }'
    err = problem(tmp_path, MINIMAL.replace('name = "q"', big))
    assert "count x concurrency = 10,000,000 worker slots; at most 1,000,000" in str(err)


def test_two_queues_cannot_share_a_dead_letter_queue(tmp_path: Path) -> None:
    text = MINIMAL.replace('name = "q"', 'name = "q"\ndead_letter_queue = "dlq"') + """
[[queues]]
name = "r"
dead_letter_queue = "dlq"
[[jobs]]
name = "k"
queue = "r"
service = { law = "exponential", mean_ms = 100 }
arrivals = { process = "poisson", rate_per_s = 1 }
"""
    err = problem(tmp_path, text)
    assert "queues[1] (r).dead_letter_queue: 'dlq' already serves queue 'q'" in str(err)


def test_an_unknown_distribution_lists_the_known_ones(tmp_path: Path) -> None:
    err = problem(tmp_path, MINIMAL.replace("exponential", "poissonian"))
    assert err.path == "jobs[0] (j).service"
    assert "unknown distribution 'poissonian'" in str(err)
    for law in ("exponential", "deterministic", "lognormal", "erlang", "empirical"):
        assert law in str(err)


def test_an_unknown_arrival_process_and_fault_action_are_named(tmp_path: Path) -> None:
    err = problem(tmp_path, MINIMAL.replace('process = "poisson"', 'process = "cron"'))
    assert "unknown arrival process 'cron'" in str(err)
    assert "periodic" in str(err)
    err = problem(tmp_path, MINIMAL + '[[faults]]\naction = "explode"\nat_s = 1\n')
    assert err.path == "faults[0]"
    assert "unknown fault action 'explode'" in str(err)


def test_references_to_unknown_workers_queues_and_dependencies_list_the_known_ones(tmp_path: Path) -> None:
    err = problem(tmp_path, MINIMAL + '[[faults]]\naction = "crash-worker"\nat_s = 5\nworker = "q-w7"\n')
    assert err.path == "faults[0].worker"
    assert "allowed: q-w1" in str(err)
    err = problem(tmp_path, MINIMAL.replace('name = "j"', 'name = "j"\ndependency = "smtp"'))
    assert err.path == "jobs[0].dependency"
    assert "unknown dependency 'smtp'" in str(err)
    err = problem(tmp_path, MINIMAL.replace('name = "j"', 'name = "j"\nqueue = "nope"'))
    assert err.path == "jobs[0].queue"
    assert "allowed: q" in str(err)


def test_a_horizon_needs_exactly_one_of_a_duration_or_a_number_of_jobs(tmp_path: Path) -> None:
    err = problem(tmp_path, MINIMAL.replace("duration_s = 60", "duration_s = 60\njobs = 5"))
    assert "exactly one of duration_s" in str(err)
    err = problem(tmp_path, MINIMAL.replace("duration_s = 60", "duration_s = 60\nwarmup_s = 60"))
    assert "warmup_s" in str(err)


def test_not_toml_and_not_a_file_are_clear_errors(tmp_path: Path) -> None:
    err = problem(tmp_path, "name = \n")
    assert "is not valid TOML" in str(err)
    with pytest.raises(ScenarioError, match=r"not a built-in scenario; built-in scenarios: .*email-queue"):
        load_scenario("no-such-scenario")


# --- overrides ------------------------------------------------------------------------------------------------


def test_overrides_reach_list_items_by_index_or_by_name_and_read_toml_values() -> None:
    loaded = load_scenario("email-queue", ["jobs[0].priority=3", "jobs.send-password-reset.options.attempts=2",
                                           "queues.0.workers.count=4", "backend=memory", "horizon.drain=false"])
    s = loaded.scenario
    assert s.jobs[0].priority == 3
    assert s.job_spec("send-password-reset").options.attempts == 2
    assert s.queues[0].workers.count == 4
    assert s.backend == "memory"
    assert s.horizon.drain is False
    assert loaded.hash != load_scenario("email-queue").hash


def test_a_bad_override_names_the_option_and_what_exists() -> None:
    with pytest.raises(ScenarioError, match=r"no item named 'welcome'; allowed: send-welcome-email"):
        load_scenario("email-queue", ["jobs.welcome.priority=1"])
    with pytest.raises(ScenarioError, match=r"must look like path=value"):
        load_scenario("email-queue", ["horizon.duration_s"])
    with pytest.raises(ScenarioError) as info:
        load_scenario("email-queue", ["horizon.duration_s=-5"])
    assert info.value.path == "horizon.duration_s"
    assert "(set with --set)" in str(info.value)


# --- running --------------------------------------------------------------------------------------------------


def tiny(**changes: object) -> dict[str, object]:
    config = tomllib.loads(MINIMAL)
    config["backend"] = "memory"
    for path, value in changes.items():
        section, key = path.split("__")
        config[section][key] = value  # type: ignore[index]
    return config


def test_a_run_gives_one_row_per_job_with_the_issue_columns_and_conserves_jobs() -> None:
    result = run_scenario(load_scenario(tiny()))
    table = jobs_table(result)
    assert list(table.columns[:len(JOBS_CSV_COLUMNS)]) == list(JOBS_CSV_COLUMNS)
    assert len(table) == result.reps[0]["conservation"]["arrivals"] > 60  # about 2 per second for 60 s
    assert (table["state"] == "completed").all()  # drained: nothing left behind
    # sojourn = wait + service for jobs that ran once without retry
    assert (table["sojourn_ms"] == table["wait_ms"] + table["service_ms"]).all()
    little = result.reps[0]["little"]
    assert little["area"] == little["sojourn_sum"]


def test_a_horizon_in_jobs_adds_exactly_that_many_jobs_from_one_source() -> None:
    config = tiny()
    config["horizon"] = {"jobs": 37}
    result = run_scenario(load_scenario(config))
    assert len(result.jobs) == 37
    assert result.summary["metrics"]["overall"]["arrivals"]["mean"] == 37


def test_replications_give_intervals_and_different_random_streams() -> None:
    result = run_scenario(load_scenario(tiny()), replications=3, seed=5)
    est = result.summary["metrics"]["overall"]["mean_sojourn_ms"]
    assert est["n"] == 3
    assert est["half_width"] is not None
    assert est["low"] < est["mean"] < est["high"]
    counts = [len(result.jobs[result.jobs["replication"] == r]) for r in (1, 2, 3)]
    assert len(set(counts)) > 1  # independent streams: the replications differ
    again = run_scenario(load_scenario(tiny()), replications=3, seed=5)
    assert again.jobs.equals(result.jobs)  # the same seed replays them exactly


def test_variants_run_together_share_their_arrivals_common_random_numbers() -> None:
    three = load_scenario(tiny())
    four = load_scenario(tiny(), ["queues[0].workers.count=4"])
    a, b = run_many([three, four], seed=2, replications=2, tables=True)
    assert a.jobs["created_ms"].tolist() == b.jobs["created_ms"].tolist()


def test_the_time_series_keeps_the_area_under_each_state_curve() -> None:
    result = run_scenario(load_scenario(tiny()))
    log = result.reps[0]["events"]
    end = int(result.reps[0]["now_ms"])
    ts = timeseries(log, ["q"], end, 7_000)
    counts = state_counts(log)
    span = int(ts["time_ms"].iloc[-1] + 7_000)
    for state in ("active", "waiting"):
        exact = integral(counts, state, 0, span)
        assert math.isclose(float((ts[state] * ts["bin_ms"]).sum()), exact, rel_tol=1e-9, abs_tol=1e-6)
    assert int(ts["completed"].sum()) == int((log["to"] == "completed").sum())
    assert int(ts["arrivals"].sum()) == len(result.jobs)


def test_the_summary_carries_metrics_per_name_and_priority_alerts_hash_seed_and_versions() -> None:
    config = tiny()
    config["jobs"].append({"name": "k", "priority": 3, "service": {"law": "deterministic", "value_ms": 50},  # type: ignore[attr-defined]
                           "arrivals": {"process": "periodic", "interval_s": 5}})
    loaded = load_scenario(config)
    summary = run_scenario(loaded, seed=9).summary
    assert set(summary["metrics"]["by_name"]) == {"j", "k"}
    assert set(summary["metrics"]["by_priority"]) == {"0", "3"}
    assert summary["metrics"]["by_name"]["k"]["arrivals"]["mean"] == 12  # one every 5 s for 60 s
    assert summary["scenario"]["hash"] == loaded.hash
    assert summary["seed"] == 9
    assert {"queuesim", "python", "numpy", "bullmq_reference"} <= set(summary["versions"])
    assert "summary" in summary["alerts"]


def test_a_retry_storm_overload_model_switches_probabilities_with_the_running_count() -> None:
    spec = load_scenario("retry-storm").scenario.jobs[0].failures
    running = [0]
    failures = OverloadFailures(spec, lambda: running[0])
    assert failures.error_class(0.5) is None  # calm: 0.2% fail
    running[0] = spec.overload.above_active + 1
    assert failures.error_class(0.5) == "retryable"  # overloaded: 70% fail
    assert failures.error_class(0.8) is None


# --- theory ---------------------------------------------------------------------------------------------------


def model_of(name_or_config: str | dict[str, object], overrides: list[str] | None = None) -> object:
    loaded = load_scenario(name_or_config, overrides or [])
    return theory_for(loaded.scenario, scenario_laws(loaded.scenario))


def test_the_classroom_scenario_is_recognised_as_m_m_3_with_erlang_c_values() -> None:
    model = model_of("mmc-basics")
    exact = theory.mmc(2.1, 1.0, 3)
    assert model.model == "M/M/3"  # type: ignore[attr-defined]
    assert model.metrics["mean_sojourn_ms"] == pytest.approx(exact.mean_sojourn * 1000)  # type: ignore[attr-defined]
    assert model.metrics["p_wait"] == pytest.approx(exact.p_wait)  # type: ignore[attr-defined]


def test_priority_zero_is_cobhams_top_class() -> None:
    model = model_of("priority-zero-surprise")
    high, low = theory.priority_nonpreemptive([0.4, 0.2], [1.0, 1.0])  # priority 0 first, then priority 1
    assert model.by_name["analytics-event"]["mean_wait_ms"] == pytest.approx(high * 1000)  # type: ignore[attr-defined]
    assert model.by_name["urgent-alert"]["mean_wait_ms"] == pytest.approx(low * 1000)  # type: ignore[attr-defined]


def test_retries_map_to_retry_via_queue_with_backoff_in_seconds() -> None:
    config = tiny()
    config["jobs"][0]["failures"] = {"retryable": 0.2}  # type: ignore[index]
    config["jobs"][0]["options"] = {"attempts": 3, "backoff": {"type": "exponential", "delay_ms": 1000}}  # type: ignore[index]
    model = model_of(config)
    exact = theory.retry_via_queue(2.0, 10.0, 0.2, 3, backoff=(1.0, 2.0))
    assert model.metrics["mean_sojourn_ms"] == pytest.approx(exact.mean_sojourn * 1000)  # type: ignore[attr-defined]


def test_no_formula_is_claimed_when_the_scenario_is_not_a_textbook_model() -> None:
    for name in ("email-queue", "order-saga", "crashing-workers", "email-outage", "file-processing"):
        assert model_of(name) is None
    assert model_of("mmc-basics", ["jobs[0].service.law=lognormal", "jobs[0].service.sd_ms=500"]) is None


def test_the_m_m_c_sojourn_cdf_is_the_m_m_1_exponential_for_one_server() -> None:
    cdf = mmc_sojourn_cdf(0.5, 1.0, 1)
    for t in (0.1, 1.0, 3.0, 10.0):
        assert cdf(t) == pytest.approx(1 - math.exp(-0.5 * t))
    assert quantile_from_cdf(cdf, 0.99, 2.0) == pytest.approx(theory.mm1_sojourn_quantile(0.5, 1.0, 0.99))


def test_the_m_m_c_sojourn_cdf_matches_a_monte_carlo_of_its_definition() -> None:
    lam, mu, c = 2.1, 1.0, 3
    m = theory.mmc(lam, mu, c)
    rng = np.random.default_rng(3)
    n = 200_000
    waits = np.where(rng.random(n) < m.p_wait, rng.exponential(1 / (c * mu - lam), n), 0.0)
    total = waits + rng.exponential(1 / mu, n)
    cdf = mmc_sojourn_cdf(lam, mu, c)
    for t in (0.5, 1.5, 4.0):
        assert abs(float((total <= t).mean()) - cdf(t)) < 0.005  # ~4 standard errors at n = 200k


def test_a_scenario_can_be_built_from_a_mapping_without_a_file() -> None:
    loaded = load_scenario(tiny())
    assert loaded.file is None
    assert isinstance(loaded.scenario, Scenario)
    assert loaded.base_dir is None


def test_the_field_reference_in_the_docs_is_generated_from_the_current_schema() -> None:
    from queuesim.scenario.docs import BEGIN, END, schema_reference

    page = (Path(__file__).parents[1] / "docs" / "reference" / "scenario-schema.md").read_text()
    generated = page[page.index(BEGIN):page.index(END) + len(END)] + "\n"
    assert generated == schema_reference(), \
        "run: python -m queuesim.scenario.docs --write docs/reference/scenario-schema.md"
