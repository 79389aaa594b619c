"""Fuzzing the job-option validation: any input gives either a job or a clean OptionError, and an
OptionError leaves the queue exactly as it was (no id used, no key written, no event)."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

import queuesim
from queuesim import OptionError, Queue, VirtualClock

OPTION_NAMES = ["job_id", "priority", "delay", "attempts", "backoff", "lifo", "remove_on_complete",
                "remove_on_fail", "deduplication", "repeat", "timestamp", "timeout", "keep_logs",
                "stack_trace_limit", "size_limit", "parent", "colour"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 3_000_000), st.floats(allow_nan=True),
                    st.text(max_size=8), st.sampled_from(["fixed", "exponential", "0", "1:2", "abc", ""]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["type", "delay", "jitter", "count", "age", "limit", "id", "ttl", "every",
                                     "pattern", "queue", "extend", "x"]), inner, max_size=3)), max_leaves=6)
options = st.dictionaries(st.sampled_from(OPTION_NAMES), values, max_size=4)
payloads = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.floats(allow_nan=True),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.just({1, 2}))

CONN = queuesim.connect(clock=VirtualClock())
QUEUE = Queue("fuzz", CONN)
TRIED = {"inputs": 0, "accepted": 0, "refused": 0}


def _state() -> tuple[Any, ...]:
    c = CONN.client
    return (sorted(c.scan_iter(match="bull:fuzz:*")), c.get(QUEUE.keys.id), c.xlen(QUEUE.keys.events))


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(opts=options, data=payloads)
def test_any_options_give_a_job_or_a_clean_error_that_writes_nothing(opts: dict[str, Any], data: Any) -> None:
    before = _state()
    TRIED["inputs"] += 1
    refusal: OptionError | None = None
    try:
        job = QUEUE.add("fuzzed", data, **opts)
    except OptionError as exc:
        refusal = exc
    if refusal is None:
        TRIED["accepted"] += 1
        assert job.id
        return
    TRIED["refused"] += 1
    assert isinstance(refusal, ValueError)
    assert refusal.field
    assert str(refusal).startswith(refusal.field)
    assert _state() == before


def test_fuzzing_tried_both_valid_and_invalid_inputs() -> None:
    # runs after the fuzz test in file order; guards against a generator that only ever produces one kind
    if TRIED["inputs"]:
        assert TRIED["accepted"] > 0
        assert TRIED["refused"] > 0
