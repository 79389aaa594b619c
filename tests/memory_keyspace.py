"""A Redis-shaped window onto the memory backend's state, for tests that inspect keys.

Many behaviour tests check the Redis key layout directly (``env.conn.client.get(q.keys.id)``, the set of keys
left after ``drain``, a job's lock value…). The memory backend holds the very same state in Python structures,
so :class:`MemoryKeyspace` answers those reads under BullMQ's key names: each structure of a queue appears as
the key Redis would have for it (an empty list or set has no key, as in Redis; an expired lock is gone). It is
test plumbing only: the engine never goes through it, and ``Connection.client`` still refuses on ``memory://``.
Writes are limited to the few that tests use to set up a situation (deleting a marker, setting a job field).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any

from queuesim.backends.memory import MemoryBackend, _index_slice, _Queue, _ZSet
from queuesim.connection import Connection

_ZSETS = {"prioritized": "prioritized", "delayed": "delayed", "completed": "completed", "failed": "failed",
          "waiting-children": "waiting_children", "repeat": "repeat", "marker": None}
_LISTS = ("wait", "paused", "active")


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class MemoryKeyspace:
    """The memory backend's state, read like a redis-py client (values as bytes)."""

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend

    # --- the key layout ------------------------------------------------------------------------------------

    def _resolve(self, key: Any) -> tuple[_Queue, str] | None:
        """(queue, rest of the key) for ``<prefix>:<queue>:<rest>``."""
        prefix, _, rest = _s(key).partition(":")
        queue, _, suffix = rest.partition(":")
        if prefix != self.backend.prefix or queue not in self.backend._queues:
            return None
        return self.backend._queues[queue], suffix

    def _now(self) -> int:
        return self.backend.clock.now_ms()

    def _value(self, key: Any) -> tuple[str, Any] | None:
        """(Redis type, the structure) of a key, or None when it does not exist."""
        found = self._resolve(key)
        if found is None:
            return None
        q, suffix = found
        b, now = self.backend, self._now()
        if suffix in _LISTS:
            lst = q.list_named(suffix)
            return ("list", lst) if lst else None
        if suffix in _ZSETS:
            if suffix == "marker":
                return ("zset", q.marker) if q.marker else None
            zset = getattr(q, _ZSETS[suffix] or suffix)
            return ("zset", zset) if len(zset) else None
        if suffix == "stalled":
            return ("set", q.stalled) if q.stalled else None
        if suffix == "stalled-check":
            return ("string", "1") if b._stalled_check_exists(q, now) else None
        if suffix == "id":
            return ("string", q.id) if q.id else None
        if suffix == "pc":
            return ("string", q.pc) if q.pc else None
        if suffix == "meta":
            return ("hash", q.meta) if q.meta else None
        if suffix == "events":
            stream = q.events
            return ("stream", stream) if (len(stream) or stream.last_ms or stream.last_seq) else None
        if suffix == "limiter":
            lim = b._limiter(q, now)
            return ("string", lim[0]) if lim is not None else None
        head, _, tail = suffix.partition(":")
        if head == "repeat" and tail:
            h = q.repeat_hashes.get(tail)
            return ("hash", h) if h else None
        if head == "de" and tail:
            owner = b._dedup_owner(q, tail, now)
            return ("string", owner) if owner is not None else None
        if head == "dn" and tail:
            h = q.dedup_next.get(tail)
            return ("hash", h) if h else None
        job_id, sub = suffix, ""
        for name in ("logs", "lock", "dependencies", "processed", "failed", "unsuccessful"):
            if suffix.endswith(":" + name):
                job_id, sub = suffix[: -len(name) - 1], name
                break
        if sub == "":
            h = q.jobs.get(job_id)
            return ("hash", h) if h else None
        if sub == "logs":
            logs = q.logs.get(job_id)
            return ("list", logs) if logs else None
        if sub == "lock":
            token = b._lock_token(q, job_id, now)
            return ("string", token) if token is not None else None
        if sub == "dependencies":
            deps = q.dependencies.get(job_id)
            return ("set", deps) if deps else None
        if sub == "processed":
            h = q.children_processed.get(job_id)
            return ("hash", h) if h else None
        if sub == "failed":
            h = q.children_failed.get(job_id)
            return ("hash", h) if h else None
        zset = q.unsuccessful.get(job_id)
        return ("zset", zset) if zset is not None and len(zset) else None

    def _all_keys(self) -> list[str]:
        keys = []
        for q in list(self.backend._queues.values()):
            base = f"{self.backend.prefix}:{q.name}:"
            names = [*_LISTS, *_ZSETS, "stalled", "stalled-check", "id", "pc", "meta", "events", "limiter"]
            names += [f"repeat:{sid}" for sid in q.repeat_hashes]
            names += [f"de:{d}" for d in q.dedup] + [f"dn:{d}" for d in q.dedup_next]
            for job_id in {*q.jobs, *q.logs, *q.locks, *q.dependencies, *q.children_processed,
                           *q.children_failed, *q.unsuccessful}:
                names += [job_id, *(f"{job_id}:{s}" for s in ("logs", "lock", "dependencies", "processed", "failed",
                                                               "unsuccessful"))]
            keys += [base + n for n in names if self._value(base + n) is not None]
        return keys

    # --- reads ---------------------------------------------------------------------------------------------

    def ping(self) -> bool:
        return True

    def scan_iter(self, match: Any = None, count: int | None = None) -> Iterator[bytes]:
        for key in self._all_keys():
            if match is None or fnmatch.fnmatchcase(key, _s(match)):
                yield key.encode()

    def keys(self, pattern: Any = "*") -> list[bytes]:
        return list(self.scan_iter(pattern))

    def dbsize(self) -> int:
        return len(self._all_keys())

    def exists(self, *keys: Any) -> int:
        return sum(1 for k in keys if self._value(k) is not None)

    def type(self, key: Any) -> bytes:
        found = self._value(key)
        return (found[0] if found else "none").encode()

    def get(self, key: Any) -> bytes | None:
        found = self._value(key)
        if found is None:
            return None
        if found[0] != "string":
            raise TypeError(f"WRONGTYPE {_s(key)} is a {found[0]}")
        return _b(found[1])

    def _hash(self, key: Any) -> dict[str, str]:
        found = self._value(key)
        if found is None:
            return {}
        if found[0] != "hash":
            raise TypeError(f"WRONGTYPE {_s(key)} is a {found[0]}")
        return found[1]

    def hgetall(self, key: Any) -> dict[bytes, bytes]:
        return {_b(k): _b(v) for k, v in self._hash(key).items()}

    def hget(self, key: Any, field: Any) -> bytes | None:
        value = self._hash(key).get(_s(field))
        return None if value is None else _b(value)

    def hmget(self, key: Any, *fields: Any) -> list[bytes | None]:
        flat = fields[0] if len(fields) == 1 and isinstance(fields[0], list | tuple) else fields
        return [self.hget(key, f) for f in flat]

    def hvals(self, key: Any) -> list[bytes]:
        return [_b(v) for v in self._hash(key).values()]

    def _zset_items(self, key: Any) -> list[tuple[float, str]]:
        found = self._value(key)
        if found is None:
            return []
        value = found[1]
        if isinstance(value, _ZSet):
            return [(float(score), m) for score, m in value.sorted_items()]
        return sorted((float(score), m) for m, score in value.items())  # the marker

    def zscore(self, key: Any, member: Any) -> float | None:
        return next((score for score, m in self._zset_items(key) if m == _s(member)), None)

    def zcard(self, key: Any) -> int:
        return len(self._zset_items(key))

    def zrange(self, key: Any, start: int, end: int, withscores: bool = False) -> list[Any]:
        items = self._zset_items(key)
        rows: list[Any] = _index_slice(items, len(items), start, end)  # type: ignore[arg-type]
        return [(m.encode(), score) if withscores else m.encode() for score, m in rows]

    def smembers(self, key: Any) -> set[bytes]:
        found = self._value(key)
        return {_b(m) for m in found[1]} if found else set()

    def sismember(self, key: Any, member: Any) -> bool:
        return _b(member) in self.smembers(key)

    def lrange(self, key: Any, start: int, end: int) -> list[bytes]:
        found = self._value(key)
        if found is None:
            return []
        lst = list(found[1])
        return [_b(v) for v in _index_slice(lst, len(lst), start, end)]

    def llen(self, key: Any) -> int:
        found = self._value(key)
        return len(found[1]) if found else 0

    def xlen(self, key: Any) -> int:
        found = self._value(key)
        return len(found[1]) if found else 0

    def xrange(self, key: Any, min: Any = "-", max: Any = "+", count: int | None = None) -> list[Any]:
        found = self._value(key)
        if found is None:
            return []
        stream = found[1]
        rows = [(f"{ms}-{seq}".encode(), {_b(k): _b(v) for k, v in zip(f[0::2], f[1::2], strict=True)})
                for ms, seq, f in [*stream.entries, *stream.tail]]
        return rows[:count] if count is not None else rows

    def xrevrange(self, key: Any, max: Any = "+", min: Any = "-", count: int | None = None) -> list[Any]:
        rows = list(reversed(self.xrange(key)))
        return rows[:count] if count is not None else rows

    # --- the few writes tests use to set up a situation ----------------------------------------------------

    def delete(self, *keys: Any) -> int:
        removed = 0
        for key in keys:
            found = self._resolve(key)
            if found is None or self._value(key) is None:
                continue
            q, suffix = found
            if suffix == "marker":
                q.marker.clear()
            elif suffix == "limiter":
                q.limiter = None
            elif suffix in q.jobs:
                del q.jobs[suffix]
            else:
                raise NotImplementedError(f"deleting {_s(key)} through the memory keyspace view")
            removed += 1
        return removed

    def hset(self, key: Any, field: Any = None, value: Any = None, mapping: dict[Any, Any] | None = None) -> int:
        found = self._resolve(key)
        if found is None:
            raise NotImplementedError(f"writing {_s(key)} through the memory keyspace view")
        q, suffix = found
        target = q.meta if suffix == "meta" else q.jobs.setdefault(suffix, {})
        pairs = dict(mapping or {})
        if field is not None:
            pairs[field] = value
        added = sum(1 for f in pairs if _s(f) not in target)
        for f, v in pairs.items():
            target[_s(f)] = _s(v)
        if suffix == "meta":
            q._read_meta()
        return added

    def hincrby(self, key: Any, field: Any, amount: int = 1) -> int:
        h = self._hash(key)
        value = int(h.get(_s(field), "0")) + amount
        self.hset(key, field, value)
        return value

    def script_flush(self) -> bool:
        """No scripts to flush: the memory backend runs its transitions as Python methods."""
        return True

    def close(self) -> None:
        pass


class MemoryTestConnection(Connection):
    """A ``memory://`` connection whose ``client`` is the keyspace view (tests only)."""

    @property
    def client(self) -> Any:  # type: ignore[override]
        return MemoryKeyspace(self.backend)  # type: ignore[arg-type]

    def duplicate(self) -> Connection:
        return MemoryTestConnection(self.backend, self.url)


__all__ = ["MemoryKeyspace", "MemoryTestConnection"]
