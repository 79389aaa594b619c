"""What the dashboard knows and does, without any HTTP: the seed's admin service over queuesim's live queues.

:class:`QueueMonitor` is the layer between the web API and the engine. It

* finds the queues to watch (given by name, or discovered by scanning the ``<prefix>:*:meta`` keys) and tells
  ordinary queues apart from the dead-letter queues they send their dead jobs to;
* judges the health of each queue with the seed's rules (:func:`queuesim.health.assess`) and keeps a history of
  those checks (the seed samples every 30 s and keeps the last 100);
* keeps a short, finer series of throughput and depth samples for the sparklines of the web page;
* reads stats, failed jobs, dead jobs and one job's details with its timeline;
* acts: cancel a job, retry a failed job, redrive or purge dead jobs, pause and resume a queue.

Every refusal is a :class:`DashboardError` carrying an HTTP status and a sentence that says what went wrong, so
the web layer only has to pass it on.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import redis

from queuesim.connection import Connection
from queuesim.errors import JobNotFoundError, JobStateError, LockError, OptionError, ScriptError
from queuesim.health import HealthStatus, QueueSnapshot, assess, snapshot_from_jobs
from queuesim.job import Job
from queuesim.options import validate_queue_name
from queuesim.queue import DeadLetterQueue, Queue

__all__ = ["DashboardError", "QueueMonitor", "SeriesSample"]

#: Suffixes of a queue's own keys (``bull:<queue>:<suffix>``). A job id equal to one of them would read a key
#: that is not a job hash, so such ids are answered with "not found".
RESERVED_IDS = frozenset({
    "active", "completed", "de", "delayed", "events", "failed", "id", "limiter", "marker", "meta", "paused",
    "pc", "prioritized", "repeat", "stalled", "stalled-check", "wait", "waiting-children",
})
#: Longest job id the dashboard accepts in a URL.
MAX_JOB_ID_LENGTH = 256
#: States from which a job may be cancelled (removed). The seed refuses active, completed and failed jobs.
CANCELLABLE = ("waiting", "prioritized", "delayed", "waiting-children")
#: How many finished jobs one health check reads at most per queue (the window is one minute).
MAX_FINISHED_SCAN = 10_000
#: The sparkline's throughput is averaged over this many milliseconds.
THROUGHPUT_WINDOW_MS = 30_000


class DashboardError(Exception):
    """A request the dashboard refuses: ``status`` is the HTTP status, the message says why in plain words."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class SeriesSample:
    """One point of a sparkline.

    Attributes:
        time_ms: when it was taken (the connection's clock).
        interval_ms: time since the previous sample (the interval ``completed`` and ``failed`` cover).
        depth: jobs not started yet (waiting + paused + prioritized + delayed).
        active: jobs running.
        completed: jobs completed since the previous sample (from the events stream).
        failed: jobs that failed for good since the previous sample.
        throughput_per_min: jobs completed per minute, averaged over the last :data:`THROUGHPUT_WINDOW_MS`
            (a single short interval would make the line jump up and down).
    """

    time_ms: int
    interval_ms: int
    depth: int
    active: int
    completed: int
    failed: int
    throughput_per_min: float


def _check_job_id(job_id: str) -> str:
    if not job_id or len(job_id) > MAX_JOB_ID_LENGTH:
        raise DashboardError(400, f"job id: must be 1 to {MAX_JOB_ID_LENGTH} characters long")
    if ":" in job_id or any(ord(c) < 32 for c in job_id):
        raise DashboardError(400, f"job id: must not contain ':' or control characters, got {job_id!r}")
    return job_id


def _job_summary(job: Job) -> dict[str, Any]:
    """The fields a list of jobs shows."""
    return {
        "id": job.id,
        "name": job.name,
        "attempts_made": job.attempts_made,
        "max_attempts": max(job.opts.attempts, 1),
        "created_at": job.timestamp,
        "processed_on": job.processed_on,
        "finished_on": job.finished_on,
        "failed_reason": job.failed_reason,
        "dead_letter_source": job.dead_letter_source,
    }


_EVENT_TEXT = {
    "added": "Job added to the queue",
    "waiting": "Ready to run (in the wait list)",
    "active": "Picked up by a worker",
    "progress": "Progress reported",
    "completed": "Job completed",
    "failed": "Job failed",
    "delayed": "Delayed (retry backoff or delay)",
    "retries-exhausted": "No attempts left",
    "stalled": "Worker lost its lock: the job goes back to wait",
    "removed": "Job removed",
    "duplicated": "A second add with the same id was ignored",
    "deduplicated": "A second add was deduplicated",
    "waiting-children": "Waiting for its child jobs",
    "cleaned": "Job cleaned",
    "dead-lettered": "Moved to the dead-letter queue",
    "debounced": "A second add was debounced",
}


def _describe_event(entry: dict[str, Any]) -> str:
    """A plain sentence for one entry of a job's timeline."""
    event = str(entry.get("event"))
    text = _EVENT_TEXT.get(event, event)
    extras = []
    if entry.get("prev"):
        extras.append(f"from {entry['prev']}")
    if entry.get("failedReason"):
        extras.append(f"reason: {entry['failedReason']}")
    if event == "completed" and entry.get("returnvalue") not in (None, ""):
        extras.append(f"result: {entry['returnvalue']}")
    if event == "dead-lettered" and entry.get("deadLetterQueue"):
        extras.append(f"to {entry['deadLetterQueue']}")
    if event == "progress" and entry.get("data") not in (None, ""):
        extras.append(f"progress: {entry['data']}")
    return text + (f" ({'; '.join(extras)})" if extras else "")


class QueueMonitor:
    """The dashboard's view of a set of queues on one connection.

    Args:
        connection: from :func:`queuesim.connect` (a real Redis, or the embedded fakeredis server).
        queues: names of the queues to watch; ``None`` discovers them by scanning ``<prefix>:*:meta``.
        history_size: how many health checks to keep per queue (the seed keeps 100).
        series_size: how many sparkline samples to keep per queue.
        discovery_ttl_s: how long a scan of the queue names is reused before scanning again.

    Queues that another watched queue names as its dead-letter queue are shown as that queue's DLQ, not as
    queues of their own (a DLQ holds only failed jobs, so the health rules would call it critical).
    """

    def __init__(self, connection: Connection, queues: Iterable[str] | None = None, *, history_size: int = 100,
                 series_size: int = 90, discovery_ttl_s: float = 5.0) -> None:
        self.connection = connection
        self.clock = connection.clock
        self.backend = connection.backend
        self.prefix: str = connection.backend.prefix
        if queues is not None:
            given = [validate_queue_name(q) for q in queues]
            if not given:
                raise OptionError("queues", "must name at least one queue, or be None to discover them")
            self._given: list[str] | None = list(dict.fromkeys(given))
        else:
            self._given = None
        for size, field in ((history_size, "history_size"), (series_size, "series_size")):
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise OptionError(field, f"must be an integer >= 1, got {size!r}")
        self.history_size = history_size
        self.series_size = series_size
        self.discovery_ttl_s = discovery_ttl_s
        self._lock = threading.RLock()
        self._queues: dict[str, Queue] = {}
        self._names: list[str] = []
        self._dlq_of: dict[str, str] = {}
        self._discovered_at = float("-inf")
        self._history: dict[str, deque[dict[str, Any]]] = {}
        self._series: dict[str, deque[SeriesSample]] = {}
        self._last_event: dict[str, str] = {}
        self._last_sample_ms: dict[str, int] = {}

    @property
    def discovers(self) -> bool:
        """True when the queues are found by scanning rather than given by name."""
        return self._given is None

    # --- which queues ----------------------------------------------------------------------------------------

    def _scan_names(self) -> list[str]:
        return self.backend.queue_names()

    def refresh(self, force: bool = False) -> None:
        """Find the queues again (at most every ``discovery_ttl_s`` unless ``force``) and their DLQs."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._discovered_at < self.discovery_ttl_s:
                return
            names = list(self._given) if self._given is not None else self._scan_names()
            dlq_of = {}
            for name in names:
                dlq = self.backend.get_meta(name, "dlq")
                if dlq:
                    dlq_of[name] = dlq
            dead_letter_names = set(dlq_of.values())
            self._names = [n for n in names if n not in dead_letter_names]
            self._dlq_of = dlq_of
            self._discovered_at = now

    def queue_names(self) -> list[str]:
        """The ordinary queues watched (dead-letter queues excluded), in a stable order."""
        self.refresh()
        with self._lock:
            return list(self._names)

    def dead_letter_names(self) -> dict[str, str]:
        """``{queue: its dead-letter queue}`` for the watched queues that have one."""
        self.refresh()
        with self._lock:
            return {q: d for q, d in self._dlq_of.items() if q in self._names}

    def _queue_obj(self, name: str) -> Queue:
        with self._lock:
            q = self._queues.get(name)
            if q is None:
                q = self._queues[name] = Queue(name, self.connection)
            return q

    def queue(self, name: str) -> Queue:
        """A watched queue by name; 404 when it is not watched."""
        names = self.queue_names()
        if name not in names:
            self.refresh(force=True)
            names = self.queue_names()
        if name not in names:
            known = ", ".join(names) or "none"
            raise DashboardError(404, f"unknown queue {name!r}; watched queues: {known}")
        return self._queue_obj(name)

    def dlq(self, name: str) -> DeadLetterQueue:
        """The dead-letter queue of a watched queue; 404 when it has none."""
        self.queue(name)
        dlq_name = self.dead_letter_names().get(name)
        if dlq_name is None:
            raise DashboardError(404, f"queue {name!r} has no dead-letter queue")
        return DeadLetterQueue(dlq_name, self.connection)

    def _any_queue(self, name: str) -> tuple[Queue, str | None]:
        """A watched queue or a watched queue's DLQ: ``(queue, source)``, source set for a DLQ."""
        sources = {d: q for q, d in self.dead_letter_names().items()}
        if name in sources:
            return self._queue_obj(name), sources[name]
        return self.queue(name), None

    # --- health ----------------------------------------------------------------------------------------------

    def _recent_finished(self, queue: Queue, state: str, since_ms: int,
                         source: str | None = None) -> list[tuple[bool, int | None, int | None]]:
        """``(completed?, processed_on, finished_on)`` of the jobs of ``state`` that finished after ``since_ms``.

        The completed and failed sets are scored by finish time, so reading newest first can stop at the first
        job older than the window.
        """
        out: list[tuple[bool, int | None, int | None]] = []
        page = 200
        start = 0
        while start < MAX_FINISHED_SCAN:
            jobs = queue.get_jobs(state, start, start + page - 1)
            for job in jobs:
                if job.finished_on is not None and job.finished_on <= since_ms:
                    return out
                if source is None or job.dead_letter_source == source:
                    out.append((state == "completed", job.processed_on, job.finished_on))
            if len(jobs) < page:
                break
            start += page
        return out

    def _snapshot(self, name: str) -> QueueSnapshot:
        q = self._queue_obj(name)
        now = self.clock.now_ms()
        since = now - 60_000
        counts = q.get_job_counts()
        finished = self._recent_finished(q, "completed", since) + self._recent_finished(q, "failed", since)
        dlq_name = self.dead_letter_names().get(name)
        if dlq_name is not None:
            # A job that failed for good and moved to the DLQ still failed in this queue.
            finished += self._recent_finished(self._queue_obj(dlq_name), "failed", since, source=name)
        return snapshot_from_jobs(now, counts, q.is_paused(), finished)

    def health_of(self, name: str) -> dict[str, Any]:
        """The seed's health record of one queue: status, alerts, metrics and performance."""
        self.queue(name)
        report = assess(self._snapshot(name))
        s = report.snapshot
        return {
            "name": name,
            "status": str(report.status),
            "alerts": list(report.alerts),
            "checked_at": self.clock.now_ms(),
            "metrics": {"waiting": s.waiting, "active": s.active, "completed": s.completed, "failed": s.failed,
                        "delayed": s.delayed, "paused": s.paused},
            "performance": {"avg_processing_ms": round(s.avg_processing_ms, 1),
                            "throughput_per_min": s.throughput_per_min,
                            "error_rate_pct": round(s.error_rate_pct, 2)},
        }

    @staticmethod
    def overall(records: Iterable[dict[str, Any]]) -> str:
        """Critical if any queue is critical, else warning if any warns, else healthy (the seed's rule)."""
        statuses = {r["status"] for r in records}
        for level in (HealthStatus.CRITICAL, HealthStatus.WARNING):
            if str(level) in statuses:
                return str(level)
        return str(HealthStatus.HEALTHY)

    def health(self) -> dict[str, Any]:
        records = [self.health_of(n) for n in self.queue_names()]
        return {"time_ms": self.clock.now_ms(), "overall": self.overall(records), "queues": records}

    def record_health(self) -> list[dict[str, Any]]:
        """Run one health check of every queue and append it to the history (the 30-second task calls this)."""
        records = []
        for name in self.queue_names():
            record = self.health_of(name)
            with self._lock:
                self._history.setdefault(name, deque(maxlen=self.history_size)).append(record)
            records.append(record)
        return records

    def history(self, name: str, limit: int = 50) -> dict[str, Any]:
        """The last ``limit`` health checks of a queue, oldest first, with the seed's summary of the last 10."""
        self.queue(name)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise DashboardError(400, f"limit: must be an integer >= 1, got {limit!r}")
        with self._lock:
            items = list(self._history.get(name, ()))[-limit:]
        return {"queue": name, "history": items, "summary": self._summarize(items)}

    @staticmethod
    def _summarize(history: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Average throughput and error rate of the last 10 checks, and the throughput trend.

        The trend compares the first and the last of those checks: more than 10 % up is "improving", more than
        10 % down is "degrading". (From zero, any throughput counts as improving.)
        """
        if not history:
            return None
        recent = history[-10:]
        throughputs = [h["performance"]["throughput_per_min"] for h in recent]
        errors = [h["performance"]["error_rate_pct"] for h in recent]
        first, last = throughputs[0], throughputs[-1]
        if first == 0:
            trend = "improving" if last > 0 else "stable"
        else:
            change = (last - first) / first
            trend = "improving" if change > 0.1 else "degrading" if change < -0.1 else "stable"
        return {"checks": len(recent), "avg_throughput_per_min": round(sum(throughputs) / len(recent)),
                "avg_error_rate_pct": round(sum(errors) / len(recent), 2), "trend": trend}

    # --- stats and sparklines --------------------------------------------------------------------------------

    def stats_of(self, name: str) -> dict[str, Any]:
        q = self.queue(name)
        counts = q.get_job_counts()
        dlq_name = self.dead_letter_names().get(name)
        dead = self._queue_obj(dlq_name).get_job_counts("failed")["failed"] if dlq_name else 0
        return {
            "waiting": counts["waiting"], "active": counts["active"], "completed": counts["completed"],
            "failed": counts["failed"], "delayed": counts["delayed"], "prioritized": counts["prioritized"],
            "paused": counts["paused"], "waiting_children": counts["waiting-children"], "dlq": dead,
            "is_paused": q.is_paused(), "dead_letter_queue": dlq_name,
        }

    STAT_FIELDS = ("waiting", "active", "completed", "failed", "delayed", "prioritized", "paused",
                   "waiting_children", "dlq")

    def stats(self) -> dict[str, Any]:
        """Counts per queue (``paused`` = jobs held because the queue is paused) and their totals."""
        per_queue = {n: self.stats_of(n) for n in self.queue_names()}
        totals = {f: sum(s[f] for s in per_queue.values()) for f in self.STAT_FIELDS}
        return {"time_ms": self.clock.now_ms(), "queues": per_queue, "totals": totals}

    def record_series(self) -> None:
        """Take one sparkline sample of every queue: depth from the counts, throughput from the events stream."""
        for name in self.queue_names():
            q = self._queue_obj(name)
            now = self.clock.now_ms()
            counts = q.get_job_counts()
            with self._lock:
                last_id = self._last_event.get(name)
                last_ms = self._last_sample_ms.get(name)
            completed = failed = 0
            if last_id is None:
                new_last = self.backend.last_event_id(name)
            else:
                new_last = last_id
                for event_id, fields in self.backend.read_events(name, last_id, None):
                    new_last = event_id
                    if fields.get("event") == "completed":
                        completed += 1
                    elif fields.get("event") == "failed":
                        failed += 1
            with self._lock:
                self._last_event[name] = new_last
                self._last_sample_ms[name] = now
                if last_ms is None:  # the first call only sets the starting point
                    continue
                series = self._series.setdefault(name, deque(maxlen=self.series_size))
                # average over this interval and the earlier ones that start inside the trailing window
                window_start, done = last_ms, completed
                for prev in reversed(series):
                    prev_start = prev.time_ms - prev.interval_ms
                    if now - prev_start > THROUGHPUT_WINDOW_MS:
                        break
                    window_start, done = prev_start, done + prev.completed
                series.append(SeriesSample(
                    time_ms=now, interval_ms=now - last_ms,
                    depth=counts["waiting"] + counts["paused"] + counts["prioritized"] + counts["delayed"],
                    active=counts["active"], completed=completed, failed=failed,
                    throughput_per_min=round(done * 60_000 / max(now - window_start, 1), 1)))

    def series(self) -> dict[str, Any]:
        names = self.queue_names()
        with self._lock:
            return {"time_ms": self.clock.now_ms(),
                    "queues": {n: [asdict(s) for s in self._series.get(n, ())] for n in names}}

    # --- jobs ------------------------------------------------------------------------------------------------

    def _get_job(self, queue: Queue, job_id: str) -> Job:
        _check_job_id(job_id)
        job = None
        if job_id not in RESERVED_IDS:
            try:
                job = queue.get_job(job_id)
            except redis.ResponseError:  # a key of another type (not a job hash)
                job = None
        if job is None:
            raise DashboardError(404, f"job {job_id!r} not found in queue {queue.name!r}")
        return job

    def find_job(self, job_id: str) -> dict[str, Any]:
        """Every watched queue (and DLQ) that has a job with this id."""
        _check_job_id(job_id)
        matches = []
        dlqs = self.dead_letter_names()
        for name in self.queue_names():
            for qname, kind in ((name, "queue"), (dlqs.get(name), "dead-letter queue")):
                if qname is None:
                    continue
                try:
                    job = self._get_job(self._queue_obj(qname), job_id)
                except DashboardError:
                    continue
                matches.append({"queue": qname, "kind": kind, "name": job.name,
                                "state": str(job.get_state())})
        if not matches:
            raise DashboardError(404, f"no watched queue has a job with id {job_id!r}")
        return {"job_id": job_id, "matches": matches}

    def job_details(self, queue_name: str, job_id: str) -> dict[str, Any]:
        """The job's status (state, progress, attempts, times, result, error, logs) and its timeline.

        The timeline lists what the queue's events stream recorded about the job, oldest first, each with a
        sentence. For a dead job it joins the events of the source queue and of the DLQ. When the (capped)
        stream no longer holds the job's events, the timeline falls back to the seed's three milestones
        built from the job's timestamps.
        """
        queue, source = self._any_queue(queue_name)
        job = self._get_job(queue, job_id)
        status = job.status()
        events = status.pop("timeline")
        if source is not None or job.dead_letter_source:
            src = job.dead_letter_source or source
            if src:
                events = self._queue_obj(src).job_timeline(job.id) + events
                events.sort(key=lambda e: e["time_ms"])
        timeline = [{"time_ms": e["time_ms"], "event": e["event"], "details": _describe_event(e),
                     "fields": {k: v for k, v in e.items() if k not in ("time_ms", "event")}} for e in events]
        if not timeline:
            timeline = self._milestones(job)
        status["data"] = job.data
        status["processed_by"] = job.processed_by
        return {"queue": queue.name, "dead_letter_source": source, "job": status, "timeline": timeline}

    @staticmethod
    def _milestones(job: Job) -> list[dict[str, Any]]:
        out = [{"time_ms": job.timestamp, "event": "created", "details": "Job added to queue", "fields": {}}]
        if job.processed_on:
            out.append({"time_ms": job.processed_on, "event": "processing", "details": "Job picked up by worker",
                        "fields": {}})
        if job.finished_on:
            failed = job.failed_reason is not None
            out.append({"time_ms": job.finished_on, "event": "failed" if failed else "completed",
                        "details": job.failed_reason if failed else "Job completed successfully", "fields": {}})
        return out

    def cancel(self, queue_name: str, job_id: str) -> dict[str, Any]:
        """Cancel (remove) a job that has not started. Refused when it is active or already finished."""
        q = self.queue(queue_name)
        job = self._get_job(q, job_id)
        state = str(job.get_state())
        if state == "active":
            raise DashboardError(409, f"Cannot cancel active job {job_id}: a worker is running it; wait until it "
                                      "finishes, or let it fail")
        if state in ("completed", "failed"):
            raise DashboardError(409, f"Cannot cancel {state} job {job_id}: it has already finished")
        try:
            removed = q.remove(job_id)
        except LockError:
            raise DashboardError(409, f"Cannot cancel active job {job_id}: a worker just took it") from None
        except JobStateError as exc:
            raise DashboardError(409, f"Cannot cancel job {job_id}: {exc}") from None
        if not removed:
            raise DashboardError(404, f"job {job_id!r} not found in queue {queue_name!r}")
        return {"success": True, "message": f"Job {job_id} cancelled (removed from queue {queue_name}; it was "
                                            f"{state})"}

    def retry(self, queue_name: str, job_id: str) -> dict[str, Any]:
        """Send a failed job back to the queue to run again."""
        sources = {d: q for q, d in self.dead_letter_names().items()}
        if queue_name in sources:
            raise DashboardError(409, f"job {job_id} is in the dead-letter queue {queue_name!r}; redrive it to "
                                      f"{sources[queue_name]!r} instead of retrying it")
        q = self.queue(queue_name)
        job = self._get_job(q, job_id)
        state = str(job.get_state())
        if state != "failed":
            raise DashboardError(409, f"Cannot retry job {job_id}: it is {state}; only failed jobs can be retried")
        try:
            job.retry("failed")
        except ScriptError as exc:
            raise DashboardError(409, f"Cannot retry job {job_id}: {exc}") from None
        return {"success": True, "message": f"Job {job_id} queued for retry",
                "state": str(q.get_job_state(job_id))}

    def failed_jobs(self, queue_name: str | None = None, limit: int = 20) -> dict[str, Any]:
        """The most recently failed jobs of one queue, or of every queue (each tagged with its queue)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise DashboardError(400, f"limit: must be an integer from 1 to 1000, got {limit!r}")
        names = [self.queue(queue_name).name] if queue_name else self.queue_names()
        jobs: list[dict[str, Any]] = []
        total = 0
        for name in names:
            q = self._queue_obj(name)
            total += q.get_job_counts("failed")["failed"]
            jobs += [{"queue": name, **_job_summary(j)} for j in q.get_failed(0, limit - 1)]
        jobs.sort(key=lambda j: j["finished_on"] or 0, reverse=True)
        return {"failed_jobs": jobs[:limit], "total": total}

    def dlq_jobs(self, queue_name: str, limit: int = 50) -> dict[str, Any]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise DashboardError(400, f"limit: must be an integer from 1 to 1000, got {limit!r}")
        dlq = self.dlq(queue_name)
        return {"queue": queue_name, "dlq": dlq.name, "total": dlq.count(),
                "jobs": [_job_summary(j) for j in dlq.list(0, limit - 1)]}

    def redrive(self, queue_name: str, job_id: str) -> dict[str, Any]:
        """Send one dead job back to its source queue with fresh attempts."""
        dlq = self.dlq(queue_name)
        self._get_job(dlq.queue, job_id)
        try:
            source = dlq.redrive(job_id)
        except JobNotFoundError:
            raise DashboardError(404, f"job {job_id!r} not found in dead-letter queue {dlq.name!r}") from None
        except ScriptError as exc:
            raise DashboardError(409, str(exc)) from None
        return {"success": True, "message": f"Job {job_id} redriven from {dlq.name} to {source}", "queue": source}

    def redrive_all(self, queue_name: str) -> dict[str, Any]:
        dlq = self.dlq(queue_name)
        moved = 0
        errors = []
        for job in dlq.list():
            try:
                dlq.redrive(job.id)
                moved += 1
            except ScriptError as exc:
                errors.append(f"{job.id}: {exc}")
        message = f"{moved} job(s) redriven from {dlq.name} to {queue_name}"
        if errors:
            message += f"; {len(errors)} refused ({'; '.join(errors[:3])})"
        return {"success": not errors, "message": message, "redriven": moved}

    def purge(self, queue_name: str) -> dict[str, Any]:
        """Delete every dead job of a queue's DLQ."""
        dlq = self.dlq(queue_name)
        n = dlq.purge()
        return {"success": True, "message": f"{n} dead job(s) deleted from {dlq.name}", "purged": n}

    def pause(self, queue_name: str) -> dict[str, Any]:
        q = self.queue(queue_name)
        q.pause()
        return {"success": True, "message": f"Queue {queue_name} paused: workers take no new jobs",
                "is_paused": q.is_paused()}

    def resume(self, queue_name: str) -> dict[str, Any]:
        q = self.queue(queue_name)
        q.resume()
        return {"success": True, "message": f"Queue {queue_name} resumed", "is_paused": q.is_paused()}

