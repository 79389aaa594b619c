"""Scenario files: a queue set-up under load, described in TOML, validated, run and reported.

* :mod:`queuesim.scenario.schema` — what a file may contain (units in the field names);
* :mod:`queuesim.scenario.loader` — reading, ``--set`` overrides, messages naming file and field;
* :mod:`queuesim.scenario.build` — from a scenario to a running :class:`~queuesim.sim.Simulation`;
* :mod:`queuesim.scenario.runner` — replications, tables, the summary with confidence intervals, outputs;
* :mod:`queuesim.scenario.theory` — the closed-form model of a scenario, when one applies;
* :mod:`queuesim.scenario.verify` — simulation against theory, the ``queuesim verify`` checks.

See ``docs/howto/scenarios.md`` and ``docs/reference/scenario-schema.md`` for the file format, and
``docs/reference/cli.md`` for the command line.
"""

from queuesim.scenario.loader import (
    LoadedScenario,
    ScenarioError,
    builtin_scenarios,
    dump_toml,
    load_scenario,
    resolve_path,
)
from queuesim.scenario.runner import RunResult, run_scenario, write_outputs
from queuesim.scenario.schema import Scenario
from queuesim.scenario.theory import TheoryModel, theory_for

__all__ = [
    "LoadedScenario",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "TheoryModel",
    "builtin_scenarios",
    "dump_toml",
    "load_scenario",
    "resolve_path",
    "run_scenario",
    "theory_for",
    "write_outputs",
]
