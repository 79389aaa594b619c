"""Service-time laws: how long one attempt of a job takes, in milliseconds.

Each law knows its mean and its squared coefficient of variation (``scv`` = variance / mean²), the two numbers
queueing formulas need (see :func:`queuesim.theory.mg1`): for the same mean, a higher scv means longer queues.

| law | scv | typical use |
|---|---|---|
| :class:`Deterministic` | 0 | a fixed amount of work |
| :class:`Erlang` (k phases) | 1/k | work made of k similar steps |
| :class:`Uniform` | (b-a)²/(3(a+b)²) | "somewhere between a and b" |
| :class:`Exponential` | 1 | the textbook M/M/c assumption |
| :class:`Gamma` | 1/shape | a smooth law with any scv |
| :class:`Lognormal` | σ²/m² | latency of calls over a network: mostly fast, a long tail |
| :class:`HyperExponential` | > 1 | a mix of fast and slow jobs |
| :class:`Empirical` | from data | replaying measured durations |

A sample is a float; the simulation rounds it to whole milliseconds. A law may also offer ``sample_block(rng, n)``:
``n`` samples in one NumPy call, the same values ``n`` calls of ``sample`` would give, in the same order (the
simulation draws service times ahead this way, see :class:`queuesim.sim.streams.Draws`). A law whose single
samples take more than one kind of draw, such as :class:`HyperExponential`, has none.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from queuesim.errors import OptionError

__all__ = [
    "Deterministic",
    "Empirical",
    "Erlang",
    "Exponential",
    "Gamma",
    "HyperExponential",
    "Law",
    "Lognormal",
    "Uniform",
    "second_moment",
]


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise OptionError(name, f"must be a finite number > 0, got {value!r}")
    return float(value)


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise OptionError(name, f"must be a finite number >= 0, got {value!r}")
    return float(value)


@runtime_checkable
class Law(Protocol):
    """A probability law of durations in ms: it can draw a sample and knows its mean and scv."""

    def sample(self, rng: np.random.Generator) -> float:
        """One duration in ms."""
        ...

    @property
    def mean_ms(self) -> float:
        """The mean duration in ms."""
        ...

    @property
    def scv(self) -> float:
        """Squared coefficient of variation, Var[S] / E[S]²."""
        ...


def second_moment(law: Law) -> float:
    """E[S²] in ms², = (1 + scv)·E[S]² (what the Pollaczek-Khinchine formula needs)."""
    return (1 + law.scv) * law.mean_ms**2


@dataclass(frozen=True, slots=True)
class Exponential:
    """Memoryless durations with mean ``mean_ms`` (scv 1)."""

    mean_ms: float

    def __post_init__(self) -> None:
        _positive("mean_ms", self.mean_ms)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.exponential(self.mean_ms))

    def sample_block(self, rng: np.random.Generator, n: int) -> list[float]:
        return rng.exponential(self.mean_ms, n).tolist()  # type: ignore[no-any-return]

    @property
    def scv(self) -> float:
        return 1.0


@dataclass(frozen=True, slots=True)
class Deterministic:
    """Every attempt takes exactly ``value_ms`` (scv 0). Draws no random number."""

    value_ms: float

    def __post_init__(self) -> None:
        _non_negative("value_ms", self.value_ms)

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.value_ms)

    def sample_block(self, rng: np.random.Generator, n: int) -> list[float]:
        return [float(self.value_ms)] * n

    @property
    def mean_ms(self) -> float:
        return float(self.value_ms)

    @property
    def scv(self) -> float:
        return 0.0


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform between ``low_ms`` and ``high_ms``."""

    low_ms: float
    high_ms: float

    def __post_init__(self) -> None:
        _non_negative("low_ms", self.low_ms)
        _positive("high_ms", self.high_ms)
        if self.high_ms <= self.low_ms:
            raise OptionError("high_ms", f"must be greater than low_ms ({self.low_ms}), got {self.high_ms}")

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low_ms, self.high_ms))

    def sample_block(self, rng: np.random.Generator, n: int) -> list[float]:
        return rng.uniform(self.low_ms, self.high_ms, n).tolist()  # type: ignore[no-any-return]

    @property
    def mean_ms(self) -> float:
        return (self.low_ms + self.high_ms) / 2

    @property
    def scv(self) -> float:
        return (self.high_ms - self.low_ms) ** 2 / 12 / self.mean_ms**2


@dataclass(frozen=True, slots=True)
class Gamma:
    """Gamma law with the given ``shape`` and mean ``mean_ms`` (scv = 1/shape)."""

    shape: float
    mean_ms: float

    def __post_init__(self) -> None:
        _positive("shape", self.shape)
        _positive("mean_ms", self.mean_ms)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.gamma(self.shape, self.mean_ms / self.shape))

    def sample_block(self, rng: np.random.Generator, n: int) -> list[float]:
        return rng.gamma(self.shape, self.mean_ms / self.shape, n).tolist()  # type: ignore[no-any-return]

    @property
    def scv(self) -> float:
        return 1 / self.shape


@dataclass(frozen=True, slots=True)
class Erlang:
    """Sum of ``k`` exponential phases with total mean ``mean_ms`` (scv = 1/k)."""

    k: int
    mean_ms: float

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise OptionError("k", f"must be an integer >= 1 (number of phases), got {self.k!r}")
        _positive("mean_ms", self.mean_ms)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.gamma(self.k, self.mean_ms / self.k))

    def sample_block(self, rng: np.random.Generator, n: int) -> list[float]:
        return rng.gamma(self.k, self.mean_ms / self.k, n).tolist()  # type: ignore[no-any-return]

    @property
    def scv(self) -> float:
        return 1 / self.k


@dataclass(frozen=True, slots=True)
class Lognormal:
    """Lognormal law given by its own mean ``mean_ms`` and standard deviation ``sd_ms`` (not those of the log)."""

    mean_ms: float
    sd_ms: float

    def __post_init__(self) -> None:
        _positive("mean_ms", self.mean_ms)
        _positive("sd_ms", self.sd_ms)

    def _log_params(self) -> tuple[float, float]:
        """The mean and standard deviation of the logarithm that give this law's own mean and sd."""
        sigma2 = math.log1p((self.sd_ms / self.mean_ms) ** 2)
        return math.log(self.mean_ms) - sigma2 / 2, math.sqrt(sigma2)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.lognormal(*self._log_params()))

    def sample_block(self, rng: np.random.Generator, n: int) -> list[float]:
        mu, sigma = self._log_params()
        return rng.lognormal(mu, sigma, n).tolist()  # type: ignore[no-any-return]

    @property
    def scv(self) -> float:
        return (self.sd_ms / self.mean_ms) ** 2


@dataclass(frozen=True, slots=True)
class HyperExponential:
    """A mix of exponential phases: with probability ``probs[i]`` the duration is exponential with mean
    ``means_ms[i]``. scv > 1: a few very long jobs among many short ones."""

    probs: tuple[float, ...]
    means_ms: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.probs) != len(self.means_ms) or not self.probs:
            raise OptionError("means_ms", f"needs one mean per probability ({len(self.probs)}), "
                                          f"got {len(self.means_ms)}")
        for i, p in enumerate(self.probs):
            _positive(f"probs[{i}]", p)
        for i, m in enumerate(self.means_ms):
            _positive(f"means_ms[{i}]", m)
        if abs(math.fsum(self.probs) - 1) > 1e-9:
            raise OptionError("probs", f"must add up to 1, got {math.fsum(self.probs)}")
        object.__setattr__(self, "probs", tuple(float(p) for p in self.probs))
        object.__setattr__(self, "means_ms", tuple(float(m) for m in self.means_ms))

    @classmethod
    def balanced(cls, mean_ms: float, scv: float) -> HyperExponential:
        """The usual two-phase fit with balanced means (p₁m₁ = p₂m₂) for a given mean and scv > 1."""
        _positive("mean_ms", mean_ms)
        if isinstance(scv, bool) or not isinstance(scv, int | float) or not scv > 1:
            raise OptionError("scv", f"must be > 1 for a hyperexponential law, got {scv!r}")
        p1 = (1 + math.sqrt((scv - 1) / (scv + 1))) / 2
        return cls((p1, 1 - p1), (mean_ms / (2 * p1), mean_ms / (2 * (1 - p1))))

    def sample(self, rng: np.random.Generator) -> float:
        u = rng.random()
        acc = 0.0
        for p, m in zip(self.probs, self.means_ms, strict=True):
            acc += p
            if u < acc:
                return float(rng.exponential(m))
        return float(rng.exponential(self.means_ms[-1]))

    @property
    def mean_ms(self) -> float:
        return math.fsum(p * m for p, m in zip(self.probs, self.means_ms, strict=True))

    @property
    def scv(self) -> float:
        second = math.fsum(2 * p * m * m for p, m in zip(self.probs, self.means_ms, strict=True))
        return second / self.mean_ms**2 - 1


@dataclass(frozen=True, slots=True)
class Empirical:
    """Replay measured durations: each sample is one of ``values_ms``, picked uniformly at random."""

    values_ms: tuple[float, ...] = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.values_ms) == 0:
            raise OptionError("values_ms", "needs at least one measured duration")
        for i, v in enumerate(self.values_ms):
            _non_negative(f"values_ms[{i}]", v)
        object.__setattr__(self, "values_ms", tuple(float(v) for v in self.values_ms))

    @classmethod
    def from_csv(cls, path: str | Path, column: str = "duration_ms") -> Empirical:
        """Read the durations from one column of a CSV file with a header line."""
        with Path(path).open(newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or column not in reader.fieldnames:
                raise OptionError("column", f"{column!r} is not a column of {path} (columns: {reader.fieldnames})")
            values: list[float] = []
            for line, row in enumerate(reader, start=2):
                try:
                    values.append(float(row[column]))
                except (TypeError, ValueError):
                    raise OptionError(column, f"line {line} of {path}: not a number: {row[column]!r}") from None
        return cls(tuple(values))

    def sample(self, rng: np.random.Generator) -> float:
        return self.values_ms[int(rng.integers(len(self.values_ms)))]

    def sample_block(self, rng: np.random.Generator, n: int) -> list[float]:
        values = self.values_ms
        return [values[i] for i in rng.integers(len(values), size=n).tolist()]

    @property
    def mean_ms(self) -> float:
        return math.fsum(self.values_ms) / len(self.values_ms)

    @property
    def scv(self) -> float:
        m = self.mean_ms
        if m == 0:
            return 0.0
        return math.fsum((v - m) ** 2 for v in self.values_ms) / len(self.values_ms) / m**2
