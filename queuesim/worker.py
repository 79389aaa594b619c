"""The consumer side: ``Worker`` takes jobs, runs them, and reports the outcome.

A worker offers two ways of working, built on the same calls:

1. **Step API** — each method is one backend transition: :meth:`Worker.fetch`, :meth:`Worker.complete`,
   :meth:`Worker.fail`, :meth:`Worker.extend_locks`, :meth:`Worker.check_stalled`, and
   :meth:`Worker.next_wake_ms` ("when is the next job due"). Tests and simulations drive these in virtual time;
   nothing sleeps and nothing polls.
2. **Live runner** — :meth:`Worker.run` / :meth:`Worker.start` run a real Python callable (sync or ``async``)
   with concurrency, lock renewal (every ``lock_renew_time / 2``, 7.5 s with the default 30 s lock), the
   stalled check every ``stalled_interval``, the rate limiter, an optional per-job ``timeout`` and a graceful
   :meth:`Worker.close`. Its jobs are tasks of one event loop (see :meth:`Worker.start`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import itertools
import threading
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np

from queuesim import defaults
from queuesim.backends.base import AsyncTransitions, FetchArgs, FetchResult
from queuesim.backoff import NO_RETRY, compute_backoff
from queuesim.connection import Connection
from queuesim.errors import (
    DelayedError,
    OptionError,
    QueuesimError,
    RateLimitError,
    RetryableError,
    UnrecoverableError,
    WaitingError,
)
from queuesim.job import Job
from queuesim.options import WorkerOptions, dump_json
from queuesim.queue import Queue

__all__ = ["JobTimeoutError", "Worker"]

#: longest single block of an idle live worker on the queue's marker (seconds)
_IDLE_BLOCK_S = 1.0

Processor = Callable[[Job], Any]


class JobTimeoutError(QueuesimError):
    """An attempt ran longer than the job's ``timeout`` option (queuesim extension)."""


class Worker:
    """Processes the jobs of one queue.

    Args:
        queue: the queue (a :class:`Queue`, or its name together with ``connection``).
        processor: ``fn(job) -> result`` (sync or async). Needed only by the live runner.
        connection: required when ``queue`` is a name.
        rng: random numbers for backoff jitter (a seeded ``numpy.random.Generator`` makes runs repeatable).
        worker_id: stable id used in lock tokens (random by default).
        **options: :class:`~queuesim.options.WorkerOptions` fields (``concurrency``, ``lock_duration``,
            ``stalled_interval``, ``max_stalled_count``, ``limiter``, ``name``…).
    """

    def __init__(self, queue: Queue | str, processor: Processor | None = None, *,
                 connection: Connection | None = None, rng: np.random.Generator | None = None,
                 worker_id: str | None = None, **options: Any) -> None:
        if isinstance(queue, str):
            if connection is None:
                raise OptionError("connection", "is required when the queue is given by name")
            queue = Queue(queue, connection)
        self.queue = queue
        self.name = queue.name
        self.backend = queue.backend
        self.clock = queue.clock
        self.opts = WorkerOptions.build(**options)
        self.processor = processor
        self.rng = rng if rng is not None else np.random.default_rng()
        self.id = worker_id or uuid.uuid4().hex
        self._tokens = itertools.count(1)
        #: jobs this worker holds a lock on, by id
        self.active: dict[str, Job] = {}
        #: when a held job's lock was last renewed by :meth:`renew_due_locks`, ms (until then: its processed_on)
        self._renewed_at: dict[str, int] = {}
        #: time until which the worker does not fetch (rate limited), ms
        self.rate_limited_until = 0
        #: cleared while the worker is paused locally (see :meth:`pause`)
        self._resumed = threading.Event()
        self._resumed.set()
        self._last_fetch: FetchResult | None = None
        #: the job taken by the last ``fail(..., fetch_next=True)`` of a final failure (BullMQ fetches the next
        #: job in the same script), or None
        self.prefetched: Job | None = None
        self._listeners: dict[str, list[Callable[..., Any]]] = {}
        self._was_drained = False
        # live runner state
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._forced = False
        self._processors: ThreadPoolExecutor | None = None
        self._hot: AsyncTransitions | None = None
        self._wake: asyncio.Event | None = None
        #: the live runner's fetches and job chains under way: pause() waits for them too, since a fetch that
        #: passed the pause check may still take a job
        self._in_flight = 0

    # --- local events ------------------------------------------------------------------------------------

    def on(self, event: str, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Listen to a worker-local event: ``active``, ``completed``, ``failed`` (every failed attempt),
        ``stalled``, ``drained``, ``error``, ``lock_renewal_failed``, ``rate_limited``, ``closed``."""
        self._listeners.setdefault(event, []).append(callback)
        return callback

    def _emit(self, event: str, *args: Any) -> None:
        for cb in self._listeners.get(event, ()):
            cb(*args)

    # --- step API ----------------------------------------------------------------------------------------

    def _next_token(self) -> str:
        return f"{self.id}:{next(self._tokens)}"

    def _fetch_args(self) -> FetchArgs:
        return FetchArgs(self._next_token(), self.opts.lock_duration, self.opts.limiter, self.opts.name)

    def _accept(self, result: FetchResult | None, token: str) -> Job | None:
        """Turn a fetch result into a Job (or None), handling deferred failures."""
        self._last_fetch = result
        while result is not None and result.job_id is not None:
            assert result.fields is not None
            job = Job.from_hash(result.job_id, result.fields, self.queue, token)
            self._was_drained = False
            if job.scheduler_id is not None:
                self._next_iteration(job)
            failure = job.deferred_failure
            if failure is None and self.opts.max_started_attempts is not None \
                    and job.attempts_started > self.opts.max_started_attempts:
                failure = defaults.STARTED_LIMIT_REASON
            if failure is None:
                self.active[job.id] = job
                self._emit("active", job, "waiting")
                return job
            # A deferred failure (stalled too often, started too often): fail it without running it,
            # then take the next job, like BullMQ's worker does.
            self.active[job.id] = job
            nxt = self._fetch_args()
            result = self._finish_failed(job, UnrecoverableError(failure), fetch_next=nxt)
            token = nxt.token
            self._last_fetch = result
        if result is not None and result.rate_limit_ms > 0:
            self._rate_limited_for(result.rate_limit_ms)
        return None

    def _next_iteration(self, job: Job) -> None:
        """A job scheduler's job became active: its scheduler creates the next iteration now (BullMQ's rule).
        A failure to do so is reported as an ``error`` event; the fetched job still runs."""
        from queuesim.scheduler import on_iteration_started

        try:
            on_iteration_started(self.queue, job)
        except QueuesimError as exc:
            self._emit("error", exc)

    def _rate_limited_for(self, ttl_ms: int) -> None:
        """Stop fetching for the limiter's ``ttl_ms``, but at most ``maximum_rate_limit_delay``: BullMQ's worker
        then asks again, which also promotes due delayed jobs while the queue stays rate limited."""
        self.rate_limited_until = self.clock.now_ms() + min(ttl_ms, self.opts.maximum_rate_limit_delay)

    def fetch(self) -> Job | None:
        """Take the next job (one ``moveToActive``), or None when nothing can be taken now.

        After None, :meth:`next_wake_ms` tells when trying again makes sense.
        """
        if self.clock.now_ms() < self.rate_limited_until or not self._resumed.is_set():
            return None
        args = self._fetch_args()
        return self._accept(self.backend.move_to_active(self.name, args), args.token)

    def next_wake_ms(self) -> int | None:
        """When an idle worker should try :meth:`fetch` again: the end of a rate-limit window, the due time of
        the next delayed job, or None (nothing scheduled: wait for a new job to be added)."""
        now = self.clock.now_ms()
        if self.rate_limited_until > now:
            return self.rate_limited_until
        due = self.backend.next_due_ms(self.name)
        return due

    def _keep(self, completed: bool, job: Job) -> Any:
        own = job.opts.remove_on_complete if completed else job.opts.remove_on_fail
        return own if own is not None else (self.opts.remove_on_complete if completed else self.opts.remove_on_fail)

    def complete(self, job: Job, return_value: Any = None, fetch_next: bool = False) -> Job | None:
        """Mark ``job`` completed with ``return_value``. With ``fetch_next``, take the next job in the same call
        (and return it), as BullMQ's running worker does."""
        report, nxt = self._completion(job, return_value, fetch_next)
        result = self.backend.move_to_finished(self.name, job.id, job.token or "0", **report)
        return self._completed(job, return_value, result, nxt)

    def _completion(self, job: Job, return_value: Any, fetch_next: bool) -> tuple[dict[str, Any], FetchArgs | None]:
        """The arguments of ``move_to_finished`` for a completed attempt, and the fetch it carries (or None)."""
        value = dump_json(return_value, "return_value")
        nxt = self._fetch_args() if fetch_next and self._resumed.is_set() else None
        return {"completed": True, "value": value, "stacktrace": None, "max_attempts": job.opts.attempts,
                "keep": self._keep(True, job), "fetch_next": nxt}, nxt

    def _completed(self, job: Job, return_value: Any, result: FetchResult | None,
                   nxt: FetchArgs | None) -> Job | None:
        self.active.pop(job.id, None)
        self._emit("completed", job, return_value, "active")
        if nxt is not None:
            return self._accept(result, nxt.token)
        return None

    def _stacktrace(self, job: Job, error: BaseException) -> str:
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()
        stack = [*job.stacktrace, trace]
        limit = job.opts.stack_trace_limit
        if limit is not None:
            stack = stack[-limit:] if limit > 0 else []
        return dump_json(stack, "stacktrace")

    def _finish_failed(self, job: Job, error: BaseException, fetch_next: FetchArgs | None) -> FetchResult | None:
        result = self.backend.move_to_finished(
            self.name, job.id, job.token or "0", completed=False, value=str(error) or type(error).__name__,
            stacktrace=self._stacktrace(job, error), max_attempts=job.opts.attempts, keep=self._keep(False, job),
            fetch_next=fetch_next)
        self.active.pop(job.id, None)
        self._emit("failed", job, error, "active")
        return result

    def fail(self, job: Job, error: BaseException | str, fetch_next: bool = False) -> str:
        """Report a failed attempt and apply BullMQ's rules. Returns what happened:

        * ``"retried"`` — attempts left, no backoff: back to wait / prioritized now;
        * ``"delayed"`` — attempts left with a backoff (or a :class:`RetryableError` delay): into delayed;
        * ``"failed"`` — for good (attempts exhausted, :class:`UnrecoverableError`, custom backoff -1);
          to ``failed`` or to the dead-letter queue;
        * ``"rate-limited"`` — :class:`RateLimitError`: back to the head of wait, no attempt used;
        * ``"moved"`` — :class:`DelayedError` / :class:`WaitingError`: the processor moved the job itself.

        With ``fetch_next``, a final failure also takes the next job in the same call (as BullMQ's running
        worker does); it is left in :attr:`prefetched`. Retries never fetch (BullMQ's retry scripts do not).
        """
        outcome, self.prefetched = self._fail(job, error, fetch_next)
        return outcome

    def _fail(self, job: Job, error: BaseException | str, fetch_next: bool) -> tuple[str, Job | None]:
        """:meth:`fail`, returning the job a final failure fetched instead of leaving it in an attribute that
        concurrent jobs would share."""
        err = error if isinstance(error, BaseException) else Exception(str(error))
        if isinstance(err, DelayedError | WaitingError):
            self.active.pop(job.id, None)
            return "moved", None
        if isinstance(err, RateLimitError):
            if err.retry_after_ms:
                self.backend.rate_limit(self.name, err.retry_after_ms)
            ttl = self.backend.move_to_wait_rate_limited(self.name, job.id, job.token or "0")
            self.active.pop(job.id, None)
            if ttl > 0:
                self._rate_limited_for(ttl)
            self._emit("rate_limited", job, ttl)
            return "rate-limited", None
        attempts = max(job.opts.attempts, 1)
        attempt = job.attempts_made + 1
        final = isinstance(err, UnrecoverableError) or attempt >= attempts
        delay = 0
        if not final:
            if isinstance(err, RetryableError) and err.delay_ms is not None:
                delay = err.delay_ms
            else:
                delay = compute_backoff(job.opts.backoff, attempt, err, job, self.opts.backoff_strategies, self.rng)
            final = delay == NO_RETRY
        if final:
            nxt = self._fetch_args() if fetch_next and self._resumed.is_set() else None
            result = self._finish_failed(job, err, nxt)
            return "failed", (self._accept(result, nxt.token) if nxt is not None else None)
        reason = str(err) or type(err).__name__
        stack = self._stacktrace(job, err)
        if delay > 0:
            # one "now" for the due time and the script, so the stored delay is exactly the backoff
            now = self.clock.now_ms()
            self.backend.move_to_delayed(self.name, job.id, job.token or "0", now + delay, skip_attempt=False,
                                         reason=reason, stacktrace=stack, now=now)
            outcome = "delayed"
        else:
            self.backend.retry_job(self.name, job.id, job.token or "0", reason, stack, job.opts.lifo)
            outcome = "retried"
        self.active.pop(job.id, None)
        self._emit("failed", job, err, "active")
        return outcome, None

    def extend_locks(self) -> list[str]:
        """Renew the locks of every job this worker holds; returns the ids whose lock was lost."""
        if not self.active:
            return []
        return self._extend([(j.id, j.token) for j in list(self.active.values()) if j.token and j.token != "0"])

    def renew_due_locks(self) -> list[str]:
        """One tick of BullMQ's lock-renewal timer, which fires every ``lock_renew_time / 2``: renew the locks
        taken or last renewed more than ``lock_renew_time / 2`` ago; the others wait for a later tick. So each
        lock is renewed every ``lock_renew_time / 2`` to ``lock_renew_time``. Returns the ids whose lock was
        lost."""
        active = self.active
        if not active:
            self._renewed_at.clear()
            return []
        now = self.clock.now_ms()
        half = self.opts.renew_every_ms
        renewed = self._renewed_at = {job_id: t for job_id, t in self._renewed_at.items() if job_id in active}
        due = []
        for job_id, job in list(active.items()):
            last = renewed.get(job_id, job.processed_on)
            if job.token and job.token != "0" and (last is None or last + half < now):
                renewed[job_id] = now
                due.append((job_id, job.token))
        return self._extend(due) if due else []

    def _extend(self, pairs: list[tuple[str, str]]) -> list[str]:
        lost = self.backend.extend_locks(self.name, pairs, self.opts.lock_duration)
        if lost:
            self._emit("lock_renewal_failed", lost)
        return lost

    def check_stalled(self) -> list[str]:
        """Run the stalled-jobs check (effective at most once per ``stalled_interval`` across all workers).

        A worker built with ``skip_stalled_check=True`` never runs it (returns ``[]``): other workers recover
        the stalled jobs."""
        if self.opts.skip_stalled_check:
            return []
        recovered = self.backend.move_stalled_jobs_to_wait(self.name, self.opts.max_stalled_count,
                                                           self.opts.stalled_interval)
        for job_id in recovered:
            self._emit("stalled", job_id, "active")
        return recovered

    @property
    def concurrency(self) -> int:
        """How many jobs this worker runs at once. May be changed while the worker runs (BullMQ allows it)."""
        return self.opts.concurrency

    @concurrency.setter
    def concurrency(self, value: int) -> None:
        checked = WorkerOptions.build(concurrency=value).concurrency
        self.opts = dataclasses.replace(self.opts, concurrency=checked)
        pool = self._processors
        if pool is not None and checked > pool._max_workers:
            # a thread pool starts its threads on demand: raising its cap lets the extra jobs run now
            pool._max_workers = checked
        self._wake_up()

    def pause(self, do_not_wait_active: bool = False, timeout_s: float | None = None) -> None:
        """Stop this worker from taking new jobs (BullMQ's ``worker.pause()``; other workers and the queue are
        not affected). Jobs it already holds may still be completed or failed.

        A live worker (:meth:`start`) also waits here until its running jobs have finished, unless
        ``do_not_wait_active``; ``timeout_s`` bounds that wait. A fetch already on its way to the store when
        pause() is called counts as running: the job it takes runs, and pause() returns after it. In the step
        API the caller holds the jobs, so nothing is waited for.
        """
        if not self._resumed.is_set():
            return
        self._resumed.clear()
        self._emit("paused")
        if do_not_wait_active or self._pool is None or self._closing.is_set():
            return
        import time as _time

        deadline = None if timeout_s is None else _time.monotonic() + timeout_s
        while (self.active or self._in_flight) and (deadline is None or _time.monotonic() < deadline):
            _time.sleep(0.005)

    def resume(self) -> None:
        """Let a locally paused worker take jobs again."""
        if self._resumed.is_set():
            return
        self._resumed.set()
        self._emit("resumed")
        self._wake_up()

    def is_paused(self) -> bool:
        """Whether this worker is paused locally (see :meth:`pause`; the queue's own pause is separate)."""
        return not self._resumed.is_set()

    def forget(self) -> list[str]:
        """Drop every held job without telling the backend — what a crash does. Their locks expire and the
        stalled check brings them back. Returns the ids dropped."""
        ids = list(self.active)
        self.active.clear()
        return ids

    # --- live runner -------------------------------------------------------------------------------------

    def _call_processor(self, job: Job) -> Any:
        """Run a plain (not ``async``) processor in a pool thread, abandoning it at the job's timeout."""
        assert self.processor is not None
        timeout_s = job.opts.timeout / 1000 if job.opts.timeout else None
        if timeout_s is None:
            return self.processor(job)
        # Run in a helper thread so a slow attempt can be abandoned at its deadline.
        box: Future[Any] = Future()

        def target() -> None:
            try:
                box.set_result(self.processor(job))  # type: ignore[misc]
            except BaseException as exc:
                box.set_exception(exc)

        threading.Thread(target=target, daemon=True, name=f"job-{job.id}").start()
        try:
            return box.result(timeout_s)
        except FutureTimeout:
            raise JobTimeoutError(f"job {job.id} timed out after {job.opts.timeout} ms") from None

    async def _with_timeout(self, job: Job) -> Any:
        assert self.processor is not None
        timeout_s = job.opts.timeout / 1000 if job.opts.timeout else None
        try:
            return await asyncio.wait_for(self.processor(job), timeout_s)
        except TimeoutError:
            raise JobTimeoutError(f"job {job.id} timed out after {job.opts.timeout} ms") from None

    def start(self) -> Worker:
        """Run the live worker in background threads; returns at once. Stop it with :meth:`close`.

        The worker's own work happens on one event loop, as in Node BullMQ: up to ``concurrency`` jobs are
        tasks of that loop, and on a real Redis their fetches and finishes share one pipelined connection
        (see :mod:`queuesim.backends.pipelined`). An ``async`` processor runs on the loop itself; a plain
        function runs in a pool of ``concurrency`` threads, so it may block.
        """
        if self.processor is None:
            raise OptionError("processor", "a live worker needs a processor function")
        if getattr(self.clock, "virtual", False):
            raise OptionError("clock", "the live runner needs wall time; drive a virtual clock with the step API")
        self._closing.clear()
        self._forced = False
        self._pool = ThreadPoolExecutor(4, thread_name_prefix=f"worker-{self.name}-helper")
        if not inspect.iscoroutinefunction(self.processor):
            self._processors = ThreadPoolExecutor(self.opts.concurrency, thread_name_prefix=f"worker-{self.name}")
        for target, name in ((self._loop_thread, "loop"), (self._timers_loop, "timers")):
            t = threading.Thread(target=target, daemon=True, name=f"worker-{self.name}-{name}")
            t.start()
            self._threads.append(t)
        return self

    def run(self) -> None:
        """Run the live worker in this thread until :meth:`close` is called from elsewhere."""
        self.start()
        self._closing.wait()
        for t in self._threads:
            t.join()

    def _loop_thread(self) -> None:
        asyncio.run(self._runner())

    def _wake_up(self) -> None:
        """Let the fetch loop look again now (a slot was freed, the worker was resumed or is closing)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                loop.call_soon_threadsafe(wake.set)

    async def _runner(self) -> None:
        """The fetch loop: while fewer than ``concurrency`` jobs run, take the next job and start it as a task.

        Each task runs its job, then finishes it and fetches the next one in the same call (as BullMQ's
        running worker does), so a busy worker needs one round trip per job. Fetches and finishes are awaited
        over the backend's pipelined connection when it has one. Retries and final failures run in a small
        helper pool with the same blocking calls the step API uses, so there is one implementation of
        BullMQ's rules; lock renewal and the stalled check run on the worker's timer thread. Two rare
        follow-ups of a fetch make their blocking call on the loop itself: failing a job that stalled too
        often, and asking a job scheduler for its next iteration. An error (e.g. Redis restarting) is
        reported as an ``error`` event and the loop backs off 0.1 s, 0.2 s, 0.4 s … up to 5 s.
        """
        loop = asyncio.get_running_loop()
        wake = self._wake = asyncio.Event()
        self._loop = loop
        hot: AsyncTransitions = self.backend.pipelined() or _BlockingTransitions(
            self.backend, None if self.backend.in_process else self._pool)
        self._hot = hot
        # a second connection for the blocking wait, so that running jobs' finishes are not held up
        waiter = self.queue.connection.duplicate().backend
        tasks: set[asyncio.Task[None]] = set()
        failures = 0
        try:
            while not self._closing.is_set():
                if not self._resumed.is_set():  # paused locally: wait for resume() (or close())
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), 0.05)
                    continue
                try:
                    free = len(tasks) < self.opts.concurrency
                    job = await self._fetch_async() if free else None
                    failures = 0
                    if job is not None:
                        task = loop.create_task(self._chain(job))
                        tasks.add(task)
                        task.add_done_callback(lambda t: (tasks.discard(t), wake.set()))
                        continue
                    if not free:
                        wake.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wake.wait(), 0.05)
                        continue
                    await loop.run_in_executor(self._pool, self._idle_wait, waiter)
                except Exception as exc:
                    self._emit("error", exc)
                    failures += 1
                    await self._back_off(min(5.0, 0.1 * 2 ** min(failures - 1, 6)))
            if tasks and not self._forced:
                await asyncio.wait(tasks)
            for task in tasks:
                task.cancel()
        finally:
            hot.close()

    async def _back_off(self, seconds: float) -> None:
        """Sleep ``seconds`` after an error, but wake up within 50 ms when the worker is closed."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while not self._closing.is_set() and loop.time() < until:
            await asyncio.sleep(min(0.05, until - loop.time()))

    async def _fetch_async(self) -> Job | None:
        self._in_flight += 1  # (before the pause check: a pause() from now on waits for this fetch)
        try:
            if self.clock.now_ms() < self.rate_limited_until or not self._resumed.is_set():
                return None
            args = self._fetch_args()
            assert self._hot is not None
            return self._accept(await self._hot.move_to_active(self.name, args), args.token)
        finally:
            self._in_flight -= 1

    async def _chain(self, job: Job | None) -> None:
        self._in_flight += 1  # (a finish takes its job out of "active" just before it puts the next one in)
        try:
            while job is not None:
                job = await self._run_one(job)
        finally:
            self._in_flight -= 1

    async def _run_one(self, job: Job) -> Job | None:
        """Run one job and report its outcome; returns the next job when the report fetched one. A report the
        store refuses (lost lock) or cannot take (Redis unreachable) drops the job from this worker: its lock
        lapses and the stalled check brings it back."""
        fetch_next = not self._closing.is_set() and self.clock.now_ms() >= self.rate_limited_until
        loop = asyncio.get_running_loop()
        try:
            try:
                if self._processors is None:
                    result = await self._with_timeout(job)
                else:
                    result = await loop.run_in_executor(self._processors, self._call_processor, job)
            except Exception as exc:
                outcome, nxt = await loop.run_in_executor(self._pool, self._fail, job, exc, fetch_next)
                return nxt if outcome == "failed" else None
            try:
                report, nxt = self._completion(job, result, fetch_next)
            except OptionError as exc:  # e.g. a return value JSON cannot hold: the attempt fails
                await loop.run_in_executor(self._pool, self._fail, job, exc, False)
                return None
            assert self._hot is not None
            finished = await self._hot.move_to_finished(self.name, job.id, job.token or "0", **report)
            return self._completed(job, result, finished, nxt)
        except Exception as exc:
            self.active.pop(job.id, None)
            self._emit("error", exc)
            return None

    def _idle_wait(self, waiter: Any) -> None:
        """Block on the marker (BullMQ's BZPOPMIN), at most until the next due time or the drain delay."""
        now = self.clock.now_ms()
        wake = self.next_wake_ms()
        timeout_s = self.opts.drain_delay_s
        if wake is not None:
            timeout_s = min(timeout_s, max(wake - now, 0) / 1000)
        if self._last_fetch is not None and self._last_fetch.paused_or_maxed:
            timeout_s = min(timeout_s, 0.5)
        if timeout_s <= 0:
            return
        if not self._was_drained:
            self._was_drained = True
            self._emit("drained")
        # BullMQ closes the blocked connection to stop at once; here the block lasts at most a second, so that
        # close() returns within about a second even with the default 5 s drain delay
        waiter.wait_for_work(self.name, min(timeout_s, _IDLE_BLOCK_S))

    def _timers_loop(self) -> None:
        renew_s = self.opts.renew_every_ms / 1000
        stalled_s = self.opts.stalled_interval / 1000
        next_renew = 0.0
        next_stalled = 0.0
        import time as _time

        while not self._closing.is_set():
            t = _time.monotonic()
            try:
                if not self.opts.skip_lock_renewal and t >= next_renew:
                    self.renew_due_locks()
                    next_renew = t + renew_s
                if not self.opts.skip_stalled_check and t >= next_stalled:
                    self.check_stalled()
                    next_stalled = t + stalled_s
            except Exception as exc:
                self._emit("error", exc)
            self._closing.wait(max(0.005, min(next_renew if not self.opts.skip_lock_renewal else t + 1,
                                                   next_stalled if not self.opts.skip_stalled_check else t + 1)
                                   - _time.monotonic()))

    def close(self, force: bool = False, timeout: float | None = None) -> None:
        """Stop the live worker. Graceful by default: stop fetching and wait for running jobs.
        ``force=True`` abandons running jobs (their locks lapse and they come back as stalled)."""
        self._forced = force
        self._closing.set()
        self._wake_up()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
        for pool in (self._processors, self._pool):
            if pool is not None:
                pool.shutdown(wait=not force, cancel_futures=True)
        self._processors = None
        self._loop = None
        if force:
            self.forget()
        self._emit("closed")

    def __repr__(self) -> str:
        return f"Worker({self.name!r}, id={self.id[:8]}, concurrency={self.opts.concurrency})"




class _BlockingTransitions:
    """The worker's two hot transitions as coroutines over a backend without a pipelined connection. A store
    in this process (the memory backend, the embedded fakeredis server) is called directly, since it never
    waits on a network; any other (Redis over TLS) is called from ``pool``, so that the loop goes on while a
    call waits for its reply."""

    def __init__(self, backend: Any, pool: ThreadPoolExecutor | None) -> None:
        self.backend = backend
        self.pool = pool

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.pool is None:
            return fn(*args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))

    async def move_to_active(self, queue: str, fetch: FetchArgs) -> FetchResult:
        return await self._call(self.backend.move_to_active, queue, fetch)  # type: ignore[no-any-return]

    async def move_to_finished(self, queue: str, job_id: str, token: str, **report: Any) -> FetchResult | None:
        return await self._call(  # type: ignore[no-any-return]
            self.backend.move_to_finished, queue, job_id, token, **report)

    def close(self) -> None:
        """Nothing to release."""
