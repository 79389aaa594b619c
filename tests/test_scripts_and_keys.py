"""Script loading (SHA calls, NOSCRIPT reload, includes) and the key layout."""

from __future__ import annotations

import re

from conftest import Env
from redis.crc import key_slot

import queuesim
from queuesim import Queue, VirtualClock, Worker
from queuesim.backends.scripts import load_script


def test_scripts_reload_after_script_flush(env: Env) -> None:
    q = env.queue()
    q.add("a", {})
    env.conn.client.script_flush()
    job = q.add("b", {})  # EVALSHA answers NOSCRIPT: the script is loaded again and the call retried
    assert q.get_job(job.id) is not None
    worker = env.worker(q)
    assert worker.fetch() is not None


def test_includes_are_expanded_once_and_leave_no_directive() -> None:
    script = load_script("moveToFinished")
    assert "--@include" not in script.source
    assert script.source.count("local function fetchNextJob(") == 1
    assert script.source.count("local function emit(") == 1
    assert re.fullmatch(r"[0-9a-f]{40}", script.sha)


def test_every_key_of_a_hash_tagged_prefix_lands_in_one_cluster_slot() -> None:
    conn = queuesim.connect(clock=VirtualClock(), prefix="{bull}")
    q = Queue("emails", conn, dead_letter_queue="emails-dlq")
    q.add("a", {}, attempts=1)
    q.add("b", {}, delay=100)
    q.add("c", {}, priority=3, deduplication={"id": "d1"})
    w = Worker(q)
    job = w.fetch()
    assert job is not None
    job.log("working")
    job.update_progress(50)
    w.fail(job, RuntimeError("x"))
    q.pause()
    keys = [k.decode() for k in conn.client.scan_iter()]
    assert any(k.endswith(":dlq") or k.startswith("{bull}:emails-dlq:") for k in keys)
    assert len(keys) > 8
    assert {key_slot(k.encode()) for k in keys} == {key_slot(b"{bull}")}
    assert all(k.startswith("{bull}:") for k in keys)


def test_key_names_are_bullmq_names(fake_env: Env) -> None:
    q = fake_env.queue("mail")
    q.add("x", {}, priority=2)
    q.add("y", {}, delay=10)
    q.add("z", {})
    keys = {k.decode() for k in fake_env.conn.client.scan_iter()}
    assert {"bull:mail:id", "bull:mail:meta", "bull:mail:events", "bull:mail:prioritized", "bull:mail:pc",
            "bull:mail:delayed", "bull:mail:wait", "bull:mail:marker", "bull:mail:1", "bull:mail:2",
            "bull:mail:3"} <= keys
    fields = fake_env.conn.client.hgetall("bull:mail:1")
    assert {b"name", b"data", b"opts", b"timestamp", b"delay", b"priority"} <= set(fields)


def test_a_fetch_hands_over_the_job_hash_exactly_as_it_is_stored_after_the_attempt_starts(env: Env) -> None:
    """A fetch reads the job hash and then writes ``processedOn``, ``pb`` and ``ats`` in one go; the fields it
    hands to the worker must be the stored hash after that write, values and field order alike, on every
    attempt (the first creates ``ats``, a later one increments it in place)."""
    from queuesim.backends.base import FetchArgs

    q = env.queue()
    job = q.add("send", {"to": "a@example.com"}, attempts=3)
    key = f"bull:{q.name}:{job.id}"

    def stored() -> list[tuple[str, str]]:
        raw = env.conn.client.hgetall(key)
        return [(k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v)
                for k, v in raw.items()]

    worker = env.worker(q)
    for attempt, worker_name in ((1, "mailer-1"), (2, None), (3, "mailer-3")):
        env.advance(5)
        before = env.now()
        got = q.backend.move_to_active(q.name, FetchArgs(f"tok-{attempt}", 30_000, None, worker_name))
        assert got.job_id == job.id
        assert got.fields is not None
        assert list(got.fields.items()) == stored()
        assert got.fields["ats"] == str(attempt)
        assert before <= int(got.fields["processedOn"]) <= env.now()
        assert got.fields.get("pb") == ("mailer-3" if attempt == 3 else "mailer-1")  # an unnamed fetch keeps it
        fetched = queuesim.Job.from_hash(job.id, got.fields, q, f"tok-{attempt}")
        assert fetched.attempts_started == attempt
        if attempt < 3:
            worker.active[job.id] = fetched
            assert worker.fail(fetched, RuntimeError("smtp down")) == "retried"
