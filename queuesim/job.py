"""A job: the unit of work, and its record in the job hash.

The fields mirror BullMQ's job hash (``atm`` is ``attempts_made``, ``ats`` is ``attempts_started``, ``stc`` is
``stalled_counter``, ``pb`` is ``processed_by``…). A :class:`Job` is a snapshot: it is read from the backend and
does not change by itself. Methods that act on the job (``update_progress``, ``retry``…) go through its queue.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from queuesim.errors import OptionError
from queuesim.options import JobOptions, dump_json

if TYPE_CHECKING:
    from queuesim.queue import Queue

__all__ = ["Job", "JobState"]


class JobState(StrEnum):
    """The states ``get_state`` reports (BullMQ names). A stall is an event, not a state."""

    WAITING = "waiting"
    PRIORITIZED = "prioritized"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    WAITING_CHILDREN = "waiting-children"
    UNKNOWN = "unknown"


def _int_or_zero(text: str | None) -> int:
    """A number field of the hash as an int, 0 when absent (BullMQ may store ``"12"`` or, from Lua arithmetic,
    ``"12.0"``)."""
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        return int(float(text))


def _json(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


@functools.lru_cache(maxsize=4096)
def _options_from_text(text: str | None) -> JobOptions:
    """A job's options from the ``opts`` JSON of its hash. Cached: options are immutable, and a queue's jobs
    share a few option sets, so a fetch need not parse them again."""
    raw = _json(text) or {}
    return JobOptions.from_wire(raw) if isinstance(raw, dict) else JobOptions()


@dataclass(slots=True, eq=False)
class Job:
    """One job as stored in its hash (a snapshot).

    Attributes:
        id: the job id (a counter value, or a custom id).
        name: the job name (e.g. ``"welcome-email"``); workers may dispatch on it.
        data: the payload (anything JSON can hold).
        opts: the job's options.
        timestamp: creation time (ms). delay: the pending delay or last backoff (ms).
        priority: 0 = none, 1 highest … 2,097,151 lowest.
        processed_on: start of the latest attempt. finished_on: time it completed or failed for good.
        attempts_made: finished attempts (completion, failure, retry). attempts_started: every move to active.
        stalled_counter: how often it stalled. progress: last reported progress.
        return_value: the processor's result. failed_reason / stacktrace: the last failure.
        processed_by: the name of the worker that ran it last.
        parent_key: in a flow, the key of the parent job (``<prefix>:<queue>:<id>``) this job is a child of.
        parent: the stored parent reference, ``{"id", "queueKey"}`` plus the child's failure policy flag
            (``fpof``, ``cpof``, ``idof`` or ``rdof``) when it has one.
        token: the lock token when this snapshot was fetched by a worker.
    """

    id: str
    name: str
    data: Any = None
    opts: JobOptions = field(default_factory=JobOptions)
    timestamp: int = 0
    delay: int = 0
    priority: int = 0
    processed_on: int | None = None
    finished_on: int | None = None
    attempts_made: int = 0
    attempts_started: int = 0
    stalled_counter: int = 0
    progress: Any = 0
    return_value: Any = None
    failed_reason: str | None = None
    stacktrace: list[str] = field(default_factory=list)
    processed_by: str | None = None
    deferred_failure: str | None = None
    deduplication_id: str | None = None
    scheduler_id: str | None = None
    dead_letter_source: str | None = None
    parent_key: str | None = None
    parent: dict[str, Any] | None = None
    token: str | None = None
    queue: Queue | None = field(default=None, repr=False)

    @classmethod
    def from_hash(cls, job_id: str, raw: dict[str, str], queue: Queue | None = None,
                  token: str | None = None) -> Job:
        """Build a Job from the raw fields of its hash.

        A fetched job's hash holds a handful of fields (most are written only when something happens to the
        job), so the fields that are absent cost one dictionary lookup each and nothing else.
        """
        get = raw.get
        progress = get("progress")
        stack = get("stacktrace")
        data = get("data")
        parent = get("parent")
        returned = get("returnvalue")
        processed_on = get("processedOn")
        finished_on = get("finishedOn")
        stack = _json(stack) if stack is not None else None
        parent = _json(parent) if parent is not None else None
        # positional arguments, in the order of the fields above (a third of the cost of keywords)
        return cls(
            job_id,
            get("name", ""),
            None if data is None or data == "null" else _json(data),
            _options_from_text(get("opts")),
            _int_or_zero(get("timestamp")),
            _int_or_zero(get("delay")),
            _int_or_zero(get("priority")),
            None if not processed_on else _int_or_zero(processed_on),
            None if not finished_on else _int_or_zero(finished_on),
            _int_or_zero(get("atm")) or _int_or_zero(get("attemptsMade")),
            _int_or_zero(get("ats")),
            _int_or_zero(get("stc")),
            0 if progress is None else _json(progress),
            None if returned is None or returned == "null" else _json(returned),
            get("failedReason"),
            stack if isinstance(stack, list) else [],
            get("pb"),
            get("defa"),
            get("deid"),
            get("rjk"),
            get("dlqSource"),
            get("parentKey"),
            parent if isinstance(parent, dict) else None,
            token,
            queue,
        )

    # --- actions (through the queue) ------------------------------------------------------------------------

    def _q(self) -> Queue:
        if self.queue is None:
            raise RuntimeError(f"job {self.id} is not bound to a queue")
        return self.queue

    def update_progress(self, progress: Any) -> None:
        """Store progress (a number, string, bool or dict) and emit a ``progress`` event."""
        self._q().backend.update_progress(self._q().name, self.id, dump_json(progress, "progress"))
        self.progress = progress

    def log(self, line: str) -> int:
        """Append a line to the job's log; returns the number of lines kept."""
        return self._q().backend.add_log(self._q().name, self.id, str(line), self.opts.keep_logs)

    def get_logs(self, start: int = 0, end: int = -1) -> list[str]:
        return self._q().get_job_logs(self.id, start, end)

    def clear_logs(self, keep_logs: int | None = None) -> None:
        """Delete the job's log lines; with ``keep_logs``, keep only the last that many."""
        if keep_logs is not None and (isinstance(keep_logs, bool) or not isinstance(keep_logs, int)
                                      or keep_logs < 0):
            raise OptionError("keep_logs", f"must be an integer >= 0 or None, got {keep_logs!r}")
        self._q().backend.clear_logs(self._q().name, self.id, keep_logs)

    def wait_until_finished(self, timeout_ms: int | None = None) -> Any:
        """Block until the job completes (returns its return value) or fails for good (raises
        :class:`~queuesim.errors.JobFailedError` with its failed reason), like BullMQ's ``waitUntilFinished``.

        A job that has already finished answers at once. Otherwise this listens to the queue's events stream,
        so another thread or process must do the work; ``timeout_ms`` is wall-clock time (a virtual clock does
        not move by itself) and its expiry raises :class:`TimeoutError`. A job that no longer exists raises
        :class:`~queuesim.errors.JobNotFoundError`.
        """
        import time

        from queuesim.errors import JobFailedError, JobNotFoundError
        from queuesim.events import QueueEvents

        q = self._q()
        reader = QueueEvents(q.name, q.connection)  # listen first, then look: no finish can slip between
        state = q.get_job_state(self.id)
        if state in (JobState.COMPLETED, JobState.FAILED):
            done = q.get_job(self.id)
            if done is not None:
                if state == JobState.COMPLETED:
                    return done.return_value
                raise JobFailedError(self.id, done.failed_reason or "")
        elif state == JobState.UNKNOWN:
            raise JobNotFoundError(f"job {self.id} does not exist")
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            block = 1000 if deadline is None else max(1, min(1000, int((deadline - time.monotonic()) * 1000)))
            for event in reader.read(block_ms=block):
                if event.job_id != self.id:
                    continue
                if event.name == "completed":
                    return event.value()
                if event.name == "failed":
                    raise JobFailedError(self.id, event.fields.get("failedReason", ""))
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"Job wait {self.name} timed out before finishing, no finish notification "
                                   f"arrived after {timeout_ms}ms (id={self.id})")

    def get_state(self) -> JobState:
        return self._q().get_job_state(self.id)

    def remove(self, remove_children: bool = True) -> None:
        """Remove the job and its logs, and by default its flow children (see :meth:`Queue.remove`); refused
        while a worker holds its lock."""
        self._q().remove(self.id, remove_children)

    def retry(self, state: str = "failed", reset_attempts_made: bool = False,
              reset_attempts_started: bool = False) -> None:
        """Run a finished job again (from ``failed`` or ``completed``)."""
        self._q().backend.reprocess_job(self._q().name, self.id, state, reset_attempts_made, reset_attempts_started)

    def promote(self) -> None:
        """Make a delayed job ready now."""
        self._q().promote(self.id)

    def move_to_delayed(self, timestamp_ms: int, token: str | None = None) -> None:
        """From inside a processor: park this job until ``timestamp_ms`` without using an attempt.

        Raise :class:`~queuesim.errors.DelayedError` afterwards so the worker does not fail the job.
        """
        self._q().backend.move_to_delayed(self._q().name, self.id, token or self.token or "0", timestamp_ms,
                                          skip_attempt=True)

    def move_to_wait(self, token: str | None = None) -> None:
        """From inside a processor: put this job back at the head of the wait list without using an attempt.

        Raise :class:`~queuesim.errors.WaitingError` afterwards so the worker does not fail the job.
        """
        self._q().backend.move_to_wait_rate_limited(self._q().name, self.id, token or self.token or "0")

    def update_data(self, data: Any) -> None:
        """Replace the job's data (e.g. to remember which step a multi-step job has reached)."""
        self._q().backend.update_data(self._q().name, self.id, dump_json(data, "data"))
        self.data = data

    def refresh(self) -> Job:
        """A new snapshot of this job (raises if it no longer exists)."""
        fresh = self._q().get_job(self.id)
        if fresh is None:
            from queuesim.errors import JobNotFoundError

            raise JobNotFoundError(f"job {self.id} no longer exists")
        return fresh

    def status(self) -> dict[str, Any]:
        """A status view like the seed's job-status endpoint: state, progress, attempts, times, result, logs,
        and a timeline of what happened to the job (from the events stream)."""
        q = self._q()
        state = q.get_job_state(self.id)
        return {
            "id": self.id,
            "name": self.name,
            "state": str(state),
            "progress": self.progress,
            "attempts_made": self.attempts_made,
            "attempts_started": self.attempts_started,
            "max_attempts": max(self.opts.attempts, 1),
            "stalled_counter": self.stalled_counter,
            "created_at": self.timestamp,
            "processed_on": self.processed_on,
            "finished_on": self.finished_on,
            "result": self.return_value,
            "error": self.failed_reason,
            "stacktrace": list(self.stacktrace),
            "logs": q.get_job_logs(self.id),
            "timeline": q.job_timeline(self.id),
        }

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, name={self.name!r}, attempts_made={self.attempts_made})"
