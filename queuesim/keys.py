"""The Redis key layout, byte-identical to BullMQ v5: ``<prefix>:<queue>:<suffix>``.

One place builds every key, so the rest of the code never concatenates strings. When the prefix is a Redis
Cluster hash tag such as ``{bull}``, every key of every queue hashes to the same slot, so the scripts (which
touch job keys they build themselves) stay valid on a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QUEUE_KEY_SUFFIXES", "QueueKeys"]

#: Queue-level key suffixes (see bullmq-semantics §1.1).
QUEUE_KEY_SUFFIXES = (
    "wait", "paused", "active", "prioritized", "pc", "delayed", "waiting-children", "completed", "failed",
    "stalled", "stalled-check", "id", "meta", "events", "marker", "limiter", "repeat",
)


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """All key names of one queue."""

    prefix: str
    queue: str

    @property
    def base(self) -> str:
        """``<prefix>:<queue>:`` — a job's key is this plus its id."""
        return f"{self.prefix}:{self.queue}:"

    def key(self, suffix: str) -> str:
        return f"{self.prefix}:{self.queue}:{suffix}"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:{self.queue}:{job_id}"

    def job_logs(self, job_id: str) -> str:
        return f"{self.prefix}:{self.queue}:{job_id}:logs"

    def job_lock(self, job_id: str) -> str:
        return f"{self.prefix}:{self.queue}:{job_id}:lock"

    @property
    def wait(self) -> str:
        return self.key("wait")

    @property
    def paused(self) -> str:
        return self.key("paused")

    @property
    def active(self) -> str:
        return self.key("active")

    @property
    def prioritized(self) -> str:
        return self.key("prioritized")

    @property
    def delayed(self) -> str:
        return self.key("delayed")

    @property
    def completed(self) -> str:
        return self.key("completed")

    @property
    def failed(self) -> str:
        return self.key("failed")

    @property
    def stalled(self) -> str:
        return self.key("stalled")

    @property
    def meta(self) -> str:
        return self.key("meta")

    @property
    def events(self) -> str:
        return self.key("events")

    @property
    def marker(self) -> str:
        return self.key("marker")

    @property
    def limiter(self) -> str:
        return self.key("limiter")

    @property
    def id(self) -> str:
        return self.key("id")

    @property
    def pc(self) -> str:
        return self.key("pc")

    def state_list(self, state: str) -> str:
        """Key of a state set/list; accepts getState names (``waiting``) and key names (``wait``)."""
        return self.key("wait" if state == "waiting" else state)
