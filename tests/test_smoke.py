"""A first end-to-end pass on every backend: add, fetch, complete, fail into the dead-letter queue, and the
rule that keeps dead jobs safe: a dead-letter queue serves exactly one queue."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import Env

import queuesim
from queuesim import Queue, VirtualClock, Worker
from queuesim.errors import OptionError
from queuesim.queue import DeadLetterQueue


def test_add_fetch_complete_round_trip(env: Env) -> None:
    q = env.queue()
    q.add("welcome", {"to": "ada"})
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert job.data == {"to": "ada"}
    w.complete(job, {"sent": True})
    done = q.get_job(job.id)
    assert done is not None
    assert done.return_value == {"sent": True}
    assert done.attempts_made == 1
    assert q.get_job_counts("completed", "active") == {"completed": 1, "active": 0}


def test_final_failure_goes_to_dead_letter_queue(env: Env) -> None:
    q = env.queue()
    dlq_name = f"{q.name}-dlq"
    q.set_dead_letter_queue(dlq_name)
    q.add("charge", {"amount": 5}, attempts=1)
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert w.fail(job, RuntimeError("card declined")) == "failed"
    dlq = q.dead_letter_queue
    assert dlq is not None
    dead = dlq.list()
    assert [d.id for d in dead] == [job.id]
    assert dead[0].failed_reason == "card declined"
    assert dead[0].dead_letter_source == q.name
    assert q.get_job(job.id) is None
    assert dlq.redrive(job.id) == q.name
    again = q.get_job(job.id)
    assert again is not None
    assert again.attempts_made == 0
    assert str(q.get_job_state(job.id)) == "waiting"


def fail_for_good(env: Env, q: Queue, reason: str, **options: object) -> str:
    """Add one job with a single attempt to ``q``, fetch it and fail it; returns its id."""
    added = q.add("charge", {"reason": reason}, attempts=1, **options)
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert job.id == added.id
    assert w.fail(job, RuntimeError(reason)) == "failed"
    return job.id


def test_a_second_queue_cannot_share_a_dead_letter_queue(env: Env) -> None:
    a, b = env.queue(), env.queue()
    dlq = f"{a.name}-dlq"
    a.set_dead_letter_queue(dlq)
    b.set_dead_letter_queue(f"{b.name}-dlq")
    with pytest.raises(OptionError) as refused:
        b.set_dead_letter_queue(dlq)
    assert refused.value.field == "dead_letter_queue"
    assert f"already the dead-letter queue of {a.name!r}" in str(refused.value)
    with pytest.raises(OptionError, match=f"dead_letter_queue: queue {dlq!r} is already"):
        Queue(b.name, env.conn, dead_letter_queue=dlq)
    # nothing was written by the refusals: b keeps its own dead-letter queue, a keeps its one
    assert b.backend.get_meta(b.name, "dlq") == f"{b.name}-dlq"
    assert b.backend.get_meta(f"{b.name}-dlq", "dlqOf") == b.name
    assert a.backend.get_meta(dlq, "dlqOf") == a.name
    a.set_dead_letter_queue(dlq)  # naming the same one again is fine
    job_id = fail_for_good(env, a, "card declined")
    dead = a.dead_letter_queue
    assert dead is not None
    assert [d.id for d in dead.list()] == [job_id]


def test_a_dead_letter_queue_is_an_end_point(env: Env) -> None:
    a, other = env.queue(), env.queue()
    dlq = f"{a.name}-dlq"
    a.set_dead_letter_queue(dlq)
    other.set_dead_letter_queue(f"{other.name}-dlq")
    with pytest.raises(OptionError, match=f"queue {dlq!r} is itself the dead-letter queue of {a.name!r}"):
        Queue(dlq, env.conn).set_dead_letter_queue(f"{dlq}-more")
    with pytest.raises(OptionError, match=f"queue {other.name!r} has a dead-letter queue of its own"):
        a.set_dead_letter_queue(other.name)
    assert a.backend.get_meta(dlq, "dlq") is None
    assert a.backend.get_meta(a.name, "dlq") == dlq
    assert a.backend.get_meta(other.name, "dlqOf") is None


def test_clearing_releases_a_dead_letter_queue_once_its_dead_jobs_are_gone(env: Env) -> None:
    a, b = env.queue(), env.queue()
    dlq = f"{a.name}-dlq"
    a.set_dead_letter_queue(dlq)
    a.set_dead_letter_queue(None)
    assert a.backend.get_meta(dlq, "dlqOf") is None  # empty: released at once
    a.set_dead_letter_queue(dlq)
    job_id = fail_for_good(env, a, "timeout")
    a.set_dead_letter_queue(None)
    assert a.backend.get_meta(dlq, "dlqOf") == a.name  # its dead job still belongs to a
    with pytest.raises(OptionError, match=f"still holds dead jobs of {a.name!r}"):
        b.set_dead_letter_queue(dlq)
    assert b.backend.get_meta(b.name, "dlq") is None
    dead = Queue(dlq, env.conn)
    assert DeadLetterQueue(dlq, env.conn).redrive(job_id) == a.name  # redrive follows the job, not the setting
    assert str(a.get_job_state(job_id)) == "waiting"
    assert dead.get_job_counts("failed")["failed"] == 0
    b.set_dead_letter_queue(dlq)  # nothing of a left: b may take it over
    assert b.backend.get_meta(dlq, "dlqOf") == b.name
    with pytest.raises(OptionError, match=f"already the dead-letter queue of {b.name!r}"):
        a.set_dead_letter_queue(dlq)


@pytest.mark.parametrize("remove_on_fail", [False, True])
def test_a_dead_job_of_another_queue_is_never_overwritten(env: Env, remove_on_fail: bool) -> None:
    # the ownership check is bypassed by writing b's setting straight into its meta hash: the move itself must
    # still refuse to replace a's dead job 1 with b's job 1
    a, b = env.queue(), env.queue()
    dlq = f"{a.name}-dlq"
    a.set_dead_letter_queue(dlq)
    b.backend.set_meta(b.name, "dlq", dlq)
    first = fail_for_good(env, a, "from a")
    second = fail_for_good(env, b, "from b", remove_on_fail=remove_on_fail)
    assert first == second  # both queues numbered their first job 1
    dead = a.dead_letter_queue
    assert dead is not None
    kept = dead.list()
    assert [(d.id, d.failed_reason, d.dead_letter_source) for d in kept] == [(first, "from a", a.name)]
    # b's job stayed in b's failed set, whatever removeOnFail said, with the usual events but no dead-lettering
    assert str(b.get_job_state(second)) == "failed"
    stayed = b.get_job(second)
    assert stayed is not None
    assert stayed.failed_reason == "from b"
    assert stayed.finished_on is not None
    names = env.event_names(b, second)
    assert names[-2:] == ["failed", "retries-exhausted"]
    assert "dead-lettered" not in names
    assert "dead-lettered" in env.event_names(a, first)
    assert dead.redrive(first) == a.name  # redrive unchanged
    assert str(a.get_job_state(first)) == "waiting"
    assert dead.count() == 0


def test_a_job_added_to_the_dead_letter_queue_itself_is_not_overwritten(env: Env) -> None:
    a = env.queue()
    dlq = f"{a.name}-dlq"
    a.set_dead_letter_queue(dlq)
    direct = Queue(dlq, env.conn).add("by hand", {"n": 1}, job_id="x")
    fail_for_good(env, a, "from a", job_id="x")
    assert str(a.get_job_state("x")) == "failed"
    there = Queue(dlq, env.conn).get_job("x")
    assert there is not None
    assert (there.name, there.data) == (direct.name, {"n": 1})
    assert there.dead_letter_source is None


def test_a_queue_replaces_its_own_earlier_dead_job_with_the_same_id(env: Env) -> None:
    a = env.queue()
    a.set_dead_letter_queue(f"{a.name}-dlq")
    fail_for_good(env, a, "first death", job_id="order-7")
    env.advance(5)
    fail_for_good(env, a, "second death", job_id="order-7")
    dead = a.dead_letter_queue
    assert dead is not None
    assert [(d.id, d.failed_reason, d.dead_letter_source) for d in dead.list()] == [
        ("order-7", "second death", a.name)]
    assert a.get_job("order-7") is None
    assert dead.redrive("order-7") == a.name
    again = a.get_job("order-7")
    assert again is not None
    assert (again.attempts_made, again.failed_reason) == (0, None)


def test_ownership_and_a_refused_move_look_the_same_on_fakeredis_and_memory() -> None:
    """The same steps on both embedded backends leave identical hashes, sets, settings and events streams."""

    def run(url: str | None) -> dict[str, object]:
        conn = queuesim.connect(url, clock=VirtualClock())
        a, b, c = Queue("a", conn), Queue("b", conn), Queue("c", conn)
        a.set_dead_letter_queue("dead")
        b.backend.set_meta("b", "dlq", "dead")  # past the ownership check
        refusals = []
        for q, name in ((c, "dead"), (a, "b"), (Queue("dead", conn), "c")):
            try:
                q.set_dead_letter_queue(name)
            except OptionError as exc:
                refusals.append(str(exc))
        for q in (a, b, a, b):
            q.add("charge", {"q": q.name}, attempts=1, job_id="j1", remove_on_fail=True)
            w = Worker(q, rng=np.random.default_rng(1), worker_id=f"w-{q.name}")
            job = w.fetch()
            assert job is not None
            w.fail(job, RuntimeError(f"from {q.name}"))
            conn.clock.advance(3)
            if q is b:
                b.remove("j1")  # b's job stayed in b: make room for the next round
        a.set_dead_letter_queue(None)
        kept_owner = a.backend.get_meta("dead", "dlqOf")
        redriven = DeadLetterQueue("dead", conn).redrive("j1")
        c.set_dead_letter_queue("dead")
        be = conn.backend
        out: dict[str, object] = {"refusals": refusals, "kept_owner": kept_owner, "redriven": redriven}
        for name in ("a", "b", "c", "dead"):
            out[name] = (be.read_events(name, "0", None), be.get_job_fields(name, "j1"),
                         {f: be.get_meta(name, f) for f in ("dlq", "dlqOf")},
                         {s: be.get_ids(name, s, 0, -1, True) for s in ("wait", "failed")})
        conn.close()
        return out

    fake, memory = run(None), run("memory://")
    assert fake == memory
    assert len(fake["refusals"]) == 3  # type: ignore[arg-type]
    assert fake["kept_owner"] == "a"
    assert fake["redriven"] == "a"
    assert fake["dead"][2] == {"dlq": None, "dlqOf": "c"}  # type: ignore[index]
