"""The machinery of the differential tests: run one operation sequence on two backends side by side.

An *operation* is a plain tuple such as ``("add", "mail", {"priority": 2})`` or ``("fail", 0, 1, "error")``; a
*sequence* is a list of them. :class:`Side` holds one backend with its queue, dead-letter queue and workers;
:func:`run_sequence` applies every operation to both sides, compares what each call returned (or raised), and
after every step compares a :func:`snapshot` of everything observable: the events streams (ids, names, fields),
every job hash, the ids in every state in order, the counts, the logs, queue settings, limiter and wake-up times,
and each worker's own view. The first difference fails with the step number and the two values.

Jobs are referred to by position in the sorted list of ids seen so far (and a few custom ids), so an operation
means the same job on both sides as long as the sides agree — which is what is being checked.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from queuesim import (
    DelayedError,
    Queue,
    RateLimitError,
    RetryableError,
    UnrecoverableError,
    VirtualClock,
    WaitingError,
    Worker,
)
from queuesim.connection import Connection

Op = tuple[Any, ...]

START_MS = 1_700_000_000_000
STATES = ("wait", "paused", "active", "prioritized", "delayed", "completed", "failed", "waiting-children")
META_FIELDS = ("paused", "concurrency", "max", "duration", "opts.maxLenEvents", "dlq", "dlqOf")
CUSTOM_IDS = ("a", "b", "c", "p1", "p2")
PRIORITIES = (1, 2, 5)


@dataclass(frozen=True)
class Timing:
    """The times a sequence may use.

    On fakeredis and the memory backend everything runs in virtual time, so exact boundaries (an advance equal to
    a lock duration) are fair game. On a real Redis, expiries follow the server's wall clock: every advance is a
    multiple of ``unit`` and every server-side ttl sits half a unit off that grid, so a few ms of execution time
    can never decide whether a lock or a limiter window has run out.
    """

    unit: int
    advances: tuple[int, ...]
    lock_durations: tuple[int, ...]
    stalled_intervals: tuple[int, ...]
    limiter_durations: tuple[int, ...]
    ttls: tuple[int, ...]
    max_len_events: tuple[int, ...]


VIRTUAL = Timing(
    unit=1,
    advances=(0, 1, 50, 100, 250, 300, 499, 500, 501, 999, 1000, 1001, 1299, 1300, 1301, 2000, 5000),
    # durations such as 300 or 1300 ms are no exact binary fraction of a second: expiry at the exact ms
    lock_durations=(1000, 1300),
    stalled_intervals=(500, 1300),
    limiter_durations=(1000, 300),
    ttls=(500, 1300, 300),
    max_len_events=(10_000, 0, 1, 3, 20, 150),
)

REAL = Timing(
    unit=200,
    advances=(0, 200, 400, 800, 1200),
    lock_durations=(1100, 700),
    stalled_intervals=(700, 1100),
    limiter_durations=(1100, 500),
    ttls=(700, 1100, 300),
    max_len_events=(10_000,),
)

#: how far a real Redis server's clock may run ahead of the shared virtual time (execution time since the last
#: advance); half a unit, the distance between the advance grid and every ttl
REAL_TIME_SLACK_MS = REAL.unit // 2


def worker_options(timing: Timing) -> list[dict[str, Any]]:
    """Three workers with different settings (lock, stalled check, limiter, keep policies, names)."""
    return [
        {"name": "alpha", "lock_duration": timing.lock_durations[0], "stalled_interval": timing.stalled_intervals[0],
         "max_stalled_count": 1, "remove_on_complete": {"count": 4}, "backoff_strategies": {"custom": custom_backoff}},
        {"lock_duration": timing.lock_durations[1], "stalled_interval": timing.stalled_intervals[1],
         "max_stalled_count": 0, "limiter": {"max": 2, "duration": timing.limiter_durations[0]},
         "remove_on_complete": 3, "remove_on_fail": {"age": 1, "count": 2},
         "backoff_strategies": {"custom": custom_backoff}},
        {"name": "gamma", "lock_duration": timing.lock_durations[0], "stalled_interval": timing.stalled_intervals[1],
         "max_stalled_count": 2, "max_started_attempts": 3, "maximum_rate_limit_delay": 200,
         "backoff_strategies": {"custom": custom_backoff}},
    ]


def custom_backoff(attempts_made: int, _type: str, _error: BaseException | None, _job: Any) -> int:
    """A custom backoff strategy: retry now, later, or give up, depending on the attempt."""
    return (0, 150, -1)[attempts_made % 3]


class SyncedClock:
    """Virtual time for a run against a real Redis: ``now_ms`` moves only on :meth:`advance` (so both sides see
    the same times), and advancing sleeps until the wall clock has caught up (so Redis' expiries keep pace)."""

    virtual = False

    def __init__(self) -> None:
        self._start = (int(time.time() * 1000) // 1000 + 1) * 1000  # a whole second: the grid is aligned
        self._offset = 0
        self._sleep_to(0)

    def now_ms(self) -> int:
        return self._start + self._offset

    def _sleep_to(self, offset: int) -> None:
        target = (self._start + offset) / 1000
        while (delta := target - time.time()) > 0:
            time.sleep(delta)

    def advance(self, ms: int) -> int:
        self._offset += ms
        self._sleep_to(self._offset)
        return self.now_ms()


@dataclass
class Side:
    """One backend under test: its connection, queue, dead-letter queue and workers."""

    kind: str
    conn: Connection
    queue: Queue
    dlq: Queue
    workers: list[Worker]
    outcomes: list[Any] = field(default_factory=list)

    @classmethod
    def build(cls, kind: str, conn: Connection, queue_name: str, max_len_events: int, timing: Timing) -> Side:
        queue = Queue(queue_name, conn, max_len_events=max_len_events)
        dlq = Queue(f"{queue_name}-dead", conn)
        workers = [Worker(queue, rng=np.random.default_rng(i), worker_id=f"w{i}", **opts)
                   for i, opts in enumerate(worker_options(timing))]
        return cls(kind, conn, queue, dlq, workers)


def job_view(job: Any) -> Any:
    """A Job as comparable data (every field but the queue object)."""
    if job is None:
        return None
    return tuple((f.name, getattr(job, f.name)) for f in dataclasses.fields(job) if f.name != "queue")


def normalise(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__") and hasattr(value, "attempts_made"):
        return job_view(value)
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    return value


def pick(items: Sequence[str], k: int) -> str | None:
    return items[k % len(items)] if items else None


def apply(side: Side, op: Op, ids: list[str], clock: Any) -> Any:
    """Run one operation on one side; returns a comparable value (exceptions are caught by the caller)."""
    kind = op[0]
    q = side.queue
    if kind == "add":
        return q.add(op[1], op[2], **op[3])
    if kind == "add_many":
        return [q.add(op[2], op[3], **op[4]) for _ in range(op[1])]
    if kind == "burst":  # a running worker: complete (fetching the next job in the same call) op[2] times
        w = side.workers[op[1]]
        done = []
        job = w.fetch() if not w.active else w.active[min(w.active)]
        while job is not None and len(done) < op[2]:
            done.append(job.id)
            job = w.complete(job, op[3], fetch_next=True)
        return done, job_view(job)
    if kind == "add_bulk":
        return q.add_bulk([{"name": name, "data": data, "opts": opts} for name, data, opts in op[1]])
    if kind == "advance":
        clock.advance(op[1])
        return None
    if kind == "fetch":
        return side.workers[op[1]].fetch()
    if kind in ("complete", "fail", "crash", "extend", "stalled"):
        w = side.workers[op[1]]
        if kind == "crash":
            return w.forget()
        if kind == "extend":
            return w.extend_locks()
        if kind == "stalled":
            return w.check_stalled()
        fetched = None
        if not w.active:  # like a running worker: take a job first
            fetched = w.fetch()
            if fetched is None:
                return "nothing to process"
        job = w.active[pick(sorted(w.active), op[2])]
        if kind == "complete":
            return job_view(fetched), job.id, job_view(w.complete(job, op[3], fetch_next=op[4]))
        error = make_error(op[3], job, clock)
        outcome = w.fail(job, error, fetch_next=op[4])
        return job_view(fetched), job.id, outcome, job_view(getattr(w, "prefetched", None))
    if kind == "pause":
        return q.pause() if op[1] else q.resume()
    job_id = pick(ids, op[1]) if kind in JOB_OPS else None
    if kind in JOB_OPS and job_id is None:
        return "no job"
    if kind == "promote":
        return q.promote(job_id)
    if kind == "change_priority":
        return q.change_priority(job_id, op[2], op[3])
    if kind == "change_delay":
        return q.change_delay(job_id, op[2])
    if kind == "remove":
        return q.remove(job_id)
    if kind == "retry_job":
        return q.backend.reprocess_job(q.name, job_id, op[2], op[3], op[4])
    if kind == "progress":
        return q.backend.update_progress(q.name, job_id, op[2])
    if kind == "log":
        return q.backend.add_log(q.name, job_id, op[2], op[3])
    if kind == "get_state":
        return str(q.get_job_state(job_id))
    if kind == "update_data":
        return q.backend.update_data(q.name, job_id, op[2])
    if kind == "clear_logs":
        return q.backend.clear_logs(q.name, job_id, op[2])
    if kind == "redrive":
        return side.dlq.backend.redrive(side.dlq.name, job_id)
    if kind == "clean":
        return q.clean(op[1], op[2], op[3])
    if kind == "retry_jobs":
        return q.retry_jobs(op[1], op[2])
    if kind == "promote_jobs":
        return q.promote_jobs(op[1])
    if kind == "drain":
        return q.drain(op[1])
    if kind == "rate_limit":
        return q.rate_limit(op[1])
    if kind == "remove_rate_limit_key":
        return q.remove_rate_limit_key()
    if kind == "global_rate_limit":
        return q.set_global_rate_limit(op[1], op[2]) if op[1] else q.remove_global_rate_limit()
    if kind == "global_concurrency":
        return q.set_global_concurrency(op[1]) if op[1] else q.remove_global_concurrency()
    if kind == "dlq":
        return q.set_dead_letter_queue(side.dlq.name if op[1] else None)
    if kind == "dlq_purge":
        return len(side.dlq.clean(0, 0, "failed"))
    if kind == "obliterate":
        return q.obliterate(op[1])
    if kind == "trim_events":
        return q.trim_events(op[1])
    if kind == "get_jobs":
        return q.get_jobs(op[1], op[2], op[3], op[4])
    if kind == "counts_per_priority":
        return q.get_counts_per_priority([0, *PRIORITIES])
    if kind == "scheduler":
        sid, every, limit, offset = op[1:5]
        return q.upsert_job_scheduler(sid, every=every, limit=limit, offset=offset, data={"from": sid},
                                      opts=op[5])
    if kind == "cron_scheduler":
        return q.upsert_job_scheduler(op[1], pattern=op[2], data=None)
    if kind == "remove_scheduler":
        return q.remove_job_scheduler(op[1])
    if kind == "flow":
        parent_id, children, policy, parent_opts = op[1:5]
        from queuesim.flows import FlowProducer

        kids = [{"name": f"child{i}", "queue": q.name, "data": i, "opts": {policy: True} if policy else {}}
                for i in range(children)]
        tree = FlowProducer(side.conn).add({"name": "parent", "queue": q.name, "data": None,
                                            "opts": {"job_id": parent_id, **parent_opts}, "children": kids})
        return [normalise(tree.job), [normalise(c.job) for c in tree.children]]
    raise AssertionError(f"unknown operation {op!r}")


JOB_OPS = ("promote", "change_priority", "change_delay", "remove", "retry_job", "progress", "log", "get_state",
           "redrive", "update_data", "clear_logs")


def make_error(kind: str, job: Any, clock: Any) -> BaseException:
    """The error a processor raises, by kind. ``delayed`` and ``waiting`` move the job first, as a step job does."""
    if kind == "error":
        return RuntimeError("boom")
    if kind == "unrecoverable":
        return UnrecoverableError("no way")
    if kind.startswith("retryable"):
        return RetryableError("later", delay_ms=int(kind.split(":")[1]))
    if kind.startswith("ratelimit"):
        after = int(kind.split(":")[1])
        return RateLimitError(retry_after_ms=after or None)
    if kind.startswith("delayed"):
        job.move_to_delayed(clock.now_ms() + int(kind.split(":")[1]))
        return DelayedError()
    if kind == "waiting":
        job.move_to_wait()
        return WaitingError()
    if kind == "waiting-unmoved":
        return WaitingError()
    raise AssertionError(kind)


def known_ids(side: Side) -> list[str]:
    """Ids the operations may refer to: every job id seen in either events stream, plus a few custom ids."""
    seen = set(CUSTOM_IDS)
    for name in (side.queue.name, side.dlq.name):
        for _, fields in side.conn.backend.read_events(name, "0", None):
            if "jobId" in fields:
                seen.add(fields["jobId"])
            if "deduplicatedJobId" in fields:
                seen.add(fields["deduplicatedJobId"])
    for name in (side.queue.name, side.dlq.name):
        for state in STATES:
            seen.update(side.conn.backend.get_ids(name, state, 0, -1, True))
    return sorted(seen)


def snapshot(side: Side, ids: list[str]) -> dict[str, Any]:
    """Everything a client can observe about both queues and the workers."""
    b = side.conn.backend
    out: dict[str, Any] = {}
    for label, name in (("queue", side.queue.name), ("dlq", side.dlq.name)):
        out[f"{label}.events"] = b.read_events(name, "0", None)
        out[f"{label}.last_event_id"] = b.last_event_id(name)
        out[f"{label}.counts"] = b.get_counts(name, ["waiting", *STATES[1:]])
        for state in STATES:
            out[f"{label}.ids.{state}"] = b.get_ids(name, state, 0, -1, True)
        out[f"{label}.ids.completed.desc"] = b.get_ids(name, "completed", 0, 2, False)
        out[f"{label}.ids.wait.desc"] = b.get_ids(name, "wait", 1, -1, False)
        out[f"{label}.jobs"] = {i: _comparable_hash(b.get_job_fields(name, i)) for i in ids}
        out[f"{label}.logs"] = {i: b.get_logs(name, i, 0, -1) for i in ids}
        out[f"{label}.meta"] = {f: b.get_meta(name, f) for f in META_FIELDS}
        out[f"{label}.paused"] = b.is_paused(name)
        out[f"{label}.next_due"] = b.next_due_ms(name)
        out[f"{label}.priorities"] = {p: b.count_priority(name, p) for p in PRIORITIES}
    out["queue.states"] = {i: b.get_state(side.queue.name, i) for i in ids}
    out["queue.ready"] = b.has_ready_jobs(side.queue.name)
    out["queue_names"] = [n for n in b.queue_names() if n in (side.queue.name, side.dlq.name)]
    out["queue.dependencies"] = {i: b.get_dependencies(side.queue.name, i) for i in ids if i.startswith("p")}
    out["queue.schedulers"] = [(sid, due, b.get_job_scheduler(side.queue.name, sid))
                               for sid, due in b.get_job_scheduler_ids(side.queue.name)]
    out["queue.rate_limit_ttl"] = (b.get_rate_limit_ttl(side.queue.name, None),
                                   b.get_rate_limit_ttl(side.queue.name, 1))
    for i, w in enumerate(side.workers):
        out[f"worker{i}"] = (sorted(w.active), w.rate_limited_until, w.next_wake_ms())
    return out


def _comparable_hash(fields: dict[str, str] | None) -> dict[str, Any] | None:
    """A job hash as compared: a scheduler iteration's ``opts`` is JSON that the Lua scripts re-encode with
    ``cjson`` from a Lua table, whose key order is arbitrary, so that one field is compared as parsed JSON."""
    if fields is None or "rjk" not in fields or "opts" not in fields:
        return fields
    return {**fields, "opts": json.loads(fields["opts"])}


def outcome_of(side: Side, op: Op, ids: list[str], clock: Any) -> Any:
    try:
        return ("ok", normalise(apply(side, op, ids, clock)))
    except Exception as exc:
        return ("raised", type(exc).__name__, str(exc))


class Divergence(AssertionError):
    """The two backends disagreed."""


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            lines.append(f"  {key}:\n    {a.get(key)!r}\n    {b.get(key)!r}")
    return lines


@dataclass
class Run:
    """What a sequence did on the second side (the memory backend): each step's outcome and the final events."""

    outcomes: list[Any]
    events: list[tuple[str, dict[str, str]]]

    def names(self, job_id: str | None = None) -> list[str]:
        return [f["event"] for _, f in self.events if job_id is None or f.get("jobId") == job_id]


def run_sequence(ops: Sequence[Op], make_sides: Any, *, compare_every_step: bool = True,
                 server_clock: bool = False) -> Run:
    """Run ``ops`` on two sides; raise :class:`Divergence` at the first difference.

    ``server_clock``: the first side is a real Redis, whose stream ids and remaining ttls come from its own wall
    clock; those are compared with :data:`REAL_TIME_SLACK_MS` of slack, everything else exactly.
    """
    a, b, clock = make_sides()
    outcomes: list[Any] = []
    try:
        ids = known_ids(b)  # read from the memory side: cheap, and equal on both sides while they agree
        for step, op in enumerate(ops):
            if op[0] == "advance":
                clock.advance(op[1])
                outcomes.append(None)
                continue
            ra = outcome_of(a, op, ids, clock)
            rb = outcome_of(b, op, ids, clock)
            outcomes.append(rb)
            if ra != rb:
                raise Divergence(f"step {step} {op!r}: results differ\n  {a.kind}: {ra!r}\n  {b.kind}: {rb!r}"
                                 f"\nsequence: {list(ops[:step + 1])!r}")
            ids = known_ids(b)
            if compare_every_step or step == len(ops) - 1:
                sa, sb = snapshot(a, ids), snapshot(b, ids)
                if server_clock:
                    sa, sb = _server_clock_view(sa, sb, clock)
                lines = _diff(sa, sb)
                if lines:
                    raise Divergence(f"step {step} {op!r}: state differs ({a.kind} first, {b.kind} second)\n"
                                     + "\n".join(lines) + f"\nsequence: {list(ops[:step + 1])!r}")
        return Run(outcomes, b.conn.backend.read_events(b.queue.name, "0", None))
    finally:
        for side in (a, b):
            if side.kind == "redis":
                side.queue.obliterate(force=True)
                side.dlq.obliterate(force=True)
            side.conn.close()


def _server_clock_view(real: dict[str, Any], memory: dict[str, Any], clock: Any) -> tuple[dict[str, Any], ...]:
    """Compare what comes from a real Redis server's clock coarsely, everything else as it is.

    Event ids: the memory backend stamps an event with the virtual time of its operation, the server with its
    wall clock, which runs up to :data:`REAL_TIME_SLACK_MS` ahead; the sequence part is not compared. Limiter
    ttls and the times derived from them (a worker's rate-limit pause) are compared on the advance grid.
    """
    unit = REAL.unit
    out_real, out_mem = dict(real), dict(memory)
    for key in real:
        if key.endswith(".events"):
            ev_real, ev_mem = real[key], memory[key]
            stamps_ok = len(ev_real) == len(ev_mem) and all(
                0 <= int(r[0].split("-")[0]) - int(m[0].split("-")[0]) <= REAL_TIME_SLACK_MS
                for r, m in zip(ev_real, ev_mem, strict=False))
            out_real[key] = (stamps_ok, [f for _, f in ev_real])
            out_mem[key] = (True, [f for _, f in ev_mem])
        elif key.endswith(".last_event_id"):
            out_real[key] = real[key] != "0"
            out_mem[key] = memory[key] != "0"
        elif key == "queue.rate_limit_ttl":
            # a remaining ttl is T - (up to the slack), with T half a unit off the grid: round it up to the grid
            out_real[key] = tuple(v if v <= 0 else -(-v // unit) for v in real[key])
            out_mem[key] = tuple(v if v <= 0 else -(-v // unit) for v in memory[key])
        elif key.startswith("worker"):
            for view, src in ((out_real, real), (out_mem, memory)):
                active, until, wake = src[key]
                view[key] = (active, until // unit, None if wake is None else wake // unit)
    return out_real, out_mem

def make_virtual_sides(max_len_events: int, timing: Timing = VIRTUAL) -> Any:
    """fakeredis vs memory, both on one virtual clock."""
    import queuesim

    def factory() -> tuple[Side, Side, VirtualClock]:
        clock = VirtualClock(START_MS)
        fake = Side.build("fakeredis", queuesim.connect(clock=clock), "dq", max_len_events, timing)
        memory = Side.build("memory", queuesim.connect("memory://", clock=clock), "dq", max_len_events, timing)
        return fake, memory, clock

    return factory


def make_real_sides(redis_url: str) -> Any:
    """A real Redis vs memory, on one synced clock; queue names are unique per run."""
    import queuesim

    def factory() -> tuple[Side, Side, SyncedClock]:
        clock = SyncedClock()
        name = f"dq-{uuid.uuid4().hex[:10]}"
        import redis

        from queuesim.backends.redis_backend import RedisBackend

        real_conn = Connection(RedisBackend(redis.Redis.from_url(redis_url), clock), redis_url)
        real = Side.build("redis", real_conn, name, 10_000, REAL)
        memory = Side.build("memory", queuesim.connect("memory://", clock=clock), name, 10_000, REAL)
        return real, memory, clock

    return factory
