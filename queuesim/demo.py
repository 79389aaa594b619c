"""The showcase run behind ``make demo``: a queue's life, printed as a timeline, in virtual time.

Everything runs on the embedded fakeredis server with a :class:`~queuesim.clock.VirtualClock`, so a minute of
queue time passes in a fraction of a second and the output is the same on every run. What it shows:

* priorities: a priority-0 job runs before every prioritized job, then 10 before 15 (lower number first);
* a delayed job (the newsletter) that waits for its due time;
* a job that keeps failing, retried with exponential backoff (1 s, 2 s), then sent to the dead-letter queue;
* a worker that crashes while holding a job: its lock expires and the stalled check puts the job back.

Run it with ``python -m queuesim.demo``.
"""

from __future__ import annotations

import heapq
import itertools
import sys
from collections.abc import Callable
from typing import TextIO

import numpy as np

from queuesim import Job, Queue, QueueEvents, VirtualClock, Worker, connect

__all__ = ["main", "run_demo"]

START_MS = 1_700_000_000_000
SERVICE_MS = {"audit-log": 300, "welcome-email": 800, "password-reset": 600, "charge-card": 400,
              "newsletter": 1500, "resize-image": 5000}


class _Timeline:
    """A tiny discrete-event loop: actions sorted by virtual time (ms)."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def at(self, when_ms: int, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (when_ms, next(self._seq), action))

    def run(self, until_ms: int, after_each: Callable[[], None]) -> None:
        while self._heap and self._heap[0][0] <= until_ms:
            when, _, action = heapq.heappop(self._heap)
            self.clock.set(max(when, self.clock.now_ms()))
            action()
            after_each()


def run_demo(out: TextIO = sys.stdout, horizon_s: int = 120) -> dict[str, int]:
    """Run the showcase and print its timeline to ``out``; returns the final job counts."""
    clock = VirtualClock(START_MS)
    conn = connect(clock=clock)
    queue = Queue("emails", conn, dead_letter_queue="emails-dlq")
    events = QueueEvents("emails", conn, last_event_id="0")
    loop = _Timeline(clock)
    settings = {"lock_duration": 30_000, "stalled_interval": 30_000, "max_stalled_count": 1}
    workers = {
        "worker-A": Worker(queue, name="worker-A", worker_id="A", rng=np.random.default_rng(1), **settings),
        "worker-B": Worker(queue, name="worker-B", worker_id="B", rng=np.random.default_rng(2), **settings),
    }
    crashed: set[str] = set()

    def say(text: str) -> None:
        out.write(f"{(clock.now_ms() - START_MS) / 1000:8.3f}s  {text}\n")

    def print_events() -> None:
        for ev in events.read():
            details = {k: v for k, v in ev.fields.items() if k != "prev"}
            if "delay" in details:
                details["delay"] = f"due at {(int(details['delay']) - START_MS) / 1000:.3f}s"
            prev = f" (from {ev.fields['prev']})" if "prev" in ev.fields else ""
            job = f"job {ev.job_id:>2}" if ev.job_id else "      "
            extra = "  " + ", ".join(f"{k}={v}" for k, v in details.items()) if details else ""
            out.write(f"{(ev.time_ms - START_MS) / 1000:8.3f}s  {job}  {ev.name}{prev}{extra}\n")

    def try_fetch(name: str) -> None:
        w = workers[name]
        if name in crashed or w.active:
            return
        start(name, w.fetch())

    def start(name: str, job: Job | None) -> None:
        w = workers[name]
        if job is None:
            wake = w.next_wake_ms()
            if wake is not None:
                loop.at(wake, lambda: try_fetch(name))
            return
        if job.name == "resize-image" and not crashed:
            loop.at(clock.now_ms() + 2_000, lambda: crash(name))
        loop.at(clock.now_ms() + SERVICE_MS.get(job.name, 500), lambda: finish(name, job))

    def finish(name: str, job: Job) -> None:
        w = workers[name]
        if name in crashed or job.id not in w.active:
            return
        # Like BullMQ's running worker, finishing a job fetches the next one in the same call.
        if job.name == "charge-card":
            outcome = w.fail(job, RuntimeError("payment provider returned 503"), fetch_next=True)
            nxt = w.prefetched if outcome == "failed" else w.fetch()
        else:
            nxt = w.complete(job, {"ok": True, "by": name}, fetch_next=True)
        start(name, nxt)
        wake_idle_workers()

    def crash(name: str) -> None:
        lost = workers[name].forget()
        crashed.add(name)
        say(f"💥 {name} crashes while holding job(s) {', '.join(lost)}; its lock will expire after 30 s")

    def wake_idle_workers() -> None:
        for name in workers:
            loop.at(clock.now_ms(), lambda n=name: try_fetch(n))

    def stalled_check() -> None:
        alive = [n for n in workers if n not in crashed]
        recovered = workers[alive[0]].check_stalled() if alive else []
        if recovered:
            say(f"🔎 stalled check on {alive[0]} found job(s) {', '.join(recovered)} active but without a lock")
            wake_idle_workers()
        # A timer fires *at least* one interval later (as setTimeout does); +1 ms also lets the queue-wide
        # lease set by the previous check (PX = stalled interval) expire first.
        loop.at(clock.now_ms() + settings["stalled_interval"] + 1, stalled_check)

    def renew_locks() -> None:
        if "worker-A" not in crashed:
            workers["worker-A"].extend_locks()
        loop.at(clock.now_ms() + 7_500, renew_locks)

    out.write("queuesim demo — queue 'emails' on the embedded fakeredis server, in virtual time\n")
    out.write("Two workers (A, B), lock 30 s, stalled check every 30 s, failed jobs go to 'emails-dlq'.\n\n")
    queue.add("newsletter", {"issue": 42}, priority=5, delay=20_000)
    queue.add("welcome-email", {"to": "ada@example.com"}, priority=10)
    queue.add("password-reset", {"to": "alan@example.com"}, priority=15, attempts=5)
    queue.add("audit-log", {"action": "signup"})
    queue.add("charge-card", {"order": 7}, attempts=3, backoff={"type": "exponential", "delay": 1_000})
    queue.add("resize-image", {"file": "cat.png"}, priority=1)
    say("6 jobs added: newsletter (delay 20 s), welcome (prio 10), reset (prio 15), audit-log (prio 0),")
    say("charge-card (3 attempts, exponential backoff 1 s) and resize-image (prio 1, the worker running it")
    say("will crash)")
    print_events()
    loop.at(clock.now_ms(), stalled_check)
    loop.at(clock.now_ms() + 7_500, renew_locks)
    wake_idle_workers()
    loop.run(START_MS + horizon_s * 1000, print_events)

    counts = queue.get_job_counts()
    dlq = queue.dead_letter_queue
    out.write("\nFinal counts of 'emails': " + ", ".join(f"{k} {v}" for k, v in counts.items() if v) + "\n")
    if dlq is not None:
        for dead in dlq.list():
            out.write(f"Dead-letter queue '{dlq.name}': job {dead.id} ({dead.name}) after {dead.attempts_made} "
                      f"attempts: {dead.failed_reason}\n")
    for job in queue.get_completed():
        if job.stalled_counter:
            out.write(f"Job {job.id} ({job.name}) stalled {job.stalled_counter}x and was completed by "
                      f"{job.processed_by} (attempts started: {job.attempts_started})\n")
    out.write(
        "\nWhat happened:\n"
        "  * audit-log (priority 0) ran before every prioritized job: BullMQ takes from 'wait' before\n"
        "    'prioritized'; then priority 1 before 10 before 15 (a lower number is more urgent).\n"
        "  * charge-card failed at 0.4 s, waited 1 s, failed again, waited 2 s (exponential backoff),\n"
        "    failed a third time and, with no attempts left, moved to the dead-letter queue.\n"
        "  * The crashed worker's lock ran out at 32.3 s. The stalled check at 30 s had marked the job\n"
        "    as 'active'; the next check (60 s) found it still active without a lock, so it went back\n"
        "    to the head of 'wait' (stalledCounter 1, no attempt used) and the other worker ran it.\n"
    )
    conn.close()
    return counts


def main() -> None:
    run_demo()


if __name__ == "__main__":
    main()
