"""queuesim: a faithful BullMQ engine in Python, with simulation in virtual time.

Start here::

    import queuesim
    conn = queuesim.connect(clock=queuesim.VirtualClock())   # embedded fakeredis, virtual time
    queue = queuesim.Queue("emails", conn)
    queue.add("welcome", {"to": "ada@example.com"}, priority=10, attempts=3)
    worker = queuesim.Worker(queue)
    job = worker.fetch()
    worker.complete(job, "sent")
"""

from queuesim.clock import Clock, VirtualClock, WallClock
from queuesim.connection import Connection, connect
from queuesim.errors import (
    DelayedError,
    JobFailedError,
    JobNotFoundError,
    JobStateError,
    LockError,
    OptionError,
    QueuesimError,
    RateLimitError,
    RetryableError,
    ScriptError,
    UnrecoverableError,
    WaitingError,
)
from queuesim.events import Event, QueueEvents
from queuesim.flows import FlowNode, FlowProducer, add_flow
from queuesim.job import Job, JobState
from queuesim.options import Backoff, Deduplication, JobOptions, KeepJobs, Limiter, Parent, Repeat, WorkerOptions
from queuesim.queue import DeadLetterQueue, Queue
from queuesim.worker import JobTimeoutError, Worker

__version__ = "0.1.0"

__all__ = [
    "Backoff",
    "Clock",
    "Connection",
    "DeadLetterQueue",
    "Deduplication",
    "DelayedError",
    "Event",
    "FlowNode",
    "FlowProducer",
    "Job",
    "JobFailedError",
    "JobNotFoundError",
    "JobOptions",
    "JobState",
    "JobStateError",
    "JobTimeoutError",
    "KeepJobs",
    "Limiter",
    "LockError",
    "OptionError",
    "Parent",
    "Queue",
    "QueueEvents",
    "QueuesimError",
    "RateLimitError",
    "Repeat",
    "RetryableError",
    "ScriptError",
    "UnrecoverableError",
    "VirtualClock",
    "WaitingError",
    "WallClock",
    "Worker",
    "WorkerOptions",
    "add_flow",
    "connect",
]
