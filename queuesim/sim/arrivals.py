"""Arrival processes: when jobs are added to a queue.

An arrival process produces *epochs* — the times (ms from the start) at which jobs arrive — and how many jobs
arrive at each. The simulation rounds each epoch to a whole millisecond and adds that many jobs then.

* :class:`Poisson` — independent arrivals at a constant rate (the "M" of M/M/c); gaps are exponential.
* :class:`Periodic` — deterministic arrivals: one job every ``interval_ms``, like a cron.
* :class:`Batch` — several jobs at each epoch of another process (an upstream that flushes in groups);
  :class:`Burst` — a flash crowd of ``count`` jobs at given times.
* :class:`NonHomogeneousPoisson` — a Poisson process whose rate changes with time, built by *thinning*: draw
  candidates at the highest rate and keep each one with probability rate(t)/highest rate. :class:`Diurnal`
  (a daily sinusoid) and :class:`Piecewise` (a schedule of rates) are ready-made cases.
* :class:`TraceReplay` — arrivals at recorded timestamps, e.g. read from a production log (CSV).
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from queuesim.errors import OptionError
from queuesim.sim.laws import _non_negative, _positive

__all__ = [
    "ArrivalProcess",
    "Batch",
    "Burst",
    "Periodic",
    "Diurnal",
    "NonHomogeneousPoisson",
    "Piecewise",
    "Poisson",
    "TraceReplay",
]

Epochs = Iterator[tuple[float, int]]


@runtime_checkable
class ArrivalProcess(Protocol):
    """Anything that yields ``(time_ms, count)`` pairs in non-decreasing time order."""

    def epochs(self, rng: np.random.Generator, start_ms: float) -> Epochs:
        """The arrival epochs from ``start_ms`` on (possibly forever), drawing from ``rng``."""
        ...


@dataclass(frozen=True, slots=True)
class Poisson:
    """Independent arrivals at ``rate_per_s`` jobs per second (exponential gaps)."""

    rate_per_s: float

    def __post_init__(self) -> None:
        _positive("rate_per_s", self.rate_per_s)

    def epochs(self, rng: np.random.Generator, start_ms: float, *, block: int = 256) -> Epochs:
        """``block``: gaps drawn per NumPy call. A block gives the same values as one call per gap, at a
        fraction of the cost, but draws ahead: use 1 when something else draws from ``rng`` between epochs."""
        mean_gap = 1000.0 / self.rate_per_s
        t = start_ms
        while True:
            for gap in rng.exponential(mean_gap, block).tolist():
                t += gap
                yield t, 1


@dataclass(frozen=True, slots=True)
class Periodic:
    """One job every ``interval_ms``, the first ``offset_ms`` after the start."""

    interval_ms: float
    offset_ms: float = 0.0

    def __post_init__(self) -> None:
        _positive("interval_ms", self.interval_ms)
        _non_negative("offset_ms", self.offset_ms)

    def epochs(self, rng: np.random.Generator, start_ms: float) -> Epochs:
        n = 0
        while True:
            # multiply instead of adding, so rounding errors do not accumulate over millions of arrivals
            yield start_ms + self.offset_ms + n * self.interval_ms, 1
            n += 1


@dataclass(frozen=True, slots=True)
class Batch:
    """``size`` jobs at every epoch of ``process``; ``size`` is a number, or a law (anything with
    ``sample(rng)``, e.g. :class:`queuesim.sim.laws.Empirical`) whose samples are rounded, at least 1."""

    process: ArrivalProcess
    size: int | object = 1

    def __post_init__(self) -> None:
        if isinstance(self.size, int) and not isinstance(self.size, bool):
            if self.size < 1:
                raise OptionError("size", f"must be >= 1, got {self.size}")
        elif not hasattr(self.size, "sample"):
            raise OptionError("size", f"must be an integer >= 1 or a law with sample(rng), got {self.size!r}")

    def epochs(self, rng: np.random.Generator, start_ms: float, *, block: int = 256) -> Epochs:
        """``block`` is handed to an inner :class:`Poisson` (or Batch): 1 when a random size draws from ``rng``
        between epochs, so the gaps are not drawn ahead of it."""
        fixed = self.size if isinstance(self.size, int) else None
        inner = self.process
        if isinstance(inner, Poisson | Batch):
            epochs = inner.epochs(rng, start_ms, block=block if fixed is not None else 1)
        else:
            epochs = inner.epochs(rng, start_ms)
        for t, _ in epochs:
            n = fixed if fixed is not None else max(1, round(self.size.sample(rng)))  # type: ignore[attr-defined]
            yield t, n


@dataclass(frozen=True, slots=True)
class Burst:
    """A flash crowd: ``count`` jobs at each of ``times_ms`` (relative to the start)."""

    times_ms: tuple[float, ...]
    count: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "times_ms", tuple(sorted(_non_negative("times_ms", t) for t in self.times_ms)))
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise OptionError("count", f"must be an integer >= 1, got {self.count!r}")

    def epochs(self, rng: np.random.Generator, start_ms: float) -> Epochs:
        for t in self.times_ms:
            yield start_ms + t, self.count


@dataclass(frozen=True, slots=True)
class NonHomogeneousPoisson:
    """A Poisson process with a time-varying rate ``rate(t_ms)`` (jobs per second), by thinning.

    Args:
        rate: function of the time in ms since the start of the simulation, returning jobs per second.
        max_rate_per_s: an upper bound of ``rate`` (candidates are drawn at this rate); a rate above it raises
            an OptionError when met.
    """

    rate: Callable[[float], float]
    max_rate_per_s: float

    def __post_init__(self) -> None:
        if not callable(self.rate):
            raise OptionError("rate", f"must be a function of the time in ms, got {self.rate!r}")
        _positive("max_rate_per_s", self.max_rate_per_s)

    def epochs(self, rng: np.random.Generator, start_ms: float) -> Epochs:
        mean_gap = 1000.0 / self.max_rate_per_s
        t = start_ms
        while True:
            t += rng.exponential(mean_gap)
            r = float(self.rate(t))
            if r > self.max_rate_per_s * (1 + 1e-12) or r < 0:
                raise OptionError("rate", f"rate({t:.0f} ms) = {r} is outside [0, max_rate_per_s = "
                                          f"{self.max_rate_per_s}]")
            # draw the acceptance number even when r is 0 or the maximum, so the stream stays aligned
            if rng.random() * self.max_rate_per_s < r:
                yield t, 1


@dataclass(frozen=True, slots=True)
class Diurnal:
    """A daily cycle: the rate swings ±``amplitude`` (a fraction, 0…1) around ``mean_rate_per_s``, highest at
    ``peak_ms`` (14:00 by default) of each ``period_ms``. A non-homogeneous Poisson process (thinning)."""

    mean_rate_per_s: float
    amplitude: float
    period_ms: float = 86_400_000
    peak_ms: float = 50_400_000

    def __post_init__(self) -> None:
        _positive("mean_rate_per_s", self.mean_rate_per_s)
        a = self.amplitude
        if isinstance(a, bool) or not isinstance(a, int | float) or not 0 <= a <= 1:
            raise OptionError("amplitude", f"must be a fraction between 0 and 1, got {a!r}")
        _positive("period_ms", self.period_ms)
        _non_negative("peak_ms", self.peak_ms)

    def rate(self, t_ms: float) -> float:
        """Jobs per second at ``t_ms``."""
        phase = 2 * math.pi * (t_ms - self.peak_ms) / self.period_ms + math.pi / 2
        return self.mean_rate_per_s * (1 + self.amplitude * math.sin(phase))

    def epochs(self, rng: np.random.Generator, start_ms: float) -> Epochs:
        top = self.mean_rate_per_s * (1 + self.amplitude)
        return NonHomogeneousPoisson(self.rate, top).epochs(rng, start_ms)


@dataclass(frozen=True, slots=True)
class Piecewise:
    """A schedule of constant rates: ``[(start_ms, rate_per_s), ...]``, each rate holding until the next start
    (no arrivals before the first start). With ``cycle_ms`` the schedule repeats (e.g. every day). A
    non-homogeneous Poisson process (thinning)."""

    schedule: tuple[tuple[float, float], ...]
    cycle_ms: float | None = None

    def __post_init__(self) -> None:
        if not self.schedule:
            raise OptionError("schedule", "needs at least one (start_ms, rate_per_s) pair")
        pairs = []
        for i, item in enumerate(self.schedule):
            try:
                start, rate = item
            except (TypeError, ValueError):
                raise OptionError(f"schedule[{i}]", f"must be a (start_ms, rate_per_s) pair, got {item!r}") from None
            pairs.append((_non_negative(f"schedule[{i}].start_ms", start),
                          _non_negative(f"schedule[{i}].rate_per_s", rate)))
        starts = [p[0] for p in pairs]
        if any(b <= a for a, b in itertools.pairwise(starts)):
            raise OptionError("schedule", f"start times must increase strictly, got {starts}")
        if max(p[1] for p in pairs) <= 0:
            raise OptionError("schedule", "at least one rate must be > 0")
        if self.cycle_ms is not None:
            _positive("cycle_ms", self.cycle_ms)
            if starts[-1] >= self.cycle_ms:
                raise OptionError("cycle_ms", f"must be longer than the last start ({starts[-1]}), got {self.cycle_ms}")
        object.__setattr__(self, "schedule", tuple(pairs))

    def rate(self, t_ms: float) -> float:
        """Jobs per second at ``t_ms``."""
        t = t_ms % self.cycle_ms if self.cycle_ms else t_ms
        rate = 0.0
        for start, r in self.schedule:
            if start > t:
                break
            rate = r
        return rate

    def epochs(self, rng: np.random.Generator, start_ms: float) -> Epochs:
        top = max(r for _, r in self.schedule)
        return NonHomogeneousPoisson(self.rate, top).epochs(rng, start_ms)


@dataclass(frozen=True, slots=True)
class TraceReplay:
    """Arrivals at recorded times (ms). With ``relative=True`` the first timestamp is moved to the start."""

    timestamps_ms: tuple[float, ...] = field(repr=False)
    relative: bool = True

    def __post_init__(self) -> None:
        if not self.timestamps_ms:
            raise OptionError("timestamps_ms", "needs at least one timestamp")
        values = tuple(float(t) for t in self.timestamps_ms)
        for i, t in enumerate(values):
            if not math.isfinite(t):
                raise OptionError(f"timestamps_ms[{i}]", f"must be a finite number, got {t!r}")
        object.__setattr__(self, "timestamps_ms", tuple(sorted(values)))

    @classmethod
    def from_csv(cls, path: str | Path, column: str = "timestamp_ms", unit: str = "ms",
                 relative: bool = True) -> TraceReplay:
        """Read timestamps from one column of a CSV file with a header line (``unit`` ``"ms"`` or ``"s"``)."""
        scales = {"ms": 1.0, "s": 1000.0}
        if unit not in scales:
            raise OptionError("unit", f"must be 'ms' or 's', got {unit!r}")
        with Path(path).open(newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or column not in reader.fieldnames:
                raise OptionError("column", f"{column!r} is not a column of {path} (columns: {reader.fieldnames})")
            times: list[float] = []
            for line, row in enumerate(reader, start=2):
                try:
                    times.append(float(row[column]) * scales[unit])
                except (TypeError, ValueError):
                    raise OptionError(column, f"line {line} of {path}: not a number: {row[column]!r}") from None
        return cls(tuple(times), relative)

    def epochs(self, rng: np.random.Generator, start_ms: float) -> Epochs:
        shift = start_ms - self.timestamps_ms[0] if self.relative else 0.0
        for t in self.timestamps_ms:
            if t + shift >= start_ms:
                yield t + shift, 1
