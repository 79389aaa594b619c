"""The Redis backend: every state transition is one Lua script, atomic on Redis.

It runs unchanged on a real Redis shared by many worker processes and on the embedded fakeredis server (whose
clock follows a :class:`~queuesim.clock.VirtualClock` through :mod:`queuesim.backends.fake`). Key names,
event names and job-hash fields are BullMQ's, so BullMQ tools can read the same queues.
"""

from __future__ import annotations

from typing import Any

import redis

from queuesim.backends.base import AddResult, FetchArgs, FetchResult
from queuesim.backends.scripts import Script, load_script
from queuesim.clock import Clock
from queuesim.errors import JobNotFoundError, JobStateError, LockError, error_for_code
from queuesim.keys import QueueKeys
from queuesim.options import JobOptions, KeepJobs, validate_prefix, validate_queue_name

__all__ = ["RedisBackend"]

#: KEYS[1..17] of every script, in order (see lua/includes/common.lua).
_KEY_ORDER = ("wait", "paused", "active", "prioritized", "pc", "delayed", "completed", "failed", "stalled",
              "stalled-check", "id", "meta", "events", "marker", "limiter", "waiting-children", "repeat")

_STATE_TYPES = {
    "wait": "list", "paused": "list", "active": "list", "waiting": "list",
    "prioritized": "zset", "delayed": "zset", "completed": "zset", "failed": "zset", "waiting-children": "zset",
}


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {_s(flat[i]): _s(flat[i + 1]) for i in range(0, len(flat), 2)}


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

    # --- plumbing ----------------------------------------------------------------------------------------

    def keys(self, queue: str) -> QueueKeys:
        return QueueKeys(self.prefix, queue)

    def _queue_keys(self, queue: str) -> list[str]:
        keys = self._keys.get(queue)
        if keys is None:
            validate_queue_name(queue)
            base = f"{self.prefix}:{queue}:"
            keys = self._keys[queue] = [base + suffix for suffix in _KEY_ORDER]
        return keys

    def _run(self, script: str, queue: str, *args: Any, now: int | None = None) -> Any:
        s: Script = load_script(script)
        when = self.clock.now_ms() if now is None else now
        return s(self.client, self._queue_keys(queue), [self.prefix, queue, when, *args])

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

    def _add_args(self, name: str, data: str, opts: JobOptions, timestamp: int,
                  scheduler_id: str | None) -> list[Any]:
        import json

        de = opts.deduplication
        return [
            opts.job_id or "", name, data, json.dumps(opts.to_wire(), separators=(",", ":")), timestamp,
            opts.delay, opts.priority, "1" if opts.lifo else "0",
            de.id if de else "", (de.ttl or "") if de else "", "1" if de and de.extend else "0",
            "1" if de and de.replace else "0", scheduler_id or "",
        ]

    def add_job(self, queue: str, name: str, data: str, opts: JobOptions, timestamp: int,
                scheduler_id: str | None = None) -> AddResult:
        job_id, outcome = self._run("addJob", queue, *self._add_args(name, data, opts, timestamp, scheduler_id))
        return AddResult(_s(job_id), _s(outcome))

    def add_jobs(self, queue: str, jobs: list[tuple[str, str, JobOptions, int]]) -> list[AddResult]:
        """Add many jobs in one round trip (a pipeline of script calls; each add stays atomic)."""
        if not jobs:
            return []
        script = load_script("addJob")
        keys = self._queue_keys(queue)
        now = self.clock.now_ms()
        if not self.client.script_exists(script.sha)[0]:
            self.client.script_load(script.source)
        pipe = self.client.pipeline(transaction=False)
        for name, data, opts, ts in jobs:
            pipe.evalsha(script.sha, len(keys), *keys, self.prefix, queue, now,
                         *self._add_args(name, data, opts, ts, None))
        return [AddResult(_s(i), _s(o)) for i, o in pipe.execute()]

    # --- workers -----------------------------------------------------------------------------------------

    @staticmethod
    def _fetch_args(f: FetchArgs) -> list[Any]:
        lim = f.limiter
        return [f.lock_duration, lim.max if lim else "", lim.duration if lim else "", f.worker_name or ""]

    def move_to_active(self, queue: str, fetch: FetchArgs) -> FetchResult:
        f = self._fetch_args(fetch)
        return self._fetch_result(self._run("moveToActive", queue, fetch.token, *f))

    def move_to_finished(self, queue: str, job_id: str, token: str, *, completed: bool, value: str,
                         stacktrace: str | None, max_attempts: int, keep: KeepJobs | None,
                         fetch_next: FetchArgs | None) -> FetchResult | None:
        keep_args = keep.script_args() if keep is not None else [-1, -1, 1000]
        nxt = self._fetch_args(fetch_next) if fetch_next else [0, "", "", ""]
        raw = self._run(
            "moveToFinished", queue, job_id, token, "completed" if completed else "failed", value,
            stacktrace if stacktrace is not None else "", max_attempts, *keep_args,
            "1" if fetch_next else "0", *nxt, fetch_next.token if fetch_next else "",
        )
        if isinstance(raw, int):
            self._check(raw, job_id, "moveToFinished", "active")
            return None
        return self._fetch_result(raw)

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

    def remove_job(self, queue: str, job_id: str) -> bool:
        code = self._run("removeJob", queue, job_id)
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

    def trim_events(self, queue: str, max_len: int) -> None:
        self.client.xtrim(self.keys(queue).events, maxlen=max_len, approximate=False)

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
