"""The Redis backend: every state transition is one Lua script, atomic on Redis.

It runs unchanged on a real Redis shared by many worker processes and on the embedded fakeredis server (whose
clock follows a :class:`~queuesim.clock.VirtualClock` through :mod:`queuesim.backends.fake`). Key names,
event names and job-hash fields are BullMQ's, so BullMQ tools can read the same queues.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import redis

from queuesim.backends.base import AddResult, FetchArgs, FetchResult, dead_letter_refusal, flow_parent_args
from queuesim.backends.pipelined import PipelinedConnection, connection_settings
from queuesim.backends.scripts import Script, load_script, resp_command
from queuesim.clock import Clock
from queuesim.errors import JobNotFoundError, JobStateError, LockError, OptionError, error_for_code
from queuesim.keys import QueueKeys
from queuesim.options import JobOptions, KeepJobs, validate_prefix, validate_queue_name

__all__ = ["RedisBackend"]

_STATE_TYPES = {
    "wait": "list", "paused": "list", "active": "list", "waiting": "list",
    "prioritized": "zset", "delayed": "zset", "completed": "zset", "failed": "zset", "waiting-children": "zset",
}


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {_s(flat[i]): _s(flat[i + 1]) for i in range(0, len(flat), 2)}


def _is_noscript(reply: Any) -> bool:
    """A NOSCRIPT error reply, as redis-py raises it or as hiredis returns it."""
    return isinstance(reply, redis.exceptions.NoScriptError) or (
        isinstance(reply, redis.exceptions.ResponseError) and str(reply).startswith("NOSCRIPT"))


def _raise_errors(replies: list[Any]) -> list[Any]:
    for r in replies:
        if isinstance(r, redis.exceptions.ResponseError):
            raise r
    return replies


class RedisBackend:
    """Backend over a redis-py client (real Redis or fakeredis).

    Args:
        client: a synchronous ``redis.Redis`` (``decode_responses`` either way).
        clock: where timestamps come from.
        prefix: key prefix (``bull``; a hash tag such as ``{bull}`` keeps every key in one cluster slot).
    """

    def __init__(self, client: redis.Redis, clock: Clock, prefix: str = "bull") -> None:
        self.client = client
        self.clock = clock
        self.prefix = validate_prefix(prefix)
        self._keys: dict[str, list[str]] = {}
        #: the embedded fakeredis server: it answers in this process (and takes commands as argument lists,
        #: see fake.VirtualTimeConnection), so a call never waits on a network
        self.in_process = hasattr(client.connection_pool.connection_class, "run_commands")
        #: for the embedded server, the thread that called first keeps one connection for itself (see _exchange)
        self._kept: tuple[int, Any] | None = None
        self._kept_lock = threading.Lock()

    # --- plumbing ----------------------------------------------------------------------------------------

    def keys(self, queue: str) -> QueueKeys:
        return QueueKeys(self.prefix, queue)

    def _queue_keys(self, queue: str) -> list[str]:
        """KEYS of every script: the queue's meta key only (the scripts build the other names)."""
        keys = self._keys.get(queue)
        if keys is None:
            validate_queue_name(queue)
            base = f"{self.prefix}:{queue}:"
            keys = self._keys[queue] = [base + "meta"]
        return keys

    def _run(self, script: str, queue: str, *args: Any, now: int | None = None) -> Any:
        when = self.clock.now_ms() if now is None else now
        return self._call_many(load_script(script), queue, [[when, *args]])[0]

    def _call_many(self, script: Script, queue: str, arg_lists: list[list[Any]]) -> list[Any]:
        """Run ``script`` once per argument list, in one round trip, and return the replies in order.

        On a Redis server the calls are packed by hand (see :func:`~queuesim.backends.scripts.resp_command`);
        the embedded server takes them as argument lists. Either way they go out on one connection (see
        :meth:`_exchange`). A NOSCRIPT reply (server restarted or flushed) loads the script and sends again:
        NOSCRIPT means none of the calls ran. An error reply of one call is raised after every reply was read,
        so the connection stays in step.
        """
        if self.in_process:  # the embedded server: hand it the arguments, no protocol bytes
            keys = self._queue_keys(queue)
            commands = [script.fields(keys, [self.prefix, queue, *args], 2) for args in arg_lists]
            send: Callable[[Any], list[Any] | None] = lambda conn: conn.run_commands(commands)  # noqa: E731
        else:
            packets = self._packets(script, queue, arg_lists)
            send = lambda conn: conn.send_packed_command([packets])  # noqa: E731
        replies = self._exchange(send, len(arg_lists))
        if any(_is_noscript(r) for r in replies):
            self.client.script_load(script.source)
            replies = self._exchange(send, len(arg_lists))
        return _raise_errors(replies)

    def _packets(self, script: Script, queue: str, arg_lists: list[list[Any]]) -> bytes:
        keys = self._queue_keys(queue)
        return b"".join(script.packed(keys, [self.prefix, queue, *args], 2) for args in arg_lists)

    def _exchange(self, send: Callable[[Any], list[Any] | None], count: int) -> list[Any]:
        """``send(connection)`` on a connection of the client, then read ``count`` replies (see
        :meth:`_read_replies`)."""
        pool = self.client.connection_pool
        kept = self._kept
        if self.in_process:
            # Taking a connection from redis-py's pool and giving it back costs as much as a short script on the
            # embedded server, so the first thread to call (a simulation's only one, a live worker's event loop)
            # keeps one; other threads go through the pool. The pool still owns the connection: closing the
            # client disconnects it, and the next call connects it again.
            me = threading.get_ident()
            if kept is None:
                with self._kept_lock:
                    kept = self._kept
                    if kept is None:
                        kept = self._kept = (me, pool.get_connection())
            if kept[0] == me:
                return self._read_replies(kept[1], send, count)
        conn = pool.get_connection()
        try:
            return self._read_replies(conn, send, count)
        finally:
            pool.release(conn)

    @staticmethod
    def _read_replies(conn: Any, send: Callable[[Any], list[Any] | None], count: int) -> list[Any]:
        """``send(conn)``, then read ``count`` replies; an error reply is returned in its place, not raised, so
        the connection stays in step. Any other failure disconnects the connection before it is raised. (The
        embedded server's ``send`` returns the replies itself.)"""
        try:
            try:
                replies = send(conn)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                # a stale connection (e.g. after a server restart): nothing was executed, try a fresh one
                conn.disconnect()
                replies = send(conn)
            if replies is not None:
                return replies
            replies = []
            for _ in range(count):
                try:
                    replies.append(conn.read_response())
                except redis.exceptions.ResponseError as exc:
                    replies.append(exc)
            return replies
        except BaseException:
            conn.disconnect()
            raise

    @staticmethod
    def _check(code: Any, job_id: str, command: str, state: str = "expected") -> None:
        if isinstance(code, int) and code < 0:
            raise error_for_code(code, job_id, command, state)

    @staticmethod
    def _fetch_result(raw: Any) -> FetchResult:
        if not isinstance(raw, list):
            return FetchResult()
        fields, job_id, limit_ttl, next_due, paused_or_maxed = raw
        if job_id and job_id != 0:
            return FetchResult(job_id=_s(job_id), fields=_pairs(fields))
        return FetchResult(rate_limit_ms=int(limit_ttl), next_due_ms=int(next_due),
                           paused_or_maxed=bool(paused_or_maxed))

    # --- producers ---------------------------------------------------------------------------------------

    def _parent_args(self, opts: JobOptions) -> tuple[JobOptions, str, str]:
        return flow_parent_args(opts, self.prefix)

    def _add_args(self, name: str, data: str, opts: JobOptions, timestamp: int,
                  scheduler_id: str | None, waiting_children: bool = False) -> list[Any]:
        import json

        opts, parent_key, parent_ref = self._parent_args(opts)
        de = opts.deduplication
        return [
            opts.job_id or "", name, data, json.dumps(opts.to_wire(), separators=(",", ":")), timestamp,
            opts.delay, opts.priority, "1" if opts.lifo else "0",
            de.id if de else "", (de.ttl or "") if de else "", "1" if de and de.extend else "0",
            "1" if de and de.replace else "0", scheduler_id or "", parent_key, parent_ref,
            "1" if waiting_children else "0",
        ]

    def _add_result(self, raw: Any, opts: JobOptions) -> AddResult:
        if isinstance(raw, int):  # -5: the parent is missing, -7: the job already has another parent
            parent = opts.parent.job_key(self.prefix) if opts.parent is not None else opts.job_id or ""
            self._check(raw, parent if raw == -5 else opts.job_id or "", "addJob")
        job_id, outcome = raw
        return AddResult(_s(job_id), _s(outcome))

    def add_job(self, queue: str, name: str, data: str, opts: JobOptions, timestamp: int,
                scheduler_id: str | None = None, waiting_children: bool = False) -> AddResult:
        """Add one job. ``waiting_children``: a flow parent whose children are added next (it waits for them in
        ``waiting-children`` instead of becoming ready)."""
        raw = self._run("addJob", queue, *self._add_args(name, data, opts, timestamp, scheduler_id, waiting_children))
        return self._add_result(raw, opts)

    def add_flow_jobs(self, jobs: list[tuple[str, str, str, JobOptions, int, bool]]) -> list[AddResult]:
        """Add the jobs of a flow in one MULTI/EXEC transaction, in the order given (each parent before its
        children). Each item is ``(queue, name, data, opts, timestamp, waiting_children)``."""
        if not jobs:
            return []
        script = load_script("addJob")
        now = self.clock.now_ms()
        calls = [(self._queue_keys(queue), queue, self._add_args(name, data, opts, ts, None, has_children))
                 for queue, name, data, opts, ts, has_children in jobs]  # may raise before anything is sent
        if not self.client.script_exists(script.sha)[0]:
            self.client.script_load(script.source)
        pipe = self.client.pipeline(transaction=True)
        for keys, queue, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, self.prefix, queue, now, *args)
        return [self._add_result(raw, item[3]) for raw, item in zip(pipe.execute(), jobs, strict=True)]

    def add_jobs(self, queue: str, jobs: list[tuple[str, str, JobOptions, int]]) -> list[AddResult]:
        """Add many jobs in one round trip (the script calls are pipelined; each add stays atomic)."""
        if not jobs:
            return []
        now = self.clock.now_ms()
        args = [[now, *self._add_args(name, data, opts, ts, None)] for name, data, opts, ts in jobs]
        replies = self._call_many(load_script("addJob"), queue, args)
        return [self._add_result(raw, job[2]) for raw, job in zip(replies, jobs, strict=True)]

    # --- workers -----------------------------------------------------------------------------------------

    @staticmethod
    def _fetch_args(f: FetchArgs) -> list[Any]:
        lim = f.limiter
        return [f.lock_duration, lim.max if lim else "", lim.duration if lim else "", f.worker_name or ""]

    def move_to_active(self, queue: str, fetch: FetchArgs) -> FetchResult:
        return self._fetch_result(self._run("moveToActive", queue, fetch.token, *self._fetch_args(fetch)))

    def _finished_args(self, job_id: str, token: str, completed: bool, value: str, stacktrace: str | None,
                       max_attempts: int, keep: KeepJobs | None, fetch_next: FetchArgs | None) -> list[Any]:
        keep_args = keep.script_args() if keep is not None else [-1, -1, 1000]
        nxt = self._fetch_args(fetch_next) if fetch_next else [0, "", "", ""]
        return [job_id, token, "completed" if completed else "failed", value,
                stacktrace if stacktrace is not None else "", max_attempts, *keep_args,
                "1" if fetch_next else "0", *nxt, fetch_next.token if fetch_next else ""]

    def _finished_result(self, raw: Any, job_id: str) -> FetchResult | None:
        if isinstance(raw, int):
            self._check(raw, job_id, "moveToFinished", "active")
            return None
        return self._fetch_result(raw)

    def move_to_finished(self, queue: str, job_id: str, token: str, *, completed: bool, value: str,
                         stacktrace: str | None, max_attempts: int, keep: KeepJobs | None,
                         fetch_next: FetchArgs | None) -> FetchResult | None:
        args = self._finished_args(job_id, token, completed, value, stacktrace, max_attempts, keep, fetch_next)
        return self._finished_result(self._run("moveToFinished", queue, *args), job_id)

    def pipelined(self) -> PipelinedTransitions | None:
        """The worker's two hot transitions as coroutines over one :class:`PipelinedConnection`, or None
        when the server cannot be reached that way (the embedded fakeredis server, TLS)."""
        settings = connection_settings(self.client)
        return None if settings is None else PipelinedTransitions(self, PipelinedConnection(settings))

    def retry_job(self, queue: str, job_id: str, token: str, reason: str, stacktrace: str, lifo: bool) -> None:
        code = self._run("retryJob", queue, job_id, token, reason, stacktrace, "1" if lifo else "0")
        self._check(code, job_id, "retryJob", "active")

    def move_to_delayed(self, queue: str, job_id: str, token: str, due_ms: int, *, skip_attempt: bool,
                        reason: str | None = None, stacktrace: str | None = None,
                        now: int | None = None) -> None:
        """``now`` (default: the clock) is the time the script runs at; the stored ``delay`` is due - now."""
        code = self._run("moveToDelayed", queue, job_id, token, due_ms, "1" if skip_attempt else "0",
                         reason or "", stacktrace or "", now=now)
        self._check(code, job_id, "moveToDelayed", "active")

    def move_to_wait_rate_limited(self, queue: str, job_id: str, token: str) -> int:
        code = self._run("moveJobFromActiveToWait", queue, job_id, token)
        self._check(code, job_id, "moveJobFromActiveToWait", "active")
        return int(code)

    def extend_locks(self, queue: str, jobs: list[tuple[str, str]], duration: int) -> list[str]:
        if not jobs:
            return []
        flat = [x for pair in jobs for x in pair]
        return [_s(i) for i in self._run("extendLocks", queue, duration, *flat)]

    def move_stalled_jobs_to_wait(self, queue: str, max_stalled_count: int, stalled_interval: int,
                                  reason: str = "job stalled more than allowable limit") -> list[str]:
        return [_s(i) for i in self._run("moveStalledJobsToWait", queue, max_stalled_count, stalled_interval,
                                          reason)]

    def next_due_ms(self, queue: str) -> int | None:
        first = self.client.zrange(self.keys(queue).delayed, 0, 0, withscores=True)
        return int(first[0][1]) // 4096 if first else None

    def wait_for_work(self, queue: str, timeout_s: float) -> bool:
        """Block on the queue's marker (BullMQ's BZPOPMIN) for at most ``timeout_s`` seconds.

        True when a marker entry was taken (there may be work), False on timeout. The blocking command occupies
        one connection of the client's pool, so other threads keep theirs.
        """
        return self.client.bzpopmin(self.keys(queue).marker, timeout=max(timeout_s, 0.01)) is not None

    def has_ready_jobs(self, queue: str) -> bool:
        k = self.keys(queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(k.wait)
        pipe.zcard(k.prioritized)
        return any(pipe.execute())

    # --- jobs --------------------------------------------------------------------------------------------

    def get_job_fields(self, queue: str, job_id: str) -> dict[str, str] | None:
        raw = self.client.hgetall(self.keys(queue).job(job_id))
        return {_s(k): _s(v) for k, v in raw.items()} if raw else None

    def get_state(self, queue: str, job_id: str) -> str:
        return _s(self._run("getState", queue, job_id))

    def update_progress(self, queue: str, job_id: str, progress: str) -> None:
        self._check(self._run("updateProgress", queue, job_id, progress), job_id, "updateProgress")

    def update_data(self, queue: str, job_id: str, data: str) -> None:
        self._check(self._run("updateData", queue, job_id, data), job_id, "updateData")

    def add_log(self, queue: str, job_id: str, line: str, keep_logs: int | None) -> int:
        count = self._run("addLog", queue, job_id, line, "" if keep_logs is None else keep_logs)
        self._check(count, job_id, "addLog")
        return int(count)

    def get_logs(self, queue: str, job_id: str, start: int = 0, end: int = -1) -> list[str]:
        return [_s(x) for x in self.client.lrange(self.keys(queue).job_logs(job_id), start, end)]

    def remove_job(self, queue: str, job_id: str, remove_children: bool = True) -> bool:
        code = self._run("removeJob", queue, job_id, "1" if remove_children else "0")
        if code == -2:
            raise LockError(f"Job {job_id} could not be removed because it is locked by another worker", -2)
        if code == -8:
            raise JobStateError(f"Job {job_id} belongs to a job scheduler and cannot be removed directly", -8)
        return bool(code)

    def reprocess_job(self, queue: str, job_id: str, state: str, reset_attempts_made: bool,
                      reset_attempts_started: bool) -> None:
        if state not in ("failed", "completed"):
            from queuesim.errors import OptionError

            raise OptionError("state", f"must be 'failed' or 'completed', got {state!r}")
        code = self._run("reprocessJob", queue, job_id, state, "1" if reset_attempts_made else "0",
                         "1" if reset_attempts_started else "0")
        self._check(code, job_id, "reprocessJob", state)

    def promote(self, queue: str, job_id: str) -> None:
        self._check(self._run("promote", queue, job_id), job_id, "promote", "delayed")

    def change_priority(self, queue: str, job_id: str, priority: int, lifo: bool) -> None:
        self._check(self._run("changePriority", queue, job_id, priority, "1" if lifo else "0"), job_id,
                    "changePriority")

    def change_delay(self, queue: str, job_id: str, delay: int) -> None:
        self._check(self._run("changeDelay", queue, job_id, delay), job_id, "changeDelay", "delayed")

    # --- queue -------------------------------------------------------------------------------------------

    def pause(self, queue: str, paused: bool) -> None:
        self._run("pause", queue, "paused" if paused else "resumed")

    def is_paused(self, queue: str) -> bool:
        return bool(self.client.hexists(self.keys(queue).meta, "paused"))

    def get_counts(self, queue: str, types: list[str]) -> dict[str, int]:
        k = self.keys(queue)
        pipe = self.client.pipeline(transaction=False)
        for t in types:
            key = k.state_list(t)
            if _STATE_TYPES.get(t) == "list":
                pipe.llen(key)
            else:
                pipe.zcard(key)
        return {t: int(n) for t, n in zip(types, pipe.execute(), strict=True)}

    def count_priority(self, queue: str, priority: int) -> int:
        """How many jobs wait in the prioritized set with this priority (ZCOUNT over the band's scores)."""
        lo = priority * 2**32
        return int(self.client.zcount(self.keys(queue).prioritized, lo, lo + 2**32 - 1))

    def get_ids(self, queue: str, state: str, start: int, end: int, asc: bool) -> list[str]:
        key = self.keys(queue).state_list(state)
        if _STATE_TYPES.get(state) == "list":
            # lists: the head (next to run) is the right end
            if asc:  # oldest (next to run) first
                if end < 0:
                    ids = list(reversed(self.client.lrange(key, 0, -1)))[start:]
                else:
                    ids = list(reversed(self.client.lrange(key, -(end + 1), -(start + 1))))
                return [_s(x) for x in ids]
            return [_s(x) for x in self.client.lrange(key, start, end)]
        if asc:
            return [_s(x) for x in self.client.zrange(key, start, end)]
        return [_s(x) for x in self.client.zrevrange(key, start, end)]

    def drain(self, queue: str, delayed: bool) -> None:
        self._run("drain", queue, "1" if delayed else "0")

    def clean(self, queue: str, grace_ms: int, limit: int, state: str) -> list[str]:
        cutoff = self.clock.now_ms() - grace_ms
        return [_s(i) for i in self._run("cleanJobsInSet", queue, state, cutoff, limit)]

    def obliterate(self, queue: str, force: bool) -> None:
        if self._run("obliterate", queue, "1" if force else "0") == -1:
            raise JobStateError("Cannot obliterate queue with active jobs", -1)

    def move_jobs_to_wait(self, queue: str, state: str, count: int, timestamp: int) -> int:
        return int(self._run("moveJobsToWait", queue, state, count, timestamp))

    def rate_limit(self, queue: str, ms: int) -> None:
        from queuesim.defaults import MAX_SAFE_INTEGER

        self.client.set(self.keys(queue).limiter, MAX_SAFE_INTEGER, px=ms)

    def get_rate_limit_ttl(self, queue: str, max_jobs: int | None) -> int:
        k = self.keys(queue)
        if max_jobs is None:
            meta_max = self.client.hget(k.meta, "max")
            max_jobs = int(meta_max) if meta_max is not None else None
        count = self.client.get(k.limiter)
        if count is None and max_jobs is None:
            return -2
        if max_jobs is not None and int(count or 0) < max_jobs:
            return 0
        return int(self.client.pttl(k.limiter))

    def remove_rate_limit_key(self, queue: str) -> None:
        self.client.delete(self.keys(queue).limiter)

    def set_meta(self, queue: str, field: str, value: str | None) -> None:
        if value is None:
            self.client.hdel(self.keys(queue).meta, field)
        else:
            self.client.hset(self.keys(queue).meta, field, value)

    def set_dead_letter_queue(self, queue: str, dlq: str | None) -> None:
        """Check the one-queue-per-dead-letter-queue rule and write the setting, in one script (atomic)."""
        reply = self._run("setDeadLetterQueue", queue, dlq or "")
        code, other = int(reply[0]), _s(reply[1]) if len(reply) > 1 else ""
        if code != 0:
            raise dead_letter_refusal(code, queue, dlq or "", other)

    def get_meta(self, queue: str, field: str) -> str | None:
        v = self.client.hget(self.keys(queue).meta, field)
        return None if v is None else _s(v)

    def ensure_meta(self, queue: str, max_len_events: int) -> None:
        self.client.hsetnx(self.keys(queue).meta, "opts.maxLenEvents", max_len_events)

    def read_events(self, queue: str, last_id: str = "0", count: int | None = None,
                    block_ms: int | None = None) -> list[tuple[str, dict[str, str]]]:
        resp = self.client.xread({self.keys(queue).events: last_id}, count=count, block=block_ms)
        if not resp:
            return []
        _, entries = resp[0]
        return [(_s(eid), {_s(k): _s(v) for k, v in fields.items()}) for eid, fields in entries]

    def read_event_entries(self, queue: str, after: tuple[int, int]) -> list[tuple[int, int, tuple[str, ...]]]:
        """The events stream's entries after id ``after`` = (ms, seq), as ``(ms, seq, flat field tuple)`` — the
        simulation's recorder reads this way. One XREAD whose raw reply is read as it comes, without redis-py's
        conversion into dicts."""
        key = self.keys(queue).events
        fields = [b"XREAD", b"STREAMS", key.encode(), b"%d-%d" % after]
        if self.in_process:
            send: Callable[[Any], list[Any] | None] = lambda conn: conn.run_commands([fields])  # noqa: E731
        else:
            packed = resp_command(b"", 0, fields)
            send = lambda conn: conn.send_packed_command([packed])  # noqa: E731
        (reply,) = _raise_errors(self._exchange(send, 1))
        if not reply:
            return []
        # Redis answers [[key, entries]]; fakeredis hands over {key: entries}
        (_, stored), = reply.items() if isinstance(reply, dict) else reply
        entries = []
        for entry_id, flat in stored:
            ms, _, seq = _s(entry_id).partition("-")
            if type(entry_id) is bytes:  # a client without decode_responses: every field is bytes too
                entries.append((int(ms), int(seq), tuple([x.decode() for x in flat])))
            else:
                entries.append((int(ms), int(seq), tuple(flat)))
        return entries

    def queue_names(self) -> list[str]:
        """The queues under this prefix, found by their ``meta`` hash (every queue writes one when created)."""
        import re

        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + ":*:meta"
        start, end = len(self.prefix) + 1, -len(":meta")
        found = set()
        for raw in self.client.scan_iter(match=pattern, count=1000):
            name = _s(raw)[start:end]
            try:
                found.add(validate_queue_name(name))
            except OptionError:
                continue  # e.g. a job hash whose id happens to end in ":meta"
        return sorted(found)

    def last_event_id(self, queue: str) -> str:
        """Id of the newest entry of the events stream, ``"0"`` when it is empty (what ``$`` starts after)."""
        newest = self.client.xrevrange(self.keys(queue).events, count=1)
        return _s(newest[0][0]) if newest else "0"

    def trim_events(self, queue: str, max_len: int) -> None:
        self.client.xtrim(self.keys(queue).events, maxlen=max_len, approximate=False)

    # --- job schedulers ----------------------------------------------------------------------------------

    def get_job_scheduler(self, queue: str, scheduler_id: str) -> dict[str, str] | None:
        """A scheduler's stored settings (the ``repeat:<id>`` hash) plus ``next``, the due time of its pending
        iteration from the ``repeat`` set; None when no such scheduler exists."""
        k = self.keys(queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(f"{k.key('repeat')}:{scheduler_id}")
        pipe.zscore(k.key("repeat"), scheduler_id)
        raw, score = pipe.execute()
        if not raw:
            return None
        fields = {_s(f): _s(v) for f, v in raw.items()}
        if score is not None:
            fields["next"] = str(int(score))
        return fields

    def get_job_scheduler_ids(self, queue: str) -> list[tuple[str, int]]:
        """Every scheduler id with the due time of its pending iteration, soonest first."""
        return [(_s(m), int(sc)) for m, sc in self.client.zrange(self.keys(queue).key("repeat"), 0, -1,
                                                                     withscores=True)]

    def add_job_scheduler(self, queue: str, scheduler_id: str, due_ms: int | None, name: str, data: str,
                          opts_json: str, every: int | None, offset: int | None, start_date: int | None,
                          settings: dict[str, str], now: int) -> str | int:
        """Create or replace a scheduler and its pending iteration (see ``addJobScheduler.lua``). ``due_ms`` is the
        first run of a ``pattern`` scheduler; an ``every`` one computes it in the script. Returns the iteration's
        id, or -10 / -11 when the id is taken (nothing written)."""
        flat = [x for pair in settings.items() for x in pair]
        raw = self._run("addJobScheduler", queue, scheduler_id, "" if due_ms is None else due_ms, name, data,
                        opts_json, "" if every is None else every, "" if offset is None else offset,
                        "" if start_date is None else start_date, *flat, now=now)
        return raw if isinstance(raw, int) else _s(raw)

    def update_job_scheduler(self, queue: str, scheduler_id: str, producer_id: str, due_ms: int | None, name: str,
                             data: str, opts_json: str, now: int) -> str | None:
        """Create a scheduler's next iteration because ``producer_id``, its pending one, became active (see
        ``updateJobScheduler.lua``). Returns the new id, or None when nothing was created."""
        raw = self._run("updateJobScheduler", queue, scheduler_id, producer_id, "" if due_ms is None else due_ms,
                        name, data, opts_json, now=now)
        return None if isinstance(raw, int) else _s(raw)

    def remove_job_scheduler(self, queue: str, scheduler_id: str) -> bool:
        return bool(self._run("removeJobScheduler", queue, scheduler_id))

    def get_dependencies(self, queue: str, job_id: str) -> dict[str, Any]:
        """A flow parent's children: ``processed`` (child key → return value JSON), ``unprocessed`` (keys still
        pending, sorted), ``failed`` (keys of children that failed it, oldest first) and ``ignored`` (child key
        → failed reason)."""
        key = self.keys(queue).job(job_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(f"{key}:processed")
        pipe.smembers(f"{key}:dependencies")
        pipe.zrange(f"{key}:unsuccessful", 0, -1)
        pipe.hgetall(f"{key}:failed")
        processed, pending, failed, ignored = pipe.execute()
        return {
            "processed": {_s(k): _s(v) for k, v in processed.items()},
            "unprocessed": sorted(_s(k) for k in pending),
            "failed": [_s(k) for k in failed],
            "ignored": {_s(k): _s(v) for k, v in ignored.items()},
        }

    def clear_logs(self, queue: str, job_id: str, keep_logs: int | None) -> None:
        """Drop a job's log lines, or all but the last ``keep_logs`` of them."""
        key = self.keys(queue).job_logs(job_id)
        if keep_logs:
            self.client.ltrim(key, -keep_logs, -1)
        else:
            self.client.delete(key)

    def redrive(self, dlq: str, job_id: str) -> str:
        fields = self.client.hget(self.keys(dlq).job(job_id), "dlqSource")
        if fields is None:
            raise JobNotFoundError(f"job {job_id} is not in dead-letter queue {dlq!r}")
        source = _s(fields)
        code = self._run("redriveJob", source, dlq, job_id)
        if code == -3:
            raise JobStateError(f"cannot redrive job {job_id}: queue {source!r} already has a job with that id", -3)
        self._check(code, job_id, "redriveJob")
        return source

    def close(self) -> None:
        self.client.close()


class PipelinedTransitions:
    """``move_to_active`` and ``move_to_finished`` of a :class:`RedisBackend` as coroutines: the same scripts
    with the same arguments, sent over a :class:`PipelinedConnection` so that many jobs of one event loop
    share it. Build it with :meth:`RedisBackend.pipelined`; use it from one event loop only."""

    def __init__(self, backend: RedisBackend, connection: PipelinedConnection) -> None:
        self.backend = backend
        self.connection = connection

    async def _run(self, name: str, queue: str, *args: Any) -> Any:
        script = load_script(name)
        packets = self.backend._packets(script, queue, [[self.backend.clock.now_ms(), *args]])
        replies = await self.connection.send(packets, 1)
        if _is_noscript(replies[0]):
            self.backend.client.script_load(script.source)
            replies = await self.connection.send(packets, 1)
        return _raise_errors(replies)[0]

    async def move_to_active(self, queue: str, fetch: FetchArgs) -> FetchResult:
        b = self.backend
        return b._fetch_result(await self._run("moveToActive", queue, fetch.token, *b._fetch_args(fetch)))

    async def move_to_finished(self, queue: str, job_id: str, token: str, *, completed: bool, value: str,
                               stacktrace: str | None, max_attempts: int, keep: KeepJobs | None,
                               fetch_next: FetchArgs | None) -> FetchResult | None:
        b = self.backend
        args = b._finished_args(job_id, token, completed, value, stacktrace, max_attempts, keep, fetch_next)
        return b._finished_result(await self._run("moveToFinished", queue, *args), job_id)

    def close(self) -> None:
        self.connection.close()
