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

**Streaming statistics** (``mode="stats"``): for runs of millions of jobs, the recorder keeps no event log and
forgets each job as soon as it finishes, after folding it into running totals: the time integrals of the state
counts (for the time averages), completions and attempt ends per window, and a few numbers per finished job in
compact arrays (created, wait, sojourn, attempts, starts, stalls; about 40 bytes a job), from which
:meth:`Recorder.stats_summary` gives exactly what :func:`queuesim.analysis.metrics.summary` gives on the full
tables. What it cannot do: the event log and per-job tables, and changes to a job after it finished (a retry of
a failed job, a removal) are not counted.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from typing import Any

import numpy as np
import pandas as pd

from queuesim.connection import Connection
from queuesim.errors import OptionError

__all__ = ["LOG_COLUMNS", "JOB_COLUMNS", "Recorder"]

LOG_COLUMNS = ("time_ms", "job_id", "queue", "name", "attempt", "from", "to", "worker", "reason")
JOB_COLUMNS = ("queue", "job_id", "name", "priority", "created_ms", "first_start_ms", "finish_ms", "attempts",
               "starts", "stalls", "final_state", "wait_ms", "service_ms", "sojourn_ms")
FINAL_STATES = ("completed", "failed", "dlq", "removed")
#: recorder modes: the full event log, or streaming statistics only
MODES = ("log", "stats")
#: final states as stored in the streaming arrays
_FINAL_CODES = {"completed": 0, "failed": 1, "dlq": 2, "removed": 3}
_SKIPPED = frozenset({"retries-exhausted", "progress", "debounced"})

#: one stream entry as the recorder reads it: (ms, sequence number, the flat field tuple
#: ``("event", name, "jobId", id, key, value, …)`` in the order the engine wrote the fields)
Entry = tuple[int, int, tuple[str, ...]]


class _EntryReader:
    """Reads one queue's events stream from its oldest entry on, as ``(ms, seq, fields)`` entries (no id
    strings, no dicts: the memory backend hands them over as stored, a Redis backend reads them raw)."""

    def __init__(self, queue: str, backend: Any) -> None:
        self._backend = backend
        self._queue = queue
        self._after = (0, 0)  # (no entry has id 0-0: the first one at ms 0 is 0-1)

    def read(self) -> list[Entry]:
        entries: list[Entry] = self._backend.read_event_entries(self._queue, self._after)
        if entries:
            last = entries[-1]
            self._after = (last[0], last[1])
        return entries


def _field(fields: tuple[str, ...], key: str, start: int = 4) -> str | None:
    """The value of ``key`` among an entry's fields (after the event name and job id)."""
    for i in range(start, len(fields) - 1, 2):
        if fields[i] == key:
            return fields[i + 1]
    return None


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


class _Running:
    """Running totals of the streaming mode: the state counts and their time integrals from ``warmup_ms`` on,
    and the completions and attempt ends counted there (those of the current ms apart, since a window
    ``[warmup, now)`` leaves out what happens at ``now`` itself).

    The time integral of a state's count (its *area*: the job-milliseconds spent in that state) is the sum,
    over the jobs, of the time each spent there. So each state keeps ``entered``: the times jobs entered it
    minus the times they left it, each time taken no earlier than the warm-up. At any time ``T`` the area is then
    ``T * count - entered``: a job that left contributes ``left - entered``, one still there ``T - entered``, and
    one that came and went before the warm-up nothing. A change costs two additions, whatever the number of
    states.
    """

    TRACKED = ("waiting", "prioritized", "delayed", "active")

    def __init__(self, warmup_ms: int) -> None:
        self.warmup = warmup_ms
        self.count = dict.fromkeys(self.TRACKED, 0)
        self.entered = dict.fromkeys(self.TRACKED, 0)
        self.last_t = 0
        self.rows = 0
        self.done = 0
        self.ends = 0
        #: (ms, completions at that ms, ends at that ms)
        self.at_ms = (-1, 0, 0)

    def change(self, t: int, frm: str, to: str, reason: str | None) -> None:
        if t > self.last_t:
            self.last_t = t
        since = t if t > self.warmup else self.warmup
        count = self.count
        if frm in count:
            count[frm] -= 1
            self.entered[frm] -= since
        if to in count:
            count[to] += 1
            self.entered[to] += since
        self.rows += 1
        if t >= self.warmup:
            done = to == "completed"
            end = frm == "active" and reason != "stalled"
            if done or end:
                ms, d, e = self.at_ms
                if ms != t:
                    ms, d, e = t, 0, 0
                self.at_ms = (ms, d + done, e + end)
                self.done += done
                self.ends += end

    def averages(self, end_ms: int) -> tuple[dict[str, float], int, int]:
        """(time averages keyed like a summary, completions, attempt ends) over [warmup, end_ms)."""
        duration = end_ms - self.warmup
        if self.rows == 0 or duration <= 0:
            nan = dict.fromkeys(("mean_in_system", "mean_queued", "mean_delayed", "mean_busy"), math.nan)
            return nan, 0, 0
        until = end_ms if end_ms > self.last_t else self.last_t
        area = {state: until * n - self.entered[state] for state, n in self.count.items()}
        ms, d, e = self.at_ms
        done, ends = (self.done - d, self.ends - e) if ms >= end_ms else (self.done, self.ends)
        queued = area["waiting"] + area["prioritized"]
        averages = {"mean_in_system": (queued + area["delayed"] + area["active"]) / duration,
                    "mean_queued": queued / duration, "mean_delayed": area["delayed"] / duration,
                    "mean_busy": area["active"] / duration}
        return averages, done, ends


class _Folded:
    """The numbers the streaming mode keeps per job of one queue, in compact arrays."""

    def __init__(self) -> None:
        self.wait_created = array("q")
        self.wait = array("q")
        self.created = array("q")
        self.final = array("b")
        self.sojourn = array("q")
        self.attempts = array("l")
        self.starts = array("l")
        self.stalls = array("l")


class Recorder:
    """Reads the events streams of the watched queues and keeps the event log, the per-job records, saga steps,
    worker incidents and queue-wide events.

    Args:
        connection: the simulation's connection.
        mode: ``"log"`` (the event log and per-job tables) or ``"stats"`` (streaming statistics only, for very
            long runs; see the module's description).
        warmup_ms: in ``"stats"`` mode, the start of the window the running totals cover.
    """

    def __init__(self, connection: Connection, mode: str = "log", warmup_ms: int = 0) -> None:
        if mode not in MODES:
            raise OptionError("record", f"must be one of {', '.join(MODES)}, got {mode!r}")
        if isinstance(warmup_ms, bool) or not isinstance(warmup_ms, int) or warmup_ms < 0:
            raise OptionError("stats_warmup_ms", f"must be an integer >= 0, got {warmup_ms!r}")
        self.connection = connection
        self.mode = mode
        self.streaming = mode == "stats"
        #: whether finished jobs are listed in :attr:`finished` (always in log mode; in stats mode only while a
        #: health monitor reads and empties the lists)
        self.keep_finished = not self.streaming
        self._running = _Running(warmup_ms)
        self._folded: dict[str, _Folded] = {}
        #: failed jobs to fold at the end of the batch (a "dead-lettered" may follow their "failed")
        self._pending: list[tuple[str, str]] = []
        self._readers: dict[str, _EntryReader] = {}
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
        # per job, the notes not matched with an event yet: one note as is, several in a deque (oldest first)
        self._actors: dict[tuple[str, str], str | deque[str]] = {}
        self._exits: dict[tuple[str, str], tuple[str, str | None] | deque[tuple[str, str | None]]] = {}
        #: per queue, jobs that finished for good: (finish_ms, final state, processing ms of the last attempt)
        self.finished: dict[str, list[tuple[int, str, int]]] = {}
        #: per queue, adds seen in the stream (``added``, ``duplicated``, ``deduplicated``): compared with the
        #: simulation's own count of adds to detect events trimmed away before they were read
        self.added_events: dict[str, int] = {}

    # --- what the simulation side tells ------------------------------------------------------------------

    def watch(self, queue: str) -> None:
        """Start reading ``queue``'s events stream (from its oldest entry)."""
        if queue not in self._readers:
            backend = self.connection.backend
            self._readers[queue] = _EntryReader(queue, backend)
            self.finished[queue] = []
            self.added_events[queue] = 0
            self._folded[queue] = _Folded()

    def note_added(self, queue: str, job_id: str, priority: int) -> None:
        """A producer added this job with this priority, above 0 (the stream does not carry the priority)."""
        self._priority[(queue, job_id)] = priority

    def note_active(self, queue: str, job_id: str, worker: str) -> None:
        """``worker`` moved this job to active (the next ``active`` event of the job is its)."""
        key = (queue, job_id)
        known = self._actors.get(key)
        if known is None:
            self._actors[key] = worker  # the common case: one note pending, kept as is
        elif type(known) is deque:
            known.append(worker)
        else:
            self._actors[key] = deque((known, worker))

    def note_exit(self, queue: str, job_id: str, kind: str, reason: str | None) -> None:
        """The holder of this job reported its attempt: ``kind`` is ``completed``, ``failed``, ``retried``,
        ``delayed`` or ``rate-limited`` (what :meth:`queuesim.Worker.fail` returned), with the error text."""
        key = (queue, job_id)
        known = self._exits.get(key)
        if known is None:
            self._exits[key] = (kind, reason)
        elif type(known) is deque:
            known.append((kind, reason))
        else:
            self._exits[key] = deque((known, (kind, reason)))

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
        known = self._actors.pop(key, None)
        if type(known) is not deque:
            return known
        worker = known.popleft()
        if known:
            self._actors[key] = known if len(known) > 1 else known[0]
        return worker

    def _pop_exit(self, key: tuple[str, str]) -> tuple[str | None, str | None]:
        known = self._exits.pop(key, None)
        if known is None:
            return None, None
        if type(known) is not deque:
            return known
        item = known.popleft()
        if known:
            self._exits[key] = known if len(known) > 1 else known[0]
        return item

    def _row(self, t: int, queue: str, job_id: str, rec: _JobRecord, attempt: int, to: str, worker: str | None,
             reason: str | None) -> None:
        if self.streaming:
            self._running.change(t, rec.state, to, reason)
            rec.state = to
            return
        self.rows.append((t, job_id, queue, rec.name, attempt, rec.state, to, worker, reason))
        rec.state = to
        rec.last_row = len(self.rows) - 1

    def _fold(self, queue: str, job_id: str) -> None:
        """Streaming mode: a job finished; keep its numbers and forget it."""
        key = (queue, job_id)
        rec = self._jobs.pop(key, None)
        if rec is None:
            return
        self._actors.pop(key, None)
        self._exits.pop(key, None)
        folded = self._folded[queue]
        folded.created.append(rec.created)
        folded.final.append(_FINAL_CODES[rec.state])
        folded.sojourn.append(rec.finish - rec.created if rec.finish is not None else 0)
        folded.attempts.append(rec.atm)
        folded.starts.append(rec.starts)
        folded.stalls.append(rec.stalls)

    @staticmethod
    def _leave_active(rec: _JobRecord, t: int) -> int:
        """The job leaves active at ``t``: its busy time grows by this attempt's; returns that time (0 when it
        was not active)."""
        if rec.active_since is None:
            return 0
        spent = t - rec.active_since
        rec.busy += spent
        rec.active_since = None
        return spent

    def _ready(self, rec: _JobRecord) -> str:
        return "prioritized" if rec.priority > 0 else "waiting"

    def _finish(self, queue: str, rec: _JobRecord, t: int, state: str, processing: int) -> None:
        rec.finish = t
        if self.keep_finished:
            self.finished[queue].append((t, state, processing))

    def _consume(self, queue: str, events: list[Entry]) -> None:
        jobs = self._jobs
        n = len(events)
        i = 0
        while i < n:
            t, _, fields = events[i]
            i += 1
            name = fields[1]
            job_id = fields[3] if len(fields) > 3 and fields[2] == "jobId" else None
            if job_id is None or name in _SKIPPED:
                if name not in _SKIPPED:
                    self.queue_events.append((t, queue, name, None, _detail(fields, job_id)))
                continue
            key = (queue, job_id)
            rec = jobs.get(key)
            if name == "added":
                # the engine writes the name right after the job id; other writers may put it elsewhere
                job_name = fields[5] if len(fields) > 5 and fields[4] == "name" else _field(fields, "name") or ""
                rec = jobs[key] = _JobRecord(job_name, t, self._priority.pop(key, 0))
                self.added_events[queue] += 1
                continue
            if rec is None:  # a job this recorder never saw added (e.g. added before it started watching)
                self.queue_events.append((t, queue, name, job_id, _detail(fields, job_id)))
                continue
            if name == "active":
                worker = self._pop_actor(key)
                rec.worker = worker
                rec.starts += 1
                if rec.first_start is None:
                    rec.first_start = t
                    if self.streaming:
                        folded = self._folded[queue]
                        folded.wait_created.append(rec.created)
                        folded.wait.append(t - rec.created)
                rec.active_since = t
                self._row(t, queue, job_id, rec, rec.atm + 1, "active", worker, None)
            elif name == "completed":
                processing = self._leave_active(rec, t)
                rec.atm += 1
                self._row(t, queue, job_id, rec, rec.atm, "completed", rec.worker, None)
                self._finish(queue, rec, t, "completed", processing)
                if self.streaming:
                    self._fold(queue, job_id)  # (which drops any note left about the job)
                else:
                    self._pop_exit(key)
            elif name == "failed":
                self._pop_exit(key)
                processing = self._leave_active(rec, t)
                rec.atm += 1
                self._row(t, queue, job_id, rec, rec.atm, "failed", rec.worker, _field(fields, "failedReason"))
                self._finish(queue, rec, t, "failed", processing)
                if self.streaming:
                    self._pending.append(key)
            elif name == "dead-lettered":
                if self.streaming:
                    if rec.state == "failed":
                        rec.state = "dlq"
                        if self.keep_finished:
                            fin = self.finished[queue]
                            if fin and fin[-1][0] == t and fin[-1][1] == "failed":
                                fin[-1] = (t, "dlq", fin[-1][2])
                elif rec.last_row >= 0 and rec.state == "failed":
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
                prev = _field(fields, "prev") if len(fields) > 4 else None  # (an add's has no other field)
                if prev is None:
                    self._row(t, queue, job_id, rec, rec.atm, self._ready(rec), None, "added")
                elif prev == "delayed":
                    self._row(t, queue, job_id, rec, rec.atm, self._ready(rec), None, "due")
                elif prev == "active":
                    nxt = events[i][2] if i < n else None
                    if nxt is not None and nxt[1] == "stalled" and len(nxt) > 3 and nxt[3] == job_id:
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
                self._row(t, queue, job_id, rec, rec.atm, "removed", None, _field(fields, "prev"))
                if self.streaming:
                    self._fold(queue, job_id)
            else:  # stalled without its waiting, duplicated, deduplicated, waiting-children…
                if name in ("duplicated", "deduplicated"):
                    self.added_events[queue] += 1  # an add that created no job
                self.queue_events.append((t, queue, name, job_id, _detail(fields, job_id)))
        if self._pending:
            for q_name, pending_id in self._pending:
                self._fold(q_name, pending_id)
            self._pending.clear()

    # --- streaming statistics ----------------------------------------------------------------------------

    def stats_summary(self, end_ms: int, capacity: int | None = None, queue: str | None = None) -> dict[str, float]:
        """Streaming mode: the metrics of :func:`queuesim.analysis.metrics.summary` over [warmup, end_ms), from
        the running totals and the folded jobs (plus the jobs still in the system).

        The time averages, completions and attempt ends are totals over every queue; ``queue`` narrows the
        per-job metrics only (and is refused when several queues are watched, rather than mixing the two)."""
        from queuesim.analysis.metrics import job_summary

        if not self.streaming:
            raise OptionError("record", "stats_summary needs a recorder in 'stats' mode")
        queues = list(self._folded) if queue is None else [queue]
        if queue is not None and len(self._folded) > 1:
            raise OptionError("queue", "in 'stats' mode the running totals cover every queue together; "
                                       "summarise without a queue, or record in 'log' mode")
        columns: dict[str, list[np.ndarray]] = {k: [] for k in ("created_ms", "final_state", "sojourn_ms",
                                                                  "attempts", "starts", "stalls")}
        states = np.array(["completed", "failed", "dlq", "removed"], dtype=object)
        wait_created: list[np.ndarray] = []
        waits: list[np.ndarray] = []
        for name in queues:
            f = self._folded[name]
            live = [r for (q, _), r in self._jobs.items() if q == name]
            columns["created_ms"] += [np.asarray(f.created, dtype=np.int64),
                                      np.array([r.created for r in live], dtype=np.int64)]
            columns["final_state"] += [states[np.asarray(f.final, dtype=np.int64)],
                                       np.array([r.state if r.state in FINAL_STATES else "unfinished"
                                                 for r in live], dtype=object)]
            columns["sojourn_ms"] += [np.asarray(f.sojourn, dtype=np.float64), np.full(len(live), np.nan)]
            for column, attr in (("attempts", "atm"), ("starts", "starts"), ("stalls", "stalls")):
                columns[column] += [np.asarray(getattr(f, column), dtype=np.int64),
                                    np.array([getattr(r, attr) for r in live], dtype=np.int64)]
            wait_created.append(np.asarray(f.wait_created, dtype=np.int64))
            waits.append(np.asarray(f.wait, dtype=np.int64))
        jobs = pd.DataFrame({k: np.concatenate(v) for k, v in columns.items()})
        averages, done, ends = self._running.averages(end_ms)
        return job_summary(jobs, self._running.warmup, end_ms, averages, done, ends, capacity,
                           waits=(np.concatenate(wait_created), np.concatenate(waits)))

    # --- tables ------------------------------------------------------------------------------------------

    def _need_log(self, what: str) -> None:
        if self.streaming:
            raise OptionError("record", f"{what} needs the simulation to record in 'log' mode (this one keeps "
                                        "streaming statistics only: use summary())")

    def event_log(self) -> pd.DataFrame:
        """The event log: one row per state change, in the order they happened."""
        self._need_log("the event log")
        df = pd.DataFrame.from_records(self.rows, columns=list(LOG_COLUMNS))
        return df.astype({"time_ms": "int64", "attempt": "int64"})

    def jobs(self) -> pd.DataFrame:
        """One row per job: created, first start, finish (ms), attempts made, starts (including re-runs after a
        stall), stalls, final state (``unfinished`` while in the system), wait (first start - created),
        service (time spent active) and sojourn (finish - created)."""
        self._need_log("the per-job table")
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


def _detail(fields: tuple[str, ...], job_id: str | None) -> str | None:
    """The fields of an entry other than its name and job id, as ``key=value`` pairs sorted by key."""
    rest = fields[4:] if job_id is not None else fields[2:]
    if not rest:
        return None
    return ",".join(f"{k}={v}" for k, v in sorted(zip(rest[0::2], rest[1::2], strict=True)))
