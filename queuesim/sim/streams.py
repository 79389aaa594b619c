"""Seeded random streams: one independent generator per purpose, derived from one seed.

A simulation draws random numbers for several unrelated things: when jobs arrive, how long they take, whether
an attempt fails, timer phases, backoff jitter. Giving each purpose (and each job type or worker) its own
stream has two benefits:

* **Reproducibility**: the same seed gives the same run, bit for bit.
* **Common random numbers**: changing one part of a scenario (say, adding a worker) does not shift the numbers
  another part sees, so two variants run with the same seed face the *same* arrivals and service times, and
  their difference is due to the change, not to luck.

Streams come from NumPy's ``SeedSequence``: the root sequence is extended with a purpose number and a stable
hash of the stream's name (for example ``"emails/welcome"``), so a stream does not depend on the order in which
a scenario asks for them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from queuesim.errors import OptionError

__all__ = ["PURPOSES", "Draws", "Streams", "replication_seeds"]

#: The purposes a stream can serve; each gets its own branch of the seed tree.
PURPOSES = ("arrivals", "service", "failures", "jitter", "workers")


class Streams:
    """The random streams of one simulation run.

    Args:
        seed: an integer, or a ``numpy.random.SeedSequence`` (e.g. one of :func:`replication_seeds`).
    """

    def __init__(self, seed: int | np.random.SeedSequence) -> None:
        if isinstance(seed, np.random.SeedSequence):
            root = seed
        elif isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:
            root = np.random.SeedSequence(seed)
        else:
            raise OptionError("seed", f"must be an integer >= 0 or a numpy SeedSequence, got {seed!r}")
        self.root = root
        self._cache: dict[tuple[str, str], np.random.Generator] = {}

    def get(self, purpose: str, name: str) -> np.random.Generator:
        """The generator for ``purpose`` (one of :data:`PURPOSES`) and stream ``name``; the same object on
        every call."""
        key = (purpose, name)
        gen = self._cache.get(key)
        if gen is None:
            if purpose not in PURPOSES:
                raise OptionError("purpose", f"unknown purpose {purpose!r}; allowed: {', '.join(PURPOSES)}")
            branch = (*self.root.spawn_key, PURPOSES.index(purpose), zlib.crc32(name.encode()))
            seq = np.random.SeedSequence(self.root.entropy, spawn_key=branch, pool_size=self.root.pool_size)
            gen = self._cache[key] = np.random.Generator(np.random.PCG64(seq))
        return gen

    def arrivals(self, name: str) -> np.random.Generator:
        return self.get("arrivals", name)

    def service(self, name: str) -> np.random.Generator:
        return self.get("service", name)

    def failures(self, name: str) -> np.random.Generator:
        return self.get("failures", name)

    def jitter(self, name: str = "timers") -> np.random.Generator:
        return self.get("jitter", name)

    def worker(self, worker_id: str) -> np.random.Generator:
        return self.get("workers", worker_id)


def replication_seeds(seed: int, replications: int) -> list[np.random.SeedSequence]:
    """Independent seed sequences for ``replications`` runs. Replication i gets the same sequence in every
    variant of a comparison: that is what makes the random numbers common."""
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise OptionError("replications", f"must be an integer >= 1, got {replications!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise OptionError("seed", f"must be an integer >= 0, got {seed!r}")
    return np.random.SeedSequence(seed).spawn(replications)


class Draws:
    """The draws of one stream, taken from the generator a block at a time.

    Calling NumPy once per random number costs far more than the number itself: a block of 256 exponential
    draws costs about as much as a dozen single ones. NumPy fills a block with exactly the values the same
    number of single calls would give, in the same order, so drawing ahead changes nothing a simulation can
    see, on one condition: nothing else draws from the same generator (the values already drawn would be
    missing from the other draws). A job type's service and failure streams meet it: only that job type's
    attempts draw from them, always with the same law.

    ``block(n)`` returns the next ``n`` draws as a list of floats; each call of the object returns one draw.
    """

    __slots__ = ("_block", "_next", "_size", "_values")

    def __init__(self, block: Callable[[int], list[float]], size: int = 256) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise OptionError("size", f"must be an integer >= 1, got {size!r}")
        self._block = block
        self._size = size
        self._values: list[float] = []
        self._next = 0

    @classmethod
    def of_law(cls, law: object, rng: np.random.Generator, size: int = 256) -> Draws:
        """Samples of a service-time law. A law that cannot draw a block the same way as single samples (it
        has no ``sample_block``) is sampled one value at a time, so its sequence stays the same."""
        sample_block = getattr(law, "sample_block", None)
        if sample_block is None:
            sample = law.sample  # type: ignore[attr-defined]
            return cls(lambda _n: [sample(rng)], 1)
        return cls(lambda n: sample_block(rng, n), size)

    @classmethod
    def uniform(cls, rng: np.random.Generator, size: int = 256) -> Draws:
        """Uniform numbers in [0, 1), the same as ``rng.random()`` called again and again."""
        return cls(lambda n: rng.random(n).tolist(), size)

    def __call__(self) -> float:
        i = self._next
        values = self._values
        if i == len(values):
            values = self._values = self._block(self._size)
            i = 0
        self._next = i + 1
        return values[i]
