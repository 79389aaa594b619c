"""The README's first command: the showcase timeline is deterministic and shows what it promises."""

from __future__ import annotations

import io
import re

from queuesim.demo import run_demo


def _run() -> str:
    buf = io.StringIO()
    run_demo(buf)
    return buf.getvalue()


def test_demo_is_byte_identical_across_runs() -> None:
    assert _run() == _run()


def test_demo_shows_priorities_backoff_dead_letter_and_stall_recovery() -> None:
    text = _run()
    actives = re.findall(r"job +(\d+) +active", text)
    # audit-log (4, priority 0) and charge-card (5, priority 0) start before any prioritized job,
    # then resize-image (6, priority 1), welcome (2, priority 10), reset (3, priority 15)
    assert actives[:5] == ["4", "5", "6", "2", "3"]
    # exponential backoff: due 1 s after the first failure, 2 s after the second
    assert "job  5  delayed  delay=due at 1.400s" in text
    assert "job  5  delayed  delay=due at 4.200s" in text
    assert "job  5  retries-exhausted  attemptsMade=3" in text
    assert "Dead-letter queue 'emails-dlq': job 5 (charge-card) after 3 attempts" in text
    assert re.search(r"job +6 +stalled", text)
    assert "Job 6 (resize-image) stalled 1x and was completed by worker-B" in text
    assert "Final counts of 'emails': completed 5" in text
