"""Simulated workers: SimPy processes that drive the real engine through the worker step API.

A :class:`SimWorker` wraps one :class:`queuesim.Worker` (one worker process in production, with its own id and
lock tokens) and runs, as SimPy processes:

* one **slot** per unit of concurrency: take a job (``fetch``), work on it for its simulated time, report the
  outcome (``complete`` / ``fail``), which also takes the next job in the same call, as BullMQ's worker does;
* a **lock renewer**: BullMQ's timer, every ``lock_renew_time / 2`` (``lock_duration / 4`` by default), which
  renews the locks taken or last renewed more than ``lock_renew_time / 2`` ago (``renew_due_locks()``);
* a **stalled checker**: ``check_stalled()`` at start and then every ``stalled_interval + 1`` ms (a lease set
  with PX at t still exists at exactly t + interval; a real timer fires *at least* after the interval).

An idle slot does not poll. It waits on an event of its queue's :class:`Dispatch`, the simulation's version of
BullMQ's marker: a producer's add wakes one idle slot; a timer wakes one when the next delayed job (a backoff)
becomes due; a resume or a stall recovery wakes several. Between those, an idle worker costs nothing.

Faults act on a worker: :meth:`SimWorker.crash` (its jobs keep their locks until they expire, then the stalled
check of another worker brings them back), :meth:`SimWorker.freeze` (its event loop is blocked: no lock
renewal, no finishing call, until it thaws; past ``lock_duration`` its jobs are taken away) and
:meth:`SimWorker.close` (graceful: finish the running jobs, take no new ones).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from queuesim.backends.base import Backend
from queuesim.errors import OptionError, ScriptError
from queuesim.job import Job
from queuesim.sim.execution import AttemptContext, Outcome, run_attempt
from queuesim.sim.jobs import JobType
from queuesim.worker import Worker

if TYPE_CHECKING:
    from queuesim.sim.environment import SimQueue, Simulation

__all__ = ["Dispatch", "SimWorker"]

#: wake-up reasons after which a slot that got a job wakes the next idle slot (several jobs may be ready)
_CASCADE = frozenset({"due", "resume", "stalled", "freed", "requeued"})
#: the outcome of every successful plain attempt (never changed after creation)
_SUCCESS = Outcome()


class Dispatch:
    """Wakes the idle slots of one queue's workers (the simulation's stand-in for BullMQ's marker).

    Args:
        env: the SimPy environment.
        backend: the engine backend (asked for the next delayed job's due time).
        queue: the queue name.
    """

    def __init__(self, env: simpy.Environment, backend: Backend, queue: str) -> None:
        self.env = env
        self.backend = backend
        self.queue = queue
        self._waiters: deque[tuple[simpy.Event, SimWorker]] = deque()
        self._timer_at: int | None = None
        #: whether delayed jobs may exist (only then is the backend asked for the next due time)
        self.maybe_delayed = False

    def wait(self, worker: SimWorker) -> simpy.Event:
        """An event that succeeds (with the wake-up reason) when this idle slot should try to fetch again."""
        ev = self.env.event()
        self._waiters.append((ev, worker))
        self.arm()
        return ev

    @property
    def idle(self) -> int:
        return len(self._waiters)

    def notify(self, n: int = 1, reason: str = "added") -> None:
        """Wake up to ``n`` idle slots of running workers (slots of a frozen worker are woken too, without
        counting, and act after they thaw; slots of stopped workers are dropped)."""
        while n > 0 and self._waiters:
            ev, worker = self._waiters.popleft()
            if worker.state != "running":
                continue
            if not ev.triggered:
                ev.succeed(reason)
            if not worker.frozen:
                n -= 1

    def notify_all(self, reason: str) -> None:
        self.notify(len(self._waiters), reason)

    def delayed_added(self) -> None:
        """A delayed job (a backoff or a delayed add) was created: make sure an idle slot wakes when it is due."""
        self.maybe_delayed = True
        self.arm()

    def arm(self) -> None:
        """Set the due-time timer, when slots are idle and a delayed job exists."""
        if not self._waiters or not self.maybe_delayed:
            return
        due = self.backend.next_due_ms(self.queue)
        if due is None:
            self.maybe_delayed = False
            return
        if self._timer_at is not None and self._timer_at <= due:
            return
        self._timer_at = due
        timer = self.env.timeout(max(0, due - int(self.env.now)))
        timer.callbacks.append(lambda _ev, due=due: self._fire(due))

    def _fire(self, due: int) -> None:
        if self._timer_at != due:
            return  # superseded by an earlier timer, which already fired
        self._timer_at = None
        self.notify(1, "due")


class SimWorker:
    """One simulated worker process of a queue.

    Args:
        sim: the simulation.
        squeue: the queue it serves.
        worker_id: its id (lock tokens are ``<id>:<n>``).
        concurrency: number of slots (jobs at once).
        options: :class:`~queuesim.options.WorkerOptions` fields.
    """

    def __init__(self, sim: Simulation, squeue: SimQueue, worker_id: str, concurrency: int,
                 options: dict[str, Any]) -> None:
        self.sim = sim
        self.env = sim.env
        self.squeue = squeue
        self.id = worker_id
        self.engine = Worker(squeue.queue, worker_id=worker_id, rng=sim.streams.worker(worker_id),
                             concurrency=concurrency, **options)
        if not sim.recorder.streaming:  # (streaming statistics do not keep which worker ran a job)
            self.engine.on("active", self._on_active)
        self.engine.on("failed", self._on_failed)
        #: ``running``, ``closing`` (graceful stop), ``closed`` or ``crashed``
        self.state = "running"
        self.frozen = False
        self._thaw: simpy.Event | None = None
        #: ms spent working on attempts that ran to their end (crashed work is not counted)
        self.busy_ms = 0
        #: the jobs its slots hold, by id
        self.held: dict[str, Job] = {}
        # idle slots, in the order they went idle (a dict: deterministic order, unlike a set of objects)
        self._idle: dict[simpy.Process, None] = {}
        self._slots = [self.env.process(self._slot()) for _ in range(concurrency)]
        self._live_slots = concurrency
        self._timers: list[simpy.Process] = []
        opts = self.engine.opts
        if not opts.skip_lock_renewal:
            self._timers.append(self.env.process(self._renewer()))
        if not opts.skip_stalled_check:
            self._timers.append(self.env.process(self._stall_checker()))

    def __repr__(self) -> str:
        return f"SimWorker({self.id!r}, state={self.state!r}, held={len(self.held)})"

    # --- engine hooks ------------------------------------------------------------------------------------

    def _on_active(self, job: Job, _prev: str) -> None:
        self.sim.recorder.note_active(self.squeue.name, job.id, self.id)

    def _on_failed(self, job: Job, error: BaseException, _prev: str) -> None:
        if job.id not in self.held:
            # a job with a deferred failure (stalled too often): the fetch moved it to active and failed it
            # without running it, then took the next job
            rec = self.sim.recorder
            rec.note_active(self.squeue.name, job.id, self.id)
            rec.note_exit(self.squeue.name, job.id, "failed", str(error))

    # --- slots -------------------------------------------------------------------------------------------

    def _gate(self) -> Generator[simpy.Event, Any, None]:
        while self._thaw is not None:
            yield self._thaw

    def _slot(self) -> Generator[simpy.Event, Any, None]:
        job: Job | None = None
        skip_fetch = False
        try:
            while True:
                if job is None:
                    job = yield from self._acquire(skip_fetch)
                    if job is None:
                        break
                job, skip_fetch = yield from self._serve(job)
        except simpy.Interrupt:
            pass
        finally:
            self._idle.pop(self.env.active_process, None)  # type: ignore[arg-type]
            self._slot_done()

    def _slot_done(self) -> None:
        self._live_slots -= 1
        if self._live_slots == 0 and self.state == "closing":
            self._closed()

    def _closed(self) -> None:
        self.state = "closed"
        for timer in self._timers:
            if timer.is_alive and timer is not self.env.active_process:
                timer.interrupt("closed")
        self.squeue.dispatch.notify(1, "freed")  # a global concurrency slot may have been freed

    def _acquire(self, skip_fetch: bool) -> Generator[simpy.Event, Any, Job | None]:
        """Take a job, waiting idle (without polling) until one may be available."""
        reason: str | None = None
        dispatch = self.squeue.dispatch
        me = self.env.active_process
        while True:
            if self._thaw is not None:
                yield from self._gate()
            if self.state != "running":
                return None
            if not skip_fetch:
                job = self.engine.fetch()
                self.sim._after_call()
                if job is not None:
                    self.held[job.id] = job
                    if reason in _CASCADE:
                        dispatch.notify(1, reason)
                    return job
            skip_fetch = False
            until = self.engine.rate_limited_until
            now = int(self.env.now)
            ev = self.env.timeout(until - now) if until > now else dispatch.wait(self)
            self._idle[me] = None  # type: ignore[index]
            reason = yield ev
            self._idle.pop(me, None)  # type: ignore[arg-type]

    def _serve(self, job: Job) -> Generator[simpy.Event, Any, tuple[Job | None, bool]]:
        """Work on ``job`` and report the outcome; returns the next job (taken in the same call) and whether
        the call already looked for one."""
        sim, squeue = self.sim, self.squeue
        spec = squeue.specs.get(job.name)
        if spec is None:
            raise OptionError("job", f"queue {squeue.name!r} has a job named {job.name!r} but no job type for it; "
                                     f"add jobs through sim.add_arrivals or sim.add_backlog (known: "
                                     f"{sorted(squeue.specs)})")
        now_ms = sim.clock.now_ms
        start = now_ms()
        first = squeue.first_attempts.pop(job.id, None)
        if (first is not None and first.u is None and type(spec) is JobType and spec.dependency is None
                and job.opts.timeout is None):
            # the common case, a plain job's first attempt that cannot fail: just the work
            if first.service_ms:
                yield self.env.timeout(first.service_ms)
            outcome = _SUCCESS
        else:
            attempt = job.attempts_made + 1

            def record_step(step: str, action: str, outcome: str, began: int) -> None:
                now = int(self.env.now)
                sim.recorder.note_step(now, squeue.name, job.id, attempt, step, action, outcome, now - began,
                                       self.id)

            ctx = AttemptContext(self.env, squeue.service_rng(job.name), squeue.failure_rng(job.name),
                                 sim.dependency_calls, record_step,
                                 squeue.draws(spec) if isinstance(spec, JobType) else None)
            outcome = yield from run_attempt(ctx, spec, job, first)
        self.busy_ms += now_ms() - start
        if self._thaw is not None:  # (a frozen worker reports when it thaws)
            yield from self._gate()
        if self.state == "crashed":
            return None, False
        fetch_next = self.state == "running" and now_ms() >= self.engine.rate_limited_until
        nxt: Job | None = None
        looked = False
        rec = sim.recorder
        try:
            if outcome.error is None:
                nxt = self.engine.complete(job, outcome.value, fetch_next=fetch_next)
                if not rec.streaming:  # (the note only names the attempt's end in the event log)
                    rec.note_exit(squeue.name, job.id, "completed", None)
                looked = fetch_next
            else:
                result = self.engine.fail(job, outcome.error, fetch_next=fetch_next)
                rec.note_exit(squeue.name, job.id, result, str(outcome.error))
                if result == "failed":
                    nxt = self.engine.prefetched
                    looked = fetch_next
                elif result == "delayed":
                    squeue.dispatch.delayed_added()
                elif result == "rate-limited":
                    squeue.dispatch.notify(1, "requeued")
        except ScriptError as exc:
            # the lock was lost (the job stalled and another worker may run it): the result is thrown away
            self.engine.active.pop(job.id, None)
            rec.note_incident(int(self.env.now), self.id, squeue.name, "lock-lost", job.id, str(exc))
        self.held.pop(job.id, None)
        sim._after_call()
        if nxt is not None:
            self.held[nxt.id] = nxt
        return nxt, looked and nxt is None

    # --- timers ------------------------------------------------------------------------------------------

    def _renewer(self) -> Generator[simpy.Event, Any, None]:
        period = self.engine.opts.renew_every_ms
        try:
            while True:
                yield self.env.timeout(period)
                yield from self._gate()
                if self.state in ("crashed", "closed"):
                    return
                if self.engine.active:
                    for job_id in self.engine.renew_due_locks():
                        self.sim.recorder.note_incident(int(self.env.now), self.id, self.squeue.name,
                                                        "lock-renewal-failed", job_id)
        except simpy.Interrupt:
            return

    def _stall_checker(self) -> Generator[simpy.Event, Any, None]:
        interval = self.engine.opts.stalled_interval
        try:
            while True:
                yield from self._gate()
                if self.state in ("crashed", "closed"):
                    return
                recovered = self.engine.check_stalled()
                self.sim._after_call()
                if recovered:
                    self.squeue.dispatch.notify(len(recovered), "stalled")
                yield self.env.timeout(interval + 1)
        except simpy.Interrupt:
            return

    # --- faults ------------------------------------------------------------------------------------------

    def crash(self) -> list[str]:
        """The process dies: its slots and timers stop, its jobs stay active in the queue with their locks
        until they expire. Returns the ids of the jobs it held."""
        if self.state in ("crashed", "closed"):
            return []
        self.state = "crashed"
        dropped = self.engine.forget()
        self.held.clear()
        for proc in (*self._slots, *self._timers):
            if proc.is_alive and proc is not self.env.active_process:
                proc.interrupt("crash")
        return dropped

    def freeze(self, duration_ms: int) -> None:
        """Block the worker's event loop for ``duration_ms``: work in progress continues, but no call to the
        queue (fetch, finish, lock renewal, stalled check) happens until it thaws."""
        if self.state != "running" or self.frozen:
            return
        self.frozen = True
        self._thaw = self.env.event()
        thaw = self.env.timeout(duration_ms)
        thaw.callbacks.append(lambda _ev: self._unfreeze())

    def _unfreeze(self) -> None:
        self.frozen = False
        ev, self._thaw = self._thaw, None
        if ev is not None and not ev.triggered:
            ev.succeed()
        if self.state == "running":
            self.squeue.dispatch.arm()

    def close(self) -> None:
        """Graceful stop: take no new job, let the running ones finish, then stop the timers."""
        if self.state != "running":
            return
        self.state = "closing"
        for proc in list(self._idle):
            if proc.is_alive:
                proc.interrupt("close")
        if self._live_slots == 0:
            self._closed()
