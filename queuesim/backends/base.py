"""The backend contract: the one object that owns every state transition of a queue.

``Queue``, ``Worker``, ``Job`` and ``QueueEvents`` never touch storage themselves; they call a backend. Two
implementations exist: :class:`~queuesim.backends.redis_backend.RedisBackend`, which runs one Lua script per
transition on fakeredis or a real Redis, and :class:`~queuesim.backends.memory.MemoryBackend`, which keeps the
same state in Python data structures. They must be
indistinguishable through this contract, down to the events they emit. (BullMQ v6 adopted the same split.)

All times are integer ms from the backend's clock; data, return values and progress travel as JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from queuesim.clock import Clock
from queuesim.errors import OptionError
from queuesim.options import JobOptions, KeepJobs, Limiter

__all__ = ["AddResult", "Backend", "FetchArgs", "FetchResult", "dead_letter_refusal", "flow_parent_args"]


@dataclass(frozen=True, slots=True)
class AddResult:
    """What an add did: ``added``, ``duplicated`` (custom id exists) or ``deduplicated`` (dedup id taken)."""

    job_id: str
    outcome: str


@dataclass(slots=True)
class FetchArgs:
    """What a worker passes when it asks for a job (one per fetch: not frozen, since a frozen dataclass costs
    four ``object.__setattr__`` calls to build, and the backends only read it)."""

    token: str
    lock_duration: int
    limiter: Limiter | None = None
    worker_name: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The answer to a fetch.

    Exactly one of these holds: a job was fetched (``job_id`` and ``fields``); the queue is rate limited for
    ``rate_limit_ms``; it is paused or at its global concurrency (``paused_or_maxed``); or nothing is ready and
    the next delayed job is due at ``next_due_ms`` (0 = none scheduled).
    """

    job_id: str | None = None
    fields: dict[str, str] | None = None
    rate_limit_ms: int = 0
    next_due_ms: int = 0
    paused_or_maxed: bool = False


class AsyncTransitions(Protocol):
    """A worker's two hot transitions as coroutines, for the live runner of an ``async`` processor: the same
    transitions as :meth:`Backend.move_to_active` and :meth:`Backend.move_to_finished`, awaited instead of
    blocking, so that many jobs of one event loop can wait for the store at once."""

    async def move_to_active(self, queue: str, fetch: FetchArgs) -> FetchResult: ...
    async def move_to_finished(self, queue: str, job_id: str, token: str, *, completed: bool, value: str,
                               stacktrace: str | None, max_attempts: int, keep: KeepJobs | None,
                               fetch_next: FetchArgs | None) -> FetchResult | None: ...
    def close(self) -> None: ...


class Backend(Protocol):
    """Every state transition and getter a queue needs. ``queue`` is the queue name."""

    clock: Clock
    prefix: str
    #: True when the store answers in this process (memory backend, embedded fakeredis server)
    in_process: bool

    # producers
    def add_job(self, queue: str, name: str, data: str, opts: JobOptions, timestamp: int,
                scheduler_id: str | None = None, waiting_children: bool = False) -> AddResult: ...
    def add_jobs(self, queue: str, jobs: list[tuple[str, str, JobOptions, int]]) -> list[AddResult]: ...
    def add_flow_jobs(self, jobs: list[tuple[str, str, str, JobOptions, int, bool]]) -> list[AddResult]: ...

    # workers
    def move_to_active(self, queue: str, fetch: FetchArgs) -> FetchResult: ...
    def move_to_finished(self, queue: str, job_id: str, token: str, *, completed: bool, value: str,
                         stacktrace: str | None, max_attempts: int, keep: KeepJobs | None,
                         fetch_next: FetchArgs | None) -> FetchResult | None: ...
    def retry_job(self, queue: str, job_id: str, token: str, reason: str, stacktrace: str, lifo: bool) -> None: ...
    def pipelined(self) -> AsyncTransitions | None: ...
    def move_to_delayed(self, queue: str, job_id: str, token: str, due_ms: int, *, skip_attempt: bool,
                        reason: str | None = None, stacktrace: str | None = None,
                        now: int | None = None) -> None: ...
    def move_to_wait_rate_limited(self, queue: str, job_id: str, token: str) -> int: ...
    def extend_locks(self, queue: str, jobs: list[tuple[str, str]], duration: int) -> list[str]: ...
    def move_stalled_jobs_to_wait(self, queue: str, max_stalled_count: int, stalled_interval: int) -> list[str]: ...
    def next_due_ms(self, queue: str) -> int | None: ...
    def wait_for_work(self, queue: str, timeout_s: float) -> bool: ...

    # jobs
    def get_job_fields(self, queue: str, job_id: str) -> dict[str, str] | None: ...
    def get_state(self, queue: str, job_id: str) -> str: ...
    def update_progress(self, queue: str, job_id: str, progress: str) -> None: ...
    def update_data(self, queue: str, job_id: str, data: str) -> None: ...
    def add_log(self, queue: str, job_id: str, line: str, keep_logs: int | None) -> int: ...
    def get_logs(self, queue: str, job_id: str, start: int, end: int) -> list[str]: ...
    def remove_job(self, queue: str, job_id: str, remove_children: bool = True) -> bool: ...
    def reprocess_job(self, queue: str, job_id: str, state: str, reset_attempts_made: bool,
                      reset_attempts_started: bool) -> None: ...
    def promote(self, queue: str, job_id: str) -> None: ...
    def change_priority(self, queue: str, job_id: str, priority: int, lifo: bool) -> None: ...
    def change_delay(self, queue: str, job_id: str, delay: int) -> None: ...

    # queue
    def pause(self, queue: str, paused: bool) -> None: ...
    def is_paused(self, queue: str) -> bool: ...
    def get_counts(self, queue: str, types: list[str]) -> dict[str, int]: ...
    def count_priority(self, queue: str, priority: int) -> int: ...
    def get_ids(self, queue: str, state: str, start: int, end: int, asc: bool) -> list[str]: ...
    def drain(self, queue: str, delayed: bool) -> None: ...
    def clean(self, queue: str, grace_ms: int, limit: int, state: str) -> list[str]: ...
    def obliterate(self, queue: str, force: bool) -> None: ...
    def move_jobs_to_wait(self, queue: str, state: str, count: int, timestamp: int) -> int: ...
    def rate_limit(self, queue: str, ms: int) -> None: ...
    def get_rate_limit_ttl(self, queue: str, max_jobs: int | None) -> int: ...
    def remove_rate_limit_key(self, queue: str) -> None: ...
    def set_meta(self, queue: str, field: str, value: str | None) -> None: ...
    def get_meta(self, queue: str, field: str) -> str | None: ...
    def set_dead_letter_queue(self, queue: str, dlq: str | None) -> None: ...
    def read_events(self, queue: str, last_id: str, count: int | None) -> list[tuple[str, dict[str, str]]]: ...
    def read_event_entries(self, queue: str, after: tuple[int, int]) -> list[tuple[int, int, tuple[str, ...]]]: ...
    def last_event_id(self, queue: str) -> str: ...
    def queue_names(self) -> list[str]: ...
    def redrive(self, dlq: str, job_id: str) -> str: ...
    def clear_logs(self, queue: str, job_id: str, keep_logs: int | None) -> None: ...
    def get_dependencies(self, queue: str, job_id: str) -> dict[str, Any]: ...

    # job schedulers (see queuesim/scheduler.py)
    def get_job_scheduler(self, queue: str, scheduler_id: str) -> dict[str, str] | None: ...
    def get_job_scheduler_ids(self, queue: str) -> list[tuple[str, int]]: ...
    def add_job_scheduler(self, queue: str, scheduler_id: str, due_ms: int | None, name: str, data: str,
                          opts_json: str, every: int | None, offset: int | None, start_date: int | None,
                          settings: dict[str, str], now: int) -> str | int: ...
    def update_job_scheduler(self, queue: str, scheduler_id: str, producer_id: str, due_ms: int | None, name: str,
                             data: str, opts_json: str, now: int) -> str | None: ...
    def remove_job_scheduler(self, queue: str, scheduler_id: str) -> bool: ...


def dead_letter_refusal(code: int, queue: str, dlq: str, other: str) -> OptionError:
    """The error for a dead-letter queue setting the backend refused (the codes of setDeadLetterQueue.lua).

    The rule behind every refusal: a dead-letter queue serves exactly one queue, so that a dead job's id can
    never clash with a dead job of another queue, and it is an end point (it has no dead-letter queue itself).
    """
    if code == 1:
        why = (f"queue {dlq!r} is already the dead-letter queue of {other!r}, and a dead-letter queue serves "
               f"exactly one queue; give {queue!r} a dead-letter queue of its own (e.g. {queue + '-dlq'!r})")
    elif code == 2:
        why = (f"queue {dlq!r} still holds dead jobs of {other!r}, whose dead-letter queue it was; redrive or "
               f"purge them first, or give {queue!r} a dead-letter queue of its own")
    elif code == 3:
        why = (f"queue {dlq!r} has a dead-letter queue of its own, so it cannot be one; a dead-letter queue "
               "is where failed jobs end up, not a queue that passes them on")
    elif code == 4:
        why = (f"queue {queue!r} is itself the dead-letter queue of {other!r}, so it cannot have one; a "
               "dead-letter queue is where failed jobs end up")
    else:
        raise AssertionError(f"unknown setDeadLetterQueue code {code}")
    return OptionError("dead_letter_queue", why)


def flow_parent_args(opts: JobOptions, prefix: str) -> tuple[JobOptions, str, str]:
    """For a flow child: its options with the parent's prefix filled in, the parent's job key, and the
    reference the child stores (BullMQ's ``parentKey`` / ``parent`` fields). Empty strings for other jobs."""
    parent = opts.parent
    if parent is None:
        return opts, "", ""
    import dataclasses
    import json

    from queuesim.errors import OptionError

    if parent.prefix is not None and parent.prefix != prefix:
        raise OptionError("parent.queue", f"the parent must use this connection's prefix {prefix!r}, "
                                          f"got {parent.prefix!r}")
    opts = dataclasses.replace(opts, parent=dataclasses.replace(parent, prefix=prefix))
    ref: dict[str, Any] = {"id": parent.id, "queueKey": parent.queue_key(prefix)}
    policy = opts.parent_failure_policy
    if policy is not None:
        ref[policy] = True
    return opts, parent.job_key(prefix), json.dumps(ref, separators=(",", ":"))
