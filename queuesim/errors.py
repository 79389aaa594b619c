"""Exceptions: one base class, BullMQ's script error codes, and the error classes a processor may raise.

Two families live here:

* errors queuesim raises at you (bad options, a job that is not where an operation expects it, a lost lock);
* errors *your processor* raises to tell the worker what to do with a failed attempt. They mirror the
  classification of the seed guide: permanent (fail now), retryable with an explicit delay, rate-limited (go
  back without using an attempt), and "I already moved the job myself" (delayed / waiting). Any other exception
  follows the job's ``attempts`` and ``backoff`` options.
"""

from __future__ import annotations

__all__ = [
    "DelayedError",
    "JobFailedError",
    "JobNotFoundError",
    "JobStateError",
    "LockError",
    "OptionError",
    "QueuesimError",
    "RateLimitError",
    "RetryableError",
    "ScriptError",
    "UnrecoverableError",
    "WaitingError",
    "error_for_code",
]


class QueuesimError(Exception):
    """Base class of every error queuesim raises."""


class OptionError(QueuesimError, ValueError):
    """An invalid option or argument. Names the field and the allowed values; nothing was written."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        # both parts as args, so the error can be rebuilt from them (pickling to and from a worker process,
        # SimPy re-raising a process's error); the text stays "field: message"
        super().__init__(field, message)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ScriptError(QueuesimError):
    """A state transition was refused by the backend, with BullMQ's numeric code (-1 … -11)."""

    code: int = 0

    def __init__(self, message: str, code: int | None = None) -> None:
        if code is not None:
            self.code = code
        super().__init__(message)


class JobNotFoundError(ScriptError, KeyError):
    """Code -1: the job does not exist (any more)."""

    code = -1

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "job not found"


class JobFailedError(QueuesimError):
    """Raised by ``job.wait_until_finished()`` when the job failed for good; the message is its failed reason."""

    def __init__(self, job_id: str, failed_reason: str) -> None:
        self.job_id = job_id
        self.failed_reason = failed_reason
        super().__init__(failed_reason)


class LockError(ScriptError):
    """Code -2 (lock missing) or -6 (lock held by another token): this worker no longer owns the job."""

    code = -2


class JobStateError(ScriptError):
    """Code -3 and others: the job is not in the state the operation needs."""

    code = -3


_CODE_TEXT = {
    -1: "Missing key for job {job_id}. {command}",
    -2: "Missing lock for job {job_id}. {command}",
    -3: "Job {job_id} is not in the {state} state. {command}",
    -4: "Job {job_id} has pending dependencies. {command}",
    -5: "Missing key for parent job {job_id}. {command}",
    -6: "Lock mismatch for job {job_id}. Cmd {command} from {state}",
    -7: "The parent job {job_id} cannot be replaced. {command}",
    -8: "Job {job_id} belongs to a job scheduler and cannot be removed directly. {command}",
    -9: "Cannot complete job {job_id} because it has at least one failed child. {command}",
}


def error_for_code(code: int, job_id: str, command: str, state: str = "expected") -> ScriptError:
    """Turn a script's negative return code into the matching exception, with BullMQ's message text."""
    text = _CODE_TEXT.get(code, "Unknown code {code} for job {job_id}. {command}")
    message = text.format(job_id=job_id, command=command, state=state, code=code)
    if code == -1:
        return JobNotFoundError(message)
    if code in (-2, -6):
        return LockError(message, code)
    return JobStateError(message, code)


# --- errors a processor raises -------------------------------------------------------------------------------


class UnrecoverableError(QueuesimError):
    """Fail the job for good now, whatever attempts are left (BullMQ's ``UnrecoverableError``).

    Use it for permanent errors: invalid input, a missing account, a 4xx answer that will never succeed.
    """

    def __init__(self, message: str = "bullmq:unrecoverable") -> None:
        super().__init__(message)


class RetryableError(QueuesimError):
    """A temporary failure that should be retried after ``delay_ms`` instead of the job's own backoff.

    It still uses an attempt: when no attempts are left the job fails for good. (queuesim extension; in BullMQ
    you would return the delay from a custom backoff strategy.)
    """

    def __init__(self, message: str = "retryable error", delay_ms: int | None = None) -> None:
        if delay_ms is not None and delay_ms < 0:
            raise OptionError("delay_ms", f"must be >= 0 or None, got {delay_ms}")
        self.delay_ms = delay_ms
        super().__init__(message)


class RateLimitError(QueuesimError):
    """The upstream said "slow down": put the job back at the head of the queue without using an attempt.

    The worker then stops fetching until the queue's limiter key expires. Call ``queue.rate_limit(ms)`` first
    (or pass ``retry_after_ms``, which does it for you) so that the pause has a length.
    """

    def __init__(self, message: str = "bullmq:rateLimitExceeded", retry_after_ms: int | None = None) -> None:
        if retry_after_ms is not None and retry_after_ms < 0:
            raise OptionError("retry_after_ms", f"must be >= 0 or None, got {retry_after_ms}")
        self.retry_after_ms = retry_after_ms
        super().__init__(message)


class DelayedError(QueuesimError):
    """Raised after ``job.move_to_delayed(...)`` from inside a processor: the job was moved, do not fail it."""

    def __init__(self, message: str = "bullmq:movedToDelayed") -> None:
        super().__init__(message)


class WaitingError(QueuesimError):
    """Raised after ``job.move_to_wait(...)`` from inside a processor: the job was moved, do not fail it."""

    def __init__(self, message: str = "bullmq:movedToWait") -> None:
        super().__init__(message)
