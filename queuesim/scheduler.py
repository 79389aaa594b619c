"""Job schedulers (BullMQ's repeatable jobs): a job produced every ``every`` ms or on a cron ``pattern``.

How a scheduler works, as in BullMQ 5:

* It is stored in two keys: the ``repeat`` sorted set maps the scheduler id to the due time of its *pending*
  iteration, and the hash ``repeat:<schedulerId>`` holds its settings (``name``, ``every`` or ``pattern``,
  ``tz``, ``limit``, ``startDate``, ``endDate``, ``offset``, the job template ``data`` and ``opts``) and ``ic``,
  the number of iterations created so far.
* Each iteration is an ordinary job whose id is ``repeat:<schedulerId>:<dueMs>`` and whose ``rjk`` field names
  the scheduler. It is added delayed until its due time (or ready at once when it is due now).
* **The next iteration is created when the current one becomes active** (the worker's fetch does it). So at
  most one iteration is pending, a failing or stalling iteration does not stop the schedule, and an iteration
  fetched again after a stall or a retry does not create another one: only the iteration the scheduler points
  at moves it on.
* ``every``: the first run is now (or at ``start_date``, or at the next ``offset`` slot); then previous + every.
  Missed slots are skipped, not replayed. ``pattern``: the next cron time (6 fields = with seconds first, as in
  BullMQ's cron-parser); ``immediately`` runs one iteration now.
* ``limit`` caps the number of iterations; ``end_date`` stops the schedule (an iteration becoming active after
  it creates no successor). The scheduler then stays listed without a pending iteration until it is removed.
* Upserting an existing id replaces the pending iteration instead of adding one. With the same ``every`` the
  replacement keeps the pending due time; a new ``every`` (or a new pattern) starts afresh. The iteration count
  carries over. The pending iteration cannot be removed directly (code -8) and survives ``drain`` and ``clean``.
  Stalls never fail a scheduler's jobs while the scheduler exists.

Iteration ids contain ``:``, which custom job ids may not: the engine generates them itself (they never pass
the custom-id check), so they are exactly BullMQ's ids and a BullMQ worker or dashboard reads the same jobs.
A scheduler id itself must not contain ``:``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from croniter import croniter

from queuesim.errors import JobStateError, OptionError
from queuesim.options import JobOptions, Repeat, dump_json

if TYPE_CHECKING:
    from queuesim.job import Job
    from queuesim.queue import Queue

__all__ = [
    "add_repeatable",
    "following_run_ms",
    "get_job_scheduler",
    "next_cron_ms",
    "on_iteration_started",
    "remove_job_scheduler",
    "upsert_job_scheduler",
]

#: Template options an iteration may not carry: the scheduler decides them.
_NOT_IN_TEMPLATE = ("job_id", "delay", "repeat", "timestamp", "parent", "fail_parent_on_failure",
                    "continue_parent_on_failure", "ignore_dependency_on_failure", "remove_dependency_on_failure")


def next_cron_ms(pattern: str, tz: str | None, after_ms: int) -> int:
    """The first time strictly after ``after_ms`` that matches the cron ``pattern`` (in time zone ``tz``).

    Six fields mean "seconds first", as in BullMQ's cron-parser (``*/2 * * * * *`` = every 2 seconds).
    """
    zone = ZoneInfo(tz) if tz else UTC
    base = datetime.fromtimestamp(after_ms / 1000, zone)
    it = croniter(pattern, base, second_at_beginning=len(pattern.split()) == 6)
    return int(it.get_next(float) * 1000)


def _first_pattern_run_ms(repeat: Repeat, now: int) -> int:
    """When a (freshly upserted) cron scheduler runs first."""
    assert repeat.pattern is not None
    if repeat.immediately:
        return now
    return next_cron_ms(repeat.pattern, repeat.tz, max(now, repeat.start_date or 0))


def following_run_ms(repeat: Repeat, previous_ms: int, now: int) -> int:
    """The cron iteration after the one due at ``previous_ms`` (never before ``now``)."""
    assert repeat.pattern is not None
    return max(next_cron_ms(repeat.pattern, repeat.tz, max(previous_ms, now, repeat.start_date or 0)), now)


def _template(opts: JobOptions | Mapping[str, Any] | None, defaults: JobOptions | None) -> JobOptions:
    if isinstance(opts, JobOptions):
        opts = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}
    given = dict(opts or {})
    for name in _NOT_IN_TEMPLATE:
        value = given.get(name)
        if value not in (None, False, 0):
            raise OptionError(f"opts.{name}", "is set by the job scheduler and cannot be part of the template")
        given.pop(name, None)
    return JobOptions.build(given, defaults)


def _iteration_opts(template: JobOptions, repeat: Repeat) -> str:
    """The ``opts`` every iteration stores (BullMQ's shape); the script adds the iteration's id, delay, due time
    (``prevMillis``), scheduler id (``repeatJobKey``) and number (``repeat.count``)."""
    wire = template.to_wire()
    wire["repeat"] = repeat.to_wire()
    return json.dumps(wire, separators=(",", ":"))


def _repeat_from_fields(fields: Mapping[str, str]) -> Repeat:
    numbers = {"every": "every", "limit": "limit", "startDate": "start_date", "endDate": "end_date"}
    values: dict[str, Any] = {py: int(fields[wire]) for wire, py in numbers.items() if fields.get(wire)}
    for wire in ("pattern", "tz"):
        if fields.get(wire):
            values[wire] = fields[wire]
    repeat = Repeat.parse(values)
    assert repeat is not None
    return repeat


def upsert_job_scheduler(queue: Queue, scheduler_id: str, repeat: Repeat, name: str | None = None,
                         data: Any = None, opts: JobOptions | Mapping[str, Any] | None = None) -> Job | None:
    """Create or replace a scheduler and its pending iteration; returns that iteration (None when the schedule
    has no run left: its first cron time is after ``end_date``). Nothing is written on bad input."""
    if not isinstance(scheduler_id, str) or not scheduler_id or ":" in scheduler_id:
        raise OptionError("scheduler_id", f"must be a non-empty string without ':', got {scheduler_id!r}")
    if name is not None and not isinstance(name, str):
        raise OptionError("name", f"must be a string, got {type(name).__name__}")
    job_name = name or scheduler_id
    template = _template(opts, queue.default_job_options)
    payload = dump_json({} if data is None else data, "data")
    if repeat.immediately and repeat.start_date is not None:
        raise OptionError("immediately", "cannot be combined with start_date")
    if repeat.pattern is not None and repeat.tz is not None:
        try:
            ZoneInfo(repeat.tz)
        except (ValueError, KeyError) as exc:
            raise OptionError("tz", f"unknown time zone {repeat.tz!r}") from exc
    now = queue.clock.now_ms()
    if repeat.end_date is not None and repeat.end_date <= now:
        raise OptionError("end_date", f"End date must be greater than current timestamp ({repeat.end_date} <= {now})")
    due: int | None = None
    if repeat.pattern is not None:
        due = _first_pattern_run_ms(repeat, now)
        if repeat.end_date is not None and due > repeat.end_date:
            return None
    template_wire = template.to_wire()
    if not template_wire.get("attempts"):
        template_wire.pop("attempts", None)
    settings = {"name": job_name}
    for key, value in repeat.to_wire().items():
        if key not in ("offset", "immediately"):
            settings[key] = str(value)
    if payload != "{}":
        settings["data"] = payload
    if template_wire:
        settings["opts"] = json.dumps(template_wire, separators=(",", ":"))
    added = queue.backend.add_job_scheduler(queue.name, scheduler_id, due, job_name, payload,
                                            _iteration_opts(template, repeat), repeat.every, repeat.offset or None,
                                            repeat.start_date, settings, now)
    if added == -10:
        raise JobStateError("Cannot create job scheduler iteration - job ID already exists. addJobScheduler", -10)
    if added == -11:
        raise JobStateError("Cannot create job scheduler iteration - every slot is taken. addJobScheduler", -11)
    return queue.get_job(str(added))


def on_iteration_started(queue: Queue, job: Job) -> str | None:
    """The worker fetched a scheduler's job: create the next iteration if this job is the pending one.

    Returns the new iteration's id, or None (not the pending iteration, scheduler gone, limit or end reached).
    """
    sid = job.scheduler_id
    prefix = f"repeat:{sid}:"
    if sid is None or not job.id.startswith(prefix) or not job.id[len(prefix):].isdigit():
        return None
    current = int(job.id[len(prefix):])
    fields = queue.backend.get_job_scheduler(queue.name, sid)
    if fields is None or fields.get("next") != str(current):
        return None
    repeat = _repeat_from_fields(fields)
    if repeat.limit is not None and int(fields.get("ic") or 1) + 1 > repeat.limit:
        return None
    now = queue.clock.now_ms()
    if repeat.end_date is not None and now > repeat.end_date:
        return None
    due = following_run_ms(repeat, current, now) if repeat.pattern is not None else None
    template = JobOptions.from_wire(json.loads(fields.get("opts") or "{}"))
    payload = fields["data"] if "data" in fields else dump_json(job.data, "data")
    return queue.backend.update_job_scheduler(queue.name, sid, job.id, due, fields.get("name") or job.name,
                                              payload, _iteration_opts(template, repeat), now)


def remove_job_scheduler(queue: Queue, scheduler_id: str) -> bool:
    """Delete a scheduler and its still-delayed pending iteration. False when it did not exist."""
    return queue.backend.remove_job_scheduler(queue.name, str(scheduler_id))


def get_job_scheduler(queue: Queue, scheduler_id: str) -> dict[str, Any] | None:
    """A scheduler as BullMQ's ``getJobScheduler`` reports it: ``key``, ``name``, ``next`` (due time of the
    pending iteration), ``iterationCount``, ``every`` or ``pattern``, ``tz``, ``limit``, ``startDate``,
    ``endDate``, ``offset`` and the job ``template`` (``data``, ``opts``). None when it does not exist."""
    fields = queue.backend.get_job_scheduler(queue.name, str(scheduler_id))
    if fields is None:
        return None
    out: dict[str, Any] = {"key": scheduler_id, "name": fields.get("name")}
    if "next" in fields:
        out["next"] = int(fields["next"])
    out["iterationCount"] = int(fields.get("ic") or 0)
    for wire in ("every", "limit", "startDate", "endDate", "offset"):
        if fields.get(wire):
            out[wire] = int(fields[wire])
    for wire in ("pattern", "tz"):
        if fields.get(wire):
            out[wire] = fields[wire]
    template: dict[str, Any] = {}
    if fields.get("data") not in (None, "{}"):
        template["data"] = json.loads(fields["data"])
    if fields.get("opts") not in (None, "{}"):
        template["opts"] = json.loads(fields["opts"])
    if template:
        out["template"] = template
    return out


def add_repeatable(queue: Queue, name: str, data: Any, opts: JobOptions) -> Job:
    """``queue.add(..., repeat=...)`` (BullMQ's legacy form): a scheduler keyed by the job id, or by the job
    name and its repeat settings, whose template is the rest of the options."""
    assert opts.repeat is not None
    spec = str(opts.repeat.pattern or opts.repeat.every)
    key = opts.job_id or f"{name}-{spec}".replace(":", "-").replace(" ", "_")
    template = dataclasses.replace(opts, repeat=None, job_id=None, delay=0, timestamp=None)
    job = upsert_job_scheduler(queue, key, opts.repeat, name, data, template)
    if job is None:
        raise OptionError("repeat", "the schedule has no future run (end_date in the past?)")
    return job
