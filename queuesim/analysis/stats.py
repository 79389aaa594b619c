"""Confidence intervals from independent replications.

A simulation run is one random sample of how the system could behave. To say how far a measured mean may be
from the true long-run value, run R *independent replications* (different random streams), take one estimate
per replication (e.g. its mean sojourn time), and treat these R numbers as a sample:

    mean ± t(1 - α/2, R - 1) · s / √R

where s is their standard deviation and t the Student quantile (wider than the normal 1.96 when R is small:
2.26 for R = 10, 2.09 for R = 20). Replication means are close to normally distributed even when single jobs
are not, which is why this works; consecutive jobs inside one run are correlated, which is why the jobs of one
run must not be treated as independent samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

from queuesim.errors import OptionError

__all__ = ["Estimate", "paired_difference", "t_cdf_two_sided", "t_interval", "t_quantile"]


def t_cdf_two_sided(t: float, df: int) -> float:
    """P(|T| ≤ t) for Student's t with an integer number of degrees of freedom.

    Uses the finite series for integer ``df`` (Abramowitz & Stegun 26.7.3-26.7.4), with θ = atan(t/√df).
    """
    if df < 1:
        raise OptionError("df", f"must be an integer >= 1, got {df!r}")
    if t <= 0:
        return 0.0
    theta = math.atan(t / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    c2 = c * c
    if df % 2 == 1:
        if df == 1:
            return 2 * theta / math.pi
        term = c
        total = c
        for k in range(3, df - 1, 2):  # cos θ · (1 + 2/3 cos²θ + 2·4/(3·5) cos⁴θ + …)
            term *= c2 * (k - 1) / k
            total += term
        return 2 / math.pi * (theta + s * total)
    term = 1.0
    total = 1.0
    for k in range(2, df - 1, 2):  # 1 + 1/2 cos²θ + 1·3/(2·4) cos⁴θ + …
        term *= c2 * (k - 1) / k
        total += term
    return s * total


def t_quantile(confidence: float, df: int) -> float:
    """The two-sided Student quantile: the t with P(|T| ≤ t) = ``confidence`` (1.96-like, wider for small df).

    Solved by bisection on :func:`t_cdf_two_sided`; above 100,000 degrees of freedom the normal quantile is used.
    """
    if not 0 < confidence < 1:
        raise OptionError("confidence", f"must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise OptionError("df", f"must be an integer >= 1, got {df!r}")
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    if df > 100_000:
        return z
    lo, hi = z, z
    while t_cdf_two_sided(hi, df) < confidence:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf_two_sided(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * hi:
            break
    return (lo + hi) / 2


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean over replications with its t-based confidence interval.

    Attributes:
        mean: the average of the replication values.
        half_width: t · s/√n (NaN with fewer than two values).
        low, high: mean ∓ half_width.
        n: number of replications that gave a value.
        std: their sample standard deviation.
        confidence: the confidence level (0.95 by default).
    """

    mean: float
    half_width: float
    low: float
    high: float
    n: int
    std: float
    confidence: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval."""
        return self.low <= value <= self.high

    @property
    def relative_half_width(self) -> float:
        """half_width / |mean|: ±2% means 0.02."""
        return self.half_width / abs(self.mean) if self.mean else math.inf

    def __str__(self) -> str:
        return f"{self.mean:.6g} ± {self.half_width:.3g} ({int(self.confidence * 100)}% CI, n={self.n})"


def t_interval(values: Iterable[float], confidence: float = 0.95) -> Estimate:
    """Mean and t-based confidence interval of independent values (NaNs are left out)."""
    data = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(data)
    if n == 0:
        nan = math.nan
        return Estimate(nan, nan, nan, nan, 0, nan, confidence)
    mean = math.fsum(data) / n
    if n == 1:
        return Estimate(mean, math.nan, math.nan, math.nan, 1, math.nan, confidence)
    var = math.fsum((x - mean) ** 2 for x in data) / (n - 1)
    std = math.sqrt(var)
    half = t_quantile(confidence, n - 1) * std / math.sqrt(n)
    return Estimate(mean, half, mean - half, mean + half, n, std, confidence)


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Estimate:
    """CI of the mean of ``a[i] - b[i]``: the right way to compare two variants run with common random numbers.

    Replication i of both variants used the same random streams, so their difference cancels much of the noise
    and the interval is far narrower than two separate intervals would suggest.
    """
    if len(a) != len(b):
        raise OptionError("b", f"needs as many replications as a ({len(a)}), got {len(b)}")
    return t_interval((x - y for x, y in zip(a, b, strict=True)), confidence)
