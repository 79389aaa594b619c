"""Differential tests: the memory backend behaves exactly like the Redis backend.

Hypothesis generates operation sequences — adds with random options, fetches, completions, failures of every
error class, time advances, crashed workers and lost locks, stalled checks, pause/resume, promote, remove,
clean, retries, dead-letter redrives — and :mod:`differential` runs each one on fakeredis and on the memory
backend side by side (and a sample on a real Redis against the memory backend). After every step the two must
agree on everything a client can observe: each call's result or exception, the events streams (names, fields,
order and ``<ms>-<seq>`` ids), every job hash, the order of every state list, counts, logs and settings.

Every difference found so far was a bug in one of the two; each failing sequence is kept below as a regression
case. The numbers of examples and sequence lengths are recorded in ``docs/explanation/backends.md``.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from differential import (
    CUSTOM_IDS,
    REAL,
    START_MS,
    VIRTUAL,
    Divergence,
    Op,
    Run,
    Timing,
    make_real_sides,
    make_virtual_sides,
    run_sequence,
)
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from queuesim.backends import memory as memory_module
from queuesim.backends.memory import MemoryBackend, _Stream
from queuesim.backends.redis_backend import RedisBackend
from queuesim.options import KeepJobs

# --- what a sequence is made of ------------------------------------------------------------------------------


def _optional(values: list[Any], one_in: int) -> st.SearchStrategy[Any]:
    """One of ``values`` once in ``one_in`` draws, else None (the option is absent)."""
    return st.sampled_from([None] * ((one_in - 1) * len(values)) + values)


KEEP = [True, 0, 1, 3, {"age": 1}, {"age": 0}, {"age": 2, "count": 2}, {"age": 1, "limit": 1}]


@st.composite
def add_options(draw: st.DrawFn, timing: Timing) -> dict[str, Any]:
    ttl_a, ttl_b = timing.ttls[0], timing.ttls[1]
    choices: dict[str, st.SearchStrategy[Any]] = {
        "priority": _optional([1, 2, 5], 3),
        "delay": _optional([1, 100, 500, 1000, 3000], 4),
        "lifo": _optional([True], 5),
        "attempts": _optional([1, 2, 3, 5], 2),
        "backoff": _optional([100, {"type": "exponential", "delay": 50},
                              {"type": "fixed", "delay": 200, "jitter": 0.5}, {"type": "custom"}], 3),
        "remove_on_complete": _optional(KEEP, 5),
        "remove_on_fail": _optional(KEEP, 5),
        "job_id": _optional(list(CUSTOM_IDS), 8),
        "deduplication": _optional([
            {"id": "d1"}, {"id": "d1", "ttl": ttl_a}, {"id": "d2", "ttl": ttl_b, "extend": True},
            {"id": "d2", "ttl": ttl_b, "replace": True}, {"id": "d3", "replace": True},
            {"id": "d3", "keep_last_if_active": True}, {"id": "d2", "ttl": ttl_b, "extend": True,
                                                        "keep_last_if_active": True},
        ], 10),
        "keep_logs": _optional([0, 2], 6),
        "stack_trace_limit": _optional([0, 1], 6),
    }
    if timing is VIRTUAL:
        choices["timestamp"] = _optional([START_MS + 100, START_MS - 1000], 10)
    opts = {}
    for key, strategy in choices.items():
        value = draw(strategy)
        if value is not None:
            opts[key] = value
    return opts


DATA = st.sampled_from([None, {"n": 1}, "x", [1, 2], "é" * 30])
RESULTS = st.sampled_from([None, 1, "done", {"ok": True}, "é" * 40, "x" * 300, "y" * 5000])
WORKER = st.integers(0, 2)
PICK = st.integers(0, 40)


def error_kinds(timing: Timing) -> st.SearchStrategy[str]:
    return st.sampled_from(["error", "error", "unrecoverable", "retryable:0", "retryable:300",
                            f"ratelimit:{timing.ttls[0]}", "ratelimit:0", "delayed:700", "delayed:0", "waiting",
                            "waiting-unmoved"])


def operations(timing: Timing) -> st.SearchStrategy[Op]:
    """One operation; the workload (add, fetch, complete, fail, time) is drawn far more often than the rest."""
    t = timing
    args: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
        "add": st.tuples(st.sampled_from(["mail", "sms"]), DATA, add_options(t)),
        "fetch": st.tuples(WORKER),
        "complete": st.tuples(WORKER, PICK, RESULTS, st.booleans()),
        "fail": st.tuples(WORKER, PICK, error_kinds(t), st.booleans()),
        "advance": st.tuples(st.sampled_from(t.advances)),
        "add_many": st.tuples(st.integers(2, 6), st.sampled_from(["mail", "sms"]), DATA, add_options(t)),
        "burst": st.tuples(WORKER, st.integers(2, 6), RESULTS),
        "add_bulk": st.tuples(st.lists(st.tuples(st.just("bulk"), DATA, add_options(t)), max_size=4)),
        "crash": st.tuples(WORKER),
        "extend": st.tuples(WORKER),
        "stalled": st.tuples(WORKER),
        "pause": st.tuples(st.booleans()),
        "promote": st.tuples(PICK),
        "change_priority": st.tuples(PICK, st.sampled_from([0, 1, 3]), st.booleans()),
        "change_delay": st.tuples(PICK, st.sampled_from([0, 200, 1000])),
        "remove": st.tuples(PICK),
        "retry_job": st.tuples(PICK, st.sampled_from(["failed", "completed"]), st.booleans(), st.booleans()),
        "progress": st.tuples(PICK, st.sampled_from(["1", '{"pct":50}', '"half"'])),
        "log": st.tuples(PICK, st.sampled_from(["line", "ligne é"]), st.sampled_from([None, 0, 1, 2])),
        "get_state": st.tuples(PICK),
        "update_data": st.tuples(PICK, st.sampled_from(['{"step":2}', "null"])),
        "clear_logs": st.tuples(PICK, st.sampled_from([None, 0, 1])),
        "clean": st.tuples(st.sampled_from([0, 500, 5000]), st.sampled_from([0, 1, 2]),
                           st.sampled_from(["completed", "failed", "wait", "waiting", "paused", "active", "delayed",
                                            "prioritized"])),
        "retry_jobs": st.tuples(st.sampled_from(["failed", "completed"]), st.sampled_from([1, 1000])),
        "promote_jobs": st.tuples(st.sampled_from([1, 1000])),
        "drain": st.tuples(st.booleans()),
        "rate_limit": st.tuples(st.sampled_from(t.ttls)),
        "remove_rate_limit_key": st.tuples(),
        "global_rate_limit": st.tuples(st.sampled_from([0, 1, 2]), st.sampled_from(t.limiter_durations)),
        "global_concurrency": st.tuples(st.sampled_from([0, 1, 2])),
        "dlq": st.tuples(st.booleans()),
        "redrive": st.tuples(PICK),
        "dlq_purge": st.tuples(),
        "obliterate": st.tuples(st.booleans()),
        "trim_events": st.tuples(st.sampled_from([0, 2, 10])),
        "get_jobs": st.tuples(st.sampled_from(["waiting", "completed", "failed", "delayed", "prioritized"]),
                              st.sampled_from([0, 1]), st.sampled_from([-1, 0, 2]), st.booleans()),
        "counts_per_priority": st.tuples(),
        "scheduler": st.tuples(st.sampled_from(["s1", "s2"]), st.sampled_from([300, 1000, 1300]),
                               st.sampled_from([None, 3]), st.sampled_from([0, 100]),
                               st.sampled_from([None, {"priority": 2}, {"attempts": 2}])),
        "cron_scheduler": st.tuples(st.sampled_from(["s3"]), st.sampled_from(["*/2 * * * * *", "0 * * * * *"])),
        "remove_scheduler": st.tuples(st.sampled_from(["s1", "s2", "s3"])),
        "flow": st.tuples(st.sampled_from(["p1", "p2"]), st.integers(1, 3),
                          st.sampled_from([None, "fail_parent_on_failure", "continue_parent_on_failure",
                                           "ignore_dependency_on_failure", "remove_dependency_on_failure"]),
                          st.sampled_from([{}, {"priority": 1}, {"delay": 300}])),
    }
    weights = {"add": 12, "add_many": 4, "fetch": 8, "complete": 12, "fail": 10, "burst": 3, "advance": 14,
               "stalled": 8, "extend": 3, "crash": 3, "add_bulk": 2, "pause": 2, "dlq": 2, "redrive": 2,
               "retry_job": 2, "remove": 2, "scheduler": 2, "flow": 2}
    kinds = [k for k in args for _ in range(weights.get(k, 1))]
    return st.sampled_from(kinds).flatmap(lambda kind: args[kind].map(lambda a: (kind, *a)))


def sequences(timing: Timing, max_size: int) -> st.SearchStrategy[list[Op]]:
    """Sequences whose length is uniform in 1..max_size."""
    op = operations(timing)
    return st.integers(1, max_size).flatmap(lambda n: st.lists(op, min_size=n, max_size=n))


#: Hypothesis settings of the suite (the numbers docs/explanation/backends.md reports)
VIRTUAL_EXAMPLES, VIRTUAL_MAX_STEPS = 200, 40
REAL_EXAMPLES, REAL_MAX_STEPS = 12, 25

_SETTINGS = {"derandomize": True, "deadline": None, "database": None,
             "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


def _length_event(ops: list[Op]) -> None:
    n = len(ops)
    event(f"sequence length {'1-9' if n < 10 else '10-19' if n < 20 else '20-29' if n < 30 else '30-40'}")


# --- directed scenarios: each drives one intricate mechanism that random sequences reach only rarely ------------

W0_LOCK, W0_STALLED = VIRTUAL.lock_durations[0], VIRTUAL.stalled_intervals[0]


def _ids(outcome: Any) -> list[str]:
    """The job ids in an outcome (a Job view, or a list of them)."""
    value = outcome[1]
    views = value if value and isinstance(value[0], list | tuple) and value[0][0] != "id" else [value]
    return [dict(v)["id"] for v in views if v]


def _waiting_from_delayed(run: Run) -> list[str]:
    return [f["jobId"] for _, f in run.events if f["event"] == "waiting" and f.get("prev") == "delayed"]


#: name → (operations, a check of what the memory backend did, reasoned from the spec)
SCENARIOS: dict[str, tuple[list[Op], Any]] = {
    # several jobs stall in one check: recovered newest fetch first, so the oldest is at the head of wait;
    # stalledCounter counts; past max_stalled_count (worker 1: 0) the next fetch fails them without running
    "several jobs stall at once": ([
        ("add_many", 4, "mail", None, {}), ("fetch", 0), ("fetch", 0), ("fetch", 2), ("fetch", 2),
        ("stalled", 0), ("crash", 0), ("crash", 2), ("advance", W0_LOCK + 500),
        ("stalled", 0), ("fetch", 2), ("fetch", 2), ("crash", 2), ("advance", 1100), ("stalled", 2),
        ("advance", 1400), ("stalled", 1), ("fetch", 0), ("burst", 0, 6, None),
    ], lambda run: (
        run.outcomes[9] == ("ok", ["4", "3", "2", "1"])
        and _ids(run.outcomes[10]) == ["1"] and _ids(run.outcomes[11]) == ["2"]
        and run.outcomes[16] == ("ok", ["2", "1"])
        and [f["jobId"] for _, f in run.events if f.get("failedReason") == "job stalled more than allowable limit"]
        == ["1", "2"])),
    # a lock lives while now <= its expiry: completing exactly at the lock duration works, 1 ms later it fails;
    # the stalled-check lease likewise blocks a second check until 1 ms after it ends
    "lock and lease expiry boundaries": ([
        ("add_many", 2, "mail", None, {}), ("fetch", 0), ("advance", W0_LOCK), ("complete", 0, 0, "x", False),
        ("fetch", 0), ("advance", W0_LOCK + 1), ("complete", 0, 0, "x", False), ("stalled", 0),
        ("advance", W0_STALLED), ("stalled", 0), ("advance", 1), ("stalled", 0),
    ], lambda run: (
        run.outcomes[3][0] == "ok" and run.outcomes[6][:2] == ("raised", "LockError")
        and run.outcomes[9] == ("ok", []) and run.outcomes[11] == ("ok", ["2"]))),
    # jobs finishing in the same ms tie on score: count trimming drops the lowest ids *as strings* ("10" < "4")
    "keep count with equal finish times": ([
        ("add_many", 6, "mail", None, {"remove_on_complete": 3}), ("add_many", 6, "sms", None, {}),
        ("burst", 2, 6, "r"), ("burst", 2, 6, "r"), ("get_jobs", "completed", 0, -1, True),
    ], lambda run: _ids(run.outcomes[4]) == ["10", "11", "12", "4", "5", "6", "7", "8", "9"]),
    # a fetch promotes every due delayed job (due order, FIFO within a ms, lifo ignored, priority kept)
    "batch promotion of delayed jobs": ([
        ("add_many", 3, "mail", None, {"delay": 1000}), ("add_many", 2, "mail", None, {"delay": 500, "priority": 2}),
        ("add", "mail", None, {"delay": 500, "lifo": True}), ("add", "sms", None, {"delay": 1000, "priority": 1}),
        ("advance", 999), ("fetch", 0), ("advance", 1), ("fetch", 0), ("burst", 0, 6, None),
    ], lambda run: (
        _waiting_from_delayed(run) == ["4", "5", "6", "1", "2", "3", "7"]
        and _ids(run.outcomes[5]) == ["6"] and run.outcomes[8][1][0] == ["1", "2", "3", "7", "4", "5"])),
    # priority 0 first; FIFO per band; a lifo priority change or a rate-limit move goes to the head of its
    # band, where equal scores are ordered by id
    "priority bands and head-of-band ties": ([
        ("add_many", 3, "mail", None, {"priority": 2}), ("add_many", 2, "mail", None, {"priority": 1}),
        ("add", "sms", None, {}), ("change_priority", 3, 2, True), ("change_priority", 4, 2, True),
        ("change_priority", 5, 0, True), ("counts_per_priority",), ("get_jobs", "prioritized", 0, -1, True),
        ("fetch", 0), ("fail", 0, 0, "ratelimit:0", False), ("fetch", 2), ("fetch", 2),
        ("fail", 2, 0, "ratelimit:0", False), ("fail", 2, 0, "ratelimit:0", False), ("burst", 0, 6, 1),
    ], lambda run: (
        run.outcomes[6] == ("ok", {0: 1, 1: 0, 2: 5, 5: 0})
        and _ids(run.outcomes[7]) == ["4", "5", "1", "2", "3"]
        and run.outcomes[14][1][0] == ["6", "4", "5", "1", "2", "3"])),
    # the events stream: an exact trim keeps the newest entries; approximate trimming (short maxLen runs of
    # this scenario) drops whole nodes only
    "events trimming": ([
        ("add_many", 6, "mail", "é" * 30, {}), ("burst", 0, 6, "x" * 300), ("add_many", 6, "mail", None, {}),
        *[("progress", i, '{"pct":50}') for i in range(30)], ("trim_events", 10), ("burst", 2, 6, None),
        ("add_many", 6, "sms", None, {}), ("trim_events", 2), ("add", "mail", None, {}),
    ], lambda run: [(f["event"], f["jobId"]) for _, f in run.events]
        == [("added", "18"), ("waiting", "18"), ("added", "19"), ("waiting", "19")]),
    # retries: immediate (lifo back to the head), backoff into delayed, a custom strategy, retries-exhausted,
    # then retry_jobs puts every failed job back
    "retries and backoff": ([
        ("add", "mail", None, {"attempts": 3, "backoff": {"type": "exponential", "delay": 50}, "stack_trace_limit": 1}),
        ("add", "mail", None, {"attempts": 5, "backoff": {"type": "custom"}, "priority": 2}),
        ("add", "mail", None, {"attempts": 2, "lifo": True}),
        ("fail", 0, 0, "error", False), ("fail", 0, 0, "error", False), ("fail", 0, 0, "error", False),
        ("advance", 50), ("fail", 0, 0, "error", False), ("advance", 100), ("fail", 0, 0, "error", False),
        ("fail", 0, 0, "error", False), ("advance", 200), ("fail", 0, 0, "error", True),
        ("retry_jobs", "failed", 1000), ("burst", 0, 6, None),
    ], lambda run: (
        [f["delay"] for _, f in run.events if f["event"] == "delayed"]
        == [str(START_MS + 50), str(START_MS + 50 + 100), str(START_MS + 150 + 150)]
        and run.names("3") [:5] == ["added", "waiting", "active", "waiting", "active"]
        and run.outcomes[13] == ("ok", 3))),
    # step jobs: the processor parks its job (delayed, or back to wait) without using an attempt; a job left
    # active without a lock is found by the stalled check
    "step jobs": ([
        ("add", "mail", None, {"attempts": 2}), ("fail", 0, 0, "delayed:700", False), ("advance", 700),
        ("fail", 0, 0, "waiting", False), ("fail", 0, 0, "waiting-unmoved", False), ("advance", W0_LOCK + 1),
        ("stalled", 0), ("advance", W0_STALLED + 1), ("stalled", 0), ("complete", 0, 0, "done", True),
    ], lambda run: run.outcomes[8] == ("ok", ["1"]) and run.names("1")[-2:] == ["active", "completed"]),
    # the rate limiter: a fixed window ending at exactly its expiry; the global limit overrides the worker's;
    # queue.rate_limit; maximum_rate_limit_delay caps a worker's pause
    "rate limiting": ([
        ("add_many", 5, "mail", None, {}), ("burst", 1, 5, None), ("fetch", 1), ("advance", 999),
        ("fetch", 1), ("advance", 1), ("fetch", 1), ("global_rate_limit", 1, 300), ("fetch", 2), ("fetch", 0),
        ("rate_limit", 500), ("advance", 200), ("fetch", 2), ("remove_rate_limit_key",), ("advance", 200),
        ("fetch", 2), ("fail", 2, 0, "ratelimit:250", True), ("global_rate_limit", 0, 300), ("advance", 600),
        ("fetch", 0),
    ], lambda run: (
        run.outcomes[1][1][0] == ["1", "2"] and run.outcomes[4] == ("ok", None) and _ids(run.outcomes[6]) == ["3"]
        and run.outcomes[8] == ("ok", None) and _ids(run.outcomes[15]) == ["4"] and _ids(run.outcomes[19]) == ["4"])),
    # pause: new, retried, promoted and stalled jobs collect in paused; resume renames it back to wait
    "pause and resume": ([
        ("add", "mail", None, {"attempts": 2}), ("fetch", 0), ("pause", True),
        ("add_many", 2, "mail", None, {"lifo": True}), ("add", "mail", None, {"delay": 100}),
        ("fail", 0, 0, "error", False), ("advance", 100), ("fetch", 1), ("pause", True), ("pause", False),
        ("fetch", 1), ("stalled", 0), ("crash", 1), ("pause", True), ("advance", 3000), ("stalled", 0),
        ("get_jobs", "waiting", 0, -1, True), ("pause", False), ("burst", 0, 6, 1),
    ], lambda run: (
        run.outcomes[7] == ("ok", None) and _ids(run.outcomes[10]) == ["3"] and run.outcomes[15] == ("ok", ["3"])
        and run.outcomes[18][1][0] == ["3", "2", "1", "4"])),
    # global concurrency: no fetch while the active list is at the cap
    "global concurrency": ([
        ("add_many", 4, "mail", None, {}), ("global_concurrency", 1), ("fetch", 0), ("fetch", 1),
        ("complete", 0, 0, None, True), ("global_concurrency", 2), ("fetch", 1), ("fetch", 2),
        ("global_concurrency", 0), ("burst", 2, 6, None),
    ], lambda run: (
        run.outcomes[3] == ("ok", None) and _ids(run.outcomes[6]) == ["3"] and run.outcomes[7] == ("ok", None))),
    # deduplication: simple (until the owner finishes), debounce (each duplicate restarts the ttl), replace
    "deduplication": ([
        ("add", "mail", 1, {"deduplication": {"id": "d1"}}), ("add", "mail", 2, {"deduplication": {"id": "d1"}}),
        ("add", "mail", 3, {"deduplication": {"id": "d2", "ttl": 500, "extend": True}}), ("advance", 400),
        ("add", "mail", 4, {"deduplication": {"id": "d2", "ttl": 500, "extend": True}}), ("advance", 400),
        ("add", "mail", 5, {"deduplication": {"id": "d2", "ttl": 500, "extend": True}}),
        ("add", "mail", 6, {"delay": 1000, "deduplication": {"id": "d3", "ttl": 1000, "replace": True}}),
        ("add", "mail", 7, {"delay": 1000, "deduplication": {"id": "d3", "ttl": 1000, "replace": True}}),
        ("burst", 0, 6, None), ("add", "mail", 8, {"deduplication": {"id": "d1"}}), ("advance", 1000),
        ("add", "mail", 9, {"deduplication": {"id": "d2", "ttl": 500, "extend": True}}),
    ], lambda run: (
        _ids(run.outcomes[6]) == ["3"] and run.names("6") == ["added", "delayed", "removed"]
        and _ids(run.outcomes[10]) == ["8"] and _ids(run.outcomes[12]) == ["9"])),
    # keepLastIfActive: duplicates of a running owner are kept (the newest wins, with the id it was given) and
    # enqueued when the owner finishes
    "keep last if active": ([
        ("add", "mail", 1, {"deduplication": {"id": "d4", "keep_last_if_active": True}}), ("fetch", 0),
        ("add", "mail", 2, {"deduplication": {"id": "d4", "keep_last_if_active": True}}),
        ("add", "mail", 3, {"deduplication": {"id": "d4", "keep_last_if_active": True}}),
        ("complete", 0, 0, None, True), ("complete", 0, 0, None, False),
        ("add", "mail", 4, {"deduplication": {"id": "d4", "keep_last_if_active": True}}),
    ], lambda run: (
        [f["jobId"] for _, f in run.events if f["event"] == "added"] == ["1", "3", "5"]
        and dict(run.outcomes[4][1][2])["id"] == "3")),
    # custom ids: a duplicate is a no-op until the job is removed; obliterate (refused while active unless forced)
    # deletes the id counter too
    "custom ids and obliterate": ([
        ("add", "mail", None, {"job_id": "a"}), ("add", "mail", None, {"job_id": "a"}), ("fetch", 0),
        ("obliterate", False), ("obliterate", True), ("add", "mail", None, {"job_id": "a"}), ("remove", 0),
        ("add", "mail", None, {"job_id": "a"}), ("add", "mail", None, {}), ("get_state", 0),
    ], lambda run: (
        run.outcomes[3][:2] == ("raised", "JobStateError") and _ids(run.outcomes[8]) == ["3"]
        and run.outcomes[9] == ("ok", "waiting"))),
    # the dead-letter queue: a dead job moves there, comes back with fresh attempts, and a second death of the
    # same id replaces the first
    "dead-letter queue": ([
        ("dlq", True), ("add", "mail", None, {"attempts": 2}), ("log", 0, "line", None),
        ("fail", 0, 0, "error", False), ("fail", 0, 0, "error", True), ("redrive", 0), ("redrive", 0),
        ("fail", 0, 0, "unrecoverable", False), ("add", "mail", None, {"job_id": "a"}),
        ("fail", 0, 0, "error", False), ("redrive", 1), ("dlq", False), ("fail", 0, 0, "error", False),
        ("dlq_purge",),
    ], lambda run: (
        run.outcomes[5] == ("ok", "dq") and run.outcomes[6][:2] == ("raised", "JobNotFoundError")
        and run.names().count("dead-lettered") == 3 and run.outcomes[13] == ("ok", 1))),
    # clean, drain, retry, promote and remove across states
    "clean drain retry remove": ([
        ("add_many", 3, "mail", None, {}), ("add_many", 2, "mail", None, {"priority": 1}),
        ("add_many", 2, "mail", None, {"delay": 5000}), ("burst", 0, 2, None), ("fail", 0, 0, "unrecoverable", False),
        ("retry_job", 2, "failed", True, True), ("retry_job", 0, "completed", False, False), ("advance", 600),
        ("burst", 2, 1, None), ("clean", 500, 1, "completed"), ("clean", 0, 1, "waiting"), ("fetch", 2),
        ("clean", 0, 0, "active"), ("crash", 2), ("advance", 3000), ("clean", 0, 0, "active"), ("promote", 5),
        ("change_delay", 6, 200), ("drain", False), ("drain", True), ("remove", 1),
    ], lambda run: (
        run.outcomes[9] == ("ok", ["2"]) and run.outcomes[12] == ("ok", [])
        and sorted(run.outcomes[15][1]) == ["1", "4"] and run.outcomes[20] == ("ok", False))),
}


def _scenario_examples(test: Any) -> Any:
    from hypothesis import example

    for ops, _ in reversed(SCENARIOS.values()):
        test = example(max_len_events=10_000, ops=ops)(test)
    test = example(max_len_events=3, ops=SCENARIOS["events trimming"][0])(test)
    return example(max_len_events=0, ops=SCENARIOS["events trimming"][0])(test)


# --- the differential properties ------------------------------------------------------------------------------


@settings(max_examples=VIRTUAL_EXAMPLES, **_SETTINGS)
@_scenario_examples
@given(max_len_events=st.sampled_from(VIRTUAL.max_len_events), ops=sequences(VIRTUAL, VIRTUAL_MAX_STEPS))
def test_memory_backend_matches_fakeredis_after_every_step_of_generated_sequences(
        max_len_events: int, ops: list[Op]) -> None:
    _length_event(ops)
    run_sequence(ops, make_virtual_sides(max_len_events))


@pytest.mark.real_redis
@settings(max_examples=REAL_EXAMPLES, phases=[Phase.explicit, Phase.generate], **_SETTINGS)
@given(ops=sequences(REAL, REAL_MAX_STEPS))
def test_memory_backend_matches_a_real_redis_on_a_sample_of_generated_sequences(
        redis_url: str, ops: list[Op]) -> None:
    _length_event(ops)
    run_sequence(ops, make_real_sides(redis_url), compare_every_step=False, server_clock=True)


# --- regression cases: sequences that once showed a difference --------------------------------------------------

KEEP_LAST = {"deduplication": {"id": "d4", "keep_last_if_active": True}}

REGRESSIONS: list[Any] = [
    # keepLastIfActive: the kept duplicate must be enqueued (and fetched by fetch-next) when its owner completes;
    # the memory backend lost it (a code path that read the dedup key after it was released)
    pytest.param(10_000, [("add", "mail", 1, KEEP_LAST), ("fetch", 0), ("add", "mail", 2, KEEP_LAST),
                          ("add", "mail", 3, KEEP_LAST), ("complete", 0, 0, None, True)],
                 id="kept-duplicate-enqueued-on-finish"),
    # two jobs stalled in one check: the check walked the stalled set, which fakeredis returns in insertion
    # order and a real Redis in numeric order (integer ids) or hash order (others); it now walks the active
    # list, newest fetch first, on every backend
    pytest.param(10_000, [("add", "mail", None, {}), ("add", "mail", None, {}), ("fetch", 0), ("fetch", 2),
                          ("stalled", 1), ("crash", 0), ("crash", 2), ("advance", 5000), ("stalled", 1),
                          ("fetch", 2), ("fetch", 2)],
                 id="stall-recovery-order"),
    # a lock set with PX 1300 must still exist exactly 1300 ms later (Redis: a key is gone once now > expiry);
    # the fakeredis bridge compared float seconds, and for one start time in five the lock expired 1 ms early
    pytest.param(10_000, [("add", "mail", None, {}), ("advance", 1), ("fetch", 1), ("advance", 1_300),
                          ("complete", 1, 0, None, False)],
                 id="lock-alive-at-exactly-its-ttl"),
    # limiter window in its very last millisecond (PTTL 0): the fetch must open a fresh window
    pytest.param(10_000, [("add_many", 3, "mail", None, {}), ("fetch", 1), ("fetch", 1), ("advance", 1_000),
                          ("fetch", 1), ("fetch", 1)],
                 id="limiter-window-last-millisecond"),
]


#: regression cases that use no exact expiry boundary, so they also run against a real Redis
REAL_REDIS_REGRESSIONS = ("kept-duplicate-enqueued-on-finish", "stall-recovery-order")


@pytest.mark.parametrize(("max_len_events", "ops"), REGRESSIONS)
def test_sequences_that_once_diverged_now_agree(max_len_events: int, ops: list[Op]) -> None:
    run_sequence(ops, make_virtual_sides(max_len_events))


@pytest.mark.real_redis
@pytest.mark.parametrize(("max_len_events", "ops"), [p for p in REGRESSIONS if p.id in REAL_REDIS_REGRESSIONS])
def test_sequences_that_once_diverged_now_agree_with_a_real_redis(redis_url: str, max_len_events: int,
                                                                    ops: list[Op]) -> None:
    run_sequence(ops, make_real_sides(redis_url), compare_every_step=False, server_clock=True)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_directed_scenarios_agree_and_reach_their_mechanism(name: str) -> None:
    """Both backends agree on the scenario, and it does reach the mechanism it is named after."""
    ops, reaches_its_mechanism = SCENARIOS[name]
    run = run_sequence(ops, make_virtual_sides(10_000))
    assert reaches_its_mechanism(run), f"{name}: events {run.names()!r}"


# --- the harness itself ---------------------------------------------------------------------------------------


def test_the_memory_backend_has_every_public_method_of_the_redis_backend_with_the_same_parameters() -> None:
    missing, different = [], []
    for name, fn in inspect.getmembers(RedisBackend, inspect.isfunction):
        if name.startswith("_"):
            continue
        twin = getattr(MemoryBackend, name, None)
        if twin is None:
            missing.append(name)
        elif list(inspect.signature(fn).parameters) != list(inspect.signature(twin).parameters):
            different.append(name)
    assert missing == []
    assert different == []


def test_the_harness_notices_a_backend_that_deviates() -> None:
    """A memory backend that forgets one event must be caught (the comparison is not vacuous)."""
    original = MemoryBackend.promote

    def promote_without_event(self: MemoryBackend, queue: str, job_id: str) -> None:
        q = self._q(queue)  # (single-threaded test: no lock needed around the two calls)
        before = len(q.events)
        original(self, queue, job_id)
        if len(q.events) > before:
            q.events.tail.pop()

    ops: list[Op] = [("add", "mail", None, {"delay": 1000}), ("promote", 0)]
    MemoryBackend.promote = promote_without_event  # type: ignore[method-assign]
    try:
        with pytest.raises(Divergence, match="events"):
            run_sequence(ops, make_virtual_sides(10_000))
    finally:
        MemoryBackend.promote = original  # type: ignore[method-assign]
    assert run_sequence(ops, make_virtual_sides(10_000)).names() == ["added", "delayed", "waiting"]


def _mutate_lifo(mp: pytest.MonkeyPatch) -> None:
    original = MemoryBackend._add_ready
    mp.setattr(MemoryBackend, "_add_ready", lambda self, q, job_id, p, lifo: original(self, q, job_id, p, not lifo))


def _mutate_stall_order(mp: pytest.MonkeyPatch) -> None:
    original = MemoryBackend.move_stalled_jobs_to_wait

    def reversed_block(self: MemoryBackend, queue: str, *args: Any) -> list[str]:
        recovered = original(self, queue, *args)
        target = self._target_list(self._q(queue))
        block = [target.pop() for _ in recovered]
        target.extend(block)  # the recovered jobs, in the opposite order at the head
        return recovered

    mp.setattr(MemoryBackend, "move_stalled_jobs_to_wait", reversed_block)


def _mutate_exact_trimming(mp: pytest.MonkeyPatch) -> None:
    original = _Stream.trim
    mp.setattr(_Stream, "trim", lambda self, max_len, approx, limit: original(self, max_len, False, limit))


def _mutate_keep_count(mp: pytest.MonkeyPatch) -> None:
    original = MemoryBackend.move_to_finished

    def one_more(self: MemoryBackend, *args: Any, keep: KeepJobs | None, **kwargs: Any) -> Any:
        if keep is not None and keep.count:
            keep = KeepJobs(keep.count + 1, keep.age_s, keep.limit)
        return original(self, *args, keep=keep, **kwargs)

    mp.setattr(MemoryBackend, "move_to_finished", one_more)


def _mutate_lock_expiry(mp: pytest.MonkeyPatch) -> None:
    original = MemoryBackend._leave_active

    def expire_at_ttl(self: MemoryBackend, q: Any, job_id: str, token: str, now: int) -> int:
        entry = q.locks.get(job_id)
        if entry is not None and now >= entry[1]:  # one ms too early
            del q.locks[job_id]
        return original(self, q, job_id, token, now)

    mp.setattr(MemoryBackend, "_leave_active", expire_at_ttl)


def _mutate_promotion_batch(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(memory_module, "PROMOTE_BATCH", 1)


def _mutate_stalled_lease(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(MemoryBackend, "_stalled_check_exists", lambda self, q, now: False)


@pytest.mark.parametrize("mutation", [_mutate_lifo, _mutate_stall_order, _mutate_exact_trimming, _mutate_keep_count,
                                      _mutate_lock_expiry, _mutate_promotion_batch, _mutate_stalled_lease],
                         ids=lambda f: f.__name__.removeprefix("_mutate_"))
def test_the_directed_scenarios_catch_a_subtly_broken_memory_backend(mutation: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    mutation(monkeypatch)
    caught = []
    for name, (ops, _) in SCENARIOS.items():
        for max_len_events in (10_000, 3):
            try:
                run_sequence(ops, make_virtual_sides(max_len_events))
            except Divergence:
                caught.append(name)
                break
        if caught:
            break
    assert caught, "no scenario noticed the injected bug"


def test_a_real_redis_sample_uses_only_times_off_the_ttl_grid() -> None:
    """On a real Redis every advance is a multiple of the unit and every server-side ttl is half a unit off it, so
    execution time (less than half a unit) can never decide whether a lock or a window has run out."""
    for ttl in (*REAL.lock_durations, *REAL.stalled_intervals, *REAL.limiter_durations, *REAL.ttls):
        assert ttl % REAL.unit == REAL.unit // 2
    assert all(a % REAL.unit == 0 for a in REAL.advances)
