"""A first end-to-end pass on every backend: add, fetch, complete, fail into the dead-letter queue."""

from __future__ import annotations

from conftest import Env


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
