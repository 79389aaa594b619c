"""The admin dashboard's HTTP API (FastAPI's test client), on fakeredis and on a real Redis.

What is checked comes from the seed guide's admin dashboard: health with the seed's thresholds and alert texts,
a health history of the last 100 checks, stats per queue with totals, job details with a timeline, cancel
(refused for active and finished jobs), retry of failed jobs, failed jobs and the dead-letter queue with redrive
and purge, pause / resume; plus the access rules (admin token, no cross-site changes).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import Env
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from queuesim import OptionError, Queue, connect
from queuesim.dashboard import QueueMonitor, create_app

TOKEN = "test-admin-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: The API of docs/howto/dashboard.md.
API_ENDPOINTS = [
    ("GET", "/api/queues"),
    ("GET", "/api/health"),
    ("GET", "/api/health/{queue}/history"),
    ("GET", "/api/stats"),
    ("GET", "/api/series"),
    ("GET", "/api/jobs/{job_id}"),
    ("GET", "/api/queues/{queue}/jobs/{job_id}"),
    ("GET", "/api/failed"),
    ("GET", "/api/queues/{queue}/dlq"),
    ("POST", "/api/queues/{queue}/jobs/{job_id}/cancel"),
    ("POST", "/api/queues/{queue}/jobs/{job_id}/retry"),
    ("POST", "/api/queues/{queue}/dlq/redrive"),
    ("POST", "/api/queues/{queue}/dlq/purge"),
    ("POST", "/api/queues/{queue}/dlq/{job_id}/redrive"),
    ("POST", "/api/queues/{queue}/pause"),
    ("POST", "/api/queues/{queue}/resume"),
]


def client_for(env: Env, *queues: Queue, **kwargs: Any) -> tuple[TestClient, QueueMonitor]:
    kwargs.setdefault("background", False)
    app = create_app(env.conn, [q.name for q in queues], token=TOKEN, **kwargs)
    return TestClient(app), app.state.monitor


def finish(env: Env, q: Queue, outcome: Any = "ok", work_ms: int = 50) -> str:
    """Let a worker take the next job and complete it (or fail it when ``outcome`` is an exception)."""
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    env.advance(work_ms)
    if isinstance(outcome, BaseException):
        w.fail(job, outcome)
    else:
        w.complete(job, outcome)
    return job.id


# --- access control ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "   ", "short"])
def test_the_app_refuses_to_start_without_a_usable_token(token: Any) -> None:
    conn = connect()
    with pytest.raises(OptionError, match="token"):
        create_app(conn, ["emails"], token=token)
    conn.close()


def test_every_api_endpoint_answers_401_without_a_token_and_403_with_a_wrong_one(env: Env) -> None:
    q = env.queue(dead_letter_queue=None)
    q.add("a", {})
    client, _ = client_for(env, q)
    assert client.app.state.api_endpoints == sorted(API_ENDPOINTS)  # the documented list is complete
    for method, path in API_ENDPOINTS:
        url = path.replace("{queue}", q.name).replace("{job_id}", "1")
        missing = client.request(method, url)
        assert missing.status_code == 401, (method, url)
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "token" in missing.json()["detail"]
        wrong = client.request(method, url, headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 403, (method, url)
        assert wrong.json()["detail"] == "wrong admin token"
    assert not q.is_paused()
    assert q.get_job_counts("waiting")["waiting"] == 1  # nothing was changed by the refused calls


def test_the_token_is_accepted_as_a_bearer_header_or_as_x_admin_token(env: Env) -> None:
    q = env.queue()
    client, _ = client_for(env, q)
    assert client.get("/api/stats", headers=AUTH).status_code == 200
    assert client.get("/api/stats", headers={"X-Admin-Token": TOKEN}).status_code == 200
    assert client.get(f"/api/stats?token={TOKEN}").status_code == 401  # never in the URL


@pytest.mark.parametrize(("headers", "why"), [
    ({"Origin": "https://evil.example"}, "Origin"),
    ({"Origin": "null"}, "Origin"),
    ({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site"),
    ({"Sec-Fetch-Site": "same-site"}, "Sec-Fetch-Site"),
])
def test_mutating_endpoints_refuse_cross_site_requests_even_with_the_token(env: Env, headers: dict[str, str],
                                                                           why: str) -> None:
    q = env.queue()
    client, _ = client_for(env, q)
    r = client.post(f"/api/queues/{q.name}/pause", headers={**AUTH, **headers})
    assert r.status_code == 403
    assert r.json()["detail"].startswith("cross-site request refused")
    assert why in r.json()["detail"]
    assert not q.is_paused()
    # reading is not a change: the same headers may read
    assert client.get("/api/stats", headers={**AUTH, **headers}).status_code == 200


def test_same_origin_requests_and_scripts_without_browser_headers_may_change_things(env: Env) -> None:
    q = env.queue()
    client, _ = client_for(env, q)
    same = {**AUTH, "Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert client.post(f"/api/queues/{q.name}/pause", headers=same).status_code == 200
    assert q.is_paused()
    assert client.post(f"/api/queues/{q.name}/resume", headers=AUTH).status_code == 200
    assert not q.is_paused()


def test_the_page_loads_without_a_token_and_is_locked_down_by_headers(env: Env) -> None:
    q = env.queue()
    client, _ = client_for(env, q)
    page = client.get("/")
    assert page.status_code == 200
    assert "queuesim dashboard" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert "Authorization" in client.get("/static/app.js").text  # the page sends the token in a header
    # no unauthenticated API description either
    assert client.get("/openapi.json").status_code == 404
    assert client.get("/docs").status_code == 404


# --- queues, health, history ------------------------------------------------------------------------------


def test_queues_are_discovered_from_meta_keys_and_a_dlq_is_listed_under_its_source(env: Env) -> None:
    q = env.queue()
    plain = env.queue()
    q.set_dead_letter_queue(f"{q.name}-dlq")
    q.add("a", {}, attempts=1)
    finish(env, q, RuntimeError("boom"))  # creates the DLQ's keys too
    app = create_app(env.conn, None, token=TOKEN, background=False)
    listed = TestClient(app).get("/api/queues", headers=AUTH).json()
    by_name = {x["name"]: x["dead_letter_queue"] for x in listed["queues"]}
    assert listed["discovered"] is True
    assert by_name[q.name] == f"{q.name}-dlq"
    assert by_name[plain.name] is None
    assert f"{q.name}-dlq" not in by_name


def test_an_unknown_queue_is_a_404_that_names_the_watched_queues(env: Env) -> None:
    q = env.queue()
    client, _ = client_for(env, q)
    r = client.get("/api/queues/nope/jobs/1", headers=AUTH)
    assert r.status_code == 404
    assert r.json()["detail"] == f"unknown queue 'nope'; watched queues: {q.name}"
    r = client.post("/api/queues/nope/pause", headers=AUTH)
    assert r.status_code == 404


def test_health_applies_the_seed_rules_to_each_queue_with_alert_texts(env: Env) -> None:
    idle = env.queue()
    stuck = env.queue()
    paused = env.queue()
    flaky = env.queue()
    for _ in range(3):
        stuck.add("a", {})  # a backlog and nothing finished in the last minute
    paused.pause()
    for _ in range(3):
        flaky.add("b", {}, attempts=1)
    finish(env, flaky)
    finish(env, flaky)
    finish(env, flaky, RuntimeError("boom"))  # 1 of 3 finished jobs failed: 33.3 % > 20 %
    client, _ = client_for(env, idle, stuck, paused, flaky)
    body = client.get("/api/health", headers=AUTH).json()
    by_name = {r["name"]: r for r in body["queues"]}
    assert by_name[idle.name]["status"] == "healthy"
    assert by_name[idle.name]["alerts"] == []
    assert by_name[stuck.name]["status"] == "critical"
    assert by_name[stuck.name]["alerts"] == ["No jobs being processed despite queue backlog"]
    assert by_name[stuck.name]["metrics"]["waiting"] == 3
    assert by_name[paused.name]["status"] == "critical"
    assert by_name[paused.name]["alerts"] == ["Queue is paused"]
    assert by_name[paused.name]["metrics"]["paused"] is True
    assert by_name[flaky.name]["status"] == "warning"
    assert by_name[flaky.name]["alerts"] == ["Elevated error rate: 33.3%"]
    perf = by_name[flaky.name]["performance"]
    assert perf["throughput_per_min"] == 2
    assert perf["error_rate_pct"] == pytest.approx(100 / 3, abs=0.01)
    assert perf["avg_processing_ms"] >= 50  # each job was worked on for 50 ms
    assert body["overall"] == "critical"


def test_a_job_that_failed_into_the_dlq_still_counts_as_a_failure_of_its_queue(env: Env) -> None:
    q = env.queue()
    q.set_dead_letter_queue(f"{q.name}-dlq")
    q.add("a", {}, attempts=1)
    q.add("b", {}, attempts=1)
    q.add("c", {}, attempts=1)
    finish(env, q, RuntimeError("boom"))
    finish(env, q, RuntimeError("boom"))
    finish(env, q)
    client, _ = client_for(env, q)
    record = client.get("/api/health", headers=AUTH).json()["queues"][0]
    # 2 of 3 failed (both now in the DLQ): 66.7 % > 50 % is critical
    assert record["performance"]["error_rate_pct"] == pytest.approx(66.67, abs=0.01)
    assert record["alerts"] == ["High error rate: 66.7%"]
    assert record["status"] == "critical"


def test_health_counts_only_jobs_finished_in_the_last_minute(fake_env: Env) -> None:
    env = fake_env
    q = env.queue()
    q.add("a", {}, attempts=1)
    q.add("b", {}, attempts=1)
    finish(env, q, RuntimeError("boom"))
    env.advance(60_001)  # that failure is now older than the seed's one-minute window
    finish(env, q)
    client, _ = client_for(env, q)
    record = client.get("/api/health", headers=AUTH).json()["queues"][0]
    assert record["performance"]["error_rate_pct"] == 0
    assert record["performance"]["throughput_per_min"] == 1
    assert record["status"] == "healthy"


def test_health_history_keeps_the_last_100_checks_and_summarizes_the_last_10(env: Env) -> None:
    q = env.queue()
    client, monitor = client_for(env, q)
    assert client.get(f"/api/health/{q.name}/history", headers=AUTH).json()["summary"] is None
    for _ in range(104):
        monitor.record_health()  # nothing finished: throughput 0
    q.add("a", {})
    q.add("b", {})
    finish(env, q)
    finish(env, q)
    monitor.record_health()  # throughput 2
    full = client.get(f"/api/health/{q.name}/history?limit=1000", headers=AUTH).json()
    assert len(full["history"]) == 100
    assert full["history"][-1]["performance"]["throughput_per_min"] == 2
    assert full["summary"]["checks"] == 10
    assert full["summary"]["avg_throughput_per_min"] == 0  # (9 * 0 + 2) / 10 rounds to 0
    assert full["summary"]["trend"] == "improving"  # from 0 to 2 jobs per minute
    default = client.get(f"/api/health/{q.name}/history", headers=AUTH).json()
    assert len(default["history"]) == 50
    assert client.get(f"/api/health/{q.name}/history?limit=0", headers=AUTH).status_code == 422


def test_the_served_app_records_health_and_samples_in_the_background(env: Env) -> None:
    q = env.queue()
    app = create_app(env.conn, [q.name], token=TOKEN, health_interval_s=0.05, sample_interval_s=0.05)
    with TestClient(app) as client:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            history = client.get(f"/api/health/{q.name}/history", headers=AUTH).json()["history"]
            series = client.get("/api/series", headers=AUTH).json()["queues"][q.name]
            if len(history) >= 3 and len(series) >= 3:
                break
            time.sleep(0.05)
    assert len(history) >= 3
    assert len(series) >= 3


# --- stats and sparkline series ---------------------------------------------------------------------------


def test_stats_count_every_state_and_the_dlq_with_totals(env: Env) -> None:
    q = env.queue()
    q.set_dead_letter_queue(f"{q.name}-dlq")
    other = env.queue()
    q.add("dead", {}, attempts=1)
    finish(env, q, RuntimeError("boom"))  # -> DLQ
    q.add("done", {})
    finish(env, q)  # -> completed
    q.add("running", {})
    running_worker = env.worker(q)
    assert running_worker.fetch() is not None  # -> active
    q.add("plain", {})  # -> waiting
    q.add("urgent", {}, priority=3)  # -> prioritized
    q.add("later", {}, delay=60_000)  # -> delayed
    other.add("x", {}, attempts=1)
    finish(env, other, RuntimeError("no DLQ here"))  # -> failed
    other.pause()
    other.add("held", {})
    other.add("held", {})  # -> paused (2)
    client, _ = client_for(env, q, other)
    body = client.get("/api/stats", headers=AUTH).json()
    s = body["queues"][q.name]
    assert {k: s[k] for k in ("waiting", "prioritized", "delayed", "active", "completed", "failed", "paused",
                              "dlq")} == {"waiting": 1, "prioritized": 1, "delayed": 1, "active": 1,
                                          "completed": 1, "failed": 0, "paused": 0, "dlq": 1}
    assert s["dead_letter_queue"] == f"{q.name}-dlq"
    assert s["is_paused"] is False
    o = body["queues"][other.name]
    assert (o["failed"], o["paused"], o["dlq"], o["is_paused"]) == (1, 2, 0, True)
    assert body["totals"] == {"waiting": 1, "active": 1, "completed": 1, "failed": 1, "delayed": 1,
                              "prioritized": 1, "paused": 2, "waiting_children": 0, "dlq": 1}


def test_series_samples_depth_and_throughput_per_minute(fake_env: Env) -> None:
    env = fake_env
    q = env.queue()
    for _ in range(5):
        q.add("a", {})
    client, monitor = client_for(env, q)
    monitor.record_series()  # the starting point
    env.advance(1_000)
    finish(env, q)
    finish(env, q)
    finish(env, q, RuntimeError("boom"))  # attempts=1: a final failure
    env.advance(1_000)
    monitor.record_series()
    samples = client.get("/api/series", headers=AUTH).json()["queues"][q.name]
    assert len(samples) == 1
    s = samples[0]
    assert (s["completed"], s["failed"], s["depth"], s["active"]) == (2, 1, 2, 0)
    assert s["interval_ms"] == 2_000 + 3 * 50
    # 2 completions in 2.15 s is 55.8 per minute
    assert s["throughput_per_min"] == pytest.approx(2 * 60_000 / 2_150, abs=0.1)


# --- jobs -------------------------------------------------------------------------------------------------


def test_job_details_show_attempts_result_and_a_timeline_of_both_attempts(env: Env) -> None:
    q = env.queue()
    job = q.add("resize", {"file": "cat.png"}, attempts=2)
    w = env.worker(q)
    first = w.fetch()
    assert first is not None
    w.fail(first, RuntimeError("disk full"))  # retried at once (no backoff)
    second = w.fetch()
    assert second is not None
    env.advance(20)
    w.complete(second, {"size": "512x512"})
    client, _ = client_for(env, q)
    body = client.get(f"/api/queues/{q.name}/jobs/{job.id}", headers=AUTH).json()
    j = body["job"]
    assert (j["state"], j["attempts_made"], j["max_attempts"]) == ("completed", 2, 2)
    assert j["result"] == {"size": "512x512"}
    assert j["data"] == {"file": "cat.png"}
    assert j["finished_on"] - j["processed_on"] >= 20
    events = [e["event"] for e in body["timeline"]]
    # spec §6: added, waiting (add) -> active -> waiting (retry, prev active) -> active -> completed
    assert events == ["added", "waiting", "active", "waiting", "active", "completed"]
    times = [e["time_ms"] for e in body["timeline"]]
    assert times == sorted(times)
    assert body["timeline"][3]["details"] == "Ready to run (in the wait list) (from active)"
    assert "512x512" in body["timeline"][-1]["details"]


def test_bad_job_ids_get_a_clear_404_or_400(env: Env) -> None:
    q = env.queue()
    q.add("a", {})
    client, _ = client_for(env, q)
    r = client.get(f"/api/queues/{q.name}/jobs/999", headers=AUTH)
    assert r.status_code == 404
    assert r.json()["detail"] == f"job '999' not found in queue '{q.name}'"
    # ids that name one of the queue's own keys are not jobs
    for reserved in ("meta", "events", "wait", "id"):
        assert client.get(f"/api/queues/{q.name}/jobs/{reserved}", headers=AUTH).status_code == 404
    r = client.get(f"/api/queues/{q.name}/jobs/a:b", headers=AUTH)
    assert r.status_code == 400
    assert "':'" in r.json()["detail"]
    for action in ("cancel", "retry"):
        r = client.post(f"/api/queues/{q.name}/jobs/999/{action}", headers=AUTH)
        assert r.status_code == 404
        assert "not found" in r.json()["detail"]
    r = client.get("/api/jobs/999", headers=AUTH)
    assert r.status_code == 404
    assert r.json()["detail"] == "no watched queue has a job with id '999'"


def test_a_job_id_is_searched_in_every_queue_and_dlq(env: Env) -> None:
    a = env.queue()
    b = env.queue()
    b.set_dead_letter_queue(f"{b.name}-dlq")
    a.add("x", {})  # id 1 in a
    b.add("y", {}, attempts=1)  # id 1 in b, then dead
    finish(env, b, RuntimeError("boom"))
    client, _ = client_for(env, a, b)
    found = client.get("/api/jobs/1", headers=AUTH).json()["matches"]
    assert {(m["queue"], m["kind"], m["state"]) for m in found} == {
        (a.name, "queue", "waiting"), (f"{b.name}-dlq", "dead-letter queue", "failed")}
    dead = client.get(f"/api/queues/{b.name}-dlq/jobs/1", headers=AUTH).json()
    assert dead["dead_letter_source"] == b.name
    events = [e["event"] for e in dead["timeline"]]
    assert events[0] == "added"
    assert events[-1] == "dead-lettered"  # the source queue's events and the DLQ move, joined


def test_cancel_removes_a_waiting_or_delayed_job(env: Env) -> None:
    q = env.queue()
    waiting = q.add("a", {})
    delayed = q.add("b", {}, delay=60_000)
    client, _ = client_for(env, q)
    for job in (waiting, delayed):
        r = client.post(f"/api/queues/{q.name}/jobs/{job.id}/cancel", headers=AUTH)
        assert r.status_code == 200
        assert r.json()["message"].startswith(f"Job {job.id} cancelled")
        assert q.get_job(job.id) is None
    assert q.count() == 0


def test_cancel_of_an_active_job_is_refused_with_a_clear_message(env: Env) -> None:
    q = env.queue()
    job = q.add("a", {})
    w = env.worker(q)
    assert w.fetch() is not None
    client, _ = client_for(env, q)
    r = client.post(f"/api/queues/{q.name}/jobs/{job.id}/cancel", headers=AUTH)
    assert r.status_code == 409
    assert r.json()["detail"].startswith(f"Cannot cancel active job {job.id}")
    assert q.get_job_state(job.id) == "active"  # untouched: the worker can still finish it
    w.complete(w.active[job.id], "done")
    assert q.get_job_state(job.id) == "completed"


def test_cancel_of_a_finished_job_is_refused(env: Env) -> None:
    q = env.queue()
    q.add("ok", {})
    q.add("bad", {}, attempts=1)
    done = finish(env, q)
    failed = finish(env, q, RuntimeError("boom"))
    client, _ = client_for(env, q)
    for job_id, state in ((done, "completed"), (failed, "failed")):
        r = client.post(f"/api/queues/{q.name}/jobs/{job_id}/cancel", headers=AUTH)
        assert r.status_code == 409
        assert r.json()["detail"] == f"Cannot cancel {state} job {job_id}: it has already finished"
        assert q.get_job_state(job_id) == state


def test_retry_sends_a_failed_job_back_and_it_runs_again(env: Env) -> None:
    q = env.queue()
    q.add("a", {"n": 1}, attempts=1)
    job_id = finish(env, q, RuntimeError("flaky"))
    client, _ = client_for(env, q)
    r = client.post(f"/api/queues/{q.name}/jobs/{job_id}/retry", headers=AUTH)
    assert r.status_code == 200
    assert r.json() == {"success": True, "message": f"Job {job_id} queued for retry", "state": "waiting"}
    assert finish(env, q, "second time lucky") == job_id
    again = q.get_job(job_id)
    assert again is not None
    assert again.return_value == "second time lucky"
    assert again.attempts_started == 2
    # only failed jobs can be retried
    r = client.post(f"/api/queues/{q.name}/jobs/{job_id}/retry", headers=AUTH)
    assert r.status_code == 409
    assert r.json()["detail"] == f"Cannot retry job {job_id}: it is completed; only failed jobs can be retried"


def test_failed_jobs_are_listed_newest_first_with_a_total(env: Env) -> None:
    a = env.queue()
    b = env.queue()
    for q in (a, b, a):
        q.add("x", {}, attempts=1)
        finish(env, q, RuntimeError(f"boom in {q.name}"))
        env.advance(5)
    client, _ = client_for(env, a, b)
    body = client.get("/api/failed", headers=AUTH).json()
    assert body["total"] == 3
    assert [j["queue"] for j in body["failed_jobs"]] == [a.name, b.name, a.name]
    finished = [j["finished_on"] for j in body["failed_jobs"]]
    assert finished == sorted(finished, reverse=True)
    only_b = client.get(f"/api/failed?queue={b.name}&limit=5", headers=AUTH).json()
    assert only_b["total"] == 1
    assert only_b["failed_jobs"][0]["failed_reason"] == f"boom in {b.name}"
    assert len(client.get("/api/failed?limit=1", headers=AUTH).json()["failed_jobs"]) == 1


def test_dlq_lists_dead_jobs_and_redrives_one_all_or_purges(env: Env) -> None:
    q = env.queue()
    q.set_dead_letter_queue(f"{q.name}-dlq")
    plain = env.queue()
    for _ in range(4):
        q.add("charge", {}, attempts=1)
        finish(env, q, RuntimeError("card declined"))
    client, _ = client_for(env, q, plain)
    listed = client.get(f"/api/queues/{q.name}/dlq", headers=AUTH).json()
    assert listed["total"] == 4
    assert {j["failed_reason"] for j in listed["jobs"]} == {"card declined"}
    first = listed["jobs"][0]["id"]
    r = client.post(f"/api/queues/{q.name}/dlq/{first}/redrive", headers=AUTH)
    assert r.status_code == 200
    assert q.get_job_state(first) == "waiting"
    assert client.post(f"/api/queues/{q.name}/dlq/{first}/redrive", headers=AUTH).status_code == 404
    r = client.post(f"/api/queues/{q.name}/jobs/{listed['jobs'][1]['id']}/retry", headers=AUTH)
    assert r.status_code == 404  # a dead job is no longer in its queue: redrive it instead
    r = client.post(f"/api/queues/{q.name}-dlq/jobs/{listed['jobs'][1]['id']}/retry", headers=AUTH)
    assert r.status_code == 409
    assert "redrive it" in r.json()["detail"]
    second = listed["jobs"][1]["id"]
    assert client.post(f"/api/queues/{q.name}/dlq/{second}/redrive", headers=AUTH).json()["queue"] == q.name
    r = client.post(f"/api/queues/{q.name}/dlq/purge", headers=AUTH)
    assert r.json()["purged"] == 2
    assert client.get(f"/api/queues/{q.name}/dlq", headers=AUTH).json()["total"] == 0
    assert q.get_job_counts("waiting")["waiting"] == 2  # the two redriven jobs
    r = client.get(f"/api/queues/{plain.name}/dlq", headers=AUTH)
    assert r.status_code == 404
    assert r.json()["detail"] == f"queue {plain.name!r} has no dead-letter queue"


def test_redrive_all_sends_every_dead_job_back(env: Env) -> None:
    q = env.queue()
    q.set_dead_letter_queue(f"{q.name}-dlq")
    for _ in range(3):
        q.add("charge", {}, attempts=1)
        finish(env, q, RuntimeError("card declined"))
    client, _ = client_for(env, q)
    r = client.post(f"/api/queues/{q.name}/dlq/redrive", headers=AUTH)
    assert r.json()["redriven"] == 3
    assert q.get_job_counts("waiting")["waiting"] == 3
    assert client.get("/api/stats", headers=AUTH).json()["queues"][q.name]["dlq"] == 0


def test_pause_stops_workers_and_shows_as_critical_until_resumed(env: Env) -> None:
    q = env.queue()
    q.add("a", {})
    client, _ = client_for(env, q)
    r = client.post(f"/api/queues/{q.name}/pause", headers=AUTH)
    assert r.json()["is_paused"] is True
    assert env.worker(q).fetch() is None  # a paused queue hands out no job
    health = client.get("/api/health", headers=AUTH).json()["queues"][0]
    assert health["status"] == "critical"
    assert "Queue is paused" in health["alerts"]
    assert client.get("/api/stats", headers=AUTH).json()["queues"][q.name]["paused"] == 1
    r = client.post(f"/api/queues/{q.name}/resume", headers=AUTH)
    assert r.json()["is_paused"] is False
    assert env.worker(q).fetch() is not None


# --- command line and demo ---------------------------------------------------------------------------------


def test_the_dashboard_command_needs_a_token_and_a_target() -> None:
    from queuesim.cli import app

    runner = CliRunner()
    no_token = runner.invoke(app, ["dashboard", "--demo"], env={"QUEUESIM_DASHBOARD_TOKEN": ""})
    assert no_token.exit_code == 2
    assert "admin token is required" in no_token.output
    no_target = runner.invoke(app, ["dashboard", "--token", TOKEN])
    assert no_target.exit_code == 2
    assert "--redis URL" in no_target.output
    short = runner.invoke(app, ["dashboard", "--redis", "redis://127.0.0.1:1/0", "--token", "abc"])
    assert short.exit_code == 2
    assert "at least 8 characters" in short.output


def test_the_dashboard_command_binds_to_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from queuesim.cli import app

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda web, **kw: served.update(kw, app=web))
    result = CliRunner().invoke(app, ["dashboard", "--redis", "fakeredis://", "--queue", "emails"],
                                env={"QUEUESIM_DASHBOARD_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert (served["host"], served["port"]) == ("127.0.0.1", 8000)
    web = TestClient(served["app"])
    assert web.get("/api/queues", headers=AUTH).json()["queues"] == [{"name": "emails", "dead_letter_queue": None}]


@pytest.mark.slow
def test_the_live_demo_completes_and_fails_jobs_on_the_embedded_server() -> None:
    from queuesim.dashboard.demo import LiveDemo

    conn = connect()
    demo = LiveDemo(conn, speed=3.0).start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            e, i = demo.emails.get_job_counts(), demo.images.get_job_counts()
            retried = any(j.attempts_made > 0 for j in demo.emails.get_jobs(["waiting", "delayed", "active"]))
            if e["completed"] >= 3 and i["completed"] >= 1 and (retried or e["failed"] or i["failed"]):
                break
            time.sleep(0.1)
    finally:
        demo.stop()
    assert e["completed"] >= 3
    assert i["completed"] >= 1
    assert retried or e["failed"] or i["failed"]  # some attempts fail, so the page has something to retry
    conn.close()
