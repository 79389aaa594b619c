"""Bad input: a clear OptionError (a ValueError) naming the field and the allowed values; nothing written."""

from __future__ import annotations

import math
from typing import Any

import pytest
from conftest import Env

import queuesim
from queuesim import OptionError, Queue, VirtualClock, Worker
from queuesim.options import validate_prefix


def _snapshot(env: Env, q: Queue) -> dict[str, Any]:
    client = env.conn.client
    keys = sorted(k.decode() for k in client.scan_iter(match=f"bull:{q.name}:*"))
    return {"keys": keys, "id": client.get(q.keys.id), "events": client.xlen(q.keys.events)}


BAD_ADDS: list[tuple[dict[str, Any], str, str]] = [
    ({"delay": -1}, "delay", ">= 0"),
    ({"priority": -1}, "priority", "between 0 and 2097151"),
    ({"priority": 2_097_152}, "priority", "between 0 and 2097151"),
    ({"priority": 1.5}, "priority", "2097151"),
    ({"attempts": -2}, "attempts", ">= 0"),
    ({"backoff": {"type": "exponential", "delay": -5}}, "backoff.delay", ">= 0"),
    ({"backoff": {"type": "fixed", "delay": 10, "jitter": 2}}, "backoff.jitter", "between 0 and 1"),
    ({"backoff": "soon"}, "backoff", "number of ms"),
    ({"job_id": "42"}, "job_id", "Custom Id cannot be integers"),
    ({"job_id": "a:b"}, "job_id", "Custom Id cannot contain :"),
    ({"lifo": "yes"}, "lifo", "true or false"),
    ({"remove_on_complete": "all"}, "remove_on_complete", "true, false, a count"),
    ({"deduplication": {"id": ""}}, "deduplication.id", "non-empty"),
    ({"repeat": {"every": 1000}, "delay": 5}, "delay", "repeat"),
    ({"repeat": {"pattern": "not cron"}}, "repeat.pattern", "cron"),
    ({"timeout": 0}, "timeout", ">= 1"),
    ({"colour": "red"}, "colour", "allowed:"),
]


@pytest.mark.parametrize(("opts", "field", "hint"), BAD_ADDS, ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD_ADDS)])
def test_invalid_job_options_raise_named_errors_and_write_nothing(env: Env, opts: dict[str, Any], field: str,
                                                                   hint: str) -> None:
    q = env.queue()
    before = _snapshot(env, q)
    with pytest.raises(OptionError) as info:
        q.add("job", {"x": 1}, **opts)
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    assert hint in str(info.value)
    assert _snapshot(env, q) == before


def test_data_that_json_cannot_hold_is_refused_before_writing(env: Env) -> None:
    q = env.queue()
    before = _snapshot(env, q)
    for bad in ({"when": object()}, {"x": math.nan}, {1, 2}):
        with pytest.raises(OptionError, match="data: must be JSON-serialisable"):
            q.add("job", bad)
    assert _snapshot(env, q) == before


def test_a_bad_item_in_a_bulk_add_writes_none_of_the_items(env: Env) -> None:
    q = env.queue()
    before = _snapshot(env, q)
    with pytest.raises(OptionError) as info:
        q.add_bulk([("ok", {"i": 1}), ("ok", {"i": 2}), ("bad", {"i": 3}, {"priority": -4})])
    assert info.value.field == "jobs[2].priority"
    assert _snapshot(env, q) == before


@pytest.mark.parametrize("name", ["", "a:b", None, 3, "tab\there", "{tag}"])
def test_bad_queue_names_are_refused(name: Any) -> None:
    conn = queuesim.connect(clock=VirtualClock())
    with pytest.raises(OptionError) as info:
        Queue(name, conn)
    assert info.value.field == "queue name"
    assert conn.client.dbsize() == 0


@pytest.mark.parametrize(("prefix", "ok"), [("bull", True), ("{bull}", True), ("my-app", True), ("", False),
                                            ("a:b", False), ("{a:b}", False), ("a b", False), ("{x", False)])
def test_prefixes_may_be_hash_tags_but_cannot_reach_other_keys(prefix: str, ok: bool) -> None:
    if ok:
        assert validate_prefix(prefix) == prefix
    else:
        with pytest.raises(OptionError, match="prefix"):
            validate_prefix(prefix)


@pytest.mark.parametrize(("options", "field"), [
    ({"concurrency": 0}, "concurrency"),
    ({"concurrency": math.nan}, "concurrency"),
    ({"lock_duration": 0}, "lock_duration"),
    ({"stalled_interval": 0}, "stalled_interval"),
    ({"max_stalled_count": -1}, "max_stalled_count"),
    ({"max_started_attempts": -1}, "max_started_attempts"),
    ({"drain_delay_s": 0}, "drain_delay_s"),
    ({"limiter": {"max": 0, "duration": 1000}}, "limiter.max"),
    ({"limiter": {"max": 1}}, "limiter.duration"),
    ({"speed": "fast"}, "speed"),
])
def test_invalid_worker_options_raise_named_errors(options: dict[str, Any], field: str) -> None:
    conn = queuesim.connect(clock=VirtualClock())
    q = Queue("q", conn)
    with pytest.raises(OptionError) as info:
        Worker(q, **options)
    assert info.value.field == field


def test_connect_rejects_unknown_schemes_and_virtual_time_on_real_redis() -> None:
    with pytest.raises(OptionError, match="url: unknown scheme 'http'"):
        queuesim.connect("http://localhost:6379")
    with pytest.raises(OptionError, match="clock: a real Redis expires keys in wall time"):
        queuesim.connect("redis://127.0.0.1:6379/0", clock=VirtualClock())
