"""Interoperability with Node BullMQ 5.81.5 on one real Redis: BullMQ must not be able to tell the difference.

The Node side lives in ``tests/interop/node`` (``agent.js``); its pinned ``bullmq`` is installed with npm into
that folder's ``node_modules`` (ignored by git) on first use.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import redis
from conftest import IN_CI

import queuesim
from queuesim import Queue, Worker

pytestmark = [pytest.mark.real_redis, pytest.mark.slow]

NODE_DIR = Path(__file__).parent / "interop" / "node"
BULLMQ_VERSION = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["bullmq"]

Agent = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def node_bullmq() -> Path:
    """The folder with Node BullMQ installed (npm install on first use)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if IN_CI:
            pytest.fail("CI=true needs node and npm for the BullMQ interoperability tests")
        pytest.skip("node/npm not on PATH")
    installed = NODE_DIR / "node_modules" / "bullmq" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != BULLMQ_VERSION:
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR,
                       check=True, capture_output=True, timeout=600)
    return NODE_DIR


@pytest.fixture
def agent(node_bullmq: Path, redis_url: str) -> Agent:
    url = urlparse(redis_url)
    base = {"host": url.hostname or "127.0.0.1", "port": url.port or 6379,
            "db": int((url.path or "/0").strip("/") or 0), "password": url.password}

    def run(command: str, timeout: float = 60, **args: Any) -> dict[str, Any]:
        payload = json.dumps({**base, **args})
        proc = subprocess.run(["node", "agent.js", command, payload], cwd=node_bullmq, capture_output=True,
                              text=True, timeout=timeout)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture
def conn(redis_url: str) -> Iterator[queuesim.Connection]:
    c = queuesim.connect(redis_url)
    yield c
    c.close()


def _queue(conn: queuesim.Connection) -> Queue:
    return Queue(f"interop-{uuid.uuid4().hex[:8]}", conn)


def _drain_with_queuesim(q: Queue, expected: int) -> list[str]:
    """Process jobs with queuesim's step API (wall clock) and return the order of job names."""
    w = Worker(q)
    names: list[str] = []
    deadline = time.monotonic() + 20
    while len(names) < expected and time.monotonic() < deadline:
        job = w.fetch()
        if job is None:
            time.sleep(0.01)
            continue
        names.append(job.name)
        w.complete(job, None)
    return names


ORDER_JOBS: list[tuple[str, dict[str, Any]]] = [
    ("low", {"priority": 10}),
    ("p0-first", {}),
    ("high", {"priority": 1}),
    ("later", {"delay": 3000}),
    ("p0-second", {}),
    ("mid", {"priority": 5}),
    ("mid-again", {"priority": 5}),
    ("p0-lifo", {"lifo": True}),
    ("custom", {"job_id": "order-custom"}),
]
#: BullMQ's order: wait before prioritized (lifo at the head), FIFO within a priority, delayed when due (the
#: delay is long enough for every other job to finish first, however slowly the Node process starts)
EXPECTED_ORDER = ["p0-lifo", "p0-first", "p0-second", "custom", "high", "mid", "mid-again", "low", "later"]


def test_node_worker_runs_queuesim_jobs_in_bullmq_order(agent: Agent, conn: queuesim.Connection) -> None:
    q = _queue(conn)
    for name, opts in ORDER_JOBS:
        q.add(name, {"n": 1}, **opts)
    result = agent("work", queue=q.name, finished=len(ORDER_JOBS))
    node_order = [o["name"] for o in result["order"]]
    assert node_order == EXPECTED_ORDER
    # queuesim's own worker agrees
    q2 = _queue(conn)
    for name, opts in ORDER_JOBS:
        q2.add(name, {"n": 1}, **opts)
    assert _drain_with_queuesim(q2, len(ORDER_JOBS)) == EXPECTED_ORDER
    # the delayed job did not start before its due time
    started = next(o for o in result["order"] if o["name"] == "later")
    added = next(j for j in q.get_completed() if j.name == "later")
    assert started["at"] >= added.timestamp + 3000
    for qq in (q, q2):
        qq.obliterate(force=True)


def test_node_worker_retries_queuesim_jobs_as_configured(agent: Agent, conn: queuesim.Connection) -> None:
    q = _queue(conn)
    flaky = q.add("flaky", {"n": 21, "failTimes": 2}, attempts=3, backoff={"type": "fixed", "delay": 150})
    doomed = q.add("doomed", {"alwaysFail": True, "reason": "card declined"}, attempts=2,
                   backoff={"type": "exponential", "delay": 100})
    result = agent("work", queue=q.name, finished=2)
    runs = [o for o in result["order"] if o["id"] == flaky.id]
    assert [r["attemptsMade"] for r in runs] == [0, 1, 2]
    assert runs[1]["at"] - runs[0]["at"] >= 150
    assert runs[2]["at"] - runs[1]["at"] >= 150
    done = q.get_job(flaky.id)
    assert done is not None
    assert done.get_state() == "completed"
    assert done.return_value == {"doubled": 42, "by": "node"}
    assert done.attempts_made == 3
    assert done.failed_reason == "failed attempt 2"  # never cleared by a later success
    assert len(done.stacktrace) == 2
    dead = q.get_job(doomed.id)
    assert dead is not None
    assert dead.get_state() == "failed"
    assert dead.failed_reason == "card declined"
    assert dead.attempts_made == 2
    doomed_runs = [o for o in result["order"] if o["id"] == doomed.id]
    assert doomed_runs[1]["at"] - doomed_runs[0]["at"] >= 100
    q.obliterate(force=True)


def test_queuesim_worker_serves_node_jobs_and_node_sees_the_events(agent: Agent,
                                                                   conn: queuesim.Connection) -> None:
    q = _queue(conn)
    jobs = [{"name": "ok", "data": {"n": i}, "opts": {"priority": 3 - i}} for i in range(3)]
    jobs.append({"name": "bad", "data": {"n": 9}, "opts": {"attempts": 1}})
    ids = agent("add", queue=q.name, jobs=jobs)["ids"]

    def process(job: queuesim.Job) -> dict[str, int]:
        job.update_progress({"step": 1})
        job.update_progress(100)
        if job.name == "bad":
            raise ValueError("no such account")
        return {"doubled": job.data["n"] * 2}

    worker = Worker(q, process, drain_delay_s=0.1).start()
    try:
        deadline = time.monotonic() + 15
        while sum(q.get_job_counts("completed", "failed").values()) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.close()
    seen = agent("events", queue=q.name, terminal=4)["events"]
    for job_id in ids:
        names = [e["event"] for e in seen if e.get("jobId") == job_id]
        assert "active" in names
        assert names.count("progress") == 2
    completed = {e["jobId"]: e["returnvalue"] for e in seen if e["event"] == "completed"}
    assert completed[ids[0]] == {"doubled": 0}
    failed = [e for e in seen if e["event"] == "failed"]
    assert [(e["jobId"], e["failedReason"]) for e in failed] == [(ids[3], "no such account")]
    progress = [e["data"] for e in seen if e["event"] == "progress" and e["jobId"] == ids[1]]
    assert progress == [{"step": 1}, 100]
    node = agent("counts", queue=q.name, ids=ids)
    ours = q.get_job_counts()
    assert {k: node["counts"].get(k, 0) for k in ours} == ours
    assert node["jobs"][ids[3]]["failedReason"] == "no such account"
    assert node["jobs"][ids[2]]["returnvalue"] == {"doubled": 4}
    q.obliterate(force=True)


def test_bullmq_recovers_a_job_whose_queuesim_worker_died(agent: Agent, conn: queuesim.Connection) -> None:
    q = _queue(conn)
    job = q.add("orphan", {"n": 5})
    crashed = Worker(q, lock_duration=300)
    assert crashed.fetch() is not None
    crashed.forget()  # dies holding the lock
    result = agent("work", queue=q.name, finished=1, stalledInterval=200)
    assert result["stalled"] == [job.id]
    done = q.get_job(job.id)
    assert done is not None
    assert done.get_state() == "completed"
    assert done.stalled_counter == 1
    assert done.return_value == {"doubled": 10, "by": "node"}
    q.obliterate(force=True)


def test_queuesim_recovers_a_job_whose_bullmq_worker_died(agent: Agent, conn: queuesim.Connection) -> None:
    q = _queue(conn)
    job = q.add("orphan", {"n": 5})
    assert agent("takeAndDie", queue=q.name, lockDuration=300)["took"] == job.id
    w = Worker(q, stalled_interval=200)
    recovered: list[str] = []
    deadline = time.monotonic() + 10
    while not recovered and time.monotonic() < deadline:
        recovered = w.check_stalled()
        time.sleep(0.21)
    assert recovered == [job.id]
    again = w.fetch()
    assert again is not None
    assert again.id == job.id
    assert again.stalled_counter == 1
    w.complete(again, "rescued")
    assert q.get_job(job.id).return_value == "rescued"  # type: ignore[union-attr]
    q.obliterate(force=True)


DIFF_OPS: list[dict[str, Any]] = [
    {"op": "add", "name": "a", "data": {"x": 1}},
    {"op": "add", "name": "b", "data": {"x": 2}, "opts": {"priority": 4, "attempts": 3}},
    {"op": "add", "name": "c", "data": {"x": 3}, "opts": {"delay": 60000}},
    {"op": "add", "name": "d", "data": {"x": 4}, "opts": {"jobId": "custom-d", "lifo": True}},
    {"op": "add", "name": "d", "data": {"x": 5}, "opts": {"jobId": "custom-d"}},
    {"op": "add", "name": "e", "data": {"x": 6}, "opts": {"deduplication": {"id": "dup"}}},
    {"op": "add", "name": "e", "data": {"x": 7}, "opts": {"deduplication": {"id": "dup"}}},
    {"op": "process", "result": {"ok": True}},
    {"op": "process", "fail": "broken"},
    {"op": "updateProgress", "id": "2", "progress": 40},
    {"op": "log", "id": "2", "line": "hello"},
    {"op": "changePriority", "id": "2", "priority": 1},
    {"op": "pause"},
    {"op": "add", "name": "f", "data": {"x": 8}},
    {"op": "resume"},
    {"op": "promote", "id": "3"},
    {"op": "remove", "id": "1"},
    {"op": "process", "result": "fine"},
    {"op": "process", "result": None},
]

_TIME_FIELDS = {"timestamp", "processedOn", "finishedOn"}


def _run_ops_with_queuesim(q: Queue, ops: list[dict[str, Any]]) -> None:
    rename = {"jobId": "job_id", "removeOnComplete": "remove_on_complete", "removeOnFail": "remove_on_fail"}
    for op in ops:
        kind = op["op"]
        if kind == "add":
            opts = {rename.get(k, k): v for k, v in (op.get("opts") or {}).items()}
            q.add(op["name"], op["data"], **opts)
        elif kind == "pause":
            q.pause()
        elif kind == "resume":
            q.resume()
        elif kind == "promote":
            q.promote(op["id"])
        elif kind == "remove":
            q.remove(op["id"])
        elif kind == "changePriority":
            q.change_priority(op["id"], op["priority"])
        elif kind == "updateProgress":
            q.get_job(op["id"]).update_progress(op["progress"])  # type: ignore[union-attr]
        elif kind == "log":
            q.get_job(op["id"]).log(op["line"])  # type: ignore[union-attr]
        elif kind == "process":
            w = Worker(q)
            job = w.fetch()
            if job is not None:
                if "fail" in op:
                    w.fail(job, Exception(op["fail"]))
                else:
                    w.complete(job, op.get("result"))
        else:
            raise AssertionError(kind)


def _dump(client: redis.Redis, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(k.decode() for k in client.scan_iter(match=f"{prefix}*")):
        name = key[len(prefix):]
        kind = client.type(key).decode()
        if kind == "hash":
            h = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
            h = {k: v for k, v in h.items() if k not in _TIME_FIELDS and k != "version"}
            for field in ("opts", "data", "returnvalue", "stacktrace", "progress"):
                if field in h:
                    h[field] = json.loads(h[field])
            if "stacktrace" in h:
                h["stacktrace"] = len(h["stacktrace"])
            out[name] = h
        elif kind == "list":
            out[name] = [v.decode() for v in client.lrange(key, 0, -1)]
        elif kind == "zset":
            members = client.zrange(key, 0, -1, withscores=True)
            scored = name in ("prioritized", "marker") or name.startswith("prio")
            out[name] = [(m.decode(), s if scored and name != "marker" else None) for m, s in members]
        elif kind == "stream":
            entries = [{k.decode(): v.decode() for k, v in f.items()} for _, f in client.xrange(key)]
            for e in entries:
                if e["event"] == "delayed":
                    e["delay"] = "<due time>"
            out[name] = entries
        else:
            out[name] = client.get(key).decode() if name in ("id", "pc") or name.startswith("de:") else kind
    return out


def test_same_operations_leave_the_same_keys_and_job_hashes(agent: Agent, redis_url: str) -> None:
    url = urlparse(redis_url)
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    name = f"diff-{uuid.uuid4().hex[:8]}"
    node_db, ours_db = 14, 15
    node_client = redis.Redis(host=host, port=port, db=node_db, password=url.password)
    ours_client = redis.Redis(host=host, port=port, db=ours_db, password=url.password)
    agent("script", queue=name, ops=DIFF_OPS, db=node_db)
    conn = queuesim.connect(f"redis://{f':{url.password}@' if url.password else ''}{host}:{port}/{ours_db}")
    _run_ops_with_queuesim(Queue(name, conn), DIFF_OPS)
    prefix = f"bull:{name}:"
    node_state, our_state = _dump(node_client, prefix), _dump(ours_client, prefix)
    try:
        assert sorted(our_state) == sorted(node_state)
        for key in node_state:
            assert our_state[key] == node_state[key], key
    finally:
        for client in (node_client, ours_client):
            for key in client.scan_iter(match=f"{prefix}*"):
                client.delete(key)
        conn.close()


def _removal_flow(parents: str, children: str) -> dict[str, Any]:
    """P (queue ``parents``) waits for C1 and C2 (queue ``children``); C2 waits for G1. Every parent has one
    pending child when C1 has completed, so BullMQ's removal order (a Redis SET's) is fixed here."""
    return {"name": "p", "queueName": parents, "opts": {"jobId": "P"}, "data": {}, "children": [
        {"name": "c", "queueName": children, "opts": {"jobId": "C1"}, "data": {}},
        {"name": "c", "queueName": children, "opts": {"jobId": "C2"}, "data": {},
         "children": [{"name": "g", "queueName": children, "opts": {"jobId": "G1"}, "data": {}}]},
    ]}


@pytest.mark.parametrize("removals", [
    [{"queue": "parents", "id": "P"}],
    [{"queue": "children", "id": "G1"}, {"queue": "children", "id": "C1"}],
    [{"queue": "parents", "id": "P", "removeChildren": False}],
], ids=["parent-with-children", "children-one-by-one", "parent-alone"])
def test_removing_jobs_of_a_flow_writes_what_bullmq_writes(agent: Agent, redis_url: str,
                                                          removals: list[dict[str, Any]]) -> None:
    url = urlparse(redis_url)
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    tag = uuid.uuid4().hex[:8]
    names = {"parents": f"flow-p-{tag}", "children": f"flow-c-{tag}"}
    node_db, ours_db = 14, 15
    node_client = redis.Redis(host=host, port=port, db=node_db, password=url.password)
    ours_client = redis.Redis(host=host, port=port, db=ours_db, password=url.password)
    steps = [{**r, "queue": names[r["queue"]]} for r in removals]
    node_out = agent("flowRemove", db=node_db, flow=_removal_flow(names["parents"], names["children"]),
                     complete=[{"queue": names["children"], "id": "C1", "result": "r1"}], remove=steps)["out"]
    conn = queuesim.connect(f"redis://{f':{url.password}@' if url.password else ''}{host}:{port}/{ours_db}")
    try:
        flow = _removal_flow(names["parents"], names["children"])
        queuesim.add_flow(conn, json.loads(json.dumps(flow).replace('"queueName"', '"queue"')
                                           .replace('"jobId"', '"job_id"')))
        w = Worker(Queue(names["children"], conn))
        job = w.fetch()
        assert job is not None
        assert job.id == "C1"
        w.complete(job, "r1")
        ours_out = [int(Queue(s["queue"], conn).remove(s["id"], s.get("removeChildren", True))) for s in steps]
        assert ours_out == node_out
        for name in names.values():
            prefix = f"bull:{name}:"
            node_state, our_state = _dump(node_client, prefix), _dump(ours_client, prefix)
            assert sorted(our_state) == sorted(node_state), name
            for key in node_state:
                assert our_state[key] == node_state[key], (name, key)
    finally:
        for client in (node_client, ours_client):
            for name in names.values():
                for key in client.scan_iter(match=f"bull:{name}:*"):
                    client.delete(key)
        conn.close()
