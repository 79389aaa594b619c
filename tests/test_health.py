"""The seed's health rules."""

from __future__ import annotations

import pytest

from queuesim.health import HealthStatus, QueueSnapshot, assess, snapshot_from_jobs


def test_an_idle_empty_queue_is_healthy() -> None:
    report = assess(QueueSnapshot())
    assert report.status is HealthStatus.HEALTHY
    assert report.alerts == ()


@pytest.mark.parametrize(("snap", "status", "alert"), [
    (QueueSnapshot(paused=True), "critical", "Queue is paused"),
    (QueueSnapshot(waiting=1001, throughput_per_min=5), "warning", "High queue backlog: 1001 jobs waiting"),
    (QueueSnapshot(waiting=1000, throughput_per_min=5), "healthy", None),
    (QueueSnapshot(error_rate_pct=20.5), "warning", "Elevated error rate: 20.5%"),
    (QueueSnapshot(error_rate_pct=20.0), "healthy", None),
    (QueueSnapshot(error_rate_pct=50.1), "critical", "High error rate: 50.1%"),
    (QueueSnapshot(avg_processing_ms=30_001), "warning", "Slow processing: 30.0s average"),
    (QueueSnapshot(waiting=3, throughput_per_min=0), "critical", "No jobs being processed despite queue backlog"),
])
def test_each_rule_sets_its_status_and_alert(snap: QueueSnapshot, status: str, alert: str | None) -> None:
    report = assess(snap)
    assert report.status == status
    assert report.alerts == ((alert,) if alert else ())


def test_a_warning_never_lowers_a_critical_status() -> None:
    report = assess(QueueSnapshot(paused=True, waiting=5000, throughput_per_min=10))
    assert report.status is HealthStatus.CRITICAL
    assert report.alerts == ("Queue is paused", "High queue backlog: 5000 jobs waiting")


def test_snapshot_counts_only_the_last_minute() -> None:
    now = 1_000_000
    finished = [
        (True, now - 10_000, now - 5_000),     # 5 s processing, recent
        (True, now - 70_000, now - 61_000),    # too old
        (False, now - 3_000, now - 2_000),     # recent failure
        (True, now - 4_000, now - 1_000),      # 3 s processing, recent
    ]
    snap = snapshot_from_jobs(now, {"waiting": 2, "paused": 1, "prioritized": 4}, False, finished)
    assert snap.waiting == 7
    assert snap.throughput_per_min == 2
    assert snap.error_rate_pct == pytest.approx(100 / 3)
    assert snap.avg_processing_ms == 4000
    assert assess(snap).status is HealthStatus.WARNING
