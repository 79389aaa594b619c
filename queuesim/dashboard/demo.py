"""A small live workload for the dashboard: producers and real workers on wall-clock time.

``queuesim dashboard --demo`` starts it on the embedded fakeredis server so that the page has something to
show. Two queues:

* ``emails`` — short jobs (0.2 to 0.9 s), two at a time; about one attempt in three fails, each job has 3 attempts
  with a 1 s backoff, and jobs that fail 3 times go to the dead-letter queue ``emails-dlq``;
* ``images`` — slower jobs (0.4 to 1.4 s), one at a time, a single attempt; about one in ten fails and stays in
  ``failed`` (retry it from the page).

The producers alternate between a busy phase and a quiet phase, so the depth sparkline rises and falls.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from queuesim.connection import Connection
from queuesim.job import Job
from queuesim.queue import Queue
from queuesim.worker import Worker

__all__ = ["LiveDemo"]

_EMAIL_NAMES = ("welcome-email", "password-reset", "receipt", "newsletter")
_IMAGE_NAMES = ("resize", "thumbnail", "watermark")


class LiveDemo:
    """Producers plus live workers; :meth:`start` runs them in background threads, :meth:`stop` ends them.

    Args:
        connection: a wall-clock connection (the live runner needs real time).
        seed: seed of the random numbers (service times, failures, arrivals).
        speed: multiplies every arrival rate (2.0 = twice as many jobs).
    """

    def __init__(self, connection: Connection, seed: int = 7, speed: float = 1.0) -> None:
        self.connection = connection
        self.rng = random.Random(seed)  # service times and failures (shared by the worker threads)
        self._arrivals = random.Random(seed + 1)  # used by the producer thread only
        self.speed = speed
        keep = {"remove_on_complete": {"count": 1000}}
        self.emails = Queue("emails", connection, dead_letter_queue="emails-dlq", default_job_options=keep)
        self.images = Queue("images", connection, default_job_options=keep)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._workers: list[Worker] = []
        self._rng_lock = threading.Lock()

    def _random(self) -> float:
        with self._rng_lock:
            return self.rng.random()

    def _process_email(self, job: Job) -> dict[str, Any]:
        time.sleep(0.2 + 0.7 * self._random())
        if self._random() < 1 / 3:
            raise ConnectionError("SMTP server did not answer")
        return {"delivered_to": (job.data or {}).get("to"), "attempt": job.attempts_made + 1}

    def _process_image(self, job: Job) -> dict[str, Any]:
        for step in (25, 50, 75, 100):
            time.sleep(0.1 + 0.25 * self._random())
            job.update_progress(step)
        if self._random() < 0.1:
            raise ValueError("image file is corrupt")
        return {"file": (job.data or {}).get("file"), "size": "512x512"}

    def _produce(self) -> None:
        n = 0
        started = time.monotonic()
        while not self._stop.is_set():
            busy = int((time.monotonic() - started) // 20) % 2 == 0  # 20 s busy, 20 s quiet
            n += 1
            if self.emails.count() < 300:
                self.emails.add(_EMAIL_NAMES[n % len(_EMAIL_NAMES)], {"to": f"user{n}@example.com"}, attempts=3,
                                backoff={"type": "fixed", "delay": 1000})
            if n % 2 == 0 and self.images.count() < 300:
                self.images.add(_IMAGE_NAMES[n % len(_IMAGE_NAMES)], {"file": f"photo-{n}.jpg"},
                                priority=1 + n % 3)
            rate = (4.0 if busy else 1.0) * self.speed  # email jobs per second
            self._stop.wait(self._arrivals.expovariate(rate))

    def start(self) -> LiveDemo:
        self._workers = [
            Worker(self.emails, self._process_email, concurrency=2, drain_delay_s=1, name="email-worker").start(),
            Worker(self.images, self._process_image, concurrency=1, drain_delay_s=1, name="image-worker").start(),
        ]
        t = threading.Thread(target=self._produce, daemon=True, name="dashboard-demo-producer")
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        for w in self._workers:
            w.close(force=True, timeout=5)
