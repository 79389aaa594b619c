"""Queue health: the seed guide's rules, as a pure function over counts and recent performance.

Every 30 seconds the seed's health service looks at each queue and classifies it:

* **critical** — the queue is paused; or more than 50 % of the jobs that finished in the last minute failed;
  or jobs are waiting but none finished in the last minute (no throughput with a backlog);
* **warning** — more than 1,000 jobs waiting; or an error rate above 20 %; or an average processing time
  above 30 s;
* **healthy** — none of the above.

Each rule adds an alert text (the seed's wording). The same function serves simulations (virtual time) and the
live dashboard (wall time); it only needs the numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from queuesim.errors import OptionError

__all__ = ["HealthReport", "HealthRules", "HealthStatus", "QueueSnapshot", "assess", "snapshot_from_jobs"]


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """What the rules look at.

    Attributes:
        waiting: jobs waiting to run (wait + paused + prioritized).
        active, completed, failed, delayed: counts per state.
        paused: whether the queue is paused.
        throughput_per_min: jobs completed in the last minute.
        error_rate_pct: failed / (completed + failed) among jobs finished in the last minute, in percent.
        avg_processing_ms: mean processing time of the jobs completed in the last minute (0 if none).
    """

    waiting: int = 0
    active: int = 0
    completed: int = 0
    failed: int = 0
    delayed: int = 0
    paused: bool = False
    throughput_per_min: int = 0
    error_rate_pct: float = 0.0
    avg_processing_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: HealthStatus
    alerts: tuple[str, ...] = field(default_factory=tuple)
    snapshot: QueueSnapshot = field(default_factory=QueueSnapshot)


@dataclass(frozen=True, slots=True)
class HealthRules:
    """Thresholds of the rules (the seed's values by default) and how often / over what window they run."""

    interval_ms: int = 30_000
    window_ms: int = 60_000
    waiting_warning: int = 1000
    error_rate_warning: float = 0.20
    error_rate_critical: float = 0.50
    slow_processing_ms: int = 30_000

    def __post_init__(self) -> None:
        for name in ("interval_ms", "window_ms", "slow_processing_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OptionError(name, f"must be an integer number of ms >= 1, got {value!r}")
        if isinstance(self.waiting_warning, bool) or not isinstance(self.waiting_warning, int):
            raise OptionError("waiting_warning", f"must be an integer, got {self.waiting_warning!r}")
        for name in ("error_rate_warning", "error_rate_critical"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise OptionError(name, f"must be a fraction between 0 and 1, got {value!r}")


DEFAULT_RULES = HealthRules()


def assess(s: QueueSnapshot, rules: HealthRules = DEFAULT_RULES) -> HealthReport:
    """Apply the rules, in the seed's order, and return the status with its alerts."""
    alerts: list[str] = []
    status = HealthStatus.HEALTHY

    def raise_to(level: HealthStatus) -> None:
        nonlocal status
        if level is HealthStatus.CRITICAL or status is HealthStatus.HEALTHY:
            status = level

    if s.paused:
        alerts.append("Queue is paused")
        raise_to(HealthStatus.CRITICAL)
    if s.waiting > rules.waiting_warning:
        alerts.append(f"High queue backlog: {s.waiting} jobs waiting")
        raise_to(HealthStatus.WARNING)
    if s.error_rate_pct > 100 * rules.error_rate_critical:
        alerts.append(f"High error rate: {s.error_rate_pct:.1f}%")
        raise_to(HealthStatus.CRITICAL)
    elif s.error_rate_pct > 100 * rules.error_rate_warning:
        alerts.append(f"Elevated error rate: {s.error_rate_pct:.1f}%")
        raise_to(HealthStatus.WARNING)
    if s.avg_processing_ms > rules.slow_processing_ms:
        alerts.append(f"Slow processing: {s.avg_processing_ms / 1000:.1f}s average")
        raise_to(HealthStatus.WARNING)
    if s.throughput_per_min == 0 and s.waiting > 0:
        alerts.append("No jobs being processed despite queue backlog")
        raise_to(HealthStatus.CRITICAL)
    return HealthReport(status, tuple(alerts), s)


def snapshot_from_jobs(now_ms: int, counts: dict[str, int], paused: bool,
                       finished: Iterable[tuple[bool, int | None, int | None]]) -> QueueSnapshot:
    """Build a snapshot from counts and finished jobs given as ``(completed?, processed_on, finished_on)``.

    Only jobs finished in the minute before ``now_ms`` count towards throughput, error rate and the average
    processing time, as in the seed.
    """
    since = now_ms - 60_000
    done_times: list[int] = []
    failed_recent = 0
    for completed, processed_on, finished_on in finished:
        if finished_on is None or finished_on <= since:
            continue
        if completed:
            done_times.append(finished_on - (processed_on or finished_on))
        else:
            failed_recent += 1
    total = len(done_times) + failed_recent
    return QueueSnapshot(
        waiting=counts.get("waiting", 0) + counts.get("paused", 0) + counts.get("prioritized", 0),
        active=counts.get("active", 0),
        completed=counts.get("completed", 0),
        failed=counts.get("failed", 0),
        delayed=counts.get("delayed", 0),
        paused=paused,
        throughput_per_min=len(done_times),
        error_rate_pct=100.0 * failed_recent / total if total else 0.0,
        avg_processing_ms=sum(done_times) / len(done_times) if done_times else 0.0,
    )
