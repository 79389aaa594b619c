"""Flows: a parent job that runs only after its children (BullMQ's ``FlowProducer``).

A flow is a tree. Every node is a job ``{"name", "queue", "data", "opts", "children"}``; a node with children
is a *parent*. The parent is stored first, in its queue's ``waiting-children`` set, then its children are
added as ordinary jobs that point back at it (``parentKey``). Each child's key sits in the parent's
``:dependencies`` set until the child finishes:

* a completed child moves to the parent's ``:processed`` hash, with its return value (read them with
  :func:`get_children_values`); when none is pending any more the parent becomes ready (event
  ``waiting {prev: "waiting-children"}``) and a worker runs it like any job;
* a child that fails for good follows its failure option: ``fail_parent_on_failure`` fails the parent too,
  ``continue_parent_on_failure`` releases it now, ``ignore_dependency_on_failure`` records the failure and
  releases the parent once the other children are done, ``remove_dependency_on_failure`` forgets the child.
  Without one, the parent keeps waiting.

Children may live in other queues than their parent (same connection, same prefix) and may have children of
their own. Example::

    tree = add_flow(conn, {
        "name": "render-report", "queue": "reports", "data": {"month": "2024-05"},
        "children": [
            {"name": "fetch-sales", "queue": "etl", "data": {"region": "eu"}},
            {"name": "fetch-sales", "queue": "etl", "data": {"region": "us"}},
        ],
    })
    tree.job.id               # the parent, waiting for its two children
    tree.children[0].job.id   # a child, ready for the "etl" workers
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from queuesim.connection import Connection
from queuesim.errors import OptionError
from queuesim.job import Job
from queuesim.options import JobOptions, Parent, dump_json, validate_queue_name
from queuesim.queue import Queue

__all__ = ["FlowNode", "FlowProducer", "add_flow", "get_children_values", "get_dependencies",
           "get_failed_children_values"]

_NODE_KEYS = {"name", "queue", "data", "opts", "children"}


@dataclass(slots=True)
class FlowNode:
    """One added job of a flow and the nodes of its children (BullMQ's ``JobNode``)."""

    job: Job
    children: list[FlowNode] = field(default_factory=list)


@dataclass(slots=True)
class _Planned:
    """A validated node, waiting to be written."""

    queue: str
    name: str
    data: Any
    payload: str
    opts: JobOptions
    timestamp: int
    children: list[_Planned]


class FlowProducer:
    """Adds flows (trees of parent and child jobs) over one connection.

    Args:
        connection: from :func:`queuesim.connect`; every queue of a flow lives on it, under its prefix.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._queues: dict[str, Queue] = {}

    def _queue(self, name: str) -> Queue:
        q = self._queues.get(name)
        if q is None:
            q = self._queues[name] = Queue(name, self.connection)
        return q

    def add(self, flow: Mapping[str, Any]) -> FlowNode:
        """Add a whole flow; returns its tree of jobs.

        Every node is validated before anything is written; then all jobs are written in one transaction,
        each parent before its children. A parent without a custom ``job_id`` gets a random UUID (as in
        BullMQ's flow producer), so that its children can name it before it is written; other jobs get their
        queue's next counter id. The root may carry a ``parent`` option of its own (to hang the flow under an
        existing job); the other nodes may not.
        """
        root = self._plan(flow, "flow", parent=None, now=self.connection.clock.now_ms())
        ordered: list[_Planned] = []
        self._flatten(root, ordered)
        for p in ordered:
            self._queue(p.queue)
        rows = [(p.queue, p.name, p.payload, p.opts, p.timestamp, bool(p.children)) for p in ordered]
        results = self.connection.backend.add_flow_jobs(rows)
        ids = {id(p): r.job_id for p, r in zip(ordered, results, strict=True)}
        return self._tree(root, ids)

    def _plan(self, node: Any, where: str, parent: Parent | None, now: int) -> _Planned:
        if not isinstance(node, Mapping):
            raise OptionError(where, f"must be a mapping with keys {sorted(_NODE_KEYS)}, got {node!r}")
        unknown = set(node) - _NODE_KEYS
        if unknown:
            raise OptionError(where, f"unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(_NODE_KEYS))}")
        name = node.get("name")
        if not isinstance(name, str) or not name:
            raise OptionError(f"{where}.name", f"must be a non-empty string, got {name!r}")
        try:
            queue = validate_queue_name(node.get("queue"))
        except OptionError as exc:
            raise OptionError(f"{where}.queue", str(exc)) from None
        raw_opts = node.get("opts") or {}
        if not isinstance(raw_opts, Mapping):
            raise OptionError(f"{where}.opts", f"must be a mapping of job options, got {raw_opts!r}")
        if parent is not None and "parent" in raw_opts:
            raise OptionError(f"{where}.opts.parent", "is set by the flow for every node but the root")
        children = node.get("children") or []
        if not isinstance(children, list):
            raise OptionError(f"{where}.children", f"must be a list of nodes, got {children!r}")
        merged = dict(raw_opts)
        if parent is not None:
            merged["parent"] = parent
        if children and not merged.get("job_id"):
            merged["job_id"] = str(uuid.uuid4())
        try:
            opts = JobOptions.build(merged)
            payload = dump_json(node.get("data"), "data")
        except OptionError as exc:
            raise OptionError(f"{where}.{exc.field}", str(exc).split(": ", 1)[-1]) from None
        if opts.repeat is not None:
            raise OptionError(f"{where}.opts.repeat", "a flow job cannot repeat")
        if opts.size_limit is not None and len(payload.encode()) > opts.size_limit:
            raise OptionError(f"{where}.data", f"The size of job {name} exceeds the limit {opts.size_limit} bytes")
        timestamp = opts.timestamp if opts.timestamp is not None else now
        planned = _Planned(queue, name, node.get("data"), payload, opts, timestamp, [])
        if children:
            me = Parent(opts.job_id or "", queue, self.connection.backend.prefix)
            planned.children = [self._plan(child, f"{where}.children[{i}]", me, now)
                                for i, child in enumerate(children)]
        return planned

    def _flatten(self, planned: _Planned, out: list[_Planned]) -> None:
        out.append(planned)
        for child in planned.children:
            self._flatten(child, out)

    def _tree(self, planned: _Planned, ids: dict[int, str]) -> FlowNode:
        opts, prefix = planned.opts, self.connection.backend.prefix
        job = Job(id=ids[id(planned)], name=planned.name, data=planned.data, opts=opts, timestamp=planned.timestamp,
                  delay=opts.delay, priority=opts.priority, queue=self._queue(planned.queue),
                  parent_key=opts.parent.job_key(prefix) if opts.parent else None)
        return FlowNode(job, [self._tree(child, ids) for child in planned.children])


def add_flow(connection: Connection, flow: Mapping[str, Any]) -> FlowNode:
    """Add a flow (see :class:`FlowProducer`): ``{"name", "queue", "data", "opts", "children": [...]}``."""
    return FlowProducer(connection).add(flow)


# --- reading what the children left for their parent ---------------------------------------------------------


def _dependencies(job: Job) -> dict[str, Any]:
    if job.queue is None:
        raise OptionError("job", f"job {job.id} is not bound to a queue")
    return job.queue.backend.get_dependencies(job.queue.name, job.id)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def get_children_values(job: Job) -> dict[str, Any]:
    """The return values of the parent's completed children, by child job key (BullMQ's
    ``getChildrenValues``)."""
    return {k: _loads(v) for k, v in _dependencies(job)["processed"].items()}


def get_failed_children_values(job: Job) -> dict[str, str]:
    """Failed reasons of the children that failed with ``ignore_dependency_on_failure`` or
    ``continue_parent_on_failure``, by child job key."""
    return _dependencies(job)["ignored"]


def get_dependencies(job: Job) -> dict[str, Any]:
    """Where the parent's children stand: ``processed`` (key → return value), ``unprocessed`` (keys still
    pending), ``failed`` (keys of children that failed the parent) and ``ignored`` (key → failed reason)."""
    deps = _dependencies(job)
    return {**deps, "processed": {k: _loads(v) for k, v in deps["processed"].items()}}
