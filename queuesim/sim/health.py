"""Health monitoring: the seed project's queue-health rules, evaluated in simulated time.

Every ``interval_ms`` (30 simulated seconds by default) each monitored queue is assessed:

| rule | status |
|---|---|
| the queue is paused | critical |
| more than 1000 jobs waiting (waiting + paused + prioritized) | warning |
| error rate over the last minute > 50% (> 20%) | critical (warning) |
| average processing time of the jobs completed in the last minute > 30 s | warning |
| nothing completed in the last minute while jobs are waiting | critical |

The error rate is the share of jobs that *finished* in the last minute that failed for good (failed or sent to
the dead-letter queue), as in the seed; an attempt that will be retried is not an error yet. The processing
time of a job is the length of its last attempt (``finishedOn - processedOn``).

The output is a table of checks and an **alerts timeline**: one row per alert raised at a check.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pandas as pd
import simpy

from queuesim.health import HealthRules, QueueSnapshot, assess

if TYPE_CHECKING:
    from queuesim.sim.environment import SimQueue, Simulation

__all__ = ["HealthMonitor", "HealthRules", "evaluate"]


def evaluate(rules: HealthRules, *, waiting: int, paused: bool, completed_recently: int, failed_recently: int,
             avg_processing_ms: float) -> tuple[str, list[str]]:
    """Apply the rules (:func:`queuesim.health.assess`) to one queue's numbers; returns (status, alerts)."""
    total = completed_recently + failed_recently
    report = assess(QueueSnapshot(
        waiting=waiting, paused=paused, throughput_per_min=completed_recently,
        error_rate_pct=100.0 * failed_recently / total if total else 0.0, avg_processing_ms=avg_processing_ms), rules)
    return str(report.status), list(report.alerts)


class HealthMonitor:
    """Runs the health checks of some queues as a SimPy process and keeps their results."""

    def __init__(self, sim: Simulation, queues: list[SimQueue], rules: HealthRules) -> None:
        self.sim = sim
        self.queues = queues
        self.rules = rules
        #: one row per check: (time_ms, queue, status, waiting, active, delayed, completed, failed, paused,
        #: avg_processing_ms, throughput_per_min, error_rate_pct)
        self.checks: list[tuple[Any, ...]] = []
        #: one row per alert: (time_ms, queue, status, alert)
        self.alerts: list[tuple[Any, ...]] = []
        self._seen = {sq.name: 0 for sq in queues}
        self._recent: dict[str, list[tuple[int, str, int]]] = {sq.name: [] for sq in queues}
        sim.recorder.keep_finished = True  # (a streaming recorder lists finished jobs only for a monitor)
        sim.env.process(self._run())

    def _run(self) -> Generator[simpy.Event, Any, None]:
        while True:
            yield self.sim.env.timeout(self.rules.interval_ms)
            self.check()

    def check(self) -> None:
        """Assess every monitored queue now."""
        sim = self.sim
        sim.recorder.pull()
        now = sim.now_ms
        for sq in self.queues:
            finished = sim.recorder.finished[sq.name]
            recent = self._recent[sq.name]
            recent.extend(finished[self._seen[sq.name]:])
            if sim.recorder.streaming:
                finished.clear()  # nothing else reads them: memory stays flat
            self._seen[sq.name] = len(finished)
            cutoff = now - self.rules.window_ms
            recent[:] = [item for item in recent if item[0] > cutoff]
            done = [p for _, state, p in recent if state == "completed"]
            failed = sum(1 for _, state, _ in recent if state != "completed")
            avg = sum(done) / len(done) if done else 0.0
            counts = sq.queue.get_job_counts()
            paused = sq.queue.is_paused()
            waiting = counts["waiting"] + counts["paused"] + counts["prioritized"]
            status, alerts = evaluate(self.rules, waiting=waiting, paused=paused, completed_recently=len(done),
                                      failed_recently=failed, avg_processing_ms=avg)
            total = len(done) + failed
            self.checks.append((now, sq.name, status, waiting, counts["active"], counts["delayed"],
                                counts["completed"], counts["failed"], paused, avg,
                                len(done) * 60_000 / self.rules.window_ms, 100 * failed / total if total else 0.0))
            for alert in alerts:
                self.alerts.append((now, sq.name, status, alert))

    def check_log(self) -> pd.DataFrame:
        return pd.DataFrame.from_records(self.checks, columns=[
            "time_ms", "queue", "status", "waiting", "active", "delayed", "completed", "failed", "paused",
            "avg_processing_ms", "throughput_per_min", "error_rate_pct"])

    def alert_log(self) -> pd.DataFrame:
        """The alerts timeline."""
        return pd.DataFrame.from_records(self.alerts, columns=["time_ms", "queue", "status", "alert"])
