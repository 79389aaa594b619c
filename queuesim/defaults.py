"""BullMQ's default values, in one place (reference: BullMQ 5.81.5).

Every duration carries its unit in its name. queuesim uses the same numbers so that a set-up copied from a
BullMQ project behaves the same here.
"""

from __future__ import annotations

#: Key prefix of every Redis key (``bull:<queue>:<suffix>``).
PREFIX = "bull"
#: How long a worker's lock on an active job lives before it must be renewed.
LOCK_DURATION_MS = 30_000
#: How often the stalled-jobs check runs (and the lease that lets only one worker run it per interval).
STALLED_INTERVAL_MS = 30_000
#: How many times a job may stall before it fails with "job stalled more than allowable limit".
MAX_STALLED_COUNT = 1
#: Longest sleep of a rate-limited worker, so that due delayed jobs still get promoted.
MAXIMUM_RATE_LIMIT_DELAY_MS = 30_000
#: Block timeout of an idle worker's marker wait, in seconds (BullMQ's ``drainDelay``).
DRAIN_DELAY_S = 5
#: Approximate length the events stream is trimmed to.
MAX_LEN_EVENTS = 10_000
#: Highest job priority (2^21 - 1); 0 means "no priority".
MAX_PRIORITY = 2_097_151
#: Most jobs removed by one age-based clean-up when a job finishes.
KEEP_JOBS_LIMIT = 1_000
#: Most due delayed jobs promoted by one fetch.
PROMOTE_BATCH = 1_000
#: Reason written on a job that stalled more often than ``max_stalled_count`` allows.
STALLED_LIMIT_REASON = "job stalled more than allowable limit"
#: Reason written on a job started more often than ``max_started_attempts`` allows.
STARTED_LIMIT_REASON = "job started more than allowable limit"
#: Number of the largest integer a JavaScript number can hold exactly (used by ``rate_limit``).
MAX_SAFE_INTEGER = 9_007_199_254_740_991
