"""The recorder: everything that happened, as data.

The engine writes every transition to each queue's events stream (``added``, ``waiting``, ``active``,
``completed``, ``failed``, ``delayed``, ``stalled``…, with the time in the entry id). The recorder reads those
streams as the simulation runs and turns them into **one row per state change of a job**:

| column | meaning |
|---|---|
| ``time_ms`` | when it happened (simulation ms) |
| ``job_id``, ``queue``, ``name`` | which job |
| ``attempt`` | the BullMQ attempt number the row is about (see below) |
| ``from``, ``to`` | states (see below) |
| ``worker`` | the worker that started or held the job (known on the simulation side) |
| ``reason`` | why: ``added``, ``due``, ``stalled``, the error message of a failed attempt… |

States: ``""`` (the job did not exist yet), ``waiting``, ``prioritized``, ``delayed``, ``active``,
``completed``, ``failed``, ``dlq`` (failed for good into the dead-letter queue) and ``removed``. ``attempt`` is
``attemptsMade + 1`` for a start and for the end of that attempt (a stall does not use an attempt), and the
number of attempts made so far for an add or a promotion.

The stream tells *what* happened; the simulation side adds *who* and *why* where the stream cannot: which
worker fetched a job, and whether an attempt went back to the queue because of a retry or a rate limit (the
stream shows both as ``waiting`` from ``active``). Those notes are queued per job in the order the calls were
made, and consumed in the same order as the events are read, so the recorder may read lazily.

From the rows the recorder also keeps, per job: created, first start, finish, attempts, starts, stalls, final
state and busy time (see :meth:`Recorder.jobs`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import pandas as pd

from queuesim.connection import Connection
from queuesim.events import Event, QueueEvents

__all__ = ["LOG_COLUMNS", "JOB_COLUMNS", "Recorder"]

LOG_COLUMNS = ("time_ms", "job_id", "queue", "name", "attempt", "from", "to", "worker", "reason")
JOB_COLUMNS = ("queue", "job_id", "name", "priority", "created_ms", "first_start_ms", "finish_ms", "attempts",
               "starts", "stalls", "final_state", "wait_ms", "service_ms", "sojourn_ms")
FINAL_STATES = ("completed", "failed", "dlq", "removed")
_SKIPPED = frozenset({"retries-exhausted", "progress", "debounced"})


class _JobRecord:
    """What the recorder knows about one job."""

    __slots__ = ("active_since", "atm", "busy", "created", "finish", "first_start", "last_row", "name",
                 "priority", "stalls", "starts", "state", "worker")

    def __init__(self, name: str, created: int, priority: int) -> None:
        self.name = name
        self.created = created
        self.priority = priority
        self.state = ""
        self.first_start: int | None = None
        self.active_since: int | None = None
        self.finish: int | None = None
        self.atm = 0
        self.starts = 0
        self.stalls = 0
        self.busy = 0
        self.worker: str | None = None
        self.last_row = -1


class Recorder:
    """Reads the events streams of the watched queues and keeps the event log, the per-job records, saga steps,
    worker incidents and queue-wide events.

    Args:
        connection: the simulation's connection.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._readers: dict[str, QueueEvents] = {}
        #: the event log, one tuple per state change (see :data:`LOG_COLUMNS`)
        self.rows: list[tuple[Any, ...]] = []
        #: queue-wide events: (time_ms, queue, event, job_id, detail)
        self.queue_events: list[tuple[Any, ...]] = []
        #: saga steps: (time_ms, queue, job_id, attempt, step, action, outcome, duration_ms, worker)
        self.steps: list[tuple[Any, ...]] = []
        #: worker-side incidents: (time_ms, worker, queue, kind, job_id, detail)
        self.incidents: list[tuple[Any, ...]] = []
        self._jobs: dict[tuple[str, str], _JobRecord] = {}
        self._priority: dict[tuple[str, str], int] = {}
        self._actors: dict[tuple[str, str], deque[str]] = {}
        self._exits: dict[tuple[str, str], deque[tuple[str, str | None]]] = {}
        #: per queue, jobs that finished for good: (finish_ms, final state, processing ms of the last attempt)
        self.finished: dict[str, list[tuple[int, str, int]]] = {}
        #: per queue, adds seen in the stream (``added``, ``duplicated``, ``deduplicated``): compared with the
        #: simulation's own count of adds to detect events trimmed away before they were read
        self.added_events: dict[str, int] = {}

    # --- what the simulation side tells ------------------------------------------------------------------

    def watch(self, queue: str) -> None:
        """Start reading ``queue``'s events stream (from its oldest entry)."""
        if queue not in self._readers:
            self._readers[queue] = QueueEvents(queue, self.connection, last_event_id="0")
            self.finished[queue] = []
            self.added_events[queue] = 0

    def note_added(self, queue: str, job_id: str, priority: int) -> None:
        """A producer added this job with this priority (the stream does not carry the priority)."""
        if priority:
            self._priority[(queue, job_id)] = priority

    def note_active(self, queue: str, job_id: str, worker: str) -> None:
        """``worker`` moved this job to active (the next ``active`` event of the job is its)."""
        key = (queue, job_id)
        q = self._actors.get(key)
        if q is None:
            q = self._actors[key] = deque()
        q.append(worker)

    def note_exit(self, queue: str, job_id: str, kind: str, reason: str | None) -> None:
        """The holder of this job reported its attempt: ``kind`` is ``completed``, ``failed``, ``retried``,
        ``delayed`` or ``rate-limited`` (what :meth:`queuesim.Worker.fail` returned), with the error text."""
        key = (queue, job_id)
        q = self._exits.get(key)
        if q is None:
            q = self._exits[key] = deque()
        q.append((kind, reason))

    def note_step(self, time_ms: int, queue: str, job_id: str, attempt: int, step: str, action: str, outcome: str,
                  duration_ms: int, worker: str) -> None:
        self.steps.append((time_ms, queue, job_id, attempt, step, action, outcome, duration_ms, worker))

    def note_incident(self, time_ms: int, worker: str, queue: str, kind: str, job_id: str | None = None,
                      detail: str | None = None) -> None:
        """Something that happened to a worker and is not a job state change (crash, freeze, lost lock…)."""
        self.incidents.append((time_ms, worker, queue, kind, job_id, detail))

    # --- reading the streams -----------------------------------------------------------------------------

    def pull(self) -> None:
        """Read every new entry of the watched streams and turn it into rows."""
        for queue, reader in self._readers.items():
            events = reader.read()
            if events:
                self._consume(queue, events)

    def _pop_actor(self, key: tuple[str, str]) -> str | None:
        q = self._actors.get(key)
        if not q:
            return None
        worker = q.popleft()
        if not q:
            del self._actors[key]
        return worker

    def _pop_exit(self, key: tuple[str, str]) -> tuple[str | None, str | None]:
        q = self._exits.get(key)
        if not q:
            return None, None
        item = q.popleft()
        if not q:
            del self._exits[key]
        return item

    def _row(self, t: int, queue: str, job_id: str, rec: _JobRecord, attempt: int, to: str, worker: str | None,
             reason: str | None) -> None:
        self.rows.append((t, job_id, queue, rec.name, attempt, rec.state, to, worker, reason))
        rec.state = to
        rec.last_row = len(self.rows) - 1

    @staticmethod
    def _leave_active(rec: _JobRecord, t: int) -> None:
        if rec.active_since is not None:
            rec.busy += t - rec.active_since
            rec.active_since = None

    def _ready(self, rec: _JobRecord) -> str:
        return "prioritized" if rec.priority > 0 else "waiting"

    def _finish(self, queue: str, rec: _JobRecord, t: int, state: str, processing: int) -> None:
        rec.finish = t
        self.finished[queue].append((t, state, processing))

    def _consume(self, queue: str, events: list[Event]) -> None:
        jobs = self._jobs
        n = len(events)
        i = 0
        while i < n:
            ev = events[i]
            i += 1
            name = ev.name
            job_id = ev.job_id
            t = int(ev.id.split("-", 1)[0])
            if job_id is None or name in _SKIPPED:
                if name not in _SKIPPED:
                    self.queue_events.append((t, queue, name, None, _detail(ev)))
                continue
            key = (queue, job_id)
            rec = jobs.get(key)
            if name == "added":
                rec = jobs[key] = _JobRecord(ev.fields.get("name", ""), t, self._priority.pop(key, 0))
                self.added_events[queue] += 1
                continue
            if rec is None:  # a job this recorder never saw added (e.g. added before it started watching)
                self.queue_events.append((t, queue, name, job_id, _detail(ev)))
                continue
            if name == "active":
                worker = self._pop_actor(key)
                rec.worker = worker
                rec.starts += 1
                if rec.first_start is None:
                    rec.first_start = t
                rec.active_since = t
                self._row(t, queue, job_id, rec, rec.atm + 1, "active", worker, None)
            elif name == "completed":
                self._pop_exit(key)
                processing = t - rec.active_since if rec.active_since is not None else 0
                self._leave_active(rec, t)
                rec.atm += 1
                self._row(t, queue, job_id, rec, rec.atm, "completed", rec.worker, None)
                self._finish(queue, rec, t, "completed", processing)
            elif name == "failed":
                self._pop_exit(key)
                processing = t - rec.active_since if rec.active_since is not None else 0
                self._leave_active(rec, t)
                rec.atm += 1
                self._row(t, queue, job_id, rec, rec.atm, "failed", rec.worker, ev.fields.get("failedReason"))
                self._finish(queue, rec, t, "failed", processing)
            elif name == "dead-lettered":
                if rec.last_row >= 0 and rec.state == "failed":
                    row = self.rows[rec.last_row]
                    self.rows[rec.last_row] = (*row[:6], "dlq", *row[7:])
                    rec.state = "dlq"
                    fin = self.finished[queue]
                    if fin and fin[-1][0] == t and fin[-1][1] == "failed":
                        fin[-1] = (t, "dlq", fin[-1][2])
            elif name == "delayed":
                if rec.state == "active":  # a retry with backoff
                    _, reason = self._pop_exit(key)
                    self._leave_active(rec, t)
                    rec.atm += 1
                    self._row(t, queue, job_id, rec, rec.atm, "delayed", rec.worker, reason)
                else:
                    self._row(t, queue, job_id, rec, rec.atm, "delayed", None,
                              "added" if rec.state == "" else "delay changed")
            elif name == "waiting":
                prev = ev.fields.get("prev")
                if prev is None:
                    self._row(t, queue, job_id, rec, rec.atm, self._ready(rec), None, "added")
                elif prev == "delayed":
                    self._row(t, queue, job_id, rec, rec.atm, self._ready(rec), None, "due")
                elif prev == "active":
                    nxt = events[i] if i < n else None
                    if nxt is not None and nxt.name == "stalled" and nxt.job_id == job_id:
                        i += 1  # the stall check emits "waiting" then "stalled": one row
                        self._leave_active(rec, t)
                        rec.stalls += 1
                        self._row(t, queue, job_id, rec, rec.atm + 1, "waiting", rec.worker, "stalled")
                    else:
                        kind, reason = self._pop_exit(key)
                        self._leave_active(rec, t)
                        attempt = rec.atm + 1
                        if kind != "rate-limited":  # a rate-limited attempt goes back without using an attempt
                            rec.atm += 1
                        self._row(t, queue, job_id, rec, attempt, self._ready(rec), rec.worker, reason)
                else:  # job.retry / retry_jobs / redrive from a final state
                    rec.finish = None
                    self._row(t, queue, job_id, rec, rec.atm, "waiting", None, f"from {prev}")
            elif name == "removed":
                self._leave_active(rec, t)
                if rec.state not in FINAL_STATES:
                    rec.finish = t
                self._row(t, queue, job_id, rec, rec.atm, "removed", None, ev.fields.get("prev"))
            else:  # stalled without its waiting, duplicated, deduplicated, waiting-children…
                if name in ("duplicated", "deduplicated"):
                    self.added_events[queue] += 1  # an add that created no job
                self.queue_events.append((t, queue, name, job_id, _detail(ev)))

    # --- tables ------------------------------------------------------------------------------------------

    def event_log(self) -> pd.DataFrame:
        """The event log: one row per state change, in the order they happened."""
        df = pd.DataFrame.from_records(self.rows, columns=list(LOG_COLUMNS))
        return df.astype({"time_ms": "int64", "attempt": "int64"})

    def jobs(self) -> pd.DataFrame:
        """One row per job: created, first start, finish (ms), attempts made, starts (including re-runs after a
        stall), stalls, final state (``unfinished`` while in the system), wait (first start - created),
        service (time spent active) and sojourn (finish - created)."""
        records = []
        for (queue, job_id), r in self._jobs.items():
            final = r.state if r.state in FINAL_STATES else "unfinished"
            finish = r.finish if final != "unfinished" else None
            records.append((queue, job_id, r.name, r.priority, r.created, r.first_start, finish, r.atm, r.starts,
                            r.stalls, final,
                            None if r.first_start is None else r.first_start - r.created,
                            r.busy, None if finish is None else finish - r.created))
        df = pd.DataFrame.from_records(records, columns=list(JOB_COLUMNS))
        types = dict.fromkeys(("first_start_ms", "finish_ms", "wait_ms", "sojourn_ms"), "Int64")
        types.update(dict.fromkeys(("priority", "created_ms", "attempts", "starts", "stalls", "service_ms"), "int64"))
        return df.astype(types)

    def step_log(self) -> pd.DataFrame:
        """Saga steps and compensations: one row per execution or undo of a step."""
        return pd.DataFrame.from_records(self.steps, columns=["time_ms", "queue", "job_id", "attempt", "step",
                                                              "action", "outcome", "duration_ms", "worker"])

    def incident_log(self) -> pd.DataFrame:
        """Worker incidents: crashes, freezes, lost locks, failed lock renewals."""
        return pd.DataFrame.from_records(self.incidents,
                                         columns=["time_ms", "worker", "queue", "kind", "job_id", "detail"])

    def queue_event_log(self) -> pd.DataFrame:
        """Queue-wide events (``drained``, ``paused``, ``resumed``…) and events about unknown jobs."""
        return pd.DataFrame.from_records(self.queue_events, columns=["time_ms", "queue", "event", "job_id", "detail"])


def _detail(ev: Event) -> str | None:
    if not ev.fields:
        return None
    return ",".join(f"{k}={v}" for k, v in sorted(ev.fields.items()))
