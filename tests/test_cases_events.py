"""BullMQ's events stream (bullmq-semantics §9, events.test.ts, cases 43-47 except 46, which is about flows) on
every backend.

Events are read back from the queue's stream (``<prefix>:<queue>:events``) with :class:`~queuesim.QueueEvents`
starting at the oldest entry, so every test sees exactly what a BullMQ ``QueueEvents`` would have received.
"""

from __future__ import annotations

from conftest import Env

from queuesim import Queue, Worker
from queuesim.events import Event

# --- helpers -------------------------------------------------------------------------------------------------


def run_as_live_worker(w: Worker) -> int:
    """Process everything the way BullMQ's running worker does: each finish fetches the next job in the same
    script (``fetch_next``). Returns how many jobs ran."""
    count = 0
    job = w.fetch()
    while job is not None:
        count += 1
        job = w.complete(job, {"n": count}, fetch_next=True)
    return count


def stream_length(env: Env, q: Queue) -> int:
    return int(env.conn.client.xlen(q.keys.events))


def named(events: list[Event], name: str) -> list[Event]:
    return [e for e in events if e.name == name]


#: Approximate trimming (``MAXLEN ~``) only drops whole stream nodes, which hold up to 100 entries in Redis
#: (fakeredis models the same); a finish also writes up to three events after its trim.
TRIM_SLACK = 100 + 3


# --- 43: the life of a job in events -------------------------------------------------------------------------


def test_case_43_a_job_emits_added_waiting_active_completed_and_the_queue_emits_drained_once(env: Env) -> None:
    q = env.queue()
    job = q.add("test", {"foo": "bar"})
    w = env.worker(q)
    assert run_as_live_worker(w) == 1
    events = env.events(q)
    assert [e.name for e in events if e.job_id == job.id] == ["added", "waiting", "active", "completed"]
    assert named(events, "added")[0].fields["name"] == "test"
    assert named(events, "active")[0].fields["prev"] == "waiting"
    completed = named(events, "completed")[0]
    assert completed.fields["prev"] == "active"
    assert completed.value() == {"n": 1}
    assert [e.name for e in events][-1] == "drained"
    assert len(named(events, "drained")) == 1
    assert named(events, "drained")[0].job_id is None


def test_case_43_with_concurrency_two_every_job_is_active_once_and_drained_comes_once_at_the_end(
        env: Env) -> None:
    q = env.queue()
    ids = [q.add("test", {"i": i}).id for i in range(5)]
    w = env.worker(q, concurrency=2)
    slots = [w.fetch(), w.fetch()]
    finished = 0
    while any(slots):
        for k, job in enumerate(slots):
            if job is not None:
                finished += 1
                slots[k] = w.complete(job, None, fetch_next=True)
                if finished < len(ids):
                    assert "drained" not in env.event_names(q), "jobs are still waiting or active"
    assert finished == 5
    events = env.events(q)
    actives = [e.job_id for e in named(events, "active")]
    assert sorted(actives, key=int) == ids, "exactly one active event per job"
    assert len(named(events, "drained")) == 1
    assert events[-1].name == "drained"


def test_case_43_drained_waits_for_delayed_jobs_after_a_fetch_next_but_not_after_a_plain_finish(env: Env) -> None:
    """§11.2: a running worker's finish-and-fetch reports the next delayed job instead of ``drained``; a finish
    without fetch (a closing worker) applies the plain rule: wait, active and prioritized empty."""
    q = env.queue()
    q.add("later", {}, delay=60_000)
    q.add("now", {})
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert w.complete(job, None, fetch_next=True) is None
    assert "drained" not in env.event_names(q), "a delayed job is still to come"
    q.add("again", {})
    job = w.fetch()
    assert job is not None
    w.complete(job)
    assert env.event_names(q).count("drained") == 1


def test_case_43_no_drained_while_another_job_is_still_active(env: Env) -> None:
    q = env.queue()
    q.add_bulk([("a", {}), ("b", {})])
    w = env.worker(q, concurrency=2)
    first, second = w.fetch(), w.fetch()
    assert first is not None
    assert second is not None
    w.complete(first)
    assert "drained" not in env.event_names(q)
    w.complete(second)
    assert env.event_names(q)[-1] == "drained"


# --- 44: duplicated ------------------------------------------------------------------------------------------


def test_case_44_adding_the_same_custom_job_id_twice_emits_duplicated_and_keeps_the_first_job(env: Env) -> None:
    q = env.queue()
    first = q.add("test", {"v": 1}, job_id="order-7")
    second = q.add("test", {"v": 2}, job_id="order-7")
    assert second.id == first.id == "order-7"
    stored = q.get_job("order-7")
    assert stored is not None
    assert stored.data == {"v": 1}, "a duplicate add leaves the data untouched"
    events = env.events(q)
    duplicated = named(events, "duplicated")
    assert [e.job_id for e in duplicated] == ["order-7"]
    assert len(named(events, "added")) == 1
    assert int(env.conn.client.get(q.keys.id)) == 2, "the id counter moves on every add, duplicates included"


# --- 45: cleaned ---------------------------------------------------------------------------------------------


def test_case_45_cleaning_fifty_completed_jobs_emits_one_cleaned_event_with_count_50(env: Env) -> None:
    q = env.queue()
    q.add_bulk([("test", {"i": i}) for i in range(50)])
    assert run_as_live_worker(env.worker(q)) == 50
    removed = q.clean(0, 0, "completed")
    assert len(removed) == 50
    events = env.events(q)
    cleaned = named(events, "cleaned")
    assert len(cleaned) == 1
    assert cleaned[0].fields == {"count": "50"}
    assert events[-1].name == "cleaned"
    assert not named(events, "removed"), "clean emits no per-job removed event"
    assert q.get_job_counts("completed")["completed"] == 0


# --- 47: no removed for missing jobs, trimming ---------------------------------------------------------------


def test_case_47_removing_jobs_that_do_not_exist_publishes_no_removed_event(env: Env) -> None:
    q = env.queue()
    for i in range(20):
        assert q.remove(f"missing-{i}") is False
    assert stream_length(env, q) == 0
    job = q.add("test", {})
    assert q.remove(job.id) is True
    removed = named(env.events(q), "removed")
    assert [(e.job_id, e.fields["prev"]) for e in removed] == [(job.id, "wait")]


def test_case_47_with_max_len_0_the_stream_keeps_only_the_last_completed_and_drained(env: Env) -> None:
    q = env.queue(max_len_events=0)
    q.add_bulk([("test", {"foo": "bar"}), ("test", {"foo": "baz"}), ("test", {"foo": "bar"})])
    assert run_as_live_worker(env.worker(q)) == 3
    newest = env.conn.client.xrevrange(q.keys.events, "+", "-")
    names = [fields[b"event"].decode() for _, fields in newest]
    assert names[:2] == ["drained", "completed"], "the events of the last finish are written after the trim"
    assert stream_length(env, q) <= 2


def test_case_47_with_max_len_0_the_stream_stays_at_a_few_entries_on_the_retry_paths(env: Env) -> None:
    q = env.queue(max_len_events=0)
    q.add_bulk([{"name": "test", "data": {}, "opts": {"attempts": 3, "backoff": 100}} for _ in range(10)])
    w = env.worker(q)
    while (job := w.fetch()) is not None:
        outcome = w.fail(job, RuntimeError("error"))
        if outcome == "delayed":
            assert stream_length(env, q) <= 2
            env.advance(100)
        else:  # a final failure writes failed, retries-exhausted and (nothing else waiting) drained
            assert outcome == "failed"
            assert stream_length(env, q) <= 3
    assert q.get_job_counts("failed")["failed"] == 10
    assert [e.name for e in env.events(q)][-3:] == ["failed", "retries-exhausted", "drained"]


def test_case_47_max_len_20_keeps_the_stream_near_20_when_jobs_complete(env: Env) -> None:
    q = env.queue(max_len_events=20)
    q.add_bulk([("test", {"i": i}) for i in range(80)])
    assert run_as_live_worker(env.worker(q)) == 80
    assert 20 <= stream_length(env, q) <= 20 + TRIM_SLACK


def test_case_47_max_len_20_holds_when_failed_jobs_move_to_delayed(env: Env) -> None:
    q = env.queue(max_len_events=20)
    q.add_bulk([{"name": "test", "data": {}, "opts": {"attempts": 2, "backoff": 5000}} for _ in range(80)])
    w = env.worker(q)
    while (job := w.fetch()) is not None:
        assert w.fail(job, RuntimeError("error")) == "delayed"
    assert q.get_job_counts("delayed")["delayed"] == 80
    assert 20 <= stream_length(env, q) <= 20 + TRIM_SLACK


def test_case_47_max_len_20_holds_when_failed_jobs_are_retried_at_once(env: Env) -> None:
    q = env.queue(max_len_events=20)
    q.add_bulk([{"name": "test", "data": {}, "opts": {"attempts": 2}} for _ in range(80)])
    w = env.worker(q)
    outcomes = []
    while (job := w.fetch()) is not None:
        outcomes.append(w.fail(job, RuntimeError("error")))
    assert outcomes.count("retried") == 80
    assert outcomes.count("failed") == 80
    assert 20 <= stream_length(env, q) <= 20 + TRIM_SLACK


def test_case_47_max_len_20_holds_when_jobs_are_removed(env: Env) -> None:
    q = env.queue(max_len_events=20)
    jobs = q.add_bulk([("test", {}) for _ in range(200)])
    for job in jobs:
        assert q.remove(job.id) is True
    assert 20 <= stream_length(env, q) <= 20 + TRIM_SLACK


def test_case_47_trim_events_trims_the_stream_by_hand(env: Env) -> None:
    q = env.queue()
    for _ in range(4):
        q.add("test", {})
    assert stream_length(env, q) == 8, "added + waiting for each job"
    q.trim_events(0)
    assert stream_length(env, q) == 0
    for _ in range(3):
        q.add("test", {})
    q.trim_events(2)
    assert [e.name for e in env.events(q)] == ["added", "waiting"]


def test_the_recorders_entry_reader_sees_what_xread_sees(env: Env) -> None:
    # read_event_entries (the simulation recorder's raw read) and read_events (XREAD into dicts) give the same
    # entries, and reading after an entry's id returns only the newer ones
    q = env.queue()
    q.add("a", {"n": 1})
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    w.complete(job, {"ok": True})
    q.add("b", {})
    backend = env.conn.backend
    via_xread = backend.read_events(q.name, "0", None)
    entries = backend.read_event_entries(q.name, (0, 0))
    assert len(entries) == len(via_xread) >= 6
    for (ms, seq, flat), (entry_id, fields) in zip(entries, via_xread, strict=True):
        assert f"{ms}-{seq}" == entry_id
        assert flat == tuple(x for pair in fields.items() for x in pair)
    middle = entries[2]
    assert backend.read_event_entries(q.name, (middle[0], middle[1])) == entries[3:]
    assert backend.read_event_entries(q.name, (entries[-1][0], entries[-1][1])) == []
    assert backend.read_event_entries(f"{q.name}-never-used", (0, 0)) == []
