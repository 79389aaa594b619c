"""Backoff: how long a failed job waits before its next attempt (BullMQ's formulas).

With ``n`` the number of the attempt that just failed (1 for the first):

* fixed ``d``: ``d``; with jitter ``j``: ``floor(u·d·j + d·(1-j))`` for ``u`` uniform in [0, 1);
* exponential ``d``: ``round(2**(n-1)·d)``, so d, 2d, 4d…; with jitter: the same spread below that value;
* a custom type: the worker's strategy of that name (a plain or ``async`` function) returns the delay;
  0 = retry now, -1 = do not retry.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from queuesim.errors import OptionError
from queuesim.options import Backoff, BackoffStrategy

__all__ = ["NO_RETRY", "compute_backoff"]

#: A custom strategy returns this to make the failure final.
NO_RETRY = -1


class _Uniform(Protocol):
    def random(self) -> float: ...


def _spread(value: float, jitter: float, rng: _Uniform) -> int:
    if not jitter:
        return int(value)
    return math.floor(rng.random() * value * jitter + value * (1 - jitter))


def compute_backoff(backoff: Backoff | None, attempt: int, error: BaseException | None, job: Any,
                    strategies: Mapping[str, BackoffStrategy], rng: _Uniform) -> int:
    """The delay in ms before the next attempt, or :data:`NO_RETRY`.

    Args:
        backoff: the job's backoff option (None = retry at once).
        attempt: number of the attempt that just failed (1-based).
        error: the exception the processor raised.
        job: the job (handed to custom strategies).
        strategies: custom strategies by name (the worker's ``backoff_strategies``).
        rng: source of uniform numbers for jitter.
    """
    if backoff is None:
        return 0
    if backoff.type == "fixed":
        return _spread(backoff.delay, backoff.jitter, rng)
    if backoff.type == "exponential":
        top = round(2 ** (attempt - 1) * backoff.delay)
        return _spread(top, backoff.jitter, rng)
    strategy = strategies.get(backoff.type)
    if strategy is None:
        known = ", ".join(["fixed", "exponential", *sorted(strategies)])
        raise OptionError("backoff.type", f"Unknown backoff strategy {backoff.type!r}; known: {known}")
    delay = int(_resolve(strategy(attempt, backoff.type, error, job)))
    return NO_RETRY if delay < 0 else delay


def _resolve(value: Any) -> Any:
    """The value itself, or, when a strategy is ``async``, the value it resolves to."""
    if not inspect.isawaitable(value):
        return value

    async def wait() -> Any:
        return await value

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no event loop in this thread: run one for the strategy
        return asyncio.run(wait())
    # called from inside a running loop: resolve it on a helper thread's own loop
    with ThreadPoolExecutor(1) as helper:
        return helper.submit(asyncio.run, wait()).result()
