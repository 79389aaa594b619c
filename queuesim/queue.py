"""The producer side: ``Queue`` adds jobs and manages the queue (BullMQ's ``Queue`` class, snake_case)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from queuesim import defaults
from queuesim.connection import Connection
from queuesim.errors import OptionError
from queuesim.job import Job, JobState
from queuesim.options import JobOptions, Repeat, dump_json, validate_queue_name

__all__ = ["ALL_STATES", "DeadLetterQueue", "Queue"]

#: The states ``get_job_counts()`` reports by default (``waiting`` and ``paused`` are separate, as in BullMQ).
ALL_STATES = ("active", "completed", "delayed", "failed", "paused", "prioritized", "waiting", "waiting-children")
_STATE_NAMES = {*ALL_STATES, "wait"}


def _check_states(types: Iterable[str]) -> list[str]:
    out = list(types)
    for t in out:
        if t not in _STATE_NAMES:
            raise OptionError("types", f"unknown state {t!r}; allowed: {', '.join(sorted(_STATE_NAMES))}")
    return out


def _options_key(value: Any) -> Any:
    """A hashable key for an option set that is equal only for equal values of equal types; None when some
    value is not a plain str, int, float, bool, None, list or dict of those."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return (kind, value)
    if kind is dict:
        items = []
        for k, v in value.items():
            frozen = _options_key(v)
            if frozen is None or type(k) is not str:
                return None
            items.append((k, frozen))
        return (dict, tuple(items))
    if kind is list or kind is tuple:
        parts = tuple(_options_key(v) for v in value)
        return None if None in parts else (kind, parts)
    return None


class Queue:
    """A named queue of jobs.

    Args:
        name: the queue name (non-empty, no ``:``).
        connection: from :func:`queuesim.connect`.
        default_job_options: options merged under every job's own (snake_case keys, see :class:`JobOptions`).
        max_len_events: approximate length the events stream is trimmed to (BullMQ's ``streams.events.maxLen``).
        dead_letter_queue: name of a queue that receives the jobs that fail for good (queuesim extension).
            ``None`` leaves the current setting alone; use :meth:`set_dead_letter_queue` to clear it. A
            dead-letter queue serves exactly one queue (see :meth:`set_dead_letter_queue`).
    """

    def __init__(self, name: str, connection: Connection, *, default_job_options: Mapping[str, Any] | None = None,
                 max_len_events: int = defaults.MAX_LEN_EVENTS, dead_letter_queue: str | None = None) -> None:
        self.name = validate_queue_name(name)
        self.connection = connection
        self.backend = connection.backend
        self.clock = connection.clock
        self.default_job_options = JobOptions.build(default_job_options) if default_job_options else None
        # validated options per option set (a simulation adds many jobs with the same options)
        self._options_cache: dict[Any, JobOptions] = {}
        self._options_cache_defaults = self.default_job_options
        if isinstance(max_len_events, bool) or not isinstance(max_len_events, int) or max_len_events < 0:
            raise OptionError("max_len_events", f"must be an integer >= 0, got {max_len_events!r}")
        self.backend.ensure_meta(self.name, max_len_events)
        if dead_letter_queue is not None:
            self.set_dead_letter_queue(dead_letter_queue)

    @property
    def keys(self) -> Any:
        """The Redis key names of this queue (``queue.keys.wait`` …)."""
        return self.backend.keys(self.name)

    # --- adding ------------------------------------------------------------------------------------------

    def _prepare(self, name: str, data: Any, options: Mapping[str, Any]) -> tuple[str, str, JobOptions, int]:
        if not isinstance(name, str):
            raise OptionError("name", f"must be a string, got {type(name).__name__}")
        opts = self._options(options)
        payload = dump_json(data, "data")
        if opts.size_limit is not None and len(payload.encode()) > opts.size_limit:
            raise OptionError("data", f"The size of job {name} exceeds the limit {opts.size_limit} bytes")
        timestamp = opts.timestamp if opts.timestamp is not None else self.clock.now_ms()
        return name, payload, opts, timestamp

    def _options(self, options: Mapping[str, Any]) -> JobOptions:
        """``JobOptions.build(options, defaults)``, remembered per option set: the key keeps every value's exact
        type (``True`` is not ``1``), and option sets holding anything but plain JSON-like values are not cached."""
        if self._options_cache_defaults is not self.default_job_options:
            self._options_cache.clear()
            self._options_cache_defaults = self.default_job_options
        key = _options_key(options)
        opts = self._options_cache.get(key) if key is not None else None
        if opts is None:
            opts = JobOptions.build(options, self.default_job_options)
            if key is not None:
                if len(self._options_cache) >= 256:
                    self._options_cache.clear()
                self._options_cache[key] = opts
        return opts

    def add(self, name: str, data: Any = None, **options: Any) -> Job:
        """Add one job. Options are :class:`JobOptions` fields (``priority=…, delay=…, attempts=…``).

        Returns the job (for a duplicate custom id or a deduplicated add: the existing job).
        """
        name, payload, opts, timestamp = self._prepare(name, data, options)
        if opts.repeat is not None:
            from queuesim.scheduler import add_repeatable

            return add_repeatable(self, name, data, opts)
        result = self.backend.add_job(self.name, name, payload, opts, timestamp)
        return self._job_after_add(result.job_id, name, data, opts, timestamp)

    def prepare_add(self, name: str, data: Any = None, **options: Any) -> tuple[str, str, JobOptions]:
        """Validate an add once, for many adds of the same job: returns ``(name, data JSON, options)`` for
        :meth:`add_prepared`. Raises :class:`OptionError` like :meth:`add`; repeatable jobs are refused (they
        go through :meth:`add`)."""
        name, payload, opts, _ = self._prepare(name, data, options)
        if opts.repeat is not None:
            raise OptionError("repeat", "a repeatable job cannot be prepared; use Queue.add")
        return name, payload, opts

    def add_prepared(self, prepared: tuple[str, str, JobOptions]) -> str:
        """Add one job prepared by :meth:`prepare_add` (the simulation's producers add this way: the options
        are validated and serialised once, not per job). Returns the job id."""
        name, payload, opts = prepared
        timestamp = opts.timestamp if opts.timestamp is not None else self.clock.now_ms()
        return self.backend.add_job(self.name, name, payload, opts, timestamp).job_id

    def _job_after_add(self, job_id: str, name: str, data: Any, opts: JobOptions, timestamp: int) -> Job:
        """The Job an add returns, built on the client as BullMQ does (no extra round trip). For a duplicate
        custom id or a deduplicated add, ``id`` is the existing job's; read it with :meth:`get_job`."""
        parent_key = opts.parent.job_key(self.backend.prefix) if opts.parent is not None else None
        return Job(id=job_id, name=name, data=data, opts=opts, timestamp=timestamp, delay=opts.delay,
                   priority=opts.priority, parent_key=parent_key, queue=self)

    def add_bulk(self, jobs: Iterable[Mapping[str, Any] | tuple[Any, ...]]) -> list[Job]:
        """Add many jobs in one round trip. Each item is ``{"name", "data", "opts"}`` or ``(name, data[, opts])``.

        Every item is validated before anything is written.
        """
        prepared = []
        payloads = []
        for i, item in enumerate(jobs):
            if isinstance(item, Mapping):
                unknown = set(item) - {"name", "data", "opts"}
                if unknown:
                    raise OptionError(f"jobs[{i}]", f"unknown keys {sorted(unknown)}; allowed: name, data, opts")
                name, data, opts = item.get("name"), item.get("data"), item.get("opts") or {}
            else:
                name, data, opts = (*tuple(item), None, {})[:3]
                opts = opts or {}
            try:
                p = self._prepare(name, data, opts)
            except OptionError as exc:
                raise OptionError(f"jobs[{i}].{exc.field}", str(exc).split(": ", 1)[-1]) from None
            if p[2].repeat is not None:
                raise OptionError(f"jobs[{i}].repeat", "repeatable jobs cannot be added in bulk")
            prepared.append(p)
            payloads.append(data)
        results = self.backend.add_jobs(self.name, prepared)
        return [self._job_after_add(r.job_id, p[0], d, p[2], p[3])
                for r, p, d in zip(results, prepared, payloads, strict=True)]

    # --- reading -----------------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> Job | None:
        fields = self.backend.get_job_fields(self.name, str(job_id))
        return Job.from_hash(str(job_id), fields, self) if fields else None

    def get_job_state(self, job_id: str) -> JobState:
        return JobState(self.backend.get_state(self.name, str(job_id)))

    def get_job_counts(self, *types: str) -> dict[str, int]:
        """Counts per state. ``waiting`` and ``paused`` are reported separately (as BullMQ does)."""
        return self.backend.get_counts(self.name, _check_states(types or ALL_STATES))

    def get_job_count_by_types(self, *types: str) -> int:
        """Sum of the counts of ``types``; ``waiting`` includes ``paused`` here (BullMQ's summing helpers)."""
        wanted = _check_states(types)
        if "waiting" in wanted and "paused" not in wanted:
            wanted.append("paused")
        return sum(self.backend.get_counts(self.name, wanted).values())

    def get_waiting_count(self) -> int:
        return self.get_job_count_by_types("waiting")

    def count(self) -> int:
        """Jobs waiting to be processed: waiting + paused + delayed + prioritized + waiting-children."""
        return self.get_job_count_by_types("waiting", "paused", "delayed", "prioritized", "waiting-children")

    def get_counts_per_priority(self, priorities: Iterable[int]) -> dict[int, int]:
        """How many ready jobs each priority has (priority 0 = the wait/paused lists)."""
        out: dict[int, int] = {}
        for p in priorities:
            if p == 0:
                out[0] = self.get_job_count_by_types("waiting")
            else:
                out[p] = self.backend.count_priority(self.name, p)
        return out

    def get_jobs(self, types: Iterable[str] | str = ALL_STATES, start: int = 0, end: int = -1,
                 asc: bool = False) -> list[Job]:
        """Jobs in the given states (each state's range ``start..end``)."""
        wanted = _check_states([types] if isinstance(types, str) else types)
        jobs = []
        for t in wanted:
            for job_id in self.backend.get_ids(self.name, t, start, end, asc):
                job = self.get_job(job_id)
                if job is not None:
                    jobs.append(job)
        return jobs

    def get_waiting(self, start: int = 0, end: int = -1) -> list[Job]:
        return self.get_jobs(["waiting", "paused"], start, end, asc=True)

    def get_prioritized(self, start: int = 0, end: int = -1) -> list[Job]:
        return self.get_jobs("prioritized", start, end, asc=True)

    def get_delayed(self, start: int = 0, end: int = -1) -> list[Job]:
        return self.get_jobs("delayed", start, end, asc=True)

    def get_active(self, start: int = 0, end: int = -1) -> list[Job]:
        return self.get_jobs("active", start, end)

    def get_completed(self, start: int = 0, end: int = -1) -> list[Job]:
        return self.get_jobs("completed", start, end)

    def get_failed(self, start: int = 0, end: int = -1) -> list[Job]:
        return self.get_jobs("failed", start, end)

    def get_job_logs(self, job_id: str, start: int = 0, end: int = -1) -> list[str]:
        return self.backend.get_logs(self.name, str(job_id), start, end)

    def job_timeline(self, job_id: str) -> list[dict[str, Any]]:
        """Every event of the (capped) events stream that names this job, oldest first."""
        out = []
        for event_id, fields in self.backend.read_events(self.name, "0", None):
            if fields.get("jobId") == str(job_id):
                rest = {k: v for k, v in fields.items() if k not in ("event", "jobId")}
                out.append({"time_ms": int(event_id.split("-")[0]), "event": fields.get("event"), **rest})
        return out

    # --- managing ----------------------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop workers from taking jobs (running jobs finish). New and retried jobs collect in ``paused``."""
        self.backend.pause(self.name, True)

    def resume(self) -> None:
        self.backend.pause(self.name, False)

    def is_paused(self) -> bool:
        return self.backend.is_paused(self.name)

    def drain(self, delayed: bool = False) -> None:
        """Delete waiting and prioritized jobs (and delayed ones with ``delayed=True``)."""
        self.backend.drain(self.name, delayed)

    def clean(self, grace_ms: int, limit: int = 0, type: str = "completed") -> list[str]:
        """Delete jobs of one state older than ``grace_ms``; returns their ids (one ``cleaned`` event)."""
        allowed = ("completed", "failed", "wait", "waiting", "paused", "active", "delayed", "prioritized")
        if type not in allowed:
            raise OptionError("type", f"must be one of {', '.join(allowed)}, got {type!r}")
        if isinstance(grace_ms, bool) or not isinstance(grace_ms, int) or grace_ms < 0:
            raise OptionError("grace_ms", f"must be an integer >= 0, got {grace_ms!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise OptionError("limit", f"must be an integer >= 0 (0 = all), got {limit!r}")
        return self.backend.clean(self.name, grace_ms, limit, "wait" if type == "waiting" else type)

    def obliterate(self, force: bool = False) -> None:
        """Delete the queue and all its jobs. Pauses first; refuses while jobs are active unless ``force``."""
        self.pause()
        self.backend.obliterate(self.name, force)

    def remove(self, job_id: str, remove_children: bool = True) -> bool:
        """Remove a job in any state, with its logs. Returns False if it did not exist.

        Refused (:class:`~queuesim.errors.LockError`) while a worker holds the job's lock. In a flow, a removed
        child leaves its parent's dependencies, and a parent left with none goes back to wait. With
        ``remove_children`` (the default, as in BullMQ) the job's children and their children go too, and the
        removal is refused when any pending one is locked; without it they stay where they are.
        """
        if not isinstance(remove_children, bool):
            raise OptionError("remove_children", f"must be True or False, got {remove_children!r}")
        return self.backend.remove_job(self.name, str(job_id), remove_children)

    def retry_jobs(self, state: str = "failed", count: int = 1000, timestamp: int | None = None) -> int:
        """Move finished jobs (failed or completed, finished before ``timestamp``) back to wait."""
        if state not in ("failed", "completed"):
            raise OptionError("state", f"must be 'failed' or 'completed', got {state!r}")
        ts = self.clock.now_ms() if timestamp is None else timestamp
        total = 0
        while (moved := self.backend.move_jobs_to_wait(self.name, state, count, ts)) > 0:
            total += moved
        return total

    def promote_jobs(self, count: int = 1000) -> int:
        """Make every delayed job ready now."""
        total = 0
        # any due time at all: 10**15 ms is tens of thousands of years ahead
        while (moved := self.backend.move_jobs_to_wait(self.name, "delayed", count, 10**15)) > 0:
            total += moved
        return total

    def promote(self, job_id: str) -> None:
        self.backend.promote(self.name, str(job_id))

    def change_priority(self, job_id: str, priority: int, lifo: bool = False) -> None:
        opts = JobOptions.build({"priority": priority, "lifo": lifo})
        self.backend.change_priority(self.name, str(job_id), opts.priority, opts.lifo)

    def change_delay(self, job_id: str, delay: int) -> None:
        opts = JobOptions.build({"delay": delay})
        self.backend.change_delay(self.name, str(job_id), opts.delay)

    # --- rate limits and concurrency ---------------------------------------------------------------------

    def rate_limit(self, ms: int) -> None:
        """Stop every worker of this queue from starting jobs for ``ms`` (manual rate limit)."""
        if isinstance(ms, bool) or not isinstance(ms, int) or ms <= 0:
            raise OptionError("ms", f"must be an integer > 0, got {ms!r}")
        self.backend.rate_limit(self.name, ms)

    def get_rate_limit_ttl(self, max_jobs: int | None = None) -> int:
        return self.backend.get_rate_limit_ttl(self.name, max_jobs)

    def remove_rate_limit_key(self) -> None:
        self.backend.remove_rate_limit_key(self.name)

    def set_global_rate_limit(self, max: int, duration: int) -> None:
        from queuesim.options import Limiter

        lim = Limiter.parse({"max": max, "duration": duration})
        assert lim is not None
        self.backend.set_meta(self.name, "max", str(lim.max))
        self.backend.set_meta(self.name, "duration", str(lim.duration))

    def remove_global_rate_limit(self) -> None:
        self.backend.set_meta(self.name, "max", None)
        self.backend.set_meta(self.name, "duration", None)

    def set_global_concurrency(self, concurrency: int) -> None:
        """At most ``concurrency`` jobs active at once across all workers."""
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise OptionError("concurrency", f"must be an integer >= 1, got {concurrency!r}")
        self.backend.set_meta(self.name, "concurrency", str(concurrency))

    def remove_global_concurrency(self) -> None:
        self.backend.set_meta(self.name, "concurrency", None)

    def get_global_concurrency(self) -> int | None:
        v = self.backend.get_meta(self.name, "concurrency")
        return None if v is None else int(v)

    def is_maxed(self) -> bool:
        limit = self.get_global_concurrency()
        return limit is not None and self.get_job_counts("active")["active"] >= limit

    def trim_events(self, max_len: int) -> None:
        self.backend.trim_events(self.name, max_len)

    # --- job schedulers (repeatable jobs) ----------------------------------------------------------------

    def upsert_job_scheduler(self, scheduler_id: str, *, every: int | None = None, pattern: str | None = None,
                             limit: int | None = None, start_date: int | None = None, end_date: int | None = None,
                             tz: str | None = None, immediately: bool = False, offset: int = 0,
                             name: str | None = None, data: Any = None,
                             opts: Mapping[str, Any] | None = None) -> Job | None:
        """Create or replace the job scheduler ``scheduler_id`` (BullMQ's ``upsertJobScheduler``).

        Give exactly one of ``every`` (ms) or ``pattern`` (cron; six fields = seconds first). ``limit`` caps the
        number of jobs, ``start_date`` / ``end_date`` (ms since the epoch) bound the schedule, ``offset`` shifts
        the ``every`` grid, ``immediately`` runs the first job now. ``name`` (default: the scheduler id),
        ``data`` and ``opts`` (job options such as ``attempts`` or ``priority``) make up every job it creates.

        Returns the pending iteration (a job with id ``repeat:<scheduler_id>:<due ms>``), or None when the
        schedule has no run left. See :mod:`queuesim.scheduler` for the rules.
        """
        from queuesim.scheduler import upsert_job_scheduler

        repeat = Repeat.parse({"every": every, "pattern": pattern, "limit": limit, "start_date": start_date,
                               "end_date": end_date, "tz": tz, "immediately": immediately, "offset": offset})
        assert repeat is not None
        return upsert_job_scheduler(self, scheduler_id, repeat, name, data, opts)

    def remove_job_scheduler(self, scheduler_id: str) -> bool:
        """Delete a job scheduler and its still-delayed pending job. Returns False when it did not exist."""
        from queuesim.scheduler import remove_job_scheduler

        return remove_job_scheduler(self, scheduler_id)

    def get_job_scheduler(self, scheduler_id: str) -> dict[str, Any] | None:
        """One scheduler's settings, next due time and iteration count (None when it does not exist)."""
        from queuesim.scheduler import get_job_scheduler

        return get_job_scheduler(self, scheduler_id)

    def get_job_schedulers(self) -> list[dict[str, Any]]:
        """Every job scheduler of this queue, the soonest due first."""
        from queuesim.scheduler import get_job_scheduler

        found = (get_job_scheduler(self, sid) for sid, _ in self.backend.get_job_scheduler_ids(self.name))
        return [s for s in found if s is not None]

    def get_job_schedulers_count(self) -> int:
        return len(self.backend.get_job_scheduler_ids(self.name))

    # --- dead-letter queue (queuesim extension) ----------------------------------------------------------

    def set_dead_letter_queue(self, name: str | None) -> None:
        """Route jobs that fail for good to the queue ``name`` (None: keep them in ``failed`` as BullMQ does).

        A dead-letter queue serves exactly one queue: two queues sharing one could each have a job ``1``, and
        the second dead job would have nowhere to go. The first queue to name a dead-letter queue owns it (the
        dead-letter queue's meta hash records it, field ``dlqOf``); another queue may name it only once the
        owner has stopped using it (``set_dead_letter_queue(None)`` or another name) and no dead job of the
        owner is left in it. A dead-letter queue is an end point: it cannot have a dead-letter queue itself.
        Naming the same queue again is allowed. Anything else raises :class:`OptionError` (field
        ``dead_letter_queue``) and changes nothing.
        """
        if name is not None:
            if not isinstance(name, str) or not name:
                raise OptionError("dead_letter_queue", f"must be a non-empty queue name or None, got {name!r}")
            try:
                validate_queue_name(name)
            except OptionError as exc:
                raise OptionError("dead_letter_queue", exc.message) from None
            if name == self.name:
                raise OptionError("dead_letter_queue", "must differ from the queue's own name")
        self.backend.set_dead_letter_queue(self.name, name)

    @property
    def dead_letter_queue(self) -> DeadLetterQueue | None:
        name = self.backend.get_meta(self.name, "dlq")
        return None if name is None else DeadLetterQueue(name, self.connection)

    def __repr__(self) -> str:
        return f"Queue({self.name!r})"


class DeadLetterQueue:
    """The jobs that failed for good, with everything needed to understand and redrive them.

    A dead-letter queue is an ordinary queue whose ``failed`` set holds the dead jobs: same id, name, data,
    options, failed reason, stack traces and attempt counts as in their source queue, ``finished_on`` = time of
    death and ``dead_letter_source`` = the queue they came from.
    """

    def __init__(self, name: str, connection: Connection) -> None:
        self.queue = Queue(name, connection)
        self.name = name

    def list(self, start: int = 0, end: int = -1) -> list[Job]:
        """Dead jobs, most recent death first."""
        return self.queue.get_jobs("failed", start, end)

    def count(self) -> int:
        return self.queue.get_job_counts("failed")["failed"]

    def get(self, job_id: str) -> Job | None:
        return self.queue.get_job(job_id)

    def redrive(self, job_id: str) -> str:
        """Send one job back to its source queue with fresh attempts; returns the source queue's name."""
        return self.queue.backend.redrive(self.name, str(job_id))

    def redrive_all(self) -> int:
        n = 0
        for job in self.list():
            self.redrive(job.id)
            n += 1
        return n

    def purge(self) -> int:
        """Delete every dead job; returns how many."""
        return len(self.queue.clean(0, 0, "failed"))

    def __repr__(self) -> str:
        return f"DeadLetterQueue({self.name!r})"
