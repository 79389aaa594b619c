"""The memory backend: the same queue engine as the Redis backend, in plain Python data structures.

Why it exists: a simulation of a busy queue needs millions of jobs, and running every transition as a Lua script
on fakeredis costs tens of microseconds per Redis command. This backend keeps the *same state* the Redis backend
keeps — the same lists, sorted sets, hashes, counters, expiring keys and events stream — but holds it in the
Python structures that fit each job: a :class:`collections.deque` for a Redis list, a dict plus a heap for a
sorted set, a dict of strings for a job hash. Each transition is a direct translation of its Lua script
(``backends/lua/*.lua``), step for step, so the two backends are indistinguishable through the backend contract:
same return values, same exceptions, same events (names, fields, order and ``<ms>-<seq>`` ids) and the same
job-hash fields. ``tests/test_differential.py`` checks exactly that on generated operation sequences.

Things worth knowing when reading the code:

* **Orientation of lists.** A Redis list has a left and a right end; BullMQ pushes new jobs on the left (LPUSH)
  and workers take them from the right (RPOPLPUSH), so "the head of the queue" is the right end. A deque here has
  the same orientation: ``appendleft`` is LPUSH, ``append`` is RPUSH, ``pop`` takes the head.
* **Sorted sets** order members by ``(score, member)``; ties between equal scores are broken by the member's
  bytes, as Redis does. :class:`_ZSet` keeps a dict (member → score) for O(1) lookups and a heap for the
  lowest member; removed members leave stale heap entries that are skipped when they reach the top.
* **Expiring keys** (locks, the stalled-check lease, the rate limiter, deduplication ids) store their expiry
  time in ms. Like Redis, a key is gone once ``now > expires_at`` (at exactly ``expires_at`` it still exists),
  and "now" is the injected clock's, so a 30 s lock lasts 30 s of *virtual* time in a simulation.
* **The events stream** packs entries into nodes exactly as Redis does (at most 100 entries or 4096 bytes per
  node), because ``MAXLEN ~`` trimming drops whole nodes only: the packing decides how many entries survive.

Thread safety: every public method runs under one lock, the equivalent of a Lua script's atomicity, so
producers and live workers in several threads may share one backend.
"""

from __future__ import annotations

import heapq
import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from itertools import islice
from typing import Any

from queuesim.backends.base import AddResult, FetchArgs, FetchResult, dead_letter_refusal, flow_parent_args
from queuesim.clock import Clock
from queuesim.defaults import KEEP_JOBS_LIMIT, MAX_SAFE_INTEGER, STALLED_LIMIT_REASON
from queuesim.errors import JobNotFoundError, JobStateError, LockError, OptionError, error_for_code
from queuesim.keys import QueueKeys
from queuesim.options import JobOptions, KeepJobs, validate_prefix, validate_queue_name

__all__ = ["MemoryBackend"]

#: prioritized score = priority * 2^32 + counter (BullMQ's encoding)
PRIORITY_SHIFT = 4_294_967_296
#: delayed score = due_ms * 4096 + n (FIFO among up to 4096 jobs due in the same ms)
DELAY_SHIFT = 4096
#: due delayed jobs promoted by one fetch
PROMOTE_BATCH = 1000
#: the events stream's default length (meta "opts.maxLenEvents" when unset)
DEFAULT_MAX_EVENTS = 10_000
#: Redis' stream node limits (``stream-node-max-entries`` / ``stream-node-max-bytes``) and the default LIMIT of an
#: approximate trim (100 nodes' worth of entries)
NODE_MAX_ENTRIES = 100
NODE_MAX_BYTES = 4096
APPROX_TRIM_LIMIT = 100 * NODE_MAX_ENTRIES

_MISSING: Any = object()
#: fetch answers without a job are immutable: share the common ones
_PAUSED_OR_MAXED = FetchResult(paused_or_maxed=True)
_NOTHING_SCHEDULED = FetchResult()


def _result_builders() -> tuple[Any, Any]:
    """Fast constructors of the two results of the hot path. A frozen dataclass's ``__init__`` sets each field
    through a Python-level call; setting the slots directly gives the same (equal, immutable) objects for less
    than half the cost. Falls back to the ordinary constructors if the classes ever lose their slots."""
    try:
        new = object.__new__
        f_id, f_fields, f_ttl, f_due, f_paused = (FetchResult.job_id.__set__, FetchResult.fields.__set__,  # type: ignore
                                                  FetchResult.rate_limit_ms.__set__,  # type: ignore[attr-defined]
                                                  FetchResult.next_due_ms.__set__,  # type: ignore[attr-defined]
                                                  FetchResult.paused_or_maxed.__set__)  # type: ignore[attr-defined]
        a_id, a_outcome = AddResult.job_id.__set__, AddResult.outcome.__set__  # type: ignore[attr-defined]
    except AttributeError:
        return (lambda job_id, fields: FetchResult(job_id=job_id, fields=fields)), AddResult

    def fetched(job_id: str, fields: dict[str, str]) -> FetchResult:
        r = new(FetchResult)
        f_id(r, job_id)
        f_fields(r, fields)
        f_ttl(r, 0)
        f_due(r, 0)
        f_paused(r, False)
        return r

    def added(job_id: str, outcome: str) -> AddResult:
        r = new(AddResult)
        a_id(r, job_id)
        a_outcome(r, outcome)
        return r

    return fetched, added


_fetched, _added = _result_builders()


def _tonumber(text: str | None) -> int | float | None:
    """Lua's ``tonumber`` on a stored string: an int or float, or None when it is not a number."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def _num(value: int | float) -> str:
    """A number as a Lua script hands it to Redis (``%.17g``: integers without a decimal point)."""
    if isinstance(value, float):
        return f"{value:.17g}"
    return str(value)


def _index_slice(items: Iterable[str], size: int, start: int, end: int) -> list[str]:
    """Redis range semantics (LRANGE / ZRANGE): inclusive ``start..end``, negative indexes count from the end."""
    if start < 0:
        start = max(size + start, 0)
    if end < 0:
        end = size + end
    if end >= size:
        end = size - 1
    if start > end or start >= size:
        return []
    return list(islice(items, start, end + 1))


def _lrem(lst: deque[str], value: str, count: int) -> int:
    """LREM: remove ``count`` occurrences from the left (count > 0), from the right (< 0) or all (0)."""
    if count > 0:
        removed = 0
        while removed < count:
            try:
                lst.remove(value)
            except ValueError:
                break
            removed += 1
        return removed
    if count == 0:
        n = lst.count(value)
        if n:
            kept = [x for x in lst if x != value]
            lst.clear()
            lst.extend(kept)
        return n
    removed = 0
    lst.reverse()
    try:
        while removed < -count:
            try:
                lst.remove(value)
            except ValueError:
                break
            removed += 1
    finally:
        lst.reverse()
    return removed


def _ltrim(lst: list[str], start: int, end: int) -> None:
    """LTRIM on a Python list (inclusive range, negative indexes from the end)."""
    kept = _index_slice(lst, len(lst), start, end)
    lst[:] = kept


# --- sorted sets ---------------------------------------------------------------------------------------------


class _ZSet:
    """A Redis sorted set: members ordered by ``(score, member)``.

    ``scores`` maps member → score; ``_heap`` holds ``(score, member)`` pairs and may contain stale pairs of
    removed or re-scored members, which are dropped when they reach the top. For the delayed set,
    ``windows`` groups the members by due millisecond (score // 4096) so the next free slot of a millisecond is
    found without scanning the set.
    """

    __slots__ = ("_heap", "scores", "windows")

    def __init__(self, windows: bool = False) -> None:
        self.scores: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self.windows: dict[int, dict[str, int]] | None = {} if windows else None

    def __len__(self) -> int:
        return len(self.scores)

    def __contains__(self, member: str) -> bool:
        return member in self.scores

    def add(self, member: str, score: int) -> None:
        """ZADD (new member or new score)."""
        scores = self.scores
        if self.windows is not None:
            old = scores.get(member, _MISSING)
            if old is not _MISSING:
                self._unwindow(member, old)
            self.windows.setdefault(score // DELAY_SHIFT, {})[member] = score
        scores[member] = score
        heap = self._heap
        heapq.heappush(heap, (score, member))
        if len(heap) > 2 * len(scores) + 64:
            self._compact()

    def _unwindow(self, member: str, score: int) -> None:
        assert self.windows is not None
        base = score // DELAY_SHIFT
        window = self.windows.get(base)
        if window is not None:
            window.pop(member, None)
            if not window:
                del self.windows[base]

    def _compact(self) -> None:
        self._heap = [(s, m) for m, s in self.scores.items()]
        heapq.heapify(self._heap)

    def remove(self, member: str) -> bool:
        """ZREM: True when the member was there."""
        score = self.scores.pop(member, _MISSING)
        if score is _MISSING:
            return False
        if self.windows is not None:
            self._unwindow(member, score)
        if len(self._heap) > 2 * len(self.scores) + 64:
            self._compact()
        return True

    def score(self, member: str) -> int | None:
        """ZSCORE."""
        return self.scores.get(member)

    def _clean_top(self) -> list[tuple[int, str]]:
        heap, scores = self._heap, self.scores
        while heap:
            s, m = heap[0]
            if scores.get(m, _MISSING) == s:
                break
            heapq.heappop(heap)
        return heap

    def peek_min(self) -> tuple[int, str] | None:
        """The lowest ``(score, member)`` without removing it (ZRANGE 0 0 WITHSCORES)."""
        heap = self._clean_top()
        return heap[0] if heap else None

    def pop_min(self) -> tuple[int, str] | None:
        """ZPOPMIN."""
        heap = self._clean_top()
        if not heap:
            return None
        s, m = heapq.heappop(heap)
        del self.scores[m]
        if self.windows is not None:
            self._unwindow(m, s)
        return s, m

    def pop_upto(self, max_score: int, limit: int) -> list[str]:
        """ZRANGEBYSCORE 0 max LIMIT 0 limit, then ZREM of every member returned (lowest first)."""
        out: list[str] = []
        while len(out) < limit:
            top = self.peek_min()
            if top is None or top[0] > max_score:
                break
            self.pop_min()
            out.append(top[1])
        return out

    def window_max(self, base_ms: int) -> int | None:
        """The highest score of the members due in millisecond ``base_ms`` (delayed set only)."""
        assert self.windows is not None
        window = self.windows.get(base_ms)
        return max(window.values()) if window else None

    def sorted_items(self) -> list[tuple[int, str]]:
        """Every ``(score, member)``, lowest first (Redis order)."""
        return sorted((s, m) for m, s in self.scores.items())

    def members(self) -> list[str]:
        """ZRANGE 0 -1."""
        return [m for _, m in self.sorted_items()]

    def range_by_score(self, lo: int | float, hi: int | float) -> list[str]:
        """ZRANGEBYSCORE lo hi (inclusive), lowest first."""
        return [m for s, m in self.sorted_items() if lo <= s <= hi]

    def count(self, lo: int | float, hi: int | float) -> int:
        """ZCOUNT lo hi (inclusive)."""
        return sum(1 for s in self.scores.values() if lo <= s <= hi)

    def clear(self) -> None:
        self.scores.clear()
        self._heap.clear()
        if self.windows is not None:
            self.windows.clear()


# --- events stream -------------------------------------------------------------------------------------------


def _lp_int_size(value: int) -> int:
    """Bytes a Redis listpack spends on an integer element (its encoding plus one back-length byte)."""
    if 0 <= value <= 127:
        return 2
    if -4096 <= value <= 4095:
        return 3
    if -32768 <= value <= 32767:
        return 4
    if -8388608 <= value <= 8388607:
        return 5
    if -2147483648 <= value <= 2147483647:
        return 6
    return 10


_SIZE_CACHE: dict[str, tuple[int, int]] = {}


def _sizes(value: str) -> tuple[int, int]:
    """(byte length, listpack size) of a string element; a listpack stores integer-looking strings as integers."""
    hit = _SIZE_CACHE.get(value)
    if hit is not None:
        return hit
    if value.isascii():
        n = len(value)
        if n < 21:
            digits = value[1:] if value[:1] == "-" else value
            if value == "0" or (digits.isdigit() and digits[:1] != "0"):
                as_int = int(value)
                if -(2**63) <= as_int < 2**63:
                    result = (n, _lp_int_size(as_int))
                    if len(_SIZE_CACHE) >= 8192:
                        _SIZE_CACHE.clear()
                    _SIZE_CACHE[value] = result
                    return result
    else:
        n = len(value.encode())
    encoded = n + (1 if n < 64 else 2 if n < 4096 else 5)
    if encoded <= 127:
        back = 1
    elif encoded <= 16383:
        back = 2
    elif encoded <= 2097151:
        back = 3
    elif encoded <= 268435455:
        back = 4
    else:
        back = 5
    result = (n, encoded + back)
    if n <= 24:
        if len(_SIZE_CACHE) >= 8192:
            _SIZE_CACHE.clear()
        _SIZE_CACHE[value] = result
    return result


class _Node:
    """One node of a stream: how many entries it holds (live and trimmed), its byte size and its master entry."""

    __slots__ = ("deleted", "live", "lp_bytes", "master_ms", "master_seq", "names")

    def __init__(self, ms: int, seq: int, names: tuple[str, ...], lp_bytes: int) -> None:
        self.master_ms = ms
        self.master_seq = seq
        self.names = names
        self.live = 0
        self.deleted = 0
        self.lp_bytes = lp_bytes

    def set_counts(self, live: int, deleted: int) -> None:
        self.lp_bytes += (_lp_int_size(live) + _lp_int_size(deleted)
                          - _lp_int_size(self.live) - _lp_int_size(self.deleted))
        self.live, self.deleted = live, deleted


_SCHEMAS: dict[tuple[str, ...], tuple[Any, ...]] = {}
_SHAPES: dict[tuple[str, int], tuple[Any, ...]] = {}


def _schema(names: tuple[str, ...]) -> tuple[Any, ...]:
    """What an event shape (its field names) adds to a node, cached per shape: (byte length of the names, their
    listpack size, the size of a new node's master entry, the fixed part of an entry whose names match the
    node's master entry, the fixed part of one whose names do not, the names)."""
    hit = _SCHEMAS.get(names)
    if hit is None:
        raw = lp = 0
        for name in names:
            n, s = _sizes(name)
            raw += n
            lp += s
        count = len(names)
        header = 7 + 3 * _lp_int_size(0) + _lp_int_size(count) + lp
        same = _lp_int_size(2) + _lp_int_size(count + 3)
        other = _lp_int_size(0) + _lp_int_size(2 * count + 4) + _lp_int_size(count) + lp
        hit = _SCHEMAS[names] = (raw, lp, header, same, other, names)
    return hit


class _Stream:
    """A Redis stream used as an append-only log: ids ``<ms>-<seq>``, node packing and head trimming.

    Redis packs consecutive entries into nodes; ``MAXLEN ~`` trimming drops whole nodes from the head only, so
    the packing decides what survives a trim. Packing is a fixed function of the entries in order (and of the
    node that trimming leaves open), so it is done lazily: new entries wait in ``tail`` and are packed in one
    batch when a trim needs the head node. A stream that is never trimmed is never packed.
    """

    __slots__ = ("entries", "last_ms", "last_seq", "nodes", "tail")

    def __init__(self) -> None:
        #: entries already packed into ``nodes``, oldest first
        self.entries: deque[tuple[int, int, tuple[str, ...]]] = deque()
        #: newer entries, not packed yet
        self.tail: deque[tuple[int, int, tuple[str, ...]]] = deque()
        self.nodes: deque[_Node] = deque()
        self.last_ms = 0
        self.last_seq = 0

    def __len__(self) -> int:
        return len(self.entries) + len(self.tail)

    def add(self, now_ms: int, fields: tuple[str, ...]) -> None:
        """XADD with id ``*``: the current ms, or the last id's ms with the next sequence number."""
        if now_ms > self.last_ms:
            self.last_ms = now_ms
            self.last_seq = 0
        else:
            self.last_seq += 1
        self.tail.append((self.last_ms, self.last_seq, fields))

    def _pack(self) -> None:
        """Pack tail entries into nodes, oldest first, until the head node is complete (a second node exists)
        or the tail is empty — the same packing Redis does as each entry arrives."""
        tail, entries, nodes = self.tail, self.entries, self.nodes
        node = nodes[-1] if nodes else None
        cache = _SIZE_CACHE
        shapes = _SHAPES
        while tail and len(nodes) < 2:
            entry = tail.popleft()
            ms, seq, fields = entry
            # every event this backend writes is identified by its name and field count (each shape has one
            # set of field names), which saves slicing the names out of every entry
            schema = shapes.get((fields[1], len(fields)))
            if schema is None:
                schema = shapes[fields[1], len(fields)] = _schema(fields[0::2])
            raw = schema[0]
            values_lp = 0
            for value in fields[1::2]:
                hit = cache.get(value) or _sizes(value)
                raw += hit[0]
                values_lp += hit[1]
            if (node is None or node.lp_bytes + raw >= NODE_MAX_BYTES
                    or node.live + node.deleted >= NODE_MAX_ENTRIES):
                node = _Node(ms, seq, schema[5], schema[2])
                nodes.append(node)
            dms, dseq = ms - node.master_ms, seq - node.master_seq
            size = values_lp + (2 if 0 <= dms <= 127 else _lp_int_size(dms)) + (2 if 0 <= dseq <= 127 else
                                                                                  _lp_int_size(dseq))
            size += schema[3] if schema[5] == node.names else schema[4]
            node.lp_bytes += size
            if node.live < 127 and node.deleted <= 127:
                node.live += 1
            else:
                node.set_counts(node.live + 1, node.deleted)
            entries.append(entry)

    def trim(self, max_len: int, approx: bool, limit: int) -> int:
        """XTRIM MAXLEN [~] from the head: whole nodes only when approximate, else down to exactly ``max_len``."""
        entries, nodes = self.entries, self.nodes
        trimmed = 0
        while True:
            total = len(entries) + len(self.tail)
            if total <= max_len:
                break
            if self.tail and len(nodes) < 2:
                self._pack()
            if not nodes:
                break
            node = nodes[0]
            if limit and trimmed + node.live > limit:
                break
            if total - node.live >= max_len:
                for _ in range(node.live):
                    entries.popleft()
                nodes.popleft()
                trimmed += node.live
                continue
            if approx:
                break
            k = total - max_len
            for _ in range(k):
                entries.popleft()
            trimmed += k
            node.set_counts(node.live - k, node.deleted + k)
            break
        return trimmed

    def maybe_trim(self, max_len: int) -> None:
        """XADD's ``MAXLEN ~ max_len``: a cheap test first, since only a whole head node can go."""
        total = len(self.entries) + len(self.tail)
        if total > max_len:
            nodes = self.nodes
            if len(nodes) < 2 or total - nodes[0].live >= max_len:
                self.trim(max_len, True, APPROX_TRIM_LIMIT)

    def newest_id(self) -> str | None:
        newest = self.tail[-1] if self.tail else self.entries[-1] if self.entries else None
        if newest is None:
            return None
        return f"{newest[0]}-{newest[1]}"

    def read_after(self, last_id: str, count: int | None) -> list[tuple[str, dict[str, str]]]:
        """XREAD: the entries with an id greater than ``last_id`` (oldest first)."""
        if last_id == "$":
            return []
        ms_text, _, seq_text = last_id.partition("-")
        newer = self.entries_after((int(ms_text), int(seq_text) if seq_text else 0))
        if count is not None:
            newer = newer[:count]
        return [(f"{ms}-{seq}", dict(zip(fields[0::2], fields[1::2], strict=True))) for ms, seq, fields in newer]

    def entries_after(self, after: tuple[int, int]) -> list[tuple[int, int, tuple[str, ...]]]:
        """The stored entries with an id greater than ``after`` = (ms, seq), oldest first."""
        newer: list[tuple[int, int, tuple[str, ...]]] = []
        # entries are ordered by id: walk back from the newest
        for part in (self.tail, self.entries):
            for entry in reversed(part):
                if (entry[0], entry[1]) <= after:
                    break
                newer.append(entry)
            else:
                continue
            break
        newer.reverse()
        return newer


# --- one queue's state ---------------------------------------------------------------------------------------


class _Queue:
    """Everything one queue's Redis keys hold. Attribute names follow the key suffixes (bullmq-semantics §1)."""

    __slots__ = (
        "active",
        "children_failed",
        "children_processed",
        "completed",
        "dedup",
        "dedup_next",
        "delayed",
        "dependencies",
        "events",
        "failed",
        "id",
        "jobs",
        "limiter",
        "locks",
        "logs",
        "m_concurrency",
        "m_dlq",
        "m_duration",
        "m_max",
        "m_max_events",
        "m_paused",
        "marker",
        "meta",
        "name",
        "paused",
        "pc",
        "prioritized",
        "repeat",
        "repeat_hashes",
        "stalled",
        "stalled_check",
        "unsuccessful",
        "wait",
        "waiting_children",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        #: job hashes: id → {field: value}, every value a string, as HGETALL returns them
        self.jobs: dict[str, dict[str, str]] = {}
        #: job logs (the ``:logs`` lists)
        self.logs: dict[str, list[str]] = {}
        #: job locks: id → (token, expires_at_ms)
        self.locks: dict[str, tuple[str, int]] = {}
        #: flow parents' sub-keys: ``:dependencies`` (pending child keys), ``:processed`` (child key → return
        #: value), ``:failed`` (child key → failed reason), ``:unsuccessful`` (child keys that failed the parent)
        self.dependencies: dict[str, dict[str, None]] = {}
        self.children_processed: dict[str, dict[str, str]] = {}
        self.children_failed: dict[str, dict[str, str]] = {}
        self.unsuccessful: dict[str, _ZSet] = {}
        self.wait: deque[str] = deque()
        self.paused: deque[str] = deque()
        self.active: deque[str] = deque()
        self.prioritized = _ZSet()
        self.delayed = _ZSet(windows=True)
        self.completed = _ZSet()
        self.failed = _ZSet()
        self.waiting_children = _ZSet()
        self.repeat = _ZSet()
        #: the ``repeat:<schedulerId>`` hashes
        self.repeat_hashes: dict[str, dict[str, str]] = {}
        #: the priority counter ``pc`` (0 = key missing)
        self.pc = 0
        #: the job id counter ``id`` (0 = key missing)
        self.id = 0
        self.meta: dict[str, str] = {}
        #: the events stream (an empty stream is what a missing key reads as)
        self.events = _Stream()
        self.marker: dict[str, int] = {}
        self.stalled: dict[str, None] = {}
        #: expiry (ms) of the ``stalled-check`` lease, None = no lease
        self.stalled_check: int | None = None
        #: the ``limiter`` counter: [count, expires_at_ms or None], None = key missing
        self.limiter: list[Any] | None = None
        #: ``de:<id>`` keys: dedup id → (owning job id, expires_at_ms or None)
        self.dedup: dict[str, tuple[str, int | None]] = {}
        #: ``dn:<id>`` hashes: the newest duplicate kept while the owner runs (keepLastIfActive)
        self.dedup_next: dict[str, dict[str, str]] = {}
        self._read_meta()

    def _read_meta(self) -> None:
        """Parse the meta hash the way readMeta() in the Lua scripts does."""
        m = self.meta
        self.m_paused = "paused" in m
        self.m_concurrency = _tonumber(m.get("concurrency"))
        self.m_max = _tonumber(m.get("max"))
        self.m_duration = _tonumber(m.get("duration"))
        max_events = _tonumber(m.get("opts.maxLenEvents"))
        self.m_max_events = DEFAULT_MAX_EVENTS if max_events is None else max_events
        self.m_dlq = m.get("dlq")

    def list_named(self, key: str) -> deque[str]:
        return self.wait if key == "wait" else self.paused if key == "paused" else self.active

    def zset_named(self, key: str) -> _ZSet:
        return {"prioritized": self.prioritized, "delayed": self.delayed, "completed": self.completed,
                "failed": self.failed, "waiting-children": self.waiting_children}[key]


_LIST_KEYS = ("wait", "paused", "active", "waiting")
_STATE_KEY = {"waiting": "wait"}


class MemoryBackend:
    """Backend that keeps every queue in process memory (see the module docstring).

    Args:
        clock: where "now" comes from (a :class:`~queuesim.clock.VirtualClock` for simulations).
        prefix: key prefix, only used for the key names :meth:`keys` reports (BullMQ's ``bull``).
    """

    def __init__(self, clock: Clock, prefix: str = "bull") -> None:
        self.clock = clock
        self.prefix = validate_prefix(prefix)
        self._queues: dict[str, _Queue] = {}
        # one lock makes every transition atomic, like a Lua script; no public method calls another, so a plain
        # (faster) lock is enough
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._sleepers = 0
        self._wire_cache: dict[JobOptions, str] = {}
        #: the last ms written as text: jobs started or finished in the same ms share one string
        self._ms_text: tuple[int, str] = (-1, "")
        self._wire_last: tuple[JobOptions | None, str] = (None, "")

    # --- plumbing ----------------------------------------------------------------------------------------

    def keys(self, queue: str) -> QueueKeys:
        """The Redis key names the same queue would have (for display; nothing is stored under them)."""
        return QueueKeys(self.prefix, queue)

    def _q(self, name: str, validate: bool = True) -> _Queue:
        q = self._queues.get(name)
        if q is None:
            if validate:
                validate_queue_name(name)
            q = self._queues[name] = _Queue(name)
        return q

    def _peek(self, name: str) -> _Queue | None:
        return self._queues.get(name)

    def _emit(self, q: _Queue, now: int, fields: tuple[str, ...], capped: bool = True) -> None:
        """XADD to the events stream, with MAXLEN ~ meta.maxEvents unless ``capped`` is False."""
        stream = q.events
        if now > stream.last_ms:  # XADD id "*": this ms, or the last id's ms with the next sequence number
            stream.last_ms = now
            stream.last_seq = 0
        else:
            stream.last_seq += 1
        tail = stream.tail
        tail.append((stream.last_ms, stream.last_seq, fields))
        if capped:
            max_len = q.m_max_events
            total = len(stream.entries) + len(tail)
            if total > max_len:
                nodes = stream.nodes
                # only a whole head node can go: test that cheaply before packing or trimming
                if len(nodes) < 2 or total - nodes[0].live >= max_len:
                    stream.trim(max_len, True, APPROX_TRIM_LIMIT)
        if self._sleepers:
            self._cond.notify_all()

    def _trim_events_approx(self, q: _Queue) -> None:
        """XTRIM MAXLEN ~ meta.maxEvents."""
        q.events.maybe_trim(q.m_max_events)

    # expiring keys: alive while now <= expires_at (Redis deletes a key once now > its expiry)

    @staticmethod
    def _lock_token(q: _Queue, job_id: str, now: int) -> str | None:
        entry = q.locks.get(job_id)
        if entry is None:
            return None
        if now > entry[1]:
            del q.locks[job_id]
            return None
        return entry[0]

    @staticmethod
    def _limiter(q: _Queue, now: int) -> list[Any] | None:
        lim = q.limiter
        if lim is not None and lim[1] is not None and now > lim[1]:
            q.limiter = lim = None
        return lim

    def _limiter_pttl(self, q: _Queue, now: int) -> int:
        lim = self._limiter(q, now)
        if lim is None:
            return -2
        if lim[1] is None:
            return -1
        return int(lim[1] - now)

    @staticmethod
    def _dedup_owner(q: _Queue, dedup_id: str, now: int) -> str | None:
        entry = q.dedup.get(dedup_id)
        if entry is None:
            return None
        if entry[1] is not None and now > entry[1]:
            del q.dedup[dedup_id]
            return None
        return entry[0]

    def _dedup_pttl(self, q: _Queue, dedup_id: str, now: int) -> int:
        if self._dedup_owner(q, dedup_id, now) is None:
            return -2
        expires = q.dedup[dedup_id][1]
        return -1 if expires is None else expires - now

    def _stalled_check_exists(self, q: _Queue, now: int) -> bool:
        if q.stalled_check is not None and now > q.stalled_check:
            q.stalled_check = None
        return q.stalled_check is not None

    # job hashes

    @staticmethod
    def _hash(q: _Queue, job_id: str) -> dict[str, str]:
        """The job hash, created empty when missing (what HSET on a missing key does)."""
        h = q.jobs.get(job_id)
        if h is None:
            h = q.jobs[job_id] = {}
        return h

    @staticmethod
    def _hincr(h: dict[str, str], field: str) -> int:
        value = int(h.get(field, "0")) + 1
        h[field] = str(value)
        return value

    @staticmethod
    def _priority(q: _Queue, job_id: str) -> int:
        h = q.jobs.get(job_id)
        p = _tonumber(h.get("priority", "0")) if h else 0
        return int(p) if p is not None else 0

    @staticmethod
    def _remove_job_keys(q: _Queue, job_id: str) -> None:
        """DEL the job hash, its logs, its lock and its flow sub-keys."""
        q.jobs.pop(job_id, None)
        q.logs.pop(job_id, None)
        q.locks.pop(job_id, None)
        if q.dependencies:
            q.dependencies.pop(job_id, None)
        if q.children_processed:
            q.children_processed.pop(job_id, None)
        if q.children_failed:
            q.children_failed.pop(job_id, None)
        if q.unsuccessful:
            q.unsuccessful.pop(job_id, None)

    def _release_dedup(self, q: _Queue, job_id: str, now: int) -> None:
        """Free the job's deduplication id when this job still owns it."""
        h = q.jobs.get(job_id)
        deid = h.get("deid") if h else None
        if deid is not None and self._dedup_owner(q, deid, now) == job_id:
            del q.dedup[deid]

    # flows (includes/flows.lua): a parent waits in waiting-children until its children are done

    def _job_key(self, q: _Queue, job_id: str) -> str:
        return f"{self.prefix}:{q.name}:{job_id}"

    def _job_at(self, key: str) -> tuple[_Queue, str] | None:
        """The queue and id a job key ``<prefix>:<queue>:<id>`` names (None for another prefix)."""
        prefix, _, rest = key.partition(":")
        queue, _, job_id = rest.partition(":")
        if prefix != self.prefix or not queue or not job_id:
            return None
        return self._q(queue, validate=False), job_id

    def _queue_at(self, queue_key: str) -> _Queue | None:
        """The queue a queue key ``<prefix>:<queue>`` names."""
        prefix, _, queue = queue_key.partition(":")
        if prefix != self.prefix or not queue:
            return None
        return self._q(queue, validate=False)

    def _release_parent(self, queue_key: str, parent_id: str, parent_key: str, now: int) -> None:
        """Take a parent out of waiting-children (only if it is there) and make it ready at the head of wait, or
        prioritized, or delayed by its delay."""
        pq = self._queue_at(queue_key)
        if pq is None or not pq.waiting_children.remove(parent_id):
            return
        found = self._job_at(parent_key)
        h = found[0].jobs.get(found[1]) if found is not None else None
        h = h or {}
        priority = _tonumber(h.get("priority")) or 0
        delay = _tonumber(h.get("delay")) or 0
        if delay > 0:
            due = now + delay
            self._add_delayed(pq, parent_id, int(due))
            self._emit(pq, now, ("event", "delayed", "jobId", parent_id, "delay", _num(due)))
            self._refresh_delay_marker(pq)
            return
        if priority == 0:
            self._target_list(pq).append(parent_id)  # a released parent is next to run
        else:
            self._add_to_prioritized(pq, parent_id, int(priority), False)
        self._add_base_marker_if_ready(pq)
        self._emit(pq, now, ("event", "waiting", "jobId", parent_id, "prev", "waiting-children"))

    def _attach_to_parent(self, parent_key: str, parent: tuple[_Queue, str, str, str], child_key: str,
                          q: _Queue, job_id: str, now: int) -> None:
        """A job joins a parent's dependencies; if it already completed, its result counts at once."""
        pq, pid, ref_id, ref_queue_key = parent
        if job_id in q.completed:
            h = q.jobs.get(job_id) or {}
            pq.children_processed.setdefault(pid, {})[child_key] = h.get("returnvalue", "null")
            if not pq.dependencies.get(pid):
                self._release_parent(ref_queue_key, ref_id, parent_key, now)
        else:
            pq.dependencies.setdefault(pid, {})[child_key] = None

    def _parent_ref(self, h: dict[str, str]) -> dict[str, Any] | None:
        """The parent reference stored on a child (its key, id, queue key and failure policy), or None."""
        key = h.get("parentKey")
        if key is None:
            return None
        try:
            ref = json.loads(h.get("parent") or "")
        except ValueError:
            ref = {}
        if not isinstance(ref, dict):
            ref = {}
        queue_key, _, parent_id = key.rpartition(":")
        return {"key": key, "id": ref.get("id") or parent_id, "queueKey": ref.get("queueKey") or queue_key,
                **{p: ref.get(p) is True for p in ("fpof", "cpof", "idof", "rdof")}}

    def _child_finished(self, ref: dict[str, Any], child_key: str, completed: bool, value: str, now: int) -> None:
        """A child completed (its result goes to the parent) or failed for good (its failure policy applies);
        the parent is released when nothing it waits for is left."""
        found = self._job_at(ref["key"])
        if found is None:
            return
        pq, pid = found
        deps = pq.dependencies.get(pid)
        if not completed and not (ref["fpof"] or ref["cpof"] or ref["idof"] or ref["rdof"]):
            return  # no policy: the parent keeps waiting for this child
        if not deps or child_key not in deps:
            return
        del deps[child_key]
        if not deps:
            del pq.dependencies[pid]
        if completed:
            pq.children_processed.setdefault(pid, {})[child_key] = value
            if not pq.dependencies.get(pid):
                self._release_parent(ref["queueKey"], ref["id"], ref["key"], now)
        elif ref["fpof"]:
            pq.unsuccessful.setdefault(pid, _ZSet()).add(child_key, now)
            self._hash(pq, pid)["defa"] = f"child {child_key} failed"
            self._release_parent(ref["queueKey"], ref["id"], ref["key"], now)
        elif ref["cpof"]:
            pq.children_failed.setdefault(pid, {})[child_key] = value
            self._release_parent(ref["queueKey"], ref["id"], ref["key"], now)
        else:
            if ref["idof"]:
                pq.children_failed.setdefault(pid, {})[child_key] = value
            if not pq.dependencies.get(pid):
                self._release_parent(ref["queueKey"], ref["id"], ref["key"], now)

    def get_dependencies(self, queue: str, job_id: str) -> dict[str, Any]:
        """A flow parent's children: ``processed`` (child key → return value JSON), ``unprocessed`` (keys still
        pending, sorted), ``failed`` (keys of children that failed it, oldest first) and ``ignored`` (child key
        → failed reason)."""
        with self._lock:
            q = self._peek(queue)
            if q is None:
                return {"processed": {}, "unprocessed": [], "failed": [], "ignored": {}}
            bad = q.unsuccessful.get(job_id)
            return {
                "processed": dict(q.children_processed.get(job_id, {})),
                "unprocessed": sorted(q.dependencies.get(job_id, {})),
                "failed": bad.members() if bad is not None else [],
                "ignored": dict(q.children_failed.get(job_id, {})),
            }

    # markers (wake-ups for idle workers)

    def _add_base_marker(self, q: _Queue) -> None:
        q.marker["0"] = 0
        if self._sleepers:
            self._cond.notify_all()

    def _add_base_marker_if_ready(self, q: _Queue) -> None:
        if not q.m_paused and not self._is_maxed(q):
            self._add_base_marker(q)

    def _refresh_delay_marker(self, q: _Queue) -> None:
        first = q.delayed.peek_min()
        if first is not None:
            q.marker["1"] = first[0] // DELAY_SHIFT
            if self._sleepers:
                self._cond.notify_all()
        else:
            q.marker.pop("1", None)

    @staticmethod
    def _is_maxed(q: _Queue) -> bool:
        return q.m_concurrency is not None and len(q.active) >= q.m_concurrency

    # placing jobs

    def _target_list(self, q: _Queue) -> deque[str]:
        return q.paused if q.m_paused else q.wait

    @staticmethod
    def _add_to_prioritized(q: _Queue, job_id: str, priority: int, at_head: bool) -> None:
        if at_head:
            score = priority * PRIORITY_SHIFT
        else:
            q.pc += 1
            score = priority * PRIORITY_SHIFT + q.pc % PRIORITY_SHIFT
        q.prioritized.add(job_id, score)

    def _add_ready(self, q: _Queue, job_id: str, priority: int, lifo: bool) -> None:
        if priority == 0:
            target = q.paused if q.m_paused else q.wait
            if lifo:
                target.append(job_id)
            else:
                target.appendleft(job_id)
        else:
            self._add_to_prioritized(q, job_id, priority, False)

    @staticmethod
    def _delayed_score(q: _Queue, due_ms: int) -> int:
        base = due_ms * DELAY_SHIFT
        last = q.delayed.window_max(due_ms)
        if last is not None:
            return min(last + 1, base + DELAY_SHIFT - 1)
        return base

    def _add_delayed(self, q: _Queue, job_id: str, due_ms: int) -> None:
        q.delayed.add(job_id, self._delayed_score(q, due_ms))

    def _promote_due_delayed(self, q: _Queue, now: int) -> int:
        delayed = q.delayed
        if not delayed.scores:
            return 0
        due = delayed.pop_upto((now + 1) * DELAY_SHIFT - 1, PROMOTE_BATCH)
        if not due:
            return 0
        for job_id in due:
            priority = self._priority(q, job_id)
            # a promotion ignores lifo: always the tail of wait, or the tail of the priority band
            self._add_ready(q, job_id, priority, False)
            self._hash(q, job_id)["delay"] = "0"
            self._emit(q, now, ("event", "waiting", "jobId", job_id, "prev", "delayed"))
        self._add_base_marker_if_ready(q)
        return len(due)

    def _find_key_name(self, q: _Queue, job_id: str) -> str:
        """The state a job is in, as the key name it was found under (``wait``, ``paused``…, or ``unknown``)."""
        if job_id in q.completed:
            return "completed"
        if job_id in q.failed:
            return "failed"
        if job_id in q.delayed:
            return "delayed"
        if job_id in q.prioritized:
            return "prioritized"
        if job_id in q.active:
            return "active"
        if job_id in q.wait:
            return "wait"
        if job_id in q.paused:
            return "paused"
        if job_id in q.waiting_children:
            return "waiting-children"
        return "unknown"

    def _scheduler_alive(self, q: _Queue, scheduler_id: str | None) -> bool:
        return scheduler_id is not None and scheduler_id in q.repeat

    @staticmethod
    def _is_scheduler_pending_job(q: _Queue, job_id: str) -> bool:
        """Is this the pending iteration ``repeat:<schedulerId>:<dueMs>`` of a live job scheduler?"""
        h = q.jobs.get(job_id)
        scheduler_id = h.get("rjk") if h else None
        if scheduler_id is None:
            return False
        due = q.repeat.score(scheduler_id)
        return due is not None and job_id == f"repeat:{scheduler_id}:{_num(due)}"

    def _release_dedup_on_finish(self, q: _Queue, job_id: str, now: int) -> str | None:
        """A finishing job gives up its deduplication key: a key without a ttl when this job still owns it, a
        key with a ttl only when it runs out right now. Returns the job's deduplication id."""
        h = q.jobs.get(job_id)
        deid = h.get("deid") if h else None
        if deid is None:
            return None
        pttl = self._dedup_pttl(q, deid, now)
        if pttl == 0 or (pttl == -1 and self._dedup_owner(q, deid, now) == job_id):
            del q.dedup[deid]
        return deid

    def _leave_active(self, q: _Queue, job_id: str, token: str, now: int) -> int:
        """Take a job out of ``active`` after checking the caller's lock: 0, or BullMQ's negative code."""
        if not q.jobs.get(job_id):
            return -1
        if token != "0":
            entry = q.locks.get(job_id)
            if entry is None or now > entry[1]:
                return -2
            if entry[0] != token:
                return -6
        active = q.active
        if active and active[-1] == job_id:  # LREM -1 searches from the right end: the oldest fetch
            active.pop()
        elif _lrem(active, job_id, -1) == 0:
            return -3
        if token != "0":
            q.locks.pop(job_id, None)
        q.stalled.pop(job_id, None)
        return 0

    # --- producers ---------------------------------------------------------------------------------------

    def _ms(self, value: int) -> str:
        """``str(value)`` for a time in ms, shared by every job hash that stores the same ms."""
        last = self._ms_text
        if last[0] == value:
            return last[1]
        text = str(value)
        self._ms_text = (value, text)
        return text

    def _wire(self, opts: JobOptions) -> str:
        """The ``opts`` JSON stored in the job hash (cached: simulations reuse a few option sets)."""
        last = self._wire_last
        if last[0] is opts:
            return last[1]
        cache = self._wire_cache
        text = cache.get(opts)
        if text is None:
            text = json.dumps(opts.to_wire(), separators=(",", ":"))
            if len(cache) >= 4096:
                cache.clear()
            cache[opts] = text
        self._wire_last = (opts, text)
        return text

    def add_job(self, queue: str, name: str, data: str, opts: JobOptions, timestamp: int,
                scheduler_id: str | None = None, waiting_children: bool = False) -> AddResult:
        """Add one job. ``waiting_children``: a flow parent whose children are added next (it waits for them in
        ``waiting-children`` instead of becoming ready)."""
        parent_key = parent_ref = ""
        if opts.parent is not None:
            opts, parent_key, parent_ref = self._parent_args(opts)
        with self._lock:
            raw = self._add(self._queues.get(queue) or self._q(queue), self.clock.now_ms(), name, data, opts,
                            timestamp, scheduler_id, waiting_children, parent_key, parent_ref)
        return raw if type(raw) is AddResult else self._add_result(raw, opts)

    def add_jobs(self, queue: str, jobs: list[tuple[str, str, JobOptions, int]]) -> list[AddResult]:
        """Add many jobs (each add atomic, as in a pipeline of scripts)."""
        if not jobs:
            return []
        prepared = [(name, data, *self._parent_args(opts), ts) for name, data, opts, ts in jobs]
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            raws = [self._add(q, now, name, data, opts, ts, None, False, pk, pr)
                    for name, data, opts, pk, pr, ts in prepared]
        return [self._add_result(raw, item[2]) for raw, item in zip(raws, prepared, strict=True)]

    def add_flow_jobs(self, jobs: list[tuple[str, str, str, JobOptions, int, bool]]) -> list[AddResult]:
        """Add the jobs of a flow in one transaction, in the order given (each parent before its children). Each
        item is ``(queue, name, data, opts, timestamp, waiting_children)``."""
        if not jobs:
            return []
        for queue, *_ in jobs:
            validate_queue_name(queue)
        prepared = [(queue, name, data, *self._parent_args(opts), ts, has_children)
                    for queue, name, data, opts, ts, has_children in jobs]  # may raise before anything is written
        with self._lock:
            now = self.clock.now_ms()
            raws = [self._add(self._q(queue), now, name, data, opts, ts, None, has_children, pk, pr)
                    for queue, name, data, opts, pk, pr, ts, has_children in prepared]
        return [self._add_result(raw, item[3]) for raw, item in zip(raws, prepared, strict=True)]

    def _parent_args(self, opts: JobOptions) -> tuple[JobOptions, str, str]:
        return flow_parent_args(opts, self.prefix)

    def _add_result(self, raw: AddResult | int, opts: JobOptions) -> AddResult:
        if isinstance(raw, int):  # -5: the parent is missing, -7: the job already has another parent
            parent = opts.parent.job_key(self.prefix) if opts.parent is not None else opts.job_id or ""
            raise error_for_code(raw, parent if raw == -5 else opts.job_id or "", "addJob")
        return raw

    def _add(self, q: _Queue, now: int, name: str, data: str, opts: JobOptions, timestamp: int,
             scheduler_id: str | None, waiting_children: bool, parent_key: str = "",
             parent_ref: str = "") -> AddResult | int:
        # (the parent's queue, its id there, and the id and queue key its reference names)
        parent: tuple[_Queue, str, str, str] | None = None
        if parent_key:
            found = self._job_at(parent_key)
            if found is None or not found[0].jobs.get(found[1]):
                return -5
            ref = json.loads(parent_ref)
            parent = (found[0], found[1], ref.get("id"), ref.get("queueKey"))
        if "opts.maxLenEvents" not in q.meta:
            q.meta["opts.maxLenEvents"] = str(DEFAULT_MAX_EVENTS)
        q.id += 1
        custom = opts.job_id
        job_id = custom if custom else str(q.id)
        jobs = q.jobs
        if custom and jobs.get(job_id):
            if parent is not None:
                # the existing job joins this parent, unless another (still existing) parent owns it
                existing = jobs[job_id]
                own_parent = existing.get("parentKey")
                if own_parent is not None and own_parent != parent_key:
                    other = self._job_at(own_parent)
                    if other is not None and other[0].jobs.get(other[1]):
                        return -7
                if own_parent != parent_key:
                    self._attach_to_parent(parent_key, parent, self._job_key(q, job_id), q, job_id, now)
                    existing["parentKey"] = parent_key
                    existing["parent"] = parent_ref
            self._emit(q, now, ("event", "duplicated", "jobId", job_id))
            return AddResult(job_id, "duplicated")

        de = opts.deduplication
        last = self._wire_last
        wire = last[1] if last[0] is opts else self._wire(opts)
        if de is not None:
            outcome = self._deduplicate(q, now, de, job_id, name, data, wire)
            if outcome is not None:
                return outcome

        delay = opts.delay
        priority = opts.priority
        fields = {"name": name, "data": data, "opts": wire, "timestamp": self._ms(timestamp),
                  "delay": str(delay), "priority": str(priority)}
        if de is not None:
            fields["deid"] = de.id
        if scheduler_id:
            fields["rjk"] = scheduler_id
        if parent is not None:
            fields["parentKey"] = parent_key
            fields["parent"] = parent_ref
        existing = jobs.get(job_id)
        if existing is None:
            jobs[job_id] = fields
        else:
            existing.update(fields)
        self._emit(q, now, ("event", "added", "jobId", job_id, "name", name))

        if waiting_children:
            # a flow parent: its delay and priority apply once its children are done
            q.waiting_children.add(job_id, timestamp)
            self._emit(q, now, ("event", "waiting-children", "jobId", job_id))
        elif delay > 0:
            due = timestamp + delay
            self._add_delayed(q, job_id, due)
            self._emit(q, now, ("event", "delayed", "jobId", job_id, "delay", str(due)))
            self._refresh_delay_marker(q)
        else:
            if priority == 0:
                target = q.paused if q.m_paused else q.wait
                if opts.lifo:
                    target.append(job_id)
                else:
                    target.appendleft(job_id)
            else:
                self._add_to_prioritized(q, job_id, priority, False)
            if not q.m_paused and (q.m_concurrency is None or len(q.active) < q.m_concurrency):
                q.marker["0"] = 0
            self._emit(q, now, ("event", "waiting", "jobId", job_id))  # (also wakes sleepers)
        if parent is not None:
            parent[0].dependencies.setdefault(parent[1], {})[self._job_key(q, job_id)] = None
        return _added(job_id, "added")

    def _deduplicate(self, q: _Queue, now: int, de: Any, job_id: str, name: str, data: str,
                     wire: str) -> AddResult | None:
        """The deduplication step of an add: an AddResult when the add stops here, None when it goes on.

        ``de:<id>`` names the job that owns a deduplication id: without a ttl until it finishes (simple), with
        a ttl until the window ends (throttle), restarted by each duplicate with ``extend`` (debounce).
        ``replace`` swaps a still-delayed owner for the new job; ``keep_last_if_active`` keeps the newest
        duplicate of a running owner in ``dn:<id>`` and enqueues it when the owner finishes.
        """
        dedup_id, ttl, keep_last = de.id, de.ttl, de.keep_last_if_active
        has_ttl = ttl is not None and ttl > 0

        def set_key(owner: str) -> None:
            # keepLastIfActive keys never expire: they must outlive the owner's time in "active"
            q.dedup[dedup_id] = (owner, now + ttl if has_ttl and not keep_last else None)

        def report(owner: str) -> None:
            self._emit(q, now, ("event", "debounced", "jobId", owner, "debounceId", dedup_id))
            self._emit(q, now, ("event", "deduplicated", "jobId", owner, "deduplicationId", dedup_id,
                                "deduplicatedJobId", job_id))

        def keep_for_later(owner: str) -> bool:
            if not (keep_last and owner in q.active):
                return False
            q.dedup_next[dedup_id] = {"name": name, "data": data, "opts": wire, "jid": job_id}
            q.dedup[dedup_id] = (q.dedup[dedup_id][0], None)
            report(owner)
            return True

        owner = self._dedup_owner(q, dedup_id, now)
        if de.replace:
            # a still-delayed owner is dropped and this job takes its place
            if owner is None:
                set_key(job_id)
                return None
            if not q.delayed.remove(owner):
                keep_for_later(owner)
                return AddResult(owner, "deduplicated")
            self._remove_job_keys(q, owner)
            self._emit(q, now, ("event", "removed", "jobId", owner, "prev", "delayed"), False)
            self._emit(q, now, ("event", "debounced", "jobId", job_id, "debounceId", dedup_id))
            self._emit(q, now, ("event", "deduplicated", "jobId", job_id, "deduplicationId", dedup_id,
                                "deduplicatedJobId", owner))
            if has_ttl and not de.extend and not keep_last:
                q.dedup[dedup_id] = (job_id, q.dedup[dedup_id][1])  # KEEPTTL
            else:
                set_key(job_id)
            return None
        if has_ttl and de.extend:
            # debounce: every duplicate restarts the window
            if owner is None:
                set_key(job_id)
                return None
            if not keep_for_later(owner):
                set_key(owner)
                report(owner)
            return AddResult(owner, "deduplicated")
        # simple (no ttl: until the owner finishes) or throttle (ttl: until the window ends)
        if owner is None:
            set_key(job_id)
            return None
        if not keep_for_later(owner):
            report(owner)
        return AddResult(owner, "deduplicated")

    # --- workers -----------------------------------------------------------------------------------------

    def _fetch(self, q: _Queue, now: int, fetch: FetchArgs) -> FetchResult:
        """The fetch step shared by moveToActive and moveToFinished's fetch-next (includes/fetch.lua)."""
        if q.delayed.scores:
            self._promote_due_delayed(q, now)
        lim = fetch.limiter
        max_jobs = q.m_max if q.m_max is not None else (lim.max if lim else None)
        duration = lim.duration if lim else q.m_duration
        if max_jobs is not None:
            counter = self._limiter(q, now)
            used = counter[0] if counter is not None else 0
            if used >= max_jobs:
                pttl = self._limiter_pttl(q, now)
                if pttl > 0:
                    return FetchResult(rate_limit_ms=pttl)
                if pttl == 0:  # a window in its very last millisecond: drop it, this start opens a fresh one
                    q.limiter = None
        if q.m_paused or (q.m_concurrency is not None and len(q.active) >= q.m_concurrency):
            return _PAUSED_OR_MAXED

        wait = q.wait
        if wait:
            job_id = wait.pop()
        else:
            popped = q.prioritized.pop_min()
            if popped is None:
                q.pc = 0
                first = q.delayed.peek_min()
                return FetchResult(next_due_ms=first[0] // DELAY_SHIFT) if first is not None else _NOTHING_SCHEDULED
            job_id = popped[1]
        q.active.appendleft(job_id)

        if max_jobs is not None:
            counter = self._limiter(q, now)
            if counter is None:
                counter = q.limiter = [0, None]
            counter[0] += 1
            if counter[0] == 1:
                counter[1] = now + duration  # PEXPIRE on the first start of a window
        token = fetch.token
        if token != "0":
            q.locks[job_id] = (token, now + fetch.lock_duration)
        self._emit(q, now, ("event", "active", "jobId", job_id, "prev", "waiting"))
        h = q.jobs.get(job_id)
        if h is None:
            h = q.jobs[job_id] = {}
        h["processedOn"] = self._ms(now)
        if fetch.worker_name:
            h["pb"] = fetch.worker_name
        ats = h.get("ats")
        h["ats"] = "1" if ats is None else str(int(ats) + 1)
        if q.m_concurrency is None or len(q.active) < q.m_concurrency:  # (not paused: checked above)
            q.marker["0"] = 0
            if self._sleepers:
                self._cond.notify_all()
        return _fetched(job_id, dict(h))

    #: it answers in this process: a call never waits on a network
    in_process = True

    def pipelined(self) -> None:
        """None: the memory backend answers in-process, so the live runner calls the blocking methods."""

    def move_to_active(self, queue: str, fetch: FetchArgs) -> FetchResult:
        with self._lock:
            return self._fetch(self._q(queue), self.clock.now_ms(), fetch)

    def move_to_finished(self, queue: str, job_id: str, token: str, *, completed: bool, value: str,
                         stacktrace: str | None, max_attempts: int, keep: KeepJobs | None,
                         fetch_next: FetchArgs | None) -> FetchResult | None:
        with self._lock:
            q = self._queues.get(queue) or self._q(queue)  # (the queue exists but for the first call)
            now = self.clock.now_ms()
            if completed and (q.dependencies or q.unsuccessful) and q.jobs.get(job_id):
                # a flow parent completes only when every child is done and none failed it
                if q.dependencies.get(job_id):
                    raise error_for_code(-4, job_id, "moveToFinished", "active")
                if q.unsuccessful.get(job_id):
                    raise error_for_code(-9, job_id, "moveToFinished", "active")
            code = self._leave_active(q, job_id, token, now)
            if code != 0:
                raise error_for_code(code, job_id, "moveToFinished", "active")

            stream = q.events
            if len(stream.entries) + len(stream.tail) > q.m_max_events:
                stream.maybe_trim(q.m_max_events)  # XTRIM MAXLEN ~
            h = q.jobs[job_id]  # (it exists: checked by _leave_active)
            if "deid" in h:
                deid = self._release_dedup_on_finish(q, job_id, now)
                if deid is not None:
                    self._enqueue_kept_duplicate(q, deid, now)
            atm = h.get("atm")
            attempts_made = 1 if atm is None else int(atm) + 1
            h["atm"] = str(attempts_made)
            field = "returnvalue" if completed else "failedReason"
            if stacktrace:
                h["stacktrace"] = stacktrace
            if "parentKey" in h:
                # a flow child tells its parent, before its own hash may be removed below
                ref = self._parent_ref(h)
                if ref is not None:
                    self._child_finished(ref, self._job_key(q, job_id), completed, value, now)

            dead_letter = None if completed else q.m_dlq
            refused = False
            if dead_letter is not None:
                dlq = self._q_unchecked(dead_letter)
                there = dlq.jobs.get(job_id)
                if there:
                    if there.get("dlqSource") == q.name:
                        # an earlier death of a job with this id from this same queue: the newer one replaces it
                        self._remove_job_keys(dlq, job_id)
                    else:
                        # a job that came from elsewhere has this id there: never overwrite it; this job stays
                        # in this queue's "failed" set (whatever removeOnFail says), without "dead-lettered"
                        dead_letter, refused = None, True
            if dead_letter is not None:
                # queuesim extension: the job leaves this queue for the dead-letter queue's "failed" set
                h[field] = value
                h["finishedOn"] = str(now)
                h["dlqSource"] = q.name
                h.pop("defa", None)
                dlq.jobs[job_id] = q.jobs.pop(job_id)
                logs = q.logs.pop(job_id, None)
                if logs:
                    dlq.logs[job_id] = logs
                dlq.failed.add(job_id, now)
            elif refused:
                q.failed.add(job_id, now)
                h[field] = value
                h["finishedOn"] = self._ms(now)
                h.pop("defa", None)
            else:
                if keep is None:
                    count, age, limit = -1, -1, KEEP_JOBS_LIMIT
                else:
                    count = -1 if keep.count is None else keep.count
                    age = -1 if keep.age_s is None else keep.age_s
                    limit = keep.limit
                if count == 0:
                    self._remove_job_keys(q, job_id)
                else:
                    target = q.completed if completed else q.failed
                    target.add(job_id, now)
                    h[field] = value
                    h["finishedOn"] = self._ms(now)
                    if not completed:
                        h.pop("defa", None)
                    if age >= 0:
                        for old in target.pop_upto(now - age * 1000, limit):
                            self._remove_job_keys(q, old)
                    if count > 0:
                        surplus = len(target) - count
                        for _ in range(surplus):
                            popped = target.pop_min()
                            assert popped is not None
                            self._remove_job_keys(q, popped[1])

            # the events were trimmed above; this finish's own events are written without a cap, so that even
            # with maxLenEvents 0 a reader finds the last "completed"/"failed" (and "drained")
            if completed:
                self._emit(q, now, ("event", "completed", "jobId", job_id, "returnvalue", value, "prev", "active"),
                           False)
            else:
                self._emit(q, now, ("event", "failed", "jobId", job_id, "failedReason", value, "prev", "active"),
                           False)
                if attempts_made >= max_attempts:
                    self._emit(q, now, ("event", "retries-exhausted", "jobId", job_id,
                                        "attemptsMade", str(attempts_made)), False)
                if dead_letter is not None:
                    self._emit(q, now, ("event", "dead-lettered", "jobId", job_id, "deadLetterQueue", dead_letter),
                               False)

            if fetch_next is not None:
                result = self._fetch(q, now, fetch_next)
                if (result.job_id is not None or result.rate_limit_ms != 0 or result.next_due_ms != 0
                        or result.paused_or_maxed):
                    return result
                if not q.active:
                    self._emit(q, now, ("event", "drained"), False)
                return result
            if not q.wait and not q.active and not q.prioritized.scores:
                self._emit(q, now, ("event", "drained"), False)
            return None

    def _enqueue_kept_duplicate(self, q: _Queue, dedup_id: str, now: int) -> None:
        """keepLastIfActive: the newest duplicate added while the owner ran becomes a job now, with the id it
        would have had then, and owns the deduplication id."""
        kept = q.dedup_next.get(dedup_id)
        if not kept or "name" not in kept:
            return
        q.id += 1
        kept_id = kept.get("jid") or str(q.id)
        kept_opts = json.loads(kept["opts"])
        de = kept_opts.get("de")
        ttl = _tonumber(str(de["ttl"])) if isinstance(de, dict) and de.get("ttl") is not None else None
        if isinstance(de, dict) and not de.get("keepLastIfActive") and ttl and ttl > 0:
            q.dedup[dedup_id] = (kept_id, now + int(ttl))
        else:
            q.dedup[dedup_id] = (kept_id, None)
        delay = _tonumber(str(kept_opts.get("delay") or 0)) or 0
        priority = _tonumber(str(kept_opts.get("priority") or 0)) or 0
        self._hash(q, kept_id).update({"name": kept["name"], "data": kept.get("data", ""), "opts": kept["opts"],
                                       "timestamp": str(now), "delay": _num(delay), "priority": _num(priority),
                                       "deid": dedup_id})
        self._emit(q, now, ("event", "added", "jobId", kept_id, "name", kept["name"]), False)
        if delay > 0:
            self._add_delayed(q, kept_id, now + int(delay))
            self._emit(q, now, ("event", "delayed", "jobId", kept_id, "delay", _num(now + delay)))
            self._refresh_delay_marker(q)
        else:
            self._add_ready(q, kept_id, int(priority), kept_opts.get("lifo") is True)
            self._add_base_marker_if_ready(q)
            self._emit(q, now, ("event", "waiting", "jobId", kept_id))
        del q.dedup_next[dedup_id]

    def _q_unchecked(self, name: str) -> _Queue:
        """A queue's state without validating its name (a Lua script builds such keys without checks)."""
        q = self._queues.get(name)
        if q is None:
            q = self._queues[name] = _Queue(name)
        return q

    def retry_job(self, queue: str, job_id: str, token: str, reason: str, stacktrace: str, lifo: bool) -> None:
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            self._promote_due_delayed(q, now)
            code = self._leave_active(q, job_id, token, now)
            if code != 0:
                raise error_for_code(code, job_id, "retryJob", "active")
            h = self._hash(q, job_id)
            h["failedReason"] = reason
            h["stacktrace"] = stacktrace
            self._add_ready(q, job_id, self._priority(q, job_id), lifo)
            self._add_base_marker_if_ready(q)
            self._hincr(h, "atm")
            self._emit(q, now, ("event", "waiting", "jobId", job_id, "prev", "active"))

    def move_to_delayed(self, queue: str, job_id: str, token: str, due_ms: int, *, skip_attempt: bool,
                        reason: str | None = None, stacktrace: str | None = None,
                        now: int | None = None) -> None:
        """``now`` (default: the clock) is the time the move happens at; the stored ``delay`` is due - now."""
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms() if now is None else now
            code = self._leave_active(q, job_id, token, now)
            if code != 0:
                raise error_for_code(code, job_id, "moveToDelayed", "active")
            h = self._hash(q, job_id)
            if reason:
                h["failedReason"] = reason
            if stacktrace:
                h["stacktrace"] = stacktrace
            if not skip_attempt:
                self._hincr(h, "atm")
            h["delay"] = str(max(due_ms - now, 0))
            self._add_delayed(q, job_id, due_ms)
            self._emit(q, now, ("event", "delayed", "jobId", job_id, "delay", str(due_ms)))
            self._refresh_delay_marker(q)

    def move_to_wait_rate_limited(self, queue: str, job_id: str, token: str) -> int:
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            code = self._leave_active(q, job_id, token, now)
            if code != 0:
                raise error_for_code(code, job_id, "moveJobFromActiveToWait", "active")
            priority = self._priority(q, job_id)
            if priority == 0:
                self._target_list(q).append(job_id)
            else:
                self._add_to_prioritized(q, job_id, priority, True)
            self._add_base_marker_if_ready(q)
            self._emit(q, now, ("event", "waiting", "jobId", job_id, "prev", "active"))
            pttl = self._limiter_pttl(q, now)
            return pttl if pttl > 0 else 0

    def extend_locks(self, queue: str, jobs: list[tuple[str, str]], duration: int) -> list[str]:
        if not jobs:
            return []
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            failed = []
            for job_id, token in jobs:
                if self._lock_token(q, job_id, now) == token:
                    q.locks[job_id] = (token, now + duration)
                    q.stalled.pop(job_id, None)
                else:
                    failed.append(job_id)
            return failed

    def move_stalled_jobs_to_wait(self, queue: str, max_stalled_count: int, stalled_interval: int,
                                  reason: str = STALLED_LIMIT_REASON) -> list[str]:
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            if self._stalled_check_exists(q, now):
                return []
            q.stalled_check = now + stalled_interval
            self._trim_events_approx(q)
            recovered = []
            marked = q.stalled
            if marked:
                # newest fetch first, as the script walks the active list (the oldest ends up at the head)
                for job_id in list(q.active):
                    if job_id not in marked or self._lock_token(q, job_id, now) is not None:
                        continue
                    if _lrem(q.active, job_id, 1) == 0:
                        continue
                    h = self._hash(q, job_id)
                    stalls = self._hincr(h, "stc")
                    if stalls > max_stalled_count and not self._scheduler_alive(q, h.get("rjk")):
                        h["defa"] = reason
                    self._target_list(q).append(job_id)
                    self._add_base_marker_if_ready(q)
                    self._emit(q, now, ("event", "waiting", "jobId", job_id, "prev", "active"))
                    self._emit(q, now, ("event", "stalled", "jobId", job_id))
                    recovered.append(job_id)
            q.stalled = dict.fromkeys(q.active)
            return recovered

    def next_due_ms(self, queue: str) -> int | None:
        with self._lock:
            q = self._peek(queue)
            first = q.delayed.peek_min() if q is not None else None
            return first[0] // DELAY_SHIFT if first is not None else None

    def has_ready_jobs(self, queue: str) -> bool:
        with self._lock:
            q = self._peek(queue)
            return q is not None and (bool(q.wait) or bool(q.prioritized.scores))

    def wait_for_work(self, queue: str, timeout_s: float) -> bool:
        """Block until the queue's marker says there is work (or ``timeout_s`` wall seconds pass).

        The in-memory twin of BZPOPMIN on the marker: takes the lowest marker entry and returns True, or returns
        False on timeout.
        """
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._cond:
            while True:
                q = self._peek(queue)
                if q is not None and q.marker:
                    member = min(q.marker.items(), key=lambda kv: (kv[1], kv[0]))[0]
                    del q.marker[member]
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._sleepers += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._sleepers -= 1

    # --- jobs --------------------------------------------------------------------------------------------

    def get_job_fields(self, queue: str, job_id: str) -> dict[str, str] | None:
        with self._lock:
            q = self._peek(queue)
            h = q.jobs.get(job_id) if q is not None else None
            return dict(h) if h else None

    def get_state(self, queue: str, job_id: str) -> str:
        with self._lock:
            where = self._find_key_name(self._q(queue), job_id)
            return "waiting" if where in ("wait", "paused") else where

    def update_progress(self, queue: str, job_id: str, progress: str) -> None:
        with self._lock:
            q = self._q(queue)
            h = q.jobs.get(job_id)
            if not h:
                raise error_for_code(-1, job_id, "updateProgress")
            h["progress"] = progress
            self._emit(q, self.clock.now_ms(), ("event", "progress", "jobId", job_id, "data", progress))

    def update_data(self, queue: str, job_id: str, data: str) -> None:
        with self._lock:
            q = self._q(queue)
            h = q.jobs.get(job_id)
            if not h:
                raise error_for_code(-1, job_id, "updateData")
            h["data"] = data

    def add_log(self, queue: str, job_id: str, line: str, keep_logs: int | None) -> int:
        with self._lock:
            q = self._q(queue)
            if not q.jobs.get(job_id):
                raise error_for_code(-1, job_id, "addLog")
            logs = q.logs.get(job_id)
            if logs is None:
                logs = q.logs[job_id] = []
            logs.append(line)
            count = len(logs)
            if keep_logs is not None:
                _ltrim(logs, -keep_logs, -1)
                if not logs:
                    del q.logs[job_id]
                return min(count, keep_logs)
            return count

    def get_logs(self, queue: str, job_id: str, start: int = 0, end: int = -1) -> list[str]:
        with self._lock:
            q = self._peek(queue)
            logs = q.logs.get(job_id) if q is not None else None
            return _index_slice(logs, len(logs), start, end) if logs else []

    def remove_job(self, queue: str, job_id: str, remove_children: bool = True) -> bool:
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            if not q.jobs.get(job_id):
                return False
            if self._is_scheduler_pending_job(q, job_id):
                raise JobStateError(f"Job {job_id} belongs to a job scheduler and cannot be removed directly", -8)
            if self._tree_locked(q, job_id, remove_children, now):
                raise LockError(f"Job {job_id} could not be removed because it is locked by another worker", -2)
            self._remove_tree(q, job_id, None, remove_children, now)
            return True

    def _tree_locked(self, q: _Queue, job_id: str, with_children: bool, now: int) -> bool:
        """Is the job locked, or (with its children) any pending descendant? (removeJob.lua's ``isLocked``)"""
        if self._lock_token(q, job_id, now) is not None:
            return True
        if with_children:
            for child_key in sorted(q.dependencies.get(job_id) or ()):
                found = self._job_at(child_key)
                if found is not None and self._tree_locked(found[0], found[1], True, now):
                    return True
        return False

    def _unlink_from_parent(self, q: _Queue, job_id: str, parent_key: str | None, now: int) -> None:
        """A removed job leaves its parent's dependencies; a parent left without any goes back to the end of
        wait (or paused), whatever its priority or delay, with a ``waiting`` event (removeJob.lua)."""
        if parent_key is None:
            h = q.jobs.get(job_id)
            parent_key = h.get("parentKey") if h else None
            if parent_key is None:
                return
            found = self._job_at(parent_key)
            if found is None or not found[0].jobs.get(found[1]):
                return
        else:
            found = self._job_at(parent_key)
            if found is None:
                return
        pq, pid = found
        deps = pq.dependencies.get(pid)
        key = self._job_key(q, job_id)
        if not deps or key not in deps:
            return
        del deps[key]
        if deps:
            return
        del pq.dependencies[pid]
        if not pq.waiting_children.remove(pid):
            return
        self._target_list(pq).append(pid)
        self._add_base_marker_if_ready(pq)
        self._emit(pq, now, ("event", "waiting", "jobId", pid, "prev", "waiting-children"), capped=False)

    def _remove_tree(self, q: _Queue, job_id: str, parent_key: str | None, with_children: bool, now: int) -> None:
        """Remove one job of a removal: unlink it from its parent, remove its children first (depth first:
        processed, failed or ignored, failed-the-parent, then pending in key order), then the job itself."""
        self._unlink_from_parent(q, job_id, parent_key, now)
        if with_children:
            key = self._job_key(q, job_id)
            bad = q.unsuccessful.get(job_id)
            children = [*(q.children_processed.get(job_id) or ()), *(q.children_failed.get(job_id) or ()),
                        *(bad.members() if bad is not None else ()),
                        *sorted(q.dependencies.get(job_id) or ())]
            for child_key in children:
                found = self._job_at(child_key)
                if found is not None:
                    self._remove_tree(found[0], found[1], key, True, now)
        where = self._find_key_name(q, job_id)
        if where in ("wait", "paused", "active"):
            _lrem(q.list_named(where), job_id, 0)
        elif where != "unknown":
            q.zset_named(where).remove(job_id)
        self._release_dedup(q, job_id, now)
        existed = (job_id in q.jobs or job_id in q.logs or self._lock_token(q, job_id, now) is not None
                   or job_id in q.dependencies or job_id in q.children_processed
                   or job_id in q.children_failed or job_id in q.unsuccessful)
        self._remove_job_keys(q, job_id)
        if existed:
            self._emit(q, now, ("event", "removed", "jobId", job_id, "prev", where))

    def reprocess_job(self, queue: str, job_id: str, state: str, reset_attempts_made: bool,
                      reset_attempts_started: bool) -> None:
        if state not in ("failed", "completed"):
            raise OptionError("state", f"must be 'failed' or 'completed', got {state!r}")
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            h = q.jobs.get(job_id)
            if not h:
                raise error_for_code(-1, job_id, "reprocessJob", state)
            if not q.zset_named(state).remove(job_id):
                raise error_for_code(-3, job_id, "reprocessJob", state)
            for f in ("finishedOn", "processedOn", "failedReason" if state == "failed" else "returnvalue"):
                h.pop(f, None)
            if reset_attempts_made:
                h.pop("atm", None)
                h.pop("attemptsMade", None)
            if reset_attempts_started:
                h.pop("ats", None)
            lifo = '"lifo":true' in h.get("opts", "")
            target = self._target_list(q)
            if lifo:
                target.append(job_id)
            else:
                target.appendleft(job_id)
            self._add_base_marker_if_ready(q)
            self._emit(q, now, ("event", "waiting", "jobId", job_id, "prev", state))

    def promote(self, queue: str, job_id: str) -> None:
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            if not q.delayed.remove(job_id):
                raise error_for_code(-3, job_id, "promote", "delayed")
            self._add_ready(q, job_id, self._priority(q, job_id), False)
            self._add_base_marker_if_ready(q)
            self._hash(q, job_id)["delay"] = "0"
            self._emit(q, now, ("event", "waiting", "jobId", job_id, "prev", "delayed"))
            self._refresh_delay_marker(q)

    def change_priority(self, queue: str, job_id: str, priority: int, lifo: bool) -> None:
        with self._lock:
            q = self._q(queue)
            h = q.jobs.get(job_id)
            if not h:
                raise error_for_code(-1, job_id, "changePriority")
            target = self._target_list(q)
            queued = q.prioritized.remove(job_id) or _lrem(target, job_id, 1) > 0
            if queued:
                if priority == 0:
                    if lifo:
                        target.append(job_id)
                    else:
                        target.appendleft(job_id)
                else:
                    self._add_to_prioritized(q, job_id, priority, lifo)
                self._add_base_marker_if_ready(q)
            h["priority"] = str(priority)

    def change_delay(self, queue: str, job_id: str, delay: int) -> None:
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            h = q.jobs.get(job_id)
            if not h:
                raise error_for_code(-1, job_id, "changeDelay", "delayed")
            if job_id not in q.delayed:
                raise error_for_code(-3, job_id, "changeDelay", "delayed")
            due = now + delay
            q.delayed.remove(job_id)
            self._add_delayed(q, job_id, due)
            h["delay"] = str(delay)
            self._emit(q, now, ("event", "delayed", "jobId", job_id, "delay", str(due)))
            self._refresh_delay_marker(q)

    # --- queue -------------------------------------------------------------------------------------------

    def pause(self, queue: str, paused: bool) -> None:
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            if paused:
                if q.wait:
                    q.paused, q.wait = q.wait, deque()
                q.meta["paused"] = "1"
                q.marker.clear()
                q._read_meta()
                self._emit(q, now, ("event", "paused"))
            else:
                if q.paused:
                    q.wait, q.paused = q.paused, deque()
                q.meta.pop("paused", None)
                q._read_meta()
                if q.wait or q.prioritized.scores:
                    self._add_base_marker_if_ready(q)
                else:
                    self._refresh_delay_marker(q)
                self._emit(q, now, ("event", "resumed"))

    def is_paused(self, queue: str) -> bool:
        with self._lock:
            q = self._peek(queue)
            return q is not None and q.m_paused

    def get_counts(self, queue: str, types: list[str]) -> dict[str, int]:
        with self._lock:
            q = self._peek(queue)
            out = {}
            for t in types:
                if q is None:
                    out[t] = 0
                elif t in _LIST_KEYS:
                    out[t] = len(q.list_named(_STATE_KEY.get(t, t)))
                else:
                    out[t] = len(q.zset_named(t))
            return out

    def count_priority(self, queue: str, priority: int) -> int:
        """How many jobs wait in the prioritized set with this priority (ZCOUNT over the band's scores)."""
        with self._lock:
            q = self._peek(queue)
            if q is None:
                return 0
            lo = priority * PRIORITY_SHIFT
            return q.prioritized.count(lo, lo + PRIORITY_SHIFT - 1)

    def get_ids(self, queue: str, state: str, start: int, end: int, asc: bool) -> list[str]:
        with self._lock:
            q = self._peek(queue)
            if q is None:
                return []
            key = _STATE_KEY.get(state, state)
            if state in _LIST_KEYS:
                lst = q.list_named(key)
                # lists: the head (next to run) is the right end
                if asc:  # oldest (next to run) first
                    if end < 0:
                        return list(reversed(lst))[start:]
                    n = len(lst)
                    return list(reversed(_index_slice(lst, n, -(end + 1), -(start + 1))))
                return _index_slice(lst, len(lst), start, end)
            members = q.zset_named(key).members()
            if not asc:
                members.reverse()
            return _index_slice(members, len(members), start, end)

    def drain(self, queue: str, delayed: bool) -> None:
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            self._drop(q, q.wait, now)
            self._drop(q, q.paused, now)
            if self._drop(q, q.prioritized, now) == 0:
                q.pc = 0
            if delayed:
                self._drop(q, q.delayed, now)
                self._refresh_delay_marker(q)

    def _drop(self, q: _Queue, where: deque[str] | _ZSet, now: int) -> int:
        """Drop every job of a list or sorted set except a job scheduler's pending iteration; returns how many
        were spared."""
        ids = list(where) if isinstance(where, deque) else where.members()
        spared = 0
        for job_id in ids:
            if self._is_scheduler_pending_job(q, job_id):
                spared += 1
                continue
            self._release_dedup(q, job_id, now)
            self._remove_job_keys(q, job_id)
            if isinstance(where, deque):
                _lrem(where, job_id, 0)
            else:
                where.remove(job_id)
        return spared

    def clean(self, queue: str, grace_ms: int, limit: int, state: str) -> list[str]:
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            cutoff = now - grace_ms
            is_list = state in ("wait", "paused", "active")
            if is_list:
                ids = list(q.list_named(state))
            elif state in ("completed", "failed"):
                ids = q.zset_named(state).range_by_score(0, cutoff)
            else:
                ids = q.zset_named(state).members()
            removed: list[str] = []
            for job_id in ids:
                if limit > 0 and len(removed) >= limit:
                    break
                h = q.jobs.get(job_id) or {}
                finished, processed, created = h.get("finishedOn"), h.get("processedOn"), h.get("timestamp")
                if state in ("completed", "failed"):
                    when = _tonumber(finished)
                elif state == "prioritized":
                    when = _tonumber(created)
                elif state in ("delayed", "active"):
                    when = _tonumber(processed if processed is not None else created)
                else:
                    first = finished if finished is not None else processed if processed is not None else created
                    when = _tonumber(first)
                spare = "rjk" in h and self._is_scheduler_pending_job(q, job_id)
                if state == "active" and self._lock_token(q, job_id, now) is not None:
                    spare = True
                if not spare and (when is None or when <= cutoff):
                    if is_list:
                        _lrem(q.list_named(state), job_id, 0)
                    else:
                        q.zset_named(state).remove(job_id)
                    self._release_dedup(q, job_id, now)
                    self._remove_job_keys(q, job_id)
                    removed.append(job_id)
            self._emit(q, now, ("event", "cleaned", "count", str(len(removed))))
            return removed

    def obliterate(self, queue: str, force: bool) -> None:
        with self._lock:
            q = self._q(queue)
            if not force and q.active:
                raise JobStateError("Cannot obliterate queue with active jobs", -1)
            for lst in (q.active, q.wait, q.paused):
                for job_id in list(lst):
                    self._remove_job_keys(q, job_id)
            for zset in (q.prioritized, q.delayed, q.completed, q.failed, q.waiting_children):
                for job_id in zset.members():
                    self._remove_job_keys(q, job_id)
            for scheduler_id in q.repeat.members():
                q.repeat_hashes.pop(scheduler_id, None)
            # every queue-level key goes (dedup ids and kept duplicates included); job hashes not listed anywhere
            # stay, as on Redis
            fresh = _Queue(q.name)
            fresh.jobs, fresh.logs, fresh.locks, fresh.repeat_hashes = q.jobs, q.logs, q.locks, q.repeat_hashes
            fresh.dependencies, fresh.children_processed = q.dependencies, q.children_processed
            fresh.children_failed, fresh.unsuccessful = q.children_failed, q.unsuccessful
            self._queues[q.name] = fresh

    def move_jobs_to_wait(self, queue: str, state: str, count: int, timestamp: int) -> int:
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            zset = q.zset_named(state)
            max_score = (timestamp + 1) * DELAY_SHIFT - 1 if state == "delayed" else timestamp
            ids = zset.pop_upto(max_score, count)
            if not ids:
                return 0
            target = self._target_list(q)
            for job_id in ids:
                h = self._hash(q, job_id)
                if state == "delayed":
                    h["delay"] = "0"
                else:
                    for f in ("finishedOn", "processedOn", "failedReason", "returnvalue"):
                        h.pop(f, None)
                    if not h:
                        del q.jobs[job_id]
                target.appendleft(job_id)
                self._emit(q, now, ("event", "waiting", "jobId", job_id, "prev", state))
            self._add_base_marker_if_ready(q)
            if state == "delayed":
                self._refresh_delay_marker(q)
            return len(ids)

    def rate_limit(self, queue: str, ms: int) -> None:
        with self._lock:
            self._q(queue).limiter = [MAX_SAFE_INTEGER, self.clock.now_ms() + ms]

    def get_rate_limit_ttl(self, queue: str, max_jobs: int | None) -> int:
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            if max_jobs is None:
                meta_max = q.meta.get("max")
                max_jobs = int(meta_max) if meta_max is not None else None
            counter = self._limiter(q, now)
            if counter is None and max_jobs is None:
                return -2
            if max_jobs is not None and (counter[0] if counter is not None else 0) < max_jobs:
                return 0
            return self._limiter_pttl(q, now)

    def remove_rate_limit_key(self, queue: str) -> None:
        with self._lock:
            self._q(queue).limiter = None

    def set_meta(self, queue: str, field: str, value: str | None) -> None:
        with self._lock:
            q = self._q(queue)
            if value is None:
                q.meta.pop(field, None)
            else:
                q.meta[field] = str(value)
            q._read_meta()

    def _dlq_owner(self, name: str) -> tuple[str | None, bool]:
        """The queue the dead-letter queue ``name`` serves (None: none) and whether it still routes there."""
        d = self._peek(name)
        owner = d.meta.get("dlqOf") if d is not None else None
        if owner is None:
            return None, False
        o = self._peek(owner)
        if o is not None and o.meta.get("dlq") == name:
            return owner, True
        if len(d.failed):
            return owner, False
        return None, False

    def set_dead_letter_queue(self, queue: str, dlq: str | None) -> None:
        """Step for step setDeadLetterQueue.lua: a dead-letter queue serves exactly one queue."""
        with self._lock:
            q = self._q(queue)
            target = dlq or ""
            if target:
                owner, routing = self._dlq_owner(target)
                if owner is not None and owner != queue:
                    raise dead_letter_refusal(1 if routing else 2, queue, target, owner)
                t = self._peek(target)
                if t is not None and "dlq" in t.meta:
                    raise dead_letter_refusal(3, queue, target, "")
                served, _ = self._dlq_owner(queue)
                if served is not None:
                    raise dead_letter_refusal(4, queue, target, served)
            # the dead-letter queue used until now is released when it holds no dead job any more
            current = q.meta.get("dlq")
            if current is not None and current != target:
                old = self._peek(current)
                if old is not None and old.meta.get("dlqOf") == queue and not len(old.failed):
                    del old.meta["dlqOf"]
            if not target:
                q.meta.pop("dlq", None)
            else:
                q.meta["dlq"] = target
                self._q_unchecked(target).meta["dlqOf"] = queue
            q._read_meta()

    def get_meta(self, queue: str, field: str) -> str | None:
        with self._lock:
            q = self._peek(queue)
            return q.meta.get(field) if q is not None else None

    def ensure_meta(self, queue: str, max_len_events: int) -> None:
        with self._lock:
            q = self._q(queue)
            if "opts.maxLenEvents" not in q.meta:
                q.meta["opts.maxLenEvents"] = str(max_len_events)
                q._read_meta()

    def read_events(self, queue: str, last_id: str = "0", count: int | None = None,
                    block_ms: int | None = None) -> list[tuple[str, dict[str, str]]]:
        deadline = None if block_ms is None else time.monotonic() + block_ms / 1000
        with self._cond:
            while True:
                q = self._peek(queue)
                stream = q.events if q is not None else None
                out = stream.read_after(last_id, count) if stream is not None else []
                if out or deadline is None:
                    return out
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._sleepers += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._sleepers -= 1

    def queue_names(self) -> list[str]:
        """The queues of this store that have a ``meta`` hash (every queue writes one when created)."""
        with self._lock:
            return sorted(name for name, q in self._queues.items() if q.meta)

    def read_event_entries(self, queue: str, after: tuple[int, int]) -> list[tuple[int, int, tuple[str, ...]]]:
        """The events stream's entries after id ``after`` = (ms, seq), as stored: ``(ms, seq, fields)`` with the
        flat field tuple. The simulation's recorder reads this way, without building id strings and dicts."""
        with self._lock:
            q = self._peek(queue)
            return q.events.entries_after(after) if q is not None else []

    def last_event_id(self, queue: str) -> str:
        """Id of the newest entry of the events stream, ``"0"`` when it is empty (what ``$`` starts after)."""
        with self._lock:
            q = self._peek(queue)
            newest = q.events.newest_id() if q is not None else None
            return newest or "0"

    def trim_events(self, queue: str, max_len: int) -> None:
        with self._lock:
            q = self._q(queue)
            q.events.trim(max_len, False, 0)

    def clear_logs(self, queue: str, job_id: str, keep_logs: int | None) -> None:
        """Drop a job's log lines, or all but the last ``keep_logs`` of them."""
        with self._lock:
            q = self._q(queue, validate=False)
            logs = q.logs.get(job_id)
            if logs is None:
                return
            if keep_logs:
                _ltrim(logs, -keep_logs, -1)
                if logs:
                    return
            del q.logs[job_id]

    # --- job schedulers (scheduler.lua, addJobScheduler.lua, updateJobScheduler.lua, removeJobScheduler.lua) ---

    def get_job_scheduler(self, queue: str, scheduler_id: str) -> dict[str, str] | None:
        """A scheduler's stored settings (the ``repeat:<id>`` hash) plus ``next``, the due time of its pending
        iteration from the ``repeat`` set; None when no such scheduler exists."""
        with self._lock:
            q = self._peek(queue)
            settings = q.repeat_hashes.get(scheduler_id) if q is not None else None
            if not settings:
                return None
            fields = dict(settings)
            due = q.repeat.score(scheduler_id) if q is not None else None
            if due is not None:
                fields["next"] = str(int(due))
            return fields

    def get_job_scheduler_ids(self, queue: str) -> list[tuple[str, int]]:
        """Every scheduler id with the due time of its pending iteration, soonest first."""
        with self._lock:
            q = self._peek(queue)
            return [] if q is None else [(m, int(score)) for score, m in q.repeat.sorted_items()]

    @staticmethod
    def _every_next_ms(prev: int | None, every: int, now: int, offset: int,
                       start_date: int | None) -> tuple[int, int]:
        """The due time of an ``every`` scheduler's next iteration and the offset of its grid (due mod every):
        without a previous iteration the start date (if still ahead), the next offset slot, or now; after one,
        previous + every, or the next slot of the grid after now when that has passed (missed slots skipped)."""
        if prev is None:
            if start_date is not None:
                nxt = max(start_date, now)
            elif offset > 0:
                nxt = now // every * every + offset
                if nxt <= now:
                    nxt += every
            else:
                nxt = now
        else:
            nxt = prev + every
            if nxt < now:
                nxt = now // every * every + offset
                if nxt <= now:
                    nxt += every
        if offset == 0:
            offset = nxt - nxt // every * every
        return nxt, offset

    def _add_scheduler_iteration(self, q: _Queue, job_id: str, scheduler_id: str, name: str, data: str,
                                 opts_json: str, now: int, due: int, count: int) -> None:
        """Store one iteration and queue it: delayed until its due time, or ready when already due. Its options
        get the iteration's id, delay, due time ("prevMillis") and number (opts.repeat.count)."""
        delay = max(due - now, 0)
        opts = json.loads(opts_json)
        if not isinstance(opts.get("repeat"), dict):
            opts["repeat"] = {}
        opts["repeat"]["count"] = count
        opts["jobId"] = job_id
        opts["delay"] = delay
        opts["timestamp"] = now
        opts["prevMillis"] = due
        opts["repeatJobKey"] = scheduler_id
        priority = _tonumber(str(opts.get("priority") or 0)) or 0
        q.id += 1
        self._hash(q, job_id).update({
            "name": name, "data": data, "opts": json.dumps(opts, separators=(",", ":")), "timestamp": str(now),
            "delay": str(delay), "priority": _num(priority), "rjk": scheduler_id,
        })
        self._emit(q, now, ("event", "added", "jobId", job_id, "name", name))
        if delay > 0:
            self._add_delayed(q, job_id, now + delay)
            self._emit(q, now, ("event", "delayed", "jobId", job_id, "delay", str(now + delay)))
            self._refresh_delay_marker(q)
        else:
            self._add_ready(q, job_id, int(priority), opts.get("lifo") is True)
            self._add_base_marker_if_ready(q)
            self._emit(q, now, ("event", "waiting", "jobId", job_id))

    def add_job_scheduler(self, queue: str, scheduler_id: str, due_ms: int | None, name: str, data: str,
                          opts_json: str, every: int | None, offset: int | None, start_date: int | None,
                          settings: dict[str, str], now: int) -> str | int:
        """Create or replace a scheduler and its pending iteration. ``due_ms`` is the first run of a ``pattern``
        scheduler; an ``every`` one computes it here. Returns the iteration's id, or -10 / -11 when the id is
        taken (nothing written)."""
        with self._lock:
            q = self._q(queue)
            prev = q.repeat.score(scheduler_id)
            settings_now = q.repeat_hashes.get(scheduler_id, {})
            due = due_ms
            new_offset = offset
            every_changed = False
            if every is not None:
                from_prev = prev
                if prev is not None and _tonumber(settings_now.get("every")) != every:
                    from_prev = None
                    every_changed = True
                due, new_offset = self._every_next_ms(from_prev, every, now, offset or 0, start_date)
            assert due is not None
            # the pending iteration, if it has not started yet
            pending_id, pending_where = None, None
            if prev is not None:
                pending_id = f"repeat:{scheduler_id}:{_num(prev)}"
                pending_where = self._find_key_name(q, pending_id)
                if pending_where not in ("delayed", "prioritized", "wait", "paused"):
                    pending_where = None
            if pending_where is not None and every is not None and not every_changed:
                due = prev
            assert due is not None
            job_id = f"repeat:{scheduler_id}:{_num(due)}"
            if q.jobs.get(job_id) and job_id != (pending_id if pending_where else None):
                if every is None:
                    return -10
                scanned = 0
                while True:
                    due += every
                    job_id = f"repeat:{scheduler_id}:{_num(due)}"
                    scanned += 1
                    if not q.jobs.get(job_id) or scanned >= 32:
                        break
                if q.jobs.get(job_id):
                    return -11
            if pending_where is not None:
                assert pending_id is not None
                if pending_where in ("wait", "paused"):
                    _lrem(q.list_named(pending_where), pending_id, 0)
                else:
                    q.zset_named(pending_where).remove(pending_id)
                self._release_dedup(q, pending_id, now)
                self._remove_job_keys(q, pending_id)
                self._emit(q, now, ("event", "removed", "jobId", pending_id, "prev", pending_where))
                if pending_where == "delayed":
                    self._refresh_delay_marker(q)
            else:
                offset = new_offset
            count = _tonumber(settings_now.get("ic", "1"))
            stored_offset = offset if offset is not None else _tonumber(settings_now.get("offset", ""))
            fresh = {"ic": _num(count if count is not None else 1), **settings}
            if stored_offset is not None:
                fresh["offset"] = _num(stored_offset)
            q.repeat_hashes[scheduler_id] = fresh
            q.repeat.add(scheduler_id, due)
            self._add_scheduler_iteration(q, job_id, scheduler_id, name, data, opts_json, now, due,
                                          int(count if count is not None else 1))
            return job_id

    def update_job_scheduler(self, queue: str, scheduler_id: str, producer_id: str, due_ms: int | None, name: str,
                             data: str, opts_json: str, now: int) -> str | None:
        """Create a scheduler's next iteration because ``producer_id``, its pending one, became active. Returns
        the new id, or None when nothing was created (the scheduler is gone or moved on, or the id is taken)."""
        with self._lock:
            q = self._q(queue)
            current = q.repeat.score(scheduler_id)
            settings = q.repeat_hashes.get(scheduler_id)
            if current is None or producer_id != f"repeat:{scheduler_id}:{_num(current)}" or not settings:
                return None
            every = _tonumber(settings.get("every"))
            due = due_ms
            if every is not None:
                stored = settings.get("offset")
                offset = _tonumber(stored if stored is not None else "0") or 0
                due, offset = self._every_next_ms(current, int(every), now, int(offset),
                                                  _tonumber(settings.get("startDate", "")))
                if stored is None:
                    settings["offset"] = _num(offset)
            assert due is not None
            job_id = f"repeat:{scheduler_id}:{_num(due)}"
            if q.jobs.get(job_id):
                self._emit(q, now, ("event", "duplicated", "jobId", job_id))
                return None
            count = self._hincr(settings, "ic")
            q.repeat.add(scheduler_id, due)
            self._add_scheduler_iteration(q, job_id, scheduler_id, name, data, opts_json, now, due, count)
            producer = q.jobs.get(producer_id)
            if producer:
                producer["nrjid"] = job_id
            return job_id

    def remove_job_scheduler(self, queue: str, scheduler_id: str) -> bool:
        """Delete a scheduler, and its pending iteration when that one is still delayed."""
        with self._lock:
            q = self._q(queue)
            now = self.clock.now_ms()
            due = q.repeat.score(scheduler_id)
            if due is not None:
                pending_id = f"repeat:{scheduler_id}:{_num(due)}"
                if q.delayed.remove(pending_id):
                    self._remove_job_keys(q, pending_id)
                    self._emit(q, now, ("event", "removed", "jobId", pending_id, "prev", "delayed"))
                    self._refresh_delay_marker(q)
            q.repeat_hashes.pop(scheduler_id, None)
            return q.repeat.remove(scheduler_id)

    def redrive(self, dlq: str, job_id: str) -> str:
        with self._lock:
            d = self._q(dlq)
            dead = d.jobs.get(job_id)
            source = dead.get("dlqSource") if dead else None
            if source is None:
                raise JobNotFoundError(f"job {job_id} is not in dead-letter queue {dlq!r}")
            q = self._q(source)
            now = self.clock.now_ms()
            if not d.failed.remove(job_id):
                raise error_for_code(-1, job_id, "redriveJob")
            if q.jobs.get(job_id):
                finished = dead.get("finishedOn")
                d.failed.add(job_id, int(float(finished)) if finished is not None else 0)
                raise JobStateError(f"cannot redrive job {job_id}: queue {source!r} already has a job with that id",
                                    -3)
            h = q.jobs[job_id] = d.jobs.pop(job_id)
            logs = d.logs.pop(job_id, None)
            if logs:
                q.logs[job_id] = logs
            for f in ("atm", "ats", "stc", "finishedOn", "processedOn", "failedReason", "defa", "dlqSource"):
                h.pop(f, None)
            h["delay"] = "0"
            self._add_ready(q, job_id, self._priority(q, job_id), False)
            self._add_base_marker_if_ready(q)
            self._emit(q, now, ("event", "waiting", "jobId", job_id, "prev", "dead-letter"))
            return source

    def close(self) -> None:
        """Nothing to release: the state lives as long as the backend object."""
