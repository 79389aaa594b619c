"""Simulation: SimPy drives the real queue engine in virtual time under synthetic load.

The workers are SimPy processes making the same calls a live BullMQ worker makes (fetch, complete or fail with
fetch-next, lock renewal, stalled checks), against the real engine on fakeredis or the memory backend. Time is
SimPy's, in milliseconds, so a day of traffic runs in seconds and a seed replays a run exactly.

See ``docs/explanation/simulation.md`` for the concepts (virtual time, random streams, warm-up, replications,
confidence intervals) and what each metric means.
"""

from queuesim.sim.arrivals import (
    ArrivalProcess,
    Batch,
    Burst,
    Diurnal,
    NonHomogeneousPoisson,
    Periodic,
    Piecewise,
    Poisson,
    TraceReplay,
)
from queuesim.sim.clock import SimClock
from queuesim.sim.environment import BACKENDS, Simulation
from queuesim.sim.health import HealthMonitor, HealthRules
from queuesim.sim.jobs import Dependency, Failures, JobType, Saga, SagaStep
from queuesim.sim.laws import (
    Deterministic,
    Empirical,
    Erlang,
    Exponential,
    Gamma,
    HyperExponential,
    Law,
    Lognormal,
    Uniform,
)
from queuesim.sim.recorder import Recorder
from queuesim.sim.replications import Comparison, Replications, SerialExecutor, compare, replicate
from queuesim.sim.streams import Streams, replication_seeds

__all__ = [
    "BACKENDS",
    "ArrivalProcess",
    "Batch",
    "Burst",
    "Comparison",
    "Dependency",
    "Deterministic",
    "Diurnal",
    "Empirical",
    "Erlang",
    "Exponential",
    "Failures",
    "Gamma",
    "HealthMonitor",
    "HealthRules",
    "HyperExponential",
    "JobType",
    "Law",
    "Lognormal",
    "NonHomogeneousPoisson",
    "Periodic",
    "Piecewise",
    "Poisson",
    "Recorder",
    "Replications",
    "Saga",
    "SagaStep",
    "SerialExecutor",
    "SimClock",
    "Simulation",
    "Streams",
    "TraceReplay",
    "Uniform",
    "compare",
    "replicate",
    "replication_seeds",
]
