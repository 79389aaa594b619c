"""Flows: parent jobs that wait for their children (bullmq-semantics §1.2, §2.1, §5.3; case 46) on every backend.

A parent waits in ``waiting-children``; each child's key sits in the parent's ``:dependencies`` set until the
child finishes. Completed children move to the parent's ``:processed`` hash with their return values; when no
dependency is left, the parent becomes ready (``waiting {prev: "waiting-children"}``). A child that fails for
good follows its failure option (fpof, cpof, idof, rdof); stalled children are covered in
``test_cases_stalled.py`` (case 31).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from conftest import Env

from queuesim import FlowProducer, JobStateError, LockError, OptionError, Queue, Worker, add_flow
from queuesim.flows import FlowNode, get_children_values, get_dependencies, get_failed_children_values


def flow(q: Queue, children: list[dict[str, Any]], **parent_opts: Any) -> dict[str, Any]:
    return {"name": "parent", "queue": q.name, "data": {"kind": "parent"}, "opts": parent_opts,
            "children": children}


def child(q: Queue, tag: str, **opts: Any) -> dict[str, Any]:
    return {"name": "child", "queue": q.name, "data": {"tag": tag}, "opts": opts}


def complete_next(w: Worker, expected_id: str, value: Any = None) -> None:
    job = w.fetch()
    assert job is not None
    assert job.id == expected_id
    w.complete(job, value)


def test_case_46_a_flow_parent_emits_waiting_children_and_then_waiting_when_its_children_are_done(
        env: Env) -> None:
    q = env.queue()
    tree = add_flow(env.conn, flow(q, [child(q, "a"), child(q, "b")]))
    parent_id = tree.job.id
    first, second = (node.job.id for node in tree.children)
    assert env.event_names(q, parent_id) == ["added", "waiting-children"]
    assert str(q.get_job_state(parent_id)) == "waiting-children"
    assert env.conn.client.zscore(q.keys.key("waiting-children"), parent_id) == tree.job.timestamp
    assert q.get_job_counts("waiting-children", "waiting") == {"waiting-children": 1, "waiting": 2}
    w = env.worker(q)
    complete_next(w, first, "A")
    assert str(q.get_job_state(parent_id)) == "waiting-children", "one child is still pending"
    assert env.event_names(q, parent_id) == ["added", "waiting-children"]
    complete_next(w, second, "B")
    assert str(q.get_job_state(parent_id)) == "waiting"
    released = [e for e in env.events(q) if e.job_id == parent_id][-1]
    assert (released.name, released.fields) == ("waiting", {"prev": "waiting-children"})
    # the parent is released inside the child's finish, before the child's own "completed" event
    names = [(e.name, e.job_id) for e in env.events(q)]
    assert names.index(("waiting", parent_id)) < names.index(("completed", second))
    parent = w.fetch()
    assert parent is not None
    assert parent.id == parent_id
    assert parent.data == {"kind": "parent"}
    w.complete(parent, "all done")
    assert env.event_names(q, parent_id)[-3:] == ["waiting", "active", "completed"]


def test_children_return_values_are_stored_in_the_parents_processed_hash(env: Env) -> None:
    q = env.queue()
    tree = add_flow(env.conn, flow(q, [child(q, "a"), child(q, "b")]))
    parent = tree.job
    keys = [q.keys.job(node.job.id) for node in tree.children]
    assert env.conn.client.smembers(q.keys.job(parent.id) + ":dependencies") == {k.encode() for k in keys}
    assert get_dependencies(parent) == {"processed": {}, "unprocessed": sorted(keys), "failed": [], "ignored": {}}
    w = env.worker(q)
    complete_next(w, tree.children[0].job.id, {"rows": 3})
    assert get_dependencies(parent)["unprocessed"] == [keys[1]]
    complete_next(w, tree.children[1].job.id, [1, 2])
    raw = env.conn.client.hgetall(q.keys.job(parent.id) + ":processed")
    assert {k.decode(): json.loads(v) for k, v in raw.items()} == {keys[0]: {"rows": 3}, keys[1]: [1, 2]}
    assert get_children_values(parent) == {keys[0]: {"rows": 3}, keys[1]: [1, 2]}
    assert env.conn.client.exists(q.keys.job(parent.id) + ":dependencies") == 0


def test_children_know_their_parent(env: Env) -> None:
    q = env.queue()
    tree = add_flow(env.conn, flow(q, [child(q, "a", fail_parent_on_failure=True)]))
    stored = q.get_job(tree.children[0].job.id)
    assert stored is not None
    parent_key = q.keys.job(tree.job.id)
    assert stored.parent_key == parent_key
    assert stored.parent == {"id": tree.job.id, "queueKey": q.keys.key("")[:-1], "fpof": True}
    assert stored.opts.fail_parent_on_failure
    assert json.loads(env.conn.client.hget(q.keys.job(stored.id), "opts"))["fpof"] is True
    assert tree.children[0].job.parent_key == parent_key
    top = q.get_job(tree.job.id)
    assert top is not None
    assert top.parent_key is None


def test_a_parent_may_wait_for_children_in_other_queues(env: Env) -> None:
    reports, etl = env.queue(), env.queue()
    tree = add_flow(env.conn, {"name": "render", "queue": reports.name, "data": {},
                               "children": [child(etl, "eu"), child(etl, "us")]})
    assert [n.job.queue.name for n in tree.children if n.job.queue] == [etl.name, etl.name]
    report_worker, etl_worker = env.worker(reports), env.worker(etl)
    assert report_worker.fetch() is None
    for node in tree.children:
        complete_next(etl_worker, node.job.id, node.job.data["tag"])
    assert str(reports.get_job_state(tree.job.id)) == "waiting"
    assert [(e.name, e.fields) for e in env.events(reports) if e.job_id == tree.job.id][-1] == \
        ("waiting", {"prev": "waiting-children"})
    assert "waiting-children" not in env.event_names(etl)
    assert env.conn.client.zscore(reports.keys.marker, "0") == 0, "idle workers of the parent's queue are woken"
    parent = report_worker.fetch()
    assert parent is not None
    assert sorted(get_children_values(parent).values()) == ["eu", "us"]


def test_nested_flows_release_each_level_in_turn(env: Env) -> None:
    q = env.queue()
    tree = FlowProducer(env.conn).add({
        "name": "root", "queue": q.name, "data": {},
        "children": [{"name": "middle", "queue": q.name, "data": {}, "children": [child(q, "leaf")]}],
    })
    middle = tree.children[0]
    leaf = middle.children[0]
    assert isinstance(leaf, FlowNode)
    assert q.get_job_counts("waiting-children", "waiting") == {"waiting-children": 2, "waiting": 1}
    w = env.worker(q)
    complete_next(w, leaf.job.id, "leaf result")
    assert str(q.get_job_state(middle.job.id)) == "waiting"
    assert str(q.get_job_state(tree.job.id)) == "waiting-children"
    complete_next(w, middle.job.id, "middle result")
    assert str(q.get_job_state(tree.job.id)) == "waiting"
    root = w.fetch()
    assert root is not None
    assert get_children_values(root) == {q.keys.job(middle.job.id): "middle result"}


def test_a_released_parent_goes_to_the_head_of_wait(env: Env) -> None:
    q = env.queue()
    tree = add_flow(env.conn, flow(q, [child(q, "a")]))
    other = q.add("other", {}).id
    w = env.worker(q)
    complete_next(w, tree.children[0].job.id)
    assert [j.id for j in q.get_waiting()] == [tree.job.id, other]
    complete_next(w, tree.job.id)


def test_a_released_parent_keeps_its_priority_or_its_delay(env: Env) -> None:
    q = env.queue()
    prioritized = add_flow(env.conn, flow(q, [child(q, "p")], priority=5))
    delayed = add_flow(env.conn, flow(q, [child(q, "d")], delay=500))
    w = env.worker(q)
    complete_next(w, prioritized.children[0].job.id)
    assert str(q.get_job_state(prioritized.job.id)) == "prioritized"
    before = env.now()
    complete_next(w, delayed.children[0].job.id)
    after = env.now()
    assert str(q.get_job_state(delayed.job.id)) == "delayed"
    event = [e for e in env.events(q) if e.job_id == delayed.job.id][-1]
    assert event.name == "delayed"
    assert before + 500 <= event.value() <= after + 500, "the delay counts from the release"
    complete_next(w, prioritized.job.id)
    assert w.fetch() is None
    env.advance(500)
    complete_next(w, delayed.job.id)


def test_a_parent_released_while_its_queue_is_paused_lands_in_paused(env: Env) -> None:
    parents, children = env.queue(), env.queue()
    tree = add_flow(env.conn, {"name": "p", "queue": parents.name, "data": {}, "children": [child(children, "c")]})
    parents.pause()
    complete_next(env.worker(children), tree.children[0].job.id)
    assert parents.get_job_counts("paused", "waiting") == {"paused": 1, "waiting": 0}
    assert env.worker(parents).fetch() is None


def test_a_failing_child_without_a_policy_leaves_its_parent_waiting(env: Env) -> None:
    q = env.queue()
    tree = add_flow(env.conn, flow(q, [child(q, "a")]))
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert w.fail(job, RuntimeError("boom")) == "failed"
    assert str(q.get_job_state(tree.job.id)) == "waiting-children"
    assert get_dependencies(tree.job)["unprocessed"] == [q.keys.job(job.id)]


def test_a_retried_child_does_not_touch_its_parent_until_its_final_failure(env: Env) -> None:
    q = env.queue()
    tree = add_flow(env.conn, flow(q, [child(q, "a", attempts=2, continue_parent_on_failure=True)]))
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert w.fail(job, RuntimeError("first")) == "retried"
    assert str(q.get_job_state(tree.job.id)) == "waiting-children"
    job = w.fetch()
    assert job is not None
    assert w.fail(job, RuntimeError("second")) == "failed"
    assert str(q.get_job_state(tree.job.id)) == "waiting"
    assert get_failed_children_values(tree.job) == {q.keys.job(job.id): "second"}


def test_fail_parent_on_failure_propagates_up_a_chain_of_parents(env: Env) -> None:
    q = env.queue()
    tree = add_flow(env.conn, {
        "name": "root", "queue": q.name, "data": {},
        "children": [{"name": "middle", "queue": q.name, "data": {}, "opts": {"fail_parent_on_failure": True},
                      "children": [child(q, "leaf", fail_parent_on_failure=True)]}],
    })
    middle = tree.children[0]
    leaf = middle.children[0]
    w = env.worker(q)
    job = w.fetch()
    assert job is not None
    assert job.id == leaf.job.id
    assert w.fail(job, RuntimeError("leaf broke")) == "failed"
    assert str(q.get_job_state(middle.job.id)) == "waiting"
    assert w.fetch() is None, "middle and then root are failed without running"
    middle_job, root_job = q.get_job(middle.job.id), q.get_job(tree.job.id)
    assert middle_job is not None
    assert root_job is not None
    assert middle_job.failed_reason == f"child {q.keys.job(leaf.job.id)} failed"
    assert root_job.failed_reason == f"child {q.keys.job(middle.job.id)} failed"
    assert get_dependencies(root_job)["failed"] == [q.keys.job(middle.job.id)]


def test_completing_a_parent_with_a_pending_child_is_refused(env: Env) -> None:
    q = env.queue()
    tree = add_flow(env.conn, flow(q, [child(q, "a")]))
    w = env.worker(q)
    complete_next(w, tree.children[0].job.id)
    parent = w.fetch()
    assert parent is not None
    late = q.add("late child", {}, parent={"id": parent.id, "queue": q.name})
    assert late.parent_key == q.keys.job(parent.id)
    with pytest.raises(JobStateError) as info:
        w.complete(parent, "too early")
    assert info.value.code == -4
    assert str(info.value) == f"Job {parent.id} has pending dependencies. moveToFinished"
    assert str(q.get_job_state(parent.id)) == "active"
    complete_next(w, late.id, "late")
    w.complete(parent, "now")
    assert str(q.get_job_state(parent.id)) == "completed"


def test_completing_a_parent_whose_child_failed_it_is_refused(env: Env) -> None:
    q = env.queue()
    tree = add_flow(env.conn, flow(q, [child(q, "a")]))
    w = env.worker(q)
    complete_next(w, tree.children[0].job.id)
    parent = w.fetch()
    assert parent is not None
    q.add("late child", {}, parent={"id": parent.id, "queue": q.name}, fail_parent_on_failure=True)
    late = w.fetch()
    assert late is not None
    assert w.fail(late, RuntimeError("broke")) == "failed"
    with pytest.raises(JobStateError) as info:
        w.complete(parent, "done")
    assert info.value.code == -9
    assert str(info.value).startswith(f"Cannot complete job {parent.id} because it has at least one failed child")


def test_adding_a_child_to_a_missing_parent_is_refused_and_writes_nothing(env: Env) -> None:
    q = env.queue()
    q.add("first", {})
    counter = env.conn.client.get(q.keys.id)
    with pytest.raises(JobStateError) as info:
        q.add("orphan", {}, parent={"id": "nope", "queue": q.name})
    assert info.value.code == -5
    assert str(info.value) == f"Missing key for parent job {q.keys.job('nope')}. addJob"
    assert env.conn.client.get(q.keys.id) == counter
    assert q.get_job_counts("waiting")["waiting"] == 1


def test_a_job_already_in_one_parent_cannot_join_another(env: Env) -> None:
    q = env.queue()
    first = add_flow(env.conn, flow(q, [{"name": "c", "queue": q.name, "data": {}, "opts": {"job_id": "shared"}}]))
    second = add_flow(env.conn, flow(q, [child(q, "x")]))
    with pytest.raises(JobStateError) as info:
        q.add("c", {}, job_id="shared", parent={"id": second.job.id, "queue": q.name})
    assert info.value.code == -7
    assert get_dependencies(first.job)["unprocessed"] == [q.keys.job("shared")]
    assert get_dependencies(second.job)["unprocessed"] == [q.keys.job(second.children[0].job.id)]


def test_a_completed_job_added_again_under_a_parent_counts_as_a_processed_child(env: Env) -> None:
    q = env.queue()
    q.add("c", {}, job_id="done-already")
    w = env.worker(q)
    complete_next(w, "done-already", "old result")
    tree = add_flow(env.conn, flow(q, [{"name": "c", "queue": q.name, "data": {}, "opts": {"job_id": "done-already"}}]))
    assert get_children_values(tree.job) == {q.keys.job("done-already"): "old result"}
    assert str(q.get_job_state(tree.job.id)) == "waiting", "nothing left to wait for"
    assert "duplicated" in env.event_names(q, "done-already")


@pytest.mark.parametrize(("opts", "field"), [
    ({"fail_parent_on_failure": True, "continue_parent_on_failure": True}, "fail_parent_on_failure"),
    ({"ignore_dependency_on_failure": True, "remove_dependency_on_failure": True}, "ignore_dependency_on_failure"),
    ({"fail_parent_on_failure": "yes"}, "fail_parent_on_failure"),
    ({"parent": {"id": "1"}}, "parent"),
    ({"parent": {"id": "", "queue": "q"}}, "parent.id"),
    ({"parent": {"id": "1", "queue": "bad:name:x"}}, "parent.queue"),
    ({"parent": {"id": "1", "queue": "other-prefix:q"}}, "parent.queue"),
    ({"parent": {"id": "1", "queue": "q"}, "deduplication": {"id": "d"}}, "deduplication"),
])
def test_invalid_parent_options_are_refused_naming_the_field(env: Env, opts: dict[str, Any], field: str) -> None:
    q = env.queue()
    before = sorted(env.conn.client.keys(f"{q.keys.base}*"))
    with pytest.raises(OptionError) as info:
        q.add("test", {}, **opts)
    assert info.value.field == field
    assert sorted(env.conn.client.keys(f"{q.keys.base}*")) == before


def test_a_parent_given_as_a_prefixed_queue_key_is_accepted(env: Env) -> None:
    q = env.queue()
    tree = add_flow(env.conn, flow(q, [child(q, "a")]))
    extra = q.add("extra", {}, parent={"id": tree.job.id, "queue": q.keys.key("")[:-1]})
    assert sorted(get_dependencies(tree.job)["unprocessed"]) == sorted(
        [q.keys.job(tree.children[0].job.id), q.keys.job(extra.id)])


def test_an_invalid_node_anywhere_in_a_flow_writes_nothing(env: Env) -> None:
    q = env.queue()
    before = sorted(env.conn.client.keys(f"{q.keys.base}*"))
    bad = flow(q, [child(q, "ok"), {"name": "bad", "queue": q.name, "data": {}, "opts": {"priority": -1}}])
    with pytest.raises(OptionError) as info:
        add_flow(env.conn, bad)
    assert info.value.field == "flow.children[1].priority"
    with pytest.raises(OptionError) as info:
        add_flow(env.conn, flow(q, [{"name": "c", "queue": "no:colons", "data": {}}]))
    assert info.value.field == "flow.children[0].queue"
    with pytest.raises(OptionError):
        add_flow(env.conn, flow(q, [child(q, "c", parent={"id": "x", "queue": q.name})]))
    assert sorted(env.conn.client.keys(f"{q.keys.base}*")) == before


# --- removing jobs of a flow (bullmq-semantics §5.3: remove(id, removeChildren=true)) ---------------------------
#
# The expected events below are those BullMQ 5.81.5 writes for the same flow on a real Redis (observed with its
# Queue.remove). BullMQ takes pending children in the order of a Redis SET, which Redis does not fix; queuesim
# takes them in key order, so the queue names below are chosen to make the parent's queue sort first.


def removal_flow(env: Env) -> tuple[Queue, Queue]:
    """P (in pq) waits for C1, C2 (in cq; C2 waits for G1, also in cq) and C3 (in pq)."""
    tag = uuid.uuid4().hex[:8]
    pq, cq = env.queue(f"a-{tag}"), env.queue(f"b-{tag}")
    add_flow(env.conn, {"name": "p", "queue": pq.name, "data": {}, "opts": {"job_id": "P"}, "children": [
        {"name": "c", "queue": cq.name, "data": {}, "opts": {"job_id": "C1"}},
        {"name": "c", "queue": cq.name, "data": {}, "opts": {"job_id": "C2"},
         "children": [{"name": "g", "queue": cq.name, "data": {}, "opts": {"job_id": "G1"}}]},
        {"name": "c", "queue": pq.name, "data": {}, "opts": {"job_id": "C3"}},
    ]})
    for q in (pq, cq):
        q.trim_events(0)
    return pq, cq


def removal_events(env: Env, q: Queue) -> list[tuple[str, str | None, str | None]]:
    return [(e.name, e.job_id, e.fields.get("prev")) for e in env.events(q)]


def test_removing_flow_children_unlinks_them_and_the_last_one_releases_the_parent(env: Env) -> None:
    pq, cq = removal_flow(env)
    parent_key = pq.keys.job("P")
    assert cq.remove("C1") is True
    assert str(pq.get_job_state("P")) == "waiting-children"
    assert sorted(get_dependencies(pq.get_job("P"))["unprocessed"]) == [pq.keys.job("C3"), cq.keys.job("C2")]
    # C2 goes with its own child G1; removing G1 first releases C2 to wait, then C2 itself is removed
    assert cq.remove("C2") is True
    assert str(cq.get_job_state("G1")) == "unknown"
    assert get_dependencies(pq.get_job("P"))["unprocessed"] == [pq.keys.job("C3")]
    assert pq.remove("C3") is True
    assert str(pq.get_job_state("P")) == "waiting"
    assert env.conn.client.smembers(parent_key + ":dependencies") == set()
    assert removal_events(env, cq) == [("removed", "C1", "wait"), ("waiting", "C2", "waiting-children"),
                                       ("removed", "G1", "wait"), ("removed", "C2", "wait")]
    assert removal_events(env, pq) == [("waiting", "P", "waiting-children"), ("removed", "C3", "wait")]
    released = env.worker(pq).fetch()
    assert released is not None
    assert released.id == "P", "the released parent can run"


def test_removing_a_parent_removes_its_whole_tree_depth_first(env: Env) -> None:
    pq, cq = removal_flow(env)
    w = env.worker(cq)
    complete_next(w, "C1", "r1")
    assert get_children_values(pq.get_job("P")) == {cq.keys.job("C1"): "r1"}
    assert pq.remove("P") is True
    for q, job_id in ((pq, "P"), (pq, "C3"), (cq, "C1"), (cq, "C2"), (cq, "G1")):
        assert str(q.get_job_state(job_id)) == "unknown", job_id
        assert env.conn.client.exists(q.keys.job(job_id), q.keys.job(job_id) + ":dependencies") == 0
    for q in (pq, cq):
        assert not any(q.get_job_counts().values())
    # processed children first, then the pending ones; each removal of the last pending child releases its
    # parent just before that parent's own removal
    assert removal_events(env, pq) == [("removed", "C3", "wait"), ("waiting", "P", "waiting-children"),
                                       ("removed", "P", "wait")]
    assert removal_events(env, cq)[-4:] == [("removed", "C1", "completed"), ("waiting", "C2", "waiting-children"),
                                            ("removed", "G1", "wait"), ("removed", "C2", "wait")]


def test_a_locked_descendant_refuses_the_removal_of_its_ancestors_and_nothing_is_removed(env: Env) -> None:
    pq, cq = removal_flow(env)
    w = env.worker(cq)
    taken = w.fetch()
    assert taken is not None
    assert taken.id == "C1"
    counts = (pq.get_job_counts(), cq.get_job_counts())
    with pytest.raises(LockError, match="locked by another worker"):
        pq.remove("P")
    assert (pq.get_job_counts(), cq.get_job_counts()) == counts
    assert removal_events(env, pq) == []
    # without its children the parent may go: the locked child stays and still finishes
    assert pq.remove("P", remove_children=False) is True
    assert str(pq.get_job_state("P")) == "unknown"
    assert str(cq.get_job_state("G1")) == "waiting"
    w.complete(taken, "late")
    assert str(cq.get_job_state("C1")) == "completed"
    assert env.conn.client.exists(pq.keys.job("P") + ":processed") == 0, "a removed parent is not recreated"


def test_a_parent_released_by_a_removal_goes_to_the_end_of_wait_even_with_a_priority(env: Env) -> None:
    q = env.queue()
    tree = add_flow(env.conn, flow(q, [child(q, "a")], priority=3))
    q.remove(tree.children[0].job.id)
    assert [j.id for j in q.get_waiting()] == [tree.job.id]
    assert q.get_job_counts("prioritized")["prioritized"] == 0


def test_remove_children_must_be_a_bool(env: Env) -> None:
    q = env.queue()
    job = q.add("x", {})
    with pytest.raises(OptionError, match="remove_children"):
        q.remove(job.id, remove_children="yes")  # type: ignore[arg-type]
    assert str(q.get_job_state(job.id)) == "waiting"
