"""A read-only look at the queues of a live Redis: what ``queuesim inspect URL`` shows.

It finds the queues (their ``<prefix>:<queue>:meta`` hashes), counts the jobs in each state, lists the first
jobs of each state with their name, attempts, age and failure reason, and the dead-letter queues with their
dead jobs. It never writes: every Redis command goes through :class:`ReadOnlyClient`, which refuses any command
that is not on a short list of read commands. (The :class:`~queuesim.Queue` object cannot be used here: creating
one records the queue in its meta hash.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["READ_COMMANDS", "JobRow", "QueueView", "ReadOnlyClient", "WriteRefused", "inspect_redis"]

#: The only commands the inspector sends.
READ_COMMANDS = frozenset({"SCAN", "TYPE", "EXISTS", "HGETALL", "HGET", "HMGET", "HEXISTS", "LLEN", "LRANGE",
                           "ZCARD", "ZRANGE", "XLEN", "GET", "PING", "PTTL"})
#: Job-hash fields the inspector reads.
JOB_FIELDS = ("name", "timestamp", "processedOn", "finishedOn", "attemptsMade", "attemptsStarted", "failedReason",
              "priority", "delay", "stalledCounter", "dlqSource")
#: Lists (first = oldest at the right end of BullMQ's lists) and sorted sets of each state.
LIST_STATES = ("wait", "paused", "active")
ZSET_STATES = ("prioritized", "delayed", "waiting-children", "completed", "failed")


class WriteRefused(PermissionError):
    """The inspector tried to send a command that is not a read (a bug: it must never write)."""


class ReadOnlyClient:
    """Wraps a redis-py client and lets only :data:`READ_COMMANDS` through.

    Attributes:
        sent: every command sent, in order (tests check it).
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.sent: list[str] = []

    def call(self, *args: Any) -> Any:
        name = str(args[0]).upper()
        if name not in READ_COMMANDS:
            raise WriteRefused(f"{name} is not a read command; the inspector only reads")
        self.sent.append(name)
        return self._client.execute_command(*args)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int | None:
    text = _text(value)
    try:
        return int(float(text)) if text not in (None, "") else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job as the inspector shows it."""

    id: str
    state: str
    name: str | None
    created_ms: int | None
    processed_ms: int | None
    finished_ms: int | None
    attempts: int
    priority: int
    stalled: int
    failed_reason: str | None
    source: str | None = None


@dataclass
class QueueView:
    """One queue: its counts per state, whether it is paused, its dead-letter queue, and some of its jobs."""

    name: str
    paused: bool
    counts: dict[str, int]
    dead_letter_queue: str | None = None
    is_dead_letter_queue: bool = False
    jobs: list[JobRow] = field(default_factory=list)
    events: int = 0


def _scan(client: ReadOnlyClient, pattern: str) -> list[str]:
    cursor: Any = 0
    found: list[str] = []
    while True:
        cursor, keys = client.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
        found.extend(_text(k) or "" for k in keys)
        if int(cursor) == 0:
            return found


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _job(client: ReadOnlyClient, prefix: str, queue: str, job_id: str, state: str) -> JobRow:
    values = client.call("HMGET", f"{prefix}:{queue}:{job_id}", *JOB_FIELDS)
    raw = dict(zip(JOB_FIELDS, values, strict=True))
    return JobRow(id=job_id, state=state, name=_text(raw["name"]), created_ms=_int(raw["timestamp"]),
                  processed_ms=_int(raw["processedOn"]), finished_ms=_int(raw["finishedOn"]),
                  attempts=_int(raw["attemptsMade"]) or 0, priority=_int(raw["priority"]) or 0,
                  stalled=_int(raw["stalledCounter"]) or 0, failed_reason=_text(raw["failedReason"]),
                  source=_text(raw["dlqSource"]))


def inspect_redis(client: Any, *, prefix: str = "bull", queues: list[str] | None = None, jobs_per_state: int = 5,
                  ) -> list[QueueView]:
    """Read the queues under ``prefix`` (or only ``queues``): counts, pause flag, DLQ and the first jobs.

    ``client`` is a redis-py client (or a :class:`ReadOnlyClient`); only read commands are sent.
    """
    ro = client if isinstance(client, ReadOnlyClient) else ReadOnlyClient(client)
    if queues is None:
        start, end = len(prefix) + 1, -len(":meta")
        names = sorted({k[start:end] for k in _scan(ro, f"{_glob_escape(prefix)}:*:meta")
                        if ":" not in k[start:end] and k[start:end]})
    else:
        names = list(queues)
    views: list[QueueView] = []
    dead_letter: dict[str, str] = {}
    for name in names:
        meta = {(_text(k) or ""): _text(v) for k, v in _pairs(ro.call("HGETALL", f"{prefix}:{name}:meta"))}
        counts: dict[str, int] = {}
        for state in LIST_STATES:
            counts[state] = int(ro.call("LLEN", f"{prefix}:{name}:{state}"))
        for state in ZSET_STATES:
            counts[state] = int(ro.call("ZCARD", f"{prefix}:{name}:{state}"))
        view = QueueView(name, "paused" in meta, counts, dead_letter_queue=meta.get("dlq"))
        if view.dead_letter_queue:
            dead_letter[view.dead_letter_queue] = name
        if jobs_per_state > 0:
            for state in LIST_STATES:
                # BullMQ pushes new jobs on the left: the oldest (next to run) are at the right end
                ids = ro.call("LRANGE", f"{prefix}:{name}:{state}", -jobs_per_state, -1)
                for job_id in reversed([_text(i) or "" for i in ids]):
                    view.jobs.append(_job(ro, prefix, name, job_id, "waiting" if state == "wait" else state))
            for state in ZSET_STATES:
                newest_first = state in ("completed", "failed")
                args = (0, jobs_per_state - 1, "REV") if newest_first else (0, jobs_per_state - 1)
                ids = ro.call("ZRANGE", f"{prefix}:{name}:{state}", *args)
                for job_id in ids:
                    view.jobs.append(_job(ro, prefix, name, _text(job_id) or "", state))
        view.events = int(ro.call("XLEN", f"{prefix}:{name}:events")) if ro.call(
            "EXISTS", f"{prefix}:{name}:events") else 0
        views.append(view)
    for view in views:
        if view.name in dead_letter:
            view.is_dead_letter_queue = True
    return views


def _pairs(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, dict):
        return list(value.items())
    items = list(value or [])
    return list(zip(items[::2], items[1::2], strict=True))
