"""Job, worker and queue options: validation and their BullMQ wire form.

Python code spells options in snake_case (``remove_on_complete``); the job hash stores them the way BullMQ
does (``removeOnComplete`` inside the ``opts`` JSON), so that a Node BullMQ worker reads the same job. Every
check here runs *before* anything is written to Redis: an invalid option raises :class:`OptionError` naming
the field and the allowed values, and leaves no trace.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from queuesim import defaults
from queuesim.errors import OptionError

__all__ = [
    "Backoff",
    "Deduplication",
    "JobOptions",
    "KeepJobs",
    "Limiter",
    "Parent",
    "Repeat",
    "WorkerOptions",
    "dump_json",
    "validate_job_id",
    "validate_queue_name",
]

BUILTIN_BACKOFF = ("fixed", "exponential")


def dump_json(value: Any, field_name: str = "data") -> str:
    """JSON the way ``JSON.stringify`` writes it (no spaces); reject what cannot be serialised."""
    if value is None:
        return "null"
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        allowed = "dict, list, str, int, float, bool, None"
        raise OptionError(field_name, f"must be JSON-serialisable ({allowed}): {exc}") from exc


def _int(name: str, value: Any, minimum: int | None = 0, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OptionError(name, f"must be an integer, got {type(value).__name__} {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise OptionError(name, f"must be a whole number, got {value!r}")
        value = int(value)
    if minimum is not None and value < minimum:
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise OptionError(name, f"must be {bound}, got {value}")
    if maximum is not None and value > maximum:
        raise OptionError(name, f"must be between {minimum} and {maximum}, got {value}")
    return value


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise OptionError(name, f"must be true or false, got {value!r}")
    return value


def validate_queue_name(name: Any) -> str:
    """A queue name is a non-empty string without ``:`` (the key separator)."""
    if not isinstance(name, str) or not name:
        raise OptionError("queue name", f"must be a non-empty string, got {name!r}")
    if ":" in name:
        raise OptionError("queue name", f"must not contain ':', got {name!r}")
    if any(c.isspace() and c != " " for c in name) or "{" in name or "}" in name:
        raise OptionError("queue name", f"must not contain control characters or braces, got {name!r}")
    return name


def validate_prefix(prefix: Any) -> str:
    """A prefix is a non-empty string; it may be a hash tag such as ``{bull}`` for Redis Cluster."""
    if not isinstance(prefix, str) or not prefix:
        raise OptionError("prefix", f"must be a non-empty string, got {prefix!r}")
    inner = prefix[1:-1] if prefix.startswith("{") and prefix.endswith("}") else prefix
    if ":" in inner or "{" in inner or "}" in inner or any(c.isspace() for c in inner):
        raise OptionError("prefix", f"must not contain ':', spaces or stray braces, got {prefix!r}")
    return prefix


def validate_job_id(job_id: Any) -> str | None:
    """Custom job ids: a string that is not all digits, has no ``:`` and is not ``0``. ``""``/None = auto id."""
    if job_id is None or job_id == "":
        return None
    if not isinstance(job_id, str):
        raise OptionError("job_id", f"must be a string, got {type(job_id).__name__} {job_id!r}")
    if job_id.isdigit():
        raise OptionError("job_id", f"Custom Id cannot be integers (got {job_id!r}); use a non-numeric string")
    if ":" in job_id:
        raise OptionError("job_id", f"Custom Id cannot contain : (got {job_id!r})")
    if any(ord(c) < 32 for c in job_id):
        raise OptionError("job_id", f"must not contain control characters, got {job_id!r}")
    return job_id


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before the next attempt of a failed job.

    * ``fixed``: always ``delay`` ms.
    * ``exponential``: ``delay * 2**(n-1)`` ms after the n-th failed attempt (delay, 2·delay, 4·delay, …).
    * any other ``type``: a custom strategy the worker knows by that name.

    ``jitter`` in [0, 1] spreads the wait randomly over ``[d·(1-jitter), d]``.
    """

    type: str
    delay: int = 0
    jitter: float = 0.0

    @classmethod
    def parse(cls, value: Any) -> Backoff | None:
        if value is None:
            return None
        if isinstance(value, Backoff):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return cls("fixed", _int("backoff", value))
        if not isinstance(value, Mapping):
            raise OptionError("backoff", f"must be a number of ms or {{type, delay, jitter}}, got {value!r}")
        unknown = set(value) - {"type", "delay", "jitter"}
        if unknown:
            raise OptionError("backoff", f"unknown keys {sorted(unknown)}; allowed: type, delay, jitter")
        kind = value.get("type", "fixed")
        if not isinstance(kind, str) or not kind:
            raise OptionError("backoff.type", f"must be 'fixed', 'exponential' or a custom name, got {kind!r}")
        delay = _int("backoff.delay", value.get("delay", 0))
        jitter = value.get("jitter", 0.0)
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter <= 1:
            raise OptionError("backoff.jitter", f"must be a number between 0 and 1, got {jitter!r}")
        return cls(kind, delay, float(jitter))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "delay": self.delay}
        if self.jitter:
            out["jitter"] = self.jitter
        return out


@dataclass(frozen=True, slots=True)
class KeepJobs:
    """Which finished jobs to keep: ``count`` newest (None = all), those younger than ``age_s`` seconds.

    BullMQ applies the policy only when another job finishes into the same set; there is no timer.
    ``limit`` caps how many old jobs one finish removes.
    """

    count: int | None = None
    age_s: int | None = None
    limit: int = defaults.KEEP_JOBS_LIMIT

    @classmethod
    def parse(cls, name: str, value: Any) -> KeepJobs | None:
        if value is None or value is False:
            return None
        if value is True:
            return cls(count=0)
        if isinstance(value, KeepJobs):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return cls(count=_int(name, value))
        if isinstance(value, Mapping):
            unknown = set(value) - {"count", "age", "limit"}
            if unknown:
                raise OptionError(name, f"unknown keys {sorted(unknown)}; allowed: count, age (s), limit")
            count = value.get("count")
            age = value.get("age")
            return cls(
                count=None if count is None else _int(f"{name}.count", count),
                age_s=None if age is None else _int(f"{name}.age", age),
                limit=_int(f"{name}.limit", value.get("limit", defaults.KEEP_JOBS_LIMIT), 1),
            )
        raise OptionError(name, f"must be true, false, a count, or {{count, age, limit}}; got {value!r}")

    def to_wire(self) -> bool | int | dict[str, int]:
        if self.count == 0 and self.age_s is None:
            return True
        if self.age_s is None:
            return self.count if self.count is not None else False
        out: dict[str, int] = {"age": self.age_s}
        if self.count is not None:
            out["count"] = self.count
        if self.limit != defaults.KEEP_JOBS_LIMIT:
            out["limit"] = self.limit
        return out

    def script_args(self) -> list[int]:
        """(count or -1, age_s or -1, limit) for the finish script."""
        return [
            -1 if self.count is None else self.count,
            -1 if self.age_s is None else self.age_s,
            self.limit,
        ]


@dataclass(frozen=True, slots=True)
class Deduplication:
    """Drop jobs that repeat a deduplication id (BullMQ ``deduplication``).

    * no ttl: duplicates are ignored while the first job is unfinished;
    * ``ttl`` ms: ignored until the ttl runs out (throttle), even after the job finished;
    * ``extend``: each duplicate restarts the ttl (debounce); ``replace``: a still-delayed first job is
      replaced by the newest one;
    * ``keep_last_if_active``: while the first job runs, keep the newest duplicate and enqueue it afterwards.
    """

    id: str
    ttl: int | None = None
    extend: bool = False
    replace: bool = False
    keep_last_if_active: bool = False

    @classmethod
    def parse(cls, value: Any) -> Deduplication | None:
        if value is None:
            return None
        if isinstance(value, Deduplication):
            return value
        if not isinstance(value, Mapping):
            raise OptionError("deduplication", f"must be {{id, ttl?, extend?, replace?}}, got {value!r}")
        allowed = {"id", "ttl", "extend", "replace", "keep_last_if_active"}
        unknown = set(value) - allowed
        if unknown:
            raise OptionError("deduplication", f"unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        ident = value.get("id")
        if not isinstance(ident, str) or not ident:
            raise OptionError("deduplication.id", f"must be a non-empty string, got {ident!r}")
        ttl = value.get("ttl")
        return cls(
            id=ident,
            ttl=None if ttl is None else _int("deduplication.ttl", ttl, 1),
            extend=_bool("deduplication.extend", value.get("extend", False)),
            replace=_bool("deduplication.replace", value.get("replace", False)),
            keep_last_if_active=_bool("deduplication.keep_last_if_active", value.get("keep_last_if_active", False)),
        )

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.ttl is not None:
            out["ttl"] = self.ttl
        if self.extend:
            out["extend"] = True
        if self.replace:
            out["replace"] = True
        if self.keep_last_if_active:
            out["keepLastIfActive"] = True
        return out


@dataclass(frozen=True, slots=True)
class Repeat:
    """A repeating job (BullMQ job scheduler): a cron ``pattern`` or a fixed period ``every`` in ms."""

    pattern: str | None = None
    every: int | None = None
    limit: int | None = None
    start_date: int | None = None
    end_date: int | None = None
    tz: str | None = None
    immediately: bool = False
    offset: int = 0

    @classmethod
    def parse(cls, value: Any) -> Repeat | None:
        if value is None:
            return None
        if isinstance(value, Repeat):
            rep = value
        elif isinstance(value, Mapping):
            allowed = {f.name for f in fields(cls)}
            unknown = set(value) - allowed
            if unknown:
                raise OptionError("repeat", f"unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
            rep = cls(**dict(value))
        else:
            raise OptionError("repeat", f"must be {{pattern | every, limit?, ...}}, got {value!r}")
        if (rep.pattern is None) == (rep.every is None):
            raise OptionError("repeat", "give exactly one of 'pattern' (cron) or 'every' (ms)")
        if rep.every is not None:
            _int("repeat.every", rep.every, 1)
        if rep.pattern is not None:
            from croniter import croniter

            # six fields: seconds come first, as in BullMQ's cron-parser
            if not isinstance(rep.pattern, str) or not croniter.is_valid(
                    rep.pattern, second_at_beginning=len(rep.pattern.split()) == 6):
                raise OptionError("repeat.pattern", f"not a valid cron expression: {rep.pattern!r}")
        if rep.limit is not None:
            _int("repeat.limit", rep.limit, 1)
        for name in ("start_date", "end_date"):
            v = getattr(rep, name)
            if v is not None:
                _int(f"repeat.{name}", v)
        _int("repeat.offset", rep.offset)
        return rep

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.pattern is not None:
            out["pattern"] = self.pattern
        if self.every is not None:
            out["every"] = self.every
        for name, wire in (("limit", "limit"), ("start_date", "startDate"), ("end_date", "endDate"),
                           ("tz", "tz")):
            v = getattr(self, name)
            if v is not None:
                out[wire] = v
        if self.immediately:
            out["immediately"] = True
        if self.offset:
            out["offset"] = self.offset
        return out


@dataclass(frozen=True, slots=True)
class Parent:
    """The parent of a flow child: the job ``id`` in queue ``queue``.

    ``queue`` is a queue name (``"reports"``) or, as BullMQ writes it, the queue key with its prefix
    (``"bull:reports"``). The parent must live under the same prefix as the child (``prefix`` is None when
    only a name was given; the backend fills in its own).
    """

    id: str
    queue: str
    prefix: str | None = None

    @classmethod
    def parse(cls, value: Any) -> Parent | None:
        if value is None or isinstance(value, Parent):
            return value
        if not isinstance(value, Mapping) or set(value) != {"id", "queue"}:
            raise OptionError("parent", f"must be {{id, queue}} (queue: a queue name), got {value!r}")
        ident = value["id"]
        if isinstance(ident, int) and not isinstance(ident, bool):
            ident = str(ident)
        if not isinstance(ident, str) or not ident or ":" in ident:
            raise OptionError("parent.id", f"must be a non-empty job id without ':', got {ident!r}")
        queue = value["queue"]
        if not isinstance(queue, str):
            raise OptionError("parent.queue", f"must be a queue name, got {queue!r}")
        prefix, _, name = queue.rpartition(":")
        try:
            validate_queue_name(name)
            if prefix:
                validate_prefix(prefix)
        except OptionError as exc:
            raise OptionError("parent.queue", str(exc)) from None
        return cls(ident, name, prefix or None)

    def queue_key(self, prefix: str) -> str:
        """``<prefix>:<queue>``: what BullMQ calls the parent's ``queueKey``."""
        return f"{self.prefix or prefix}:{self.queue}"

    def job_key(self, prefix: str) -> str:
        """The parent's job key, ``<prefix>:<queue>:<id>``."""
        return f"{self.queue_key(prefix)}:{self.id}"


#: What a flow child does to its parent when it fails for good (BullMQ's short keys in the stored opts).
PARENT_FAILURE_POLICIES = {
    "fail_parent_on_failure": "fpof",
    "continue_parent_on_failure": "cpof",
    "ignore_dependency_on_failure": "idof",
    "remove_dependency_on_failure": "rdof",
}

_JOB_OPTION_NAMES = (
    "job_id", "priority", "delay", "attempts", "backoff", "lifo", "remove_on_complete", "remove_on_fail",
    "deduplication", "repeat", "timestamp", "timeout", "keep_logs", "stack_trace_limit", "size_limit",
    "parent", *PARENT_FAILURE_POLICIES,
)


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Options of one job, validated. Times are integer milliseconds.

    Attributes:
        job_id: custom id (not all digits, no ``:``); a duplicate id makes the add a no-op.
        priority: 0 (none, runs first) or 1 … 2,097,151 (1 is the highest priority).
        delay: ms to wait before the job becomes ready.
        attempts: total number of tries (1 = no retry; 0 behaves like 1).
        backoff: wait between tries, see :class:`Backoff`.
        lifo: put the job at the head of the wait list instead of the tail.
        remove_on_complete: which completed jobs to keep, see :class:`KeepJobs`.
        remove_on_fail: which failed jobs to keep, see :class:`KeepJobs`.
        deduplication: see :class:`Deduplication`.
        repeat: see :class:`Repeat`.
        timestamp: creation time (defaults to the clock's now); the delay counts from it.
        timeout: queuesim extension: an attempt running longer than this fails with a clear reason.
        keep_logs: keep only the last N log lines.
        stack_trace_limit: keep only the last N stack traces.
        size_limit: refuse data whose JSON is longer than this many bytes.
        parent: in a flow, the job this one is a child of (see :class:`Parent`); the parent waits in
            ``waiting-children`` until its children are done.
        fail_parent_on_failure: this child's final failure fails its parent. At most one of the four
            parent-failure options may be set; with none, the parent keeps waiting.
        continue_parent_on_failure: this child's final failure releases its parent now.
        ignore_dependency_on_failure: this child's final failure is recorded, and the parent is released once
            the other children are done.
        remove_dependency_on_failure: this child's final failure drops the dependency silently.
    """

    job_id: str | None = None
    priority: int = 0
    delay: int = 0
    attempts: int = 0
    backoff: Backoff | None = None
    lifo: bool = False
    remove_on_complete: KeepJobs | None = None
    remove_on_fail: KeepJobs | None = None
    deduplication: Deduplication | None = None
    repeat: Repeat | None = None
    timestamp: int | None = None
    timeout: int | None = None
    keep_logs: int | None = None
    stack_trace_limit: int | None = None
    size_limit: int | None = None
    parent: Parent | None = None
    fail_parent_on_failure: bool = False
    continue_parent_on_failure: bool = False
    ignore_dependency_on_failure: bool = False
    remove_dependency_on_failure: bool = False

    @property
    def parent_failure_policy(self) -> str | None:
        """The short key (``fpof``, ``cpof``, ``idof``, ``rdof``) of the policy set, or None."""
        for name, short in PARENT_FAILURE_POLICIES.items():
            if getattr(self, name):
                return short
        return None

    @classmethod
    def build(cls, options: Mapping[str, Any] | None = None, defaults_: Mapping[str, Any] | None = None,
              ) -> JobOptions:
        """Validate ``options`` (snake_case keys) over ``defaults_`` and return a JobOptions."""
        merged: dict[str, Any] = {}
        for source in (defaults_ or {}, options or {}):
            if isinstance(source, JobOptions):
                source = {n: getattr(source, n) for n in _JOB_OPTION_NAMES}
            for key, value in source.items():
                if key not in _JOB_OPTION_NAMES:
                    raise OptionError(key, f"unknown job option; allowed: {', '.join(_JOB_OPTION_NAMES)}")
                merged[key] = value
        return cls._validated(merged)

    @classmethod
    def _validated(cls, o: dict[str, Any]) -> JobOptions:
        priority = o.get("priority", 0)
        if isinstance(priority, float) and (not math.isfinite(priority) or priority != int(priority)):
            raise OptionError("priority", f"Priority should not be float (got {priority}); use a whole number "
                                          f"between 0 and {defaults.MAX_PRIORITY}")
        if isinstance(priority, int | float) and not isinstance(priority, bool) \
                and not 0 <= priority <= defaults.MAX_PRIORITY:
            raise OptionError("priority", f"Priority should be between 0 and {defaults.MAX_PRIORITY}, got {priority}")
        priority = _int("priority", priority, 0, defaults.MAX_PRIORITY)
        delay = _int("delay", o.get("delay", 0) or 0)
        repeat = Repeat.parse(o.get("repeat"))
        if repeat is not None and delay:
            raise OptionError("delay", "cannot be combined with repeat (use repeat.start_date or offset)")
        timeout = o.get("timeout")
        ts = o.get("timestamp")
        policies = {name: _bool(name, o.get(name, False)) for name in PARENT_FAILURE_POLICIES}
        chosen = [name for name, on in policies.items() if on]
        if len(chosen) > 1:
            raise OptionError(chosen[0], f"cannot be combined with {', '.join(chosen[1:])}; choose at most one of "
                                         f"{', '.join(PARENT_FAILURE_POLICIES)}")
        parent = Parent.parse(o.get("parent"))
        deduplication = Deduplication.parse(o.get("deduplication"))
        if parent is not None and deduplication is not None:
            raise OptionError("deduplication", "cannot be combined with parent (a flow child is never deduplicated)")
        return cls(
            job_id=validate_job_id(o.get("job_id")),
            priority=priority,
            delay=delay,
            attempts=_int("attempts", o.get("attempts", 0) or 0),
            backoff=Backoff.parse(o.get("backoff")),
            lifo=_bool("lifo", o.get("lifo", False)),
            remove_on_complete=KeepJobs.parse("remove_on_complete", o.get("remove_on_complete")),
            remove_on_fail=KeepJobs.parse("remove_on_fail", o.get("remove_on_fail")),
            deduplication=deduplication,
            repeat=repeat,
            timestamp=None if ts is None else _int("timestamp", ts),
            timeout=None if timeout is None else _int("timeout", timeout, 1),
            keep_logs=None if o.get("keep_logs") is None else _int("keep_logs", o["keep_logs"]),
            stack_trace_limit=(None if o.get("stack_trace_limit") is None
                               else _int("stack_trace_limit", o["stack_trace_limit"])),
            size_limit=None if o.get("size_limit") is None else _int("size_limit", o["size_limit"], 1),
            parent=parent,
            **policies,
        )

    def to_wire(self) -> dict[str, Any]:
        """The ``opts`` JSON object as BullMQ stores it in the job hash (camelCase)."""
        out: dict[str, Any] = {"attempts": self.attempts}
        if self.delay:
            out["delay"] = self.delay
        if self.priority:
            out["priority"] = self.priority
        if self.job_id is not None:
            out["jobId"] = self.job_id
        if self.backoff is not None:
            out["backoff"] = self.backoff.to_wire()
        if self.lifo:
            out["lifo"] = True
        if self.remove_on_complete is not None:
            out["removeOnComplete"] = self.remove_on_complete.to_wire()
        if self.remove_on_fail is not None:
            out["removeOnFail"] = self.remove_on_fail.to_wire()
        if self.deduplication is not None:
            out["de"] = self.deduplication.to_wire()
        if self.repeat is not None:
            out["repeat"] = self.repeat.to_wire()
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp
        if self.timeout is not None:
            out["timeout"] = self.timeout
        if self.keep_logs is not None:
            out["kl"] = self.keep_logs
        if self.stack_trace_limit is not None:
            out["stackTraceLimit"] = self.stack_trace_limit
        if self.size_limit is not None:
            out["sizeLimit"] = self.size_limit
        if self.parent is not None:
            # BullMQ stores the parent's queue as its key, "<prefix>:<name>"
            prefix = self.parent.prefix
            out["parent"] = {"id": self.parent.id,
                             "queue": self.parent.queue if prefix is None else f"{prefix}:{self.parent.queue}"}
        policy = self.parent_failure_policy
        if policy is not None:
            out[policy] = True
        return out

    @classmethod
    def from_wire(cls, opts: Mapping[str, Any]) -> JobOptions:
        """Read BullMQ's stored ``opts`` back (unknown keys written by BullMQ itself are ignored)."""
        de = opts.get("de") or opts.get("deduplication") or opts.get("debounce")
        rep = opts.get("repeat")
        return cls(
            job_id=opts.get("jobId") or None,
            priority=int(opts.get("priority") or 0),
            delay=int(opts.get("delay") or 0),
            attempts=int(opts.get("attempts") or 0),
            backoff=Backoff.parse(opts.get("backoff")) if opts.get("backoff") is not None else None,
            lifo=bool(opts.get("lifo", False)),
            remove_on_complete=KeepJobs.parse("removeOnComplete", opts.get("removeOnComplete")),
            remove_on_fail=KeepJobs.parse("removeOnFail", opts.get("removeOnFail")),
            deduplication=(Deduplication(de["id"], de.get("ttl"), bool(de.get("extend")), bool(de.get("replace")),
                                         bool(de.get("keepLastIfActive"))) if de else None),
            repeat=(Repeat(rep.get("pattern"), rep.get("every"), rep.get("limit"), rep.get("startDate"),
                           rep.get("endDate"), rep.get("tz"), bool(rep.get("immediately")),
                           int(rep.get("offset") or 0)) if rep else None),
            timestamp=opts.get("timestamp"),
            timeout=opts.get("timeout"),
            keep_logs=opts.get("kl", opts.get("keepLogs")),
            stack_trace_limit=opts.get("stackTraceLimit"),
            size_limit=opts.get("sizeLimit"),
            parent=_parent_from_wire(opts.get("parent")),
            **{name: bool(opts.get(short)) for name, short in PARENT_FAILURE_POLICIES.items()},
        )


def _parent_from_wire(value: Any) -> Parent | None:
    if not isinstance(value, Mapping) or "id" not in value or not isinstance(value.get("queue"), str):
        return None
    prefix, _, name = value["queue"].rpartition(":")
    return Parent(str(value["id"]), name, prefix or None)


@dataclass(frozen=True, slots=True)
class Limiter:
    """Fixed-window rate limit: at most ``max`` job starts per ``duration`` ms, shared by all workers."""

    max: int
    duration: int

    @classmethod
    def parse(cls, value: Any) -> Limiter | None:
        if value is None or isinstance(value, Limiter):
            return value
        if not isinstance(value, Mapping) or set(value) - {"max", "duration"}:
            raise OptionError("limiter", f"must be {{max, duration}}, got {value!r}")
        return cls(_int("limiter.max", value.get("max"), 1), _int("limiter.duration", value.get("duration"), 1))


BackoffStrategy = Callable[..., int]


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How a worker fetches, locks and watches jobs (BullMQ worker options, snake_case, times in ms)."""

    concurrency: int = 1
    name: str | None = None
    lock_duration: int = defaults.LOCK_DURATION_MS
    lock_renew_time: int | None = None
    stalled_interval: int = defaults.STALLED_INTERVAL_MS
    max_stalled_count: int = defaults.MAX_STALLED_COUNT
    max_started_attempts: int | None = None
    skip_stalled_check: bool = False
    skip_lock_renewal: bool = False
    drain_delay_s: float = defaults.DRAIN_DELAY_S
    limiter: Limiter | None = None
    maximum_rate_limit_delay: int = defaults.MAXIMUM_RATE_LIMIT_DELAY_MS
    remove_on_complete: KeepJobs | None = None
    remove_on_fail: KeepJobs | None = None
    backoff_strategies: Mapping[str, BackoffStrategy] = field(default_factory=dict)

    @classmethod
    def build(cls, **kw: Any) -> WorkerOptions:
        allowed = {f.name for f in fields(cls)}
        unknown = set(kw) - allowed
        if unknown:
            raise OptionError(sorted(unknown)[0], f"unknown worker option; allowed: {', '.join(sorted(allowed))}")
        o = dict(kw)
        o["concurrency"] = _int("concurrency", o.get("concurrency", 1), 1)
        o["lock_duration"] = _int("lock_duration", o.get("lock_duration", defaults.LOCK_DURATION_MS), 1)
        if o.get("lock_renew_time") is not None:
            o["lock_renew_time"] = _int("lock_renew_time", o["lock_renew_time"], 1)
        o["stalled_interval"] = _int("stalled_interval", o.get("stalled_interval", defaults.STALLED_INTERVAL_MS), 1)
        o["max_stalled_count"] = _int("max_stalled_count", o.get("max_stalled_count", defaults.MAX_STALLED_COUNT))
        if o.get("max_started_attempts") is not None:
            o["max_started_attempts"] = _int("max_started_attempts", o["max_started_attempts"])
        drain = o.get("drain_delay_s", defaults.DRAIN_DELAY_S)
        if isinstance(drain, bool) or not isinstance(drain, int | float) or drain <= 0:
            raise OptionError("drain_delay_s", f"must be a number > 0, got {drain!r}")
        o["limiter"] = Limiter.parse(o.get("limiter"))
        o["maximum_rate_limit_delay"] = _int("maximum_rate_limit_delay",
                                             o.get("maximum_rate_limit_delay", defaults.MAXIMUM_RATE_LIMIT_DELAY_MS), 1)
        o["remove_on_complete"] = KeepJobs.parse("remove_on_complete", o.get("remove_on_complete"))
        o["remove_on_fail"] = KeepJobs.parse("remove_on_fail", o.get("remove_on_fail"))
        for flag in ("skip_stalled_check", "skip_lock_renewal"):
            o[flag] = _bool(flag, o.get(flag, False))
        strategies = o.get("backoff_strategies") or {}
        for key, fn in strategies.items():
            if not callable(fn):
                raise OptionError(f"backoff_strategies.{key}",
                                  "must be callable(attempts_made, type, error, job) -> ms")
        o["backoff_strategies"] = dict(strategies)
        return cls(**o)

    @property
    def renew_every_ms(self) -> int:
        """BullMQ renews locks older than ``lock_renew_time / 2`` on a timer of the same period."""
        return max(1, (self.lock_renew_time or self.lock_duration // 2) // 2)
