"""Repeatable jobs (BullMQ job schedulers): a job produced every ``every`` ms or on a cron ``pattern``.

A scheduler is stored as BullMQ does: its id in the ``repeat`` sorted set (score = next run, ms) and its
settings in the hash ``repeat:<id>``. Each iteration is a normal delayed job with id
``repeat:<schedulerId>:<dueMs>``; the next iteration is created when the current one starts, so at most one
is pending. Missed slots are skipped, not replayed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from croniter import croniter

from queuesim.errors import OptionError
from queuesim.options import JobOptions, Repeat, dump_json

if TYPE_CHECKING:
    from queuesim.job import Job
    from queuesim.queue import Queue

__all__ = ["add_repeatable", "next_run_ms", "upsert_job_scheduler"]


def next_run_ms(repeat: Repeat, after_ms: int, prev_ms: int | None = None) -> int | None:
    """The next run strictly after ``after_ms`` (``every``: on the grid prev + every), or None when ended."""
    if repeat.every is not None:
        if prev_ms is None:
            start = repeat.start_date if repeat.start_date is not None else after_ms
            nxt = start + repeat.offset if repeat.offset else start
        else:
            nxt = prev_ms + repeat.every
            if nxt <= after_ms:  # skip missed slots
                nxt += ((after_ms - nxt) // repeat.every + 1) * repeat.every
    else:
        assert repeat.pattern is not None
        tz = ZoneInfo(repeat.tz) if repeat.tz else UTC
        base_ms = max(after_ms, repeat.start_date or 0)
        base = datetime.fromtimestamp(base_ms / 1000, tz)
        nxt = int(croniter(repeat.pattern, base).get_next(float) * 1000)
    if repeat.end_date is not None and nxt > repeat.end_date:
        return None
    return nxt


def upsert_job_scheduler(queue: Queue, scheduler_id: str, repeat: Repeat, name: str, data: Any = None,
                         opts: JobOptions | None = None) -> Job | None:
    """Create or replace a scheduler and its pending iteration; returns that iteration (None if ended)."""
    if not isinstance(scheduler_id, str) or not scheduler_id or ":" in scheduler_id:
        raise OptionError("scheduler_id", f"must be a non-empty string without ':', got {scheduler_id!r}")
    opts = opts or JobOptions()
    client = queue.connection.client
    keys = queue.keys
    now = queue.clock.now_ms()
    repeat_key = keys.key("repeat")
    hash_key = f"{repeat_key}:{scheduler_id}"
    # replace the pending iteration, if any
    old_next = client.zscore(repeat_key, scheduler_id)
    if old_next is not None:
        old_id = f"repeat:{scheduler_id}:{int(old_next)}"
        if client.zscore(keys.delayed, old_id) is not None:
            client.zrem(repeat_key, scheduler_id)  # let removeJob through
            queue.remove(old_id)
    first = now if (repeat.every is not None and repeat.immediately) else next_run_ms(repeat, now)
    if repeat.pattern is not None and repeat.immediately:
        first = now
    if first is None:
        return None
    settings = {"name": name, "ic": 1, "data": dump_json(data), "opts": json.dumps(opts.to_wire()),
                **{k: str(v) for k, v in repeat.to_wire().items()}}
    client.hset(hash_key, mapping=settings)
    client.zadd(repeat_key, {scheduler_id: first})
    return _add_iteration(queue, scheduler_id, repeat, name, data, opts, first)


def _add_iteration(queue: Queue, scheduler_id: str, repeat: Repeat, name: str, data: Any, opts: JobOptions,
                   due: int) -> Job:
    now = queue.clock.now_ms()
    job_opts = JobOptions.build({**{n: getattr(opts, n) for n in ("attempts", "backoff", "priority",
                                                                 "remove_on_complete", "remove_on_fail")},
                                 "job_id": f"repeat:{scheduler_id}:{due}".replace(":", "-"),
                                 "delay": max(due - now, 0)})
    # BullMQ's iteration ids contain ':' which custom ids may not; the scheduler is recorded in "rjk".
    result = queue.backend.add_job(queue.name, name, dump_json(data), job_opts, now, scheduler_id=scheduler_id)
    job = queue.get_job(result.job_id)
    assert job is not None
    return job


def on_iteration_started(queue: Queue, job: Job) -> Job | None:
    """Create the scheduler's next iteration when one of its jobs becomes active (BullMQ's rule)."""
    sid = job.scheduler_id
    if sid is None:
        return None
    client = queue.connection.client
    raw = client.hgetall(f"{queue.keys.key('repeat')}:{sid}")
    if not raw:
        return None
    h = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
         for k, v in raw.items()}
    repeat = Repeat.parse({
        k: (int(h[w]) if k in ("every", "limit", "start_date", "end_date", "offset") else h[w])
        for k, w in (("pattern", "pattern"), ("every", "every"), ("limit", "limit"), ("start_date", "startDate"),
                     ("end_date", "endDate"), ("tz", "tz"), ("offset", "offset"))
        if w in h
    })
    assert repeat is not None
    count = int(h.get("ic", "1"))
    if repeat.limit is not None and count >= repeat.limit:
        client.zrem(queue.keys.key("repeat"), sid)
        return None
    prev = client.zscore(queue.keys.key("repeat"), sid)
    nxt = next_run_ms(repeat, queue.clock.now_ms(), int(prev) if prev is not None else None)
    if nxt is None:
        client.zrem(queue.keys.key("repeat"), sid)
        return None
    client.zadd(queue.keys.key("repeat"), {sid: nxt})
    client.hincrby(f"{queue.keys.key('repeat')}:{sid}", "ic", 1)
    opts = JobOptions.from_wire(json.loads(h.get("opts", "{}")))
    return _add_iteration(queue, sid, repeat, h["name"], json.loads(h.get("data", "null")), opts, nxt)


def add_repeatable(queue: Queue, name: str, data: Any, opts: JobOptions) -> Job:
    """``queue.add(..., repeat=...)``: a scheduler keyed by the job name and its repeat settings."""
    assert opts.repeat is not None
    key = opts.job_id or f"{name}-{opts.repeat.pattern or opts.repeat.every}".replace(":", "-").replace(" ", "_")
    job = upsert_job_scheduler(queue, key, opts.repeat, name, data, opts)
    if job is None:
        raise OptionError("repeat", "the schedule has no future run (end_date in the past?)")
    return job
