"""The :class:`Simulation` object: one run of a queue set-up under load, in virtual time.

It binds together

* a SimPy environment (``sim.env``) — the event scheduler; one time unit is one millisecond;
* the clock the engine reads (``sim.clock``), which *is* SimPy's time;
* seeded random streams (``sim.streams``), one per purpose;
* a backend holding the queues: the embedded fakeredis server (default) or the pure-Python memory backend
  (much faster). A real Redis is refused: its key expiries (locks, limiter windows) run in wall time;
* the recorder (``sim.recorder``), which turns the queues' event streams into tables.

Typical use::

    sim = Simulation(seed=1, backend="memory")
    sim.queue("emails", dead_letter_queue="emails-dlq")
    sim.add_workers("emails", count=4)
    sim.add_arrivals("emails", JobType("welcome", Exponential(1000), options={"attempts": 3}), Poisson(3.2))
    sim.crash_worker("emails-w1", at_ms=600_000)
    sim.run(until_ms=3_600_000)
    sim.event_log(), sim.jobs(), sim.summary(warmup_ms=300_000)
"""

from __future__ import annotations

import gc
from collections.abc import Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import simpy

import queuesim
from queuesim.connection import Connection
from queuesim.errors import OptionError
from queuesim.queue import Queue
from queuesim.sim.arrivals import ArrivalProcess
from queuesim.sim.clock import SimClock
from queuesim.sim.execution import DependencyCalls, FirstAttempt
from queuesim.sim.jobs import JobType, Saga
from queuesim.sim.recorder import Recorder
from queuesim.sim.streams import Draws, Streams
from queuesim.sim.workers import Dispatch, SimWorker

__all__ = ["BACKENDS", "SimQueue", "Simulation"]

#: The backends a simulation can run on.
BACKENDS = ("fakeredis", "memory")

#: The garbage collector's first threshold while a simulation runs (CPython's default: 700).
#:
#: Python frees most objects as soon as nothing refers to them; its garbage collector only looks for groups of
#: objects that refer to each other in a circle. It runs after every 700 new objects (more exactly: 700 more
#: allocations than deallocations of objects that can hold references), and every object it finds alive is
#: looked at again in later, rarer and larger passes. A simulation keeps many objects alive for a while — a
#: job's hash, its snapshot, its SimPy events live as long as the job is in the system — so with the default the
#: collector looks at each of them several times before they die, and took 8 % of a 100,000-job run (streaming
#: statistics; 12 % with the event log). Ten thousand lets most of them die before the collector ever sees them
#: (2 % and 9 %), at the price of at most a few megabytes of circular garbage waiting a little longer. The
#: previous thresholds come back when the run returns; a collector switched off, or set higher already, is left
#: as it is.
GC_FIRST_THRESHOLD = 10_000


@contextmanager
def _roomy_gc() -> Iterator[None]:
    """Raise the garbage collector's first threshold to :data:`GC_FIRST_THRESHOLD` for the duration."""
    first, *rest = gc.get_threshold()
    if not gc.isenabled() or first == 0 or first >= GC_FIRST_THRESHOLD:
        yield
        return
    gc.set_threshold(GC_FIRST_THRESHOLD, *rest)
    try:
        yield
    finally:
        if gc.get_threshold()[0] == GC_FIRST_THRESHOLD:  # (unless the code run changed it meanwhile)
            gc.set_threshold(first, *rest)


#: Events-stream length of a simulated queue (BullMQ's default is 10,000): the recorder reads often, this is
#: the safety margin.
SIM_MAX_LEN_EVENTS = 50_000


def connect_backend(backend: str, clock: SimClock) -> Connection:
    """A connection on ``backend`` (``"fakeredis"`` or ``"memory"``) whose time is ``clock``."""
    if not isinstance(backend, str):
        raise OptionError("backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
    kind = backend.lower().removesuffix("://")
    if kind in ("fakeredis", "fake"):
        return queuesim.connect(clock=clock)
    if kind == "memory":
        return queuesim.connect("memory://", clock=clock)
    if kind.split(":", 1)[0] in ("redis", "rediss", "unix"):
        raise OptionError("backend", "a real Redis expires locks, leases and limiter windows in wall time, so it "
                                     "cannot follow a simulation's virtual clock; use 'fakeredis' or 'memory'")
    raise OptionError("backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")


class SimQueue:
    """A queue of the simulation: the engine :class:`~queuesim.Queue`, its job types and its wake-up dispatch."""

    def __init__(self, sim: Simulation, queue: Queue) -> None:
        self.sim = sim
        self.queue = queue
        self.name = queue.name
        self.dispatch = Dispatch(sim.env, queue.backend, queue.name)
        #: job types by job name
        self.specs: dict[str, JobType | Saga] = {}
        #: first-attempt draws of jobs not started yet, by job id
        self.first_attempts: dict[str, FirstAttempt] = {}
        #: jobs added by the simulation's producers
        self.arrivals = 0
        self._pads: dict[int, Any] = {}
        #: the random streams of each job type (the same generators Streams hands out, looked up once)
        self._service_rngs: dict[str, np.random.Generator] = {}
        self._failure_rngs: dict[str, np.random.Generator] = {}
        #: a job type's (service, failure) streams drawn a block at a time: only its attempts draw from them
        self._draws: dict[str, tuple[Draws, Draws]] = {}
        #: per job name: the add validated once by the queue, and the queue defaults it was validated with
        self._prepared: dict[str, tuple[tuple[str, str, Any], Any]] = {}

    def register(self, spec: JobType | Saga) -> None:
        known = self.specs.get(spec.name)
        if known is not None and known != spec:
            raise OptionError("job", f"queue {self.name!r} already has a different job type named {spec.name!r}")
        self.specs[spec.name] = spec

    def service_rng(self, name: str) -> np.random.Generator:
        rng = self._service_rngs.get(name)
        if rng is None:
            rng = self._service_rngs[name] = self.sim.streams.service(f"{self.name}/{name}")
        return rng

    def failure_rng(self, name: str) -> np.random.Generator:
        rng = self._failure_rngs.get(name)
        if rng is None:
            rng = self._failure_rngs[name] = self.sim.streams.failures(f"{self.name}/{name}")
        return rng

    def draws(self, spec: JobType) -> tuple[Draws, Draws]:
        """The service-time and failure draws of a job type (its first attempts and its retries alike)."""
        pair = self._draws.get(spec.name)
        if pair is None:
            pair = self._draws[spec.name] = (Draws.of_law(spec.service, self.service_rng(spec.name)),
                                             Draws.uniform(self.failure_rng(spec.name)))
        return pair

    def data(self, spec: JobType | Saga) -> Any:
        if not spec.data_bytes:
            return None
        pad = self._pads.get(spec.data_bytes)
        if pad is None:
            pad = self._pads[spec.data_bytes] = {"pad": "x" * spec.data_bytes}
        return pad

    def add(self, spec: JobType | Saga, count: int = 1) -> None:
        """Add ``count`` jobs of ``spec`` now (one call), draw their first attempts and wake idle workers."""
        sim = self.sim
        queue = self.queue
        if count == 1:
            prepared = self._prepared.get(spec.name)
            if prepared is None or prepared[1] is not queue.default_job_options:
                ready = queue.prepare_add(spec.name, self.data(spec), **spec.options)
                prepared = self._prepared[spec.name] = (ready, queue.default_job_options)
            ids = [queue.add_prepared(prepared[0])]
            delayed = prepared[0][2].delay > 0
        else:
            jobs = queue.add_bulk([(spec.name, self.data(spec), spec.options)] * count)
            ids = [job.id for job in jobs]
            delayed = any(job.opts.delay for job in jobs)  # its own delay or one from the queue's defaults
        self.arrivals += count
        priority = spec.effective_priority
        if priority:
            for job_id in ids:
                sim.recorder.note_added(self.name, job_id, priority)
        if isinstance(spec, JobType):
            service, failure = self.draws(spec)
            fails = spec.failures is not None
            for job_id in ids:
                ms = service()
                u = failure() if fails else None
                self.first_attempts[job_id] = FirstAttempt(int(ms + 0.5) if ms > 0 else 0, u)
        sim._after_call()
        if delayed:
            self.dispatch.delayed_added()
        else:
            self.dispatch.notify(count, "added")


class Simulation:
    """One simulation run.

    Args:
        seed: an integer (or a ``numpy.random.SeedSequence``); the same seed gives the same run, bit for bit.
        backend: ``"fakeredis"`` (default; the Redis backend and its Lua scripts on an embedded server) or
            ``"memory"`` (the same engine in plain Python structures, much faster).
        pull_every: the recorder reads the events streams after this many engine calls.
        record: ``"log"`` (default: the event log and the per-job table, for charts and analysis) or ``"stats"``
            (streaming statistics only: memory stays flat however many jobs run; :meth:`summary` works, the
            tables do not). See :mod:`queuesim.sim.recorder`.
        stats_warmup_ms: with ``record="stats"``, the warm-up left out of the summary (it must be known
            before the run, since nothing is kept to recompute it).
    """

    def __init__(self, seed: int | np.random.SeedSequence = 0, backend: str = "fakeredis", *,
                 pull_every: int = 64, record: str = "log", stats_warmup_ms: int = 0) -> None:
        if isinstance(pull_every, bool) or not isinstance(pull_every, int) or pull_every < 1:
            raise OptionError("pull_every", f"must be an integer >= 1, got {pull_every!r}")
        self.env = simpy.Environment()
        self.clock = SimClock(self.env)
        self.streams = Streams(seed)
        self.backend_name = backend
        self.connection = connect_backend(backend, self.clock)
        self.recorder = Recorder(self.connection, record, stats_warmup_ms)
        self.queues: dict[str, SimQueue] = {}
        self.workers: dict[str, SimWorker] = {}
        self.dependency_calls = DependencyCalls()
        #: the faults timeline as it happened: (time_ms, action, target, detail)
        self.fault_log: list[tuple[int, str, str, str | None]] = []
        self.health: Any = None
        self._pull_every = pull_every
        self._calls = 0
        self._worker_numbers: dict[str, int] = {}
        #: ids of every worker started or scheduled to start
        self._announced: set[str] = set()
        self._arrival_sources: dict[str, int] = {}
        self._arrivals_open = True

    def __repr__(self) -> str:
        return (f"Simulation(backend={self.backend_name!r}, now_ms={self.clock.now_ms()}, "
                f"queues={list(self.queues)}, workers={len(self.workers)})")

    @property
    def now_ms(self) -> int:
        return self.clock.now_ms()

    def _after_call(self) -> None:
        self._calls += 1
        if self._calls % self._pull_every == 0:
            self.recorder.pull()

    # --- set-up ------------------------------------------------------------------------------------------

    def queue(self, name: str, *, dead_letter_queue: str | None = None,
              default_job_options: Mapping[str, Any] | None = None,
              max_len_events: int = SIM_MAX_LEN_EVENTS) -> Queue:
        """Create (or return) a simulated queue; its events are recorded."""
        if name in self.queues:
            return self.queues[name].queue
        q = Queue(name, self.connection, default_job_options=default_job_options, max_len_events=max_len_events,
                  dead_letter_queue=dead_letter_queue)
        self.queues[name] = SimQueue(self, q)
        self.recorder.watch(name)
        return q

    def _squeue(self, queue: str | Queue) -> SimQueue:
        name = queue.name if isinstance(queue, Queue) else queue
        sq = self.queues.get(name)
        if sq is None:
            raise OptionError("queue", f"unknown queue {name!r}; create it with sim.queue({name!r}) first "
                                       f"(known: {sorted(self.queues)})")
        return sq

    def _worker(self, worker_id: str) -> SimWorker:
        w = self.workers.get(worker_id)
        if w is None:
            raise OptionError("worker_id", f"unknown worker {worker_id!r}; known: {sorted(self.workers)}")
        return w

    def _known(self, worker_id: str) -> None:
        if worker_id not in self._announced:
            raise OptionError("worker_id", f"unknown worker {worker_id!r}; known: {sorted(self._announced)}")

    def _at(self, at_ms: int, action: str, target: str, fn: Any) -> None:
        if isinstance(at_ms, bool) or not isinstance(at_ms, int) or at_ms < 0:
            raise OptionError("at_ms", f"must be an integer number of ms >= 0, got {at_ms!r}")

        def run() -> Generator[simpy.Event, Any, None]:
            if at_ms > self.now_ms:
                yield self.env.timeout(at_ms - self.now_ms)
            detail = fn()
            self.fault_log.append((self.now_ms, action, target, detail))

        self.env.process(run())

    def add_workers(self, queue: str | Queue, count: int = 1, *, at_ms: int = 0, concurrency: int = 1,
                    **worker_options: Any) -> list[str]:
        """Start ``count`` workers on ``queue`` at ``at_ms`` (now by default); returns their ids
        (``<queue>-w1``, ``<queue>-w2``…). ``worker_options`` are BullMQ worker options in snake_case
        (``lock_duration``, ``stalled_interval``, ``max_stalled_count``, ``limiter``, ``name``…)."""
        sq = self._squeue(queue)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise OptionError("count", f"must be an integer >= 1, got {count!r}")
        queuesim.WorkerOptions.build(concurrency=concurrency, **worker_options)  # validate before scheduling
        first = self._worker_numbers.get(sq.name, 0) + 1
        self._worker_numbers[sq.name] = first + count - 1
        ids = [f"{sq.name}-w{n}" for n in range(first, first + count)]
        self._announced.update(ids)

        def start() -> str:
            for wid in ids:
                self.workers[wid] = SimWorker(self, sq, wid, concurrency, dict(worker_options))
            return f"concurrency={concurrency}"

        if at_ms <= self.now_ms:
            start()
            if at_ms > 0 or self.now_ms > 0:
                self.fault_log.append((self.now_ms, "add-workers", ",".join(ids), f"concurrency={concurrency}"))
        else:
            self._at(at_ms, "add-workers", ",".join(ids), start)
        return ids

    def add_arrivals(self, queue: str | Queue, job: JobType | Saga, process: ArrivalProcess, *,
                     start_ms: int = 0, until_ms: int | None = None, limit: int | None = None) -> None:
        """Add jobs of type ``job`` to ``queue`` at the epochs of ``process``, from ``start_ms`` until
        ``until_ms`` (exclusive) or ``limit`` jobs."""
        sq = self._squeue(queue)
        if not isinstance(job, JobType | Saga):
            raise OptionError("job", f"must be a JobType(...) or Saga(...), got {job!r}")
        if not isinstance(process, ArrivalProcess):
            raise OptionError("process", f"must be an arrival process (Poisson, Deterministic, …), got {process!r}")
        for name, value in (("start_ms", start_ms), ("until_ms", until_ms), ("limit", limit)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise OptionError(name, f"must be an integer >= 0, got {value!r}")
        sq.register(job)
        key = f"{sq.name}/{job.name}"
        index = self._arrival_sources.get(key, 0)
        self._arrival_sources[key] = index + 1
        rng = self.streams.arrivals(f"{key}#{index}")
        self.env.process(self._arrive(sq, job, process, rng, start_ms, until_ms, limit))

    def _arrive(self, sq: SimQueue, job: JobType | Saga, process: ArrivalProcess, rng: np.random.Generator,
                start_ms: int, until_ms: int | None, limit: int | None) -> Generator[simpy.Event, Any, None]:
        added = 0
        for t, count in process.epochs(rng, float(start_ms)):
            t_ms = int(t + 0.5)
            if (until_ms is not None and t_ms >= until_ms) or not self._arrivals_open:
                return
            now = self.clock.now_ms()
            if t_ms > now:
                yield self.env.timeout(t_ms - now)
                if not self._arrivals_open:
                    return
            if limit is not None:
                count = min(count, limit - added)
            sq.add(job, count)
            added += count
            if limit is not None and added >= limit:
                return

    def add_backlog(self, queue: str | Queue, job: JobType | Saga, count: int, *, at_ms: int = 0) -> None:
        """Start from a backlog: ``count`` jobs of type ``job`` added at once at ``at_ms``."""
        sq = self._squeue(queue)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise OptionError("count", f"must be an integer >= 1, got {count!r}")
        sq.register(job)
        if at_ms <= self.now_ms:
            sq.add(job, count)
        else:
            self._at(at_ms, "backlog", sq.name, lambda: sq.add(job, count) or f"{count} x {job.name}")

    # --- faults timeline ---------------------------------------------------------------------------------

    def crash_worker(self, worker_id: str, *, at_ms: int) -> None:
        """At ``at_ms`` the worker dies; its jobs come back through another worker's stalled check."""
        self._known(worker_id)

        def crash() -> str:
            w = self._worker(worker_id)
            dropped = w.crash()
            self.recorder.note_incident(self.now_ms, worker_id, w.squeue.name, "crash", None, ",".join(dropped))
            return f"held {','.join(dropped) or 'nothing'}"

        self._at(at_ms, "crash-worker", worker_id, crash)

    def freeze_worker(self, worker_id: str, *, at_ms: int, duration_ms: int) -> None:
        """From ``at_ms`` the worker's event loop is blocked for ``duration_ms`` (no lock renewal, no calls)."""
        self._known(worker_id)
        if isinstance(duration_ms, bool) or not isinstance(duration_ms, int) or duration_ms < 1:
            raise OptionError("duration_ms", f"must be an integer >= 1, got {duration_ms!r}")

        def freeze() -> str:
            w = self._worker(worker_id)
            w.freeze(duration_ms)
            self.recorder.note_incident(self.now_ms, worker_id, w.squeue.name, "freeze", None, f"{duration_ms} ms")
            return f"{duration_ms} ms"

        self._at(at_ms, "freeze-worker", worker_id, freeze)

    def remove_workers(self, worker_ids: str | Iterable[str], *, at_ms: int, graceful: bool = True) -> None:
        """At ``at_ms`` stop these workers: gracefully (finish running jobs) or by force (like a crash)."""
        ids = [worker_ids] if isinstance(worker_ids, str) else list(worker_ids)
        for wid in ids:
            self._known(wid)

        def remove() -> str:
            for wid in ids:
                w = self._worker(wid)
                if graceful:
                    w.close()
                else:
                    w.crash()
            return "graceful" if graceful else "forced"

        self._at(at_ms, "remove-workers", ",".join(ids), remove)

    def pause_queue(self, queue: str | Queue, *, at_ms: int) -> None:
        """At ``at_ms`` pause the queue (running jobs finish; nothing new starts)."""
        sq = self._squeue(queue)
        self._at(at_ms, "pause", sq.name, lambda: sq.queue.pause())

    def resume_queue(self, queue: str | Queue, *, at_ms: int) -> None:
        """At ``at_ms`` resume the queue and wake its idle workers."""
        sq = self._squeue(queue)

        def resume() -> None:
            sq.queue.resume()
            self._after_call()
            sq.dispatch.notify_all("resume")

        self._at(at_ms, "resume", sq.name, resume)

    def monitor_health(self, queues: Iterable[str] | None = None, **rules: Any) -> Any:
        """Evaluate the health rules every 30 simulated seconds (see :mod:`queuesim.sim.health`)."""
        from queuesim.sim.health import HealthMonitor, HealthRules

        names = list(queues) if queues is not None else list(self.queues)
        self.health = HealthMonitor(self, [self._squeue(n) for n in names], HealthRules(**rules))
        return self.health

    # --- running -----------------------------------------------------------------------------------------

    def run(self, until_ms: int, *, drain: bool = False, drain_limit_ms: int | None = None,
            drain_step_ms: int = 1000) -> Simulation:
        """Run until ``until_ms``. With ``drain``, then stop the arrivals and keep going until every queue is
        empty (no waiting, delayed or active job), or ``drain_limit_ms`` more ms have passed."""
        if isinstance(until_ms, bool) or not isinstance(until_ms, int) or until_ms < self.now_ms:
            raise OptionError("until_ms", f"must be an integer >= now ({self.now_ms}), got {until_ms!r}")
        with _roomy_gc():
            if until_ms > self.now_ms:  # (SimPy refuses to run until the current time: nothing to do then)
                self.env.run(until=until_ms)
            if drain:
                self._arrivals_open = False
                limit = until_ms + (drain_limit_ms if drain_limit_ms is not None else max(until_ms, 60_000))
                while not self._empty() and self.now_ms < limit:
                    self.env.run(until=min(self.now_ms + drain_step_ms, limit))
        self.recorder.pull()
        self._check_complete()
        return self

    def _empty(self) -> bool:
        for sq in self.queues.values():
            counts = sq.queue.get_job_counts("waiting", "paused", "prioritized", "delayed", "active")
            if any(counts.values()):
                return False
        return True

    def _check_complete(self) -> None:
        for name, sq in self.queues.items():
            seen = self.recorder.added_events[name]
            if seen < sq.arrivals:
                raise RuntimeError(f"queue {name!r}: {sq.arrivals} jobs were added but the recorder read only "
                                   f"{seen} adds: events were trimmed before they were read; create the queue "
                                   "with a larger max_len_events")

    # --- results -----------------------------------------------------------------------------------------

    @property
    def busy_ms(self) -> int:
        """Total time the workers spent on attempts that ran to their end (simulation side)."""
        return sum(w.busy_ms for w in self.workers.values())

    @property
    def arrivals(self) -> dict[str, int]:
        """Jobs added by the simulation's producers, per queue."""
        return {name: sq.arrivals for name, sq in self.queues.items()}

    def event_log(self) -> pd.DataFrame:
        """One row per state change of a job (see :mod:`queuesim.sim.recorder`)."""
        self.recorder.pull()
        return self.recorder.event_log()

    def jobs(self) -> pd.DataFrame:
        """One row per job: times, attempts, stalls, final state, wait, service and sojourn."""
        self.recorder.pull()
        return self.recorder.jobs()

    def faults(self) -> pd.DataFrame:
        """The faults timeline as it happened."""
        return pd.DataFrame.from_records(self.fault_log, columns=["time_ms", "action", "target", "detail"])

    def capacity(self) -> int:
        """Total concurrency of the running workers now."""
        return sum(w.engine.concurrency for w in self.workers.values() if w.state == "running")

    def summary(self, warmup_ms: int = 0, end_ms: int | None = None, queue: str | None = None) -> dict[str, float]:
        """The standard metrics of the window [warmup_ms, end_ms) (see :func:`queuesim.analysis.metrics.summary`)."""
        from queuesim.analysis.metrics import summary

        if self.recorder.streaming:
            self.recorder.pull()
            warmup = self.recorder._running.warmup
            if warmup_ms != warmup:
                raise OptionError("warmup_ms", f"this simulation records streaming statistics from "
                                               f"stats_warmup_ms={warmup}; summarise with warmup_ms={warmup}")
            if end_ms is not None and end_ms != self.now_ms:
                raise OptionError("end_ms", f"with streaming statistics the window ends now ({self.now_ms}); "
                                            "leave end_ms out")
            return self.recorder.stats_summary(self.now_ms, self.capacity(), queue)
        log = self.event_log()
        jobs = self.jobs()
        if queue is not None:
            log = log[log["queue"] == queue]
            jobs = jobs[jobs["queue"] == queue]
        return summary(log, jobs, warmup_ms, self.now_ms if end_ms is None else end_ms, capacity=self.capacity())
