"""The ``queuesim`` command line: every built-in scenario runs from it (small sizes) and its summary shows what the
scenario is about; bad input exits with code 2 and one clear message; sweep, compare, verify, list, show and a
read-only inspect of a live Redis."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import Env
from typer.testing import CliRunner

from queuesim import Queue
from queuesim.cli import app
from queuesim.inspection import ReadOnlyClient, WriteRefused, inspect_redis

runner = CliRunner()
COMMANDS = ("run", "sweep", "compare", "verify", "list", "show", "inspect", "dashboard")


def cli(*args: str) -> Any:
    return runner.invoke(app, [*args], catch_exceptions=False)


def run(tmp_path: Path, scenario: str, *sets: str, extra: tuple[str, ...] = ("--no-charts",)) -> dict[str, Any]:
    """Run a scenario from the command line; returns its summary, jobs and time series."""
    args = ["run", scenario, "--out", str(tmp_path), "--no-progress", *extra]
    for item in sets:
        args += ["--set", item]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return {"summary": json.loads((tmp_path / "summary.json").read_text()),
            "jobs": pd.read_csv(tmp_path / "jobs.csv"), "timeseries": pd.read_csv(tmp_path / "timeseries.csv"),
            "events": pd.read_csv(tmp_path / "events.csv", keep_default_na=False), "output": result.output}


def metric(out: dict[str, Any], name: str, group: str = "overall", key: str | None = None) -> float:
    m = out["summary"]["metrics"][group]
    return (m[key] if key is not None else m)[name]["mean"]


# --- help and exit codes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_list_shows_every_built_in_scenario_on_one_line_each() -> None:
    result = cli("list")
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    for name in ("email-queue", "retry-storm", "priority-zero-surprise", "order-saga", "mmc-basics"):
        assert sum(line.startswith(name + " ") for line in lines) == 1


@pytest.mark.parametrize(("edit", "field", "words"), [
    (("rate_per_s = 2", "rate_per_sec = 2"), "arrivals.rate_per_sec", "unknown field; allowed:"),
    (("mean_ms = 100", 'mean_ms = "slow"'), "service.mean_ms", "must be a number"),
    (("rate_per_s = 2", "rate_per_s = -1"), "arrivals.rate_per_s", "must be > 0"),
    (('law = "exponential"', 'law = "weibull"'), "service", "unknown distribution 'weibull'; allowed: exponential"),
], ids=["misspelt-field", "wrong-type", "negative-rate", "unknown-distribution"])
def test_a_bad_scenario_file_exits_2_naming_the_file_and_the_field(tmp_path: Path, edit: tuple[str, str],
                                                                   field: str, words: str) -> None:
    text = ('name = "bad"\n[horizon]\nduration_s = 60\n[[queues]]\nname = "q"\n[[jobs]]\nname = "j"\n'
            'service = { law = "exponential", mean_ms = 100 }\narrivals = { process = "poisson", rate_per_s = 2 }\n')
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(*edit))
    result = cli("run", str(path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "bad.toml" in result.output
    assert f"jobs[0] (j).{field}" in result.output
    assert words in result.output
    assert not (tmp_path / "out").exists()  # nothing written


def test_bad_options_exit_2_with_a_message() -> None:
    for args, words in ((["run", "email-queue", "--set", "horizon.duration_s=0"], "horizon.duration_s: must be > 0"),
                        (["run", "email-queue", "--backend", "redis"], "--backend: must be one of fakeredis, memory"),
                        (["run", "no-such-thing"], "not a built-in scenario"),
                        (["run", "email-queue", "--reps", "0"], "--reps"),
                        (["sweep", "mmc-basics", "--param", "horizon.duration_s"], "--param"),
                        (["verify", "--check", "M/M/9"], "unknown check 'M/M/9'"),
                        (["inspect", "http://localhost"], "must start with redis://")):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert words in result.output, (args, result.output)


def test_show_prints_the_resolved_configuration_as_toml_that_reads_back(tmp_path: Path) -> None:
    result = cli("show", "email-queue", "--set", "queues[0].workers.count=3")
    assert result.exit_code == 0
    config = tomllib.loads(result.output)
    assert config["queues"][0]["workers"]["count"] == 3
    assert config["queues"][0]["workers"]["lock_duration_ms"] == 30_000  # a default, filled in
    assert config["horizon"]["drain"] is True
    path = tmp_path / "resolved.toml"
    path.write_text(result.output)
    assert cli("show", str(path), "--json").exit_code == 0


# --- every built-in scenario, small, from the command line ------------------------------------------------------


def test_email_queue_newsletters_wait_for_their_schedule_and_then_go_before_welcome_and_reset(tmp_path: Path) -> None:
    out = run(tmp_path, "email-queue", "jobs.send-newsletter.arrivals.count=150", "horizon.duration_s=320",
              "jobs.send-welcome-email.arrivals.rate_per_s=0.5", "faults[0].at_s=300")
    jobs = out["jobs"]
    news = jobs[jobs["name"] == "send-newsletter"]
    assert len(news) == 150
    assert (news["started_ms"] - news["created_ms"]).min() >= 235_000  # delay 235 s
    assert set(out["summary"]["metrics"]["by_priority"]) == {"5", "10", "15"}
    # priority 5 is more urgent than 10 and 15: while newsletters wait, no welcome or reset starts
    due = int(news["created_ms"].min()) + 235_000
    last_news = int(news["started_ms"].max())
    others = jobs[(jobs["name"] != "send-newsletter") & (jobs["created_ms"] >= due) & (jobs["created_ms"] < last_news)]
    assert len(others) > 0
    assert (others["started_ms"] >= last_news).all()
    assert metric(out, "stalls") > 0  # the crash: its jobs came back through the stalled check
    assert (jobs["state"].isin(["completed", "dlq"])).all()


def test_notifications_over_the_sms_quota_are_rate_limited_without_using_attempts(tmp_path: Path) -> None:
    out = run(tmp_path, "notifications", "horizon.duration_s=40", "horizon.warmup_s=0",
              "jobs.sms-notification.arrivals.rate_per_s=8", "jobs.push-notification.arrivals.rate_per_s=2",
              "backend=memory")
    ev = out["events"]
    limited = ev[(ev["from"] == "active") & (ev["to"] == "waiting") & ev["reason"].str.contains("rate limited")]
    assert len(limited) > 0
    assert (limited["name"] == "sms-notification").all()
    sms = out["jobs"][out["jobs"]["name"] == "sms-notification"]
    starts = ev[ev["to"] == "active"].groupby("job_id").size()
    # a rate-limited answer puts the job back without using an attempt: some jobs started far more often than
    # the 3 attempts they are allowed
    assert sms["attempts"].max() <= 3
    assert starts.reindex(sms["job_id"]).max() > 3
    # the quota is 3 calls per second: completions per second never exceed it
    done = sms[sms["state"] == "completed"]
    assert (done["finished_ms"] // 1000).value_counts().max() <= 3
    assert len(done) >= 0.95 * len(sms)


def test_file_processing_uploads_queue_resizes_in_threes(tmp_path: Path) -> None:
    out = run(tmp_path, "file-processing", "horizon.duration_s=200", "horizon.warmup_s=0")
    resizes = out["jobs"][out["jobs"]["name"] == "image-resize"]
    assert len(resizes) > 0
    assert len(resizes) % 3 == 0
    assert set(resizes.groupby("created_ms").size()) == {3}
    assert metric(out, "arrivals", "by_name", "image-resize") == len(resizes)


def test_daily_reports_start_at_nine_and_raise_the_backlog_alert(tmp_path: Path) -> None:
    out = run(tmp_path, "daily-reports", "jobs.daily-report.arrivals.count=1200", "backend=memory",
              "horizon.duration_s=3610")
    reports = out["jobs"][out["jobs"]["name"] == "daily-report"]
    assert len(reports) == 1200
    assert reports["started_ms"].min() >= 3_600_000
    alerts = {a["alert"] for a in out["summary"]["alerts"]["summary"]}
    assert "High queue backlog" in alerts


def test_batch_emails_trip_the_slow_processing_rule_of_the_seed(tmp_path: Path) -> None:
    out = run(tmp_path, "batch-emails", "horizon.duration_s=400", "horizon.warmup_s=0")
    assert metric(out, "mean_sojourn_ms", "by_name", "batch-email") > 30_000
    assert "Slow processing" in {a["alert"] for a in out["summary"]["alerts"]["summary"]}


def test_order_saga_undoes_the_finished_steps_of_every_failed_order(tmp_path: Path) -> None:
    out = run(tmp_path, "order-saga", "horizon.duration_s=150", "horizon.warmup_s=0")
    steps = out["summary"]["saga_steps_per_replication"]
    failed_after_reserve = sum(steps[s].get("execute_failed", 0)
                               for s in ("charge-card", "create-shipment", "send-confirmation-email"))
    assert failed_after_reserve > 0
    # reserve-stock never fails itself, so it is released once per failure of any later step
    assert steps["reserve-stock"]["compensate_ok"] == failed_after_reserve
    charged_then_failed = sum(steps[s].get("execute_failed", 0) for s in ("create-shipment", "send-confirmation-email"))
    refunds = steps["charge-card"].get("compensate_ok", 0) + steps["charge-card"].get("compensate_failed", 0)
    assert refunds == charged_then_failed


def test_email_outage_sends_the_outage_to_the_dead_letter_queue_and_raises_critical_alerts(tmp_path: Path) -> None:
    out = run(tmp_path, "email-outage")
    jobs = out["jobs"]
    before = jobs[jobs["created_ms"] < 280_000]
    early = jobs[(jobs["created_ms"] >= 310_000) & (jobs["created_ms"] < 540_000)]
    after = jobs[jobs["created_ms"] >= 1_000_000]
    assert (before["state"] == "completed").all()
    assert (after["state"] == "completed").all()
    assert (early["state"] == "dlq").mean() > 0.6  # backoff of seconds against a 10-minute outage
    late = jobs[(jobs["created_ms"] >= 780_000) & (jobs["created_ms"] < 900_000)]
    # the limiter throttles the failing attempts: a backlog builds and its jobs outlive the outage, late
    assert (late["state"] == "completed").mean() > 0.5
    assert late["sojourn_ms"].median() > 60_000
    alerts = {(a["alert"], a["status"]) for a in out["summary"]["alerts"]["summary"]}
    assert ("High error rate", "critical") in alerts


def test_crashing_workers_lose_no_job_and_their_jobs_stall_back(tmp_path: Path) -> None:
    out = run(tmp_path, "crashing-workers", "horizon.duration_s=500", "faults[3].at_s=450")
    jobs = out["jobs"]
    assert metric(out, "stalls") >= 2  # the crashed workers held jobs
    assert jobs["state"].isin(["completed", "failed", "dlq"]).all()
    assert out["summary"]["conservation"][0]["balanced"] == 1
    stalled = out["events"][out["events"]["reason"] == "stalled"]
    assert set(stalled["worker"]) <= {"image-processing-w1", "image-processing-w2", "image-processing-w3"}


def test_retry_storm_never_recovers_after_the_outage(tmp_path: Path) -> None:
    out = run(tmp_path, "retry-storm")
    ts = out["timeseries"]
    before = ts[(ts["time_ms"] >= 60_000) & (ts["time_ms"] < 300_000)]
    after = ts[ts["time_ms"] >= 600_000]
    assert before["queued"].mean() < 5  # stable before the trigger
    assert after["retried"].sum() / len(after) > 5 * max(1.0, before["retried"].sum() / len(before))
    assert ts["queued"].iloc[-1] > 100
    assert ts["queued"].iloc[-1] > after["queued"].iloc[0]
    assert before["active"].mean() < 10
    assert after["active"].mean() > 19.5


def test_mmc_basics_puts_erlang_c_inside_the_simulated_interval(tmp_path: Path) -> None:
    out = run(tmp_path, "mmc-basics", "horizon.duration_s=1500", extra=("--no-charts", "--reps", "4"))
    th = out["summary"]["theory"]
    assert th["model"] == "M/M/3"
    assert th["checks"]["utilisation"]["inside_ci"] is True
    assert th["checks"]["utilisation"]["exact"] == pytest.approx(0.7)
    assert "theory: M/M/3" in out["output"]


def test_priority_zero_jobs_wait_less_than_priority_one_jobs(tmp_path: Path) -> None:
    out = run(tmp_path, "priority-zero-surprise", "horizon.duration_s=1200", extra=("--no-charts", "--reps", "3"))
    assert metric(out, "mean_wait_ms", "by_name", "analytics-event") < metric(out, "mean_wait_ms", "by_name",
                                                                              "urgent-alert")
    assert set(out["summary"]["theory"]["by_name"]) == {"analytics-event", "urgent-alert"}


@pytest.mark.slow
def test_the_showcase_writes_every_output_of_the_issue(tmp_path: Path) -> None:
    out = run(tmp_path, "email-queue", extra=())
    for name in ("jobs.csv", "events.csv", "timeseries.csv", "summary.json", "report.html"):
        assert (tmp_path / name).stat().st_size > 0
    for stem in ("throughput", "depth", "latency_by_name", "latency_by_priority", "attempts", "timeline"):
        assert (tmp_path / f"{stem}.png").exists()
        assert (tmp_path / f"{stem}.svg").exists()
    assert list(out["jobs"].columns) == ["job_id", "queue", "name", "priority", "created_ms", "started_ms",
                                         "finished_ms", "attempts", "stalls", "state", "wait_ms", "service_ms",
                                         "sojourn_ms", "replication"]
    assert f"report: {tmp_path}/report.html" in out["output"].replace("\n", "")


# --- sweep, compare, verify -------------------------------------------------------------------------------------


def test_sweep_writes_a_table_and_a_chart_and_latency_grows_with_load(tmp_path: Path) -> None:
    result = cli("sweep", "mmc-basics", "--param", "jobs[0].arrivals.rate_per_s=1,2.4", "--reps", "3", "--set",
                 "horizon.duration_s=900", "--out", str(tmp_path), "--no-progress")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert list(table["value"]) == [1.0, 2.4]
    assert table["utilisation"].is_monotonic_increasing
    assert table["mean_sojourn_ms"].is_monotonic_increasing
    assert table["exact_mean_sojourn_ms"].notna().all()
    assert table["exact_p99_sojourn_ms"].notna().all()
    assert (tmp_path / "sweep.png").exists()
    assert (tmp_path / "sweep.svg").exists()


def test_compare_pairs_replications_and_the_paired_interval_is_narrower(tmp_path: Path) -> None:
    result = cli("compare", "mmc-basics", "mmc-basics@queues[0].workers.count=4", "--reps", "4", "--set",
                 "horizon.duration_s=900", "--out", str(tmp_path), "--no-progress")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "compare.json").read_text())
    a, b = data["variants"]
    diff = data["paired_differences_from_first"][b]["utilisation"]
    # the same arrivals and work, one more worker: utilisation drops by ~0.7 - 0.525
    assert diff["low"] < -0.175 * 0.8
    assert diff["high"] > -0.175 * 1.2
    separate = data["estimates"][a]["utilisation"]["half_width"] + data["estimates"][b]["utilisation"]["half_width"]
    assert diff["half_width"] < separate
    assert data["estimates"][a]["arrivals"]["mean"] == data["estimates"][b]["arrivals"]["mean"]


def test_verify_prints_exact_against_simulated_and_exits_0_when_inside() -> None:
    result = cli("verify", "--check", "M/M/1", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "mean_sojourn_ms" in result.output
    assert "inside" in result.output
    assert "OUTSIDE" not in result.output


def test_verify_exits_1_when_an_exact_value_is_outside_its_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    import queuesim.scenario.verify as verify
    from queuesim.scenario.theory import TheoryModel

    monkeypatch.setattr(verify, "theory_for", lambda *_: TheoryModel("M/M/1", "wrong on purpose",
                                                                     {"utilisation": 0.9}))
    result = cli("verify", "--check", "M/M/1", "--no-progress")
    assert result.exit_code == 1
    assert "OUTSIDE" in result.output


# --- inspect: read-only -----------------------------------------------------------------------------------------


def fill(env: Env) -> tuple[Queue, str]:
    """A queue with jobs waiting, prioritized, delayed, completed and dead-lettered."""
    q = env.queue()
    dlq = f"{q.name}-dlq"
    q.set_dead_letter_queue(dlq)
    q.add("welcome", {"to": "a"})
    q.add("reset", {"to": "b"}, priority=3)
    q.add("later", {}, delay=60_000)
    q.add("charge", {}, attempts=1)
    w = env.worker(q)
    first = w.fetch()
    assert first is not None
    w.complete(first, "ok")
    dead = w.fetch()
    assert dead is not None
    w.fail(dead, RuntimeError("card declined"))
    env.queues.append(Queue(dlq, env.conn))
    return q, dlq


def snapshot(client: Any) -> dict[bytes, tuple[bytes, int]]:
    return {k: (client.dump(k), client.pttl(k) > 0) for k in client.keys("*")}


def test_inspect_counts_states_lists_jobs_and_dead_letters_without_writing(fake_env: Env) -> None:
    env = fake_env
    q, dlq = fill(env)
    client = env.conn.client
    before = snapshot(client)
    ro = ReadOnlyClient(client)
    views = {v.name: v for v in inspect_redis(ro, queues=[q.name, dlq])}
    assert snapshot(client) == before
    view = views[q.name]
    assert (view.counts["wait"], view.counts["prioritized"], view.counts["delayed"], view.counts["completed"]) == (
        0, 1, 1, 1)
    assert view.dead_letter_queue == dlq
    assert views[dlq].is_dead_letter_queue
    dead = [j for j in views[dlq].jobs if j.state == "failed"]
    assert dead[0].name == "charge"
    assert dead[0].failed_reason == "card declined"
    assert dead[0].source == q.name
    assert set(ro.sent) <= {"HGETALL", "LLEN", "ZCARD", "LRANGE", "ZRANGE", "HMGET", "XLEN", "EXISTS"}
    with pytest.raises(WriteRefused):
        ro.call("DEL", "anything")


@pytest.mark.real_redis
def test_the_inspect_command_reads_a_live_redis_and_changes_nothing(redis_url: str) -> None:
    from conftest import Env as E

    import queuesim

    env = E("redis", queuesim.connect(redis_url), queuesim.WallClock())
    try:
        q, dlq = fill(env)
        client = env.conn.client
        before = snapshot(client)
        result = cli("inspect", redis_url, "--queue", q.name, "--queue", dlq)
        assert result.exit_code == 0, result.output
        assert snapshot(client) == before
        assert q.name in result.output
        assert "card declined" in result.output
        assert dlq in result.output
        whole = cli("inspect", redis_url, "--json")
        names = {v["name"] for v in json.loads(whole.output)}
        assert {q.name, dlq} <= names
        assert snapshot(client) == before
    finally:
        for queue in env.queues:
            queue.obliterate(force=True)
        env.conn.close()
