"""Fuzzing the scenario loader: whatever a scenario file contains, the loader either accepts it or refuses it
with one clean :class:`ScenarioError` naming the file and the field path, and a refused scenario writes nothing.

Hypothesis starts from valid scenarios (every built-in one, plus one that uses every table of the format) and
breaks them the way people and tools do: a value of the wrong type, a number out of range (negative, zero, huge,
tiny, infinite, not a number), an unknown or misspelt key, a missing required field, unicode and control
characters, nested garbage, TOML dates, values moved from one field to another. A second family breaks the
text itself (cut, inserted or repeated characters, random text, bytes that are not UTF-8), a third one the
``--set path=value`` overrides.

What must hold for every input:

* only a :class:`ScenarioError` comes out (never a KeyError, TypeError or traceback);
* every problem it lists starts with the file name, and the field path it names exists in the document (up to a
  missing field as its last part); a file that is not TOML is named as such;
* an accepted scenario also gets through the steps that follow loading without a raw error (its service laws,
  its closed-form model), and its resolved configuration written as TOML loads back to the same configuration;
* ``queuesim run bad.toml --out DIR`` on a refused scenario exits with code 2 and one error message, leaves DIR
  absent and the working folder empty, and opens no queue store at all (no fakeredis, no memory backend), so
  no queue key is ever written.

The number of inputs of each family is printed by the last test (``pytest -s``); ``docs/reliability.md``
quotes them.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
import re
import tomllib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from pydantic import BaseModel
from typer.testing import CliRunner

from queuesim.backends.memory import MemoryBackend
from queuesim.backends.redis_backend import RedisBackend
from queuesim.cli import app
from queuesim.scenario import ScenarioError, builtin_scenarios, dump_toml, load_scenario, theory_for
from queuesim.scenario import runner as runner_module
from queuesim.scenario import schema as schema_module
from queuesim.scenario.runner import scenario_laws
from queuesim.scenario.schema import Scenario

#: what was tried, by family (printed and checked by the last test)
TRIED: Counter[str] = Counter()
#: the top-level fields named by refusals (a fuzzer that only ever breaks one table would show here)
REFUSED_FIELDS: Counter[str] = Counter()

FUZZ_SETTINGS = settings(deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                HealthCheck.function_scoped_fixture])

# --- valid scenarios to start from --------------------------------------------------------------------------------

DURATIONS_CSV = "duration_ms\n10\n20\n35\n"
ARRIVALS_CSV = "timestamp_ms\n0\n150\n900\n"

#: one scenario with every table, every law, arrival process and fault action of the format
KITCHEN_SINK = """
name = "kitchen-sink"
title = "Every table of the format"
description = "Sagas, traces, laws and faults"
seed = 3
backend = "memory"
replications = 2

[horizon]
duration_s = 120
warmup_s = 10
tail_s = 5
drain = true
drain_limit_s = 60

[[queues]]
name = "orders"
dead_letter_queue = "orders-dead"
[queues.default_job_options]
attempts = 3
backoff = { type = "fixed", delay_ms = 200, jitter = 0.5 }
remove_on_complete = { count = 10, age_s = 60 }
remove_on_fail = true
[queues.workers]
count = 2
concurrency = 3
lock_duration_ms = 5000
lock_renew_time_ms = 2000
stalled_interval_ms = 5000
max_stalled_count = 1
max_started_attempts = 5
limiter = { max = 10, duration_ms = 1000 }

[[queues]]
name = "mail"

[[jobs]]
name = "checkout"
queue = "orders"
priority = 2
data_bytes = 512
options = { attempts = 2, delay_s = 1.5, timeout_ms = 4000, lifo = false }
service = { law = "empirical", path = "durations.csv" }
failures = { retryable = 0.1, permanent = 0.01, rate_limited = 0.01, retry_after_ms = 500, decide_at = 0.5, \
overload = { above_active = 4, retryable = 0.3 } }
dependency = "payments"
arrivals = { process = "piecewise", schedule = [{ start_s = 0, rate_per_s = 1 }, { start_s = 30, rate_per_s = 3 }], \
cycle_s = 60 }

[[jobs]]
name = "saga"
queue = "orders"
backlog = 5
steps = [
  { name = "reserve", service = { law = "uniform", low_ms = 10, high_ms = 30 }, \
compensation = { law = "deterministic", value_ms = 5 }, compensation_failure = 0.1 },
  { name = "charge", service = { law = "gamma", shape = 2, mean_ms = 40 }, failures = { retryable = 0.2 }, \
dependency = "payments" },
]

[[jobs]]
name = "welcome"
queue = "mail"
service = { law = "erlang", k = 3, mean_ms = 50 }
arrivals = { process = "diurnal", mean_rate_per_s = 0.5, amplitude = 0.3, period_s = 60, peak_s = 30, batch_size = 2 }

[[jobs]]
name = "digest"
queue = "mail"
service = { law = "hyperexponential", mean_ms = 80, scv = 4 }
arrivals = { process = "trace", path = "arrivals.csv", column = "timestamp_ms", unit = "ms" }

[[jobs]]
name = "ping"
queue = "mail"
service = { law = "lognormal", mean_ms = 20, sd_ms = 10 }
arrivals = { process = "periodic", interval_s = 5, offset_s = 1, start_s = 2, until_s = 100, limit = 50 }

[[jobs]]
name = "blast"
queue = "mail"
service = { law = "empirical", values_ms = [5, 7.5, 12] }
arrivals = { process = "burst", at_s = [20, 40], count = 10 }

[[jobs]]
name = "import"
queue = "mail"
service = { law = "exponential", mean_ms = 30 }
options = { backoff = { type = "exponential", delay_ms = 100 }, remove_on_fail = 5 }

[[dependencies]]
name = "payments"
outages = [{ start_s = 50, end_s = 60 }]
outage_error = "retryable"
max_calls = 20
window_ms = 1000

[[faults]]
action = "crash-worker"
at_s = 30
worker = "orders-w1"

[[faults]]
action = "freeze-worker"
at_s = 35
worker = "orders-w2"
duration_s = 2

[[faults]]
action = "add-workers"
at_s = 40
queue = "orders"
count = 1
concurrency = 2

[[faults]]
action = "remove-workers"
at_s = 70
workers = ["orders-w3"]
graceful = false

[[faults]]
action = "pause-queue"
at_s = 80
queue = "mail"

[[faults]]
action = "resume-queue"
at_s = 85
queue = "mail"

[[faults]]
action = "backlog"
at_s = 90
job = "import"
count = 20

[health]
enabled = true
interval_s = 10
window_s = 30
waiting_warning = 100
error_rate_warning = 0.1
error_rate_critical = 0.4
slow_processing_ms = 5000

[report]
timeline_start_s = 20
timeline_span_s = 60
bin_s = 5
"""

TEXTS: dict[str, str] = {name: path.read_text(encoding="utf-8") for name, path in builtin_scenarios().items()}
TEXTS["kitchen-sink"] = KITCHEN_SINK
BASES: dict[str, dict[str, Any]] = {name: tomllib.loads(text) for name, text in TEXTS.items()}
BASE_NAMES = sorted(BASES)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the fuzzed files are written, next to the CSV files the kitchen-sink scenario reads."""
    base = tmp_path_factory.mktemp("fuzz-scenarios")
    (base / "durations.csv").write_text(DURATIONS_CSV)
    (base / "arrivals.csv").write_text(ARRIVALS_CSV)
    return base


def test_every_starting_scenario_is_valid(folder: Path) -> None:
    """The fuzzing starts from valid documents (else every refusal would be the same one)."""
    assert len(BASES) >= 10
    for name, text in TEXTS.items():
        path = folder / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        assert load_scenario(path).scenario.name


# --- writing a document as TOML -----------------------------------------------------------------------------------


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes, plus DEL, which TOML also wants escaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _key(key: str) -> str:
    return toml_string(key)


def toml_value(value: Any) -> str:
    """Any value tomllib can return, as an inline TOML value (strings in JSON syntax, which TOML shares)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def inline_toml(config: dict[str, Any]) -> str:
    """The document as one ``key = value`` line per top-level key."""
    return "".join(f"{_key(k)} = {toml_value(v)}\n" for k, v in config.items())


def _has_time(value: Any) -> bool:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return True
    if isinstance(value, list):
        return any(_has_time(v) for v in value)
    if isinstance(value, dict):
        return any(_has_time(v) for v in value.values())
    return False


def same(a: Any, b: Any) -> bool:
    """Equality where nan equals nan (a document with nan must read back with nan)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# --- breaking a document ------------------------------------------------------------------------------------------

def _keys_of(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _keys_of(v)
    elif isinstance(value, list):
        for v in value:
            yield from _keys_of(v)


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


#: every key of the starting documents (a mutation often uses a real field name in the wrong place)
FIELD_NAMES = sorted({k for cfg in BASES.values() for k in _keys_of(cfg)})
#: realistic strings: names, tags, units, ids from the documents
WORDS = sorted({v for cfg in BASES.values() for v in _leaves(cfg) if isinstance(v, str) and len(v) < 40})
#: numbers at and beyond the edges: zero, signs, float and 64-bit limits, subnormals, infinities, nan
EDGE_NUMBERS: list[Any] = [0, -1, 1, -0.0, 0.5, 1.0000001, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), 10**30,
                           10**400, 1e308, -1e308, 1.7976931348623157e308, 5e-324, 1e-300, math.inf, -math.inf,
                           math.nan, 86_400, 10_000, 10_001, 100_001, 1_000_001]
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12),
                 st.sampled_from(["", " ", "a.b", "x[0]", "name (x)", "é", "\n", "\x00", "null", "__class__"]))
scalars = st.one_of(
    st.booleans(), st.integers(), st.sampled_from(EDGE_NUMBERS), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=24), st.sampled_from(WORDS), st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
    st.sampled_from(["", " ", "x" * 300, "\u202e", "日本語", "🙂", "a\nb", "$(rm -rf /)", "../../etc/passwd",
                     "missing.csv", ".", "arrivals.csv", "durations.csv", "nul\x00.csv"]),
    st.datetimes(timezones=st.sampled_from([None, dt.UTC])), st.dates(), st.times())
#: text with what breaks writers and terminals: control characters, DEL, quotes, backslashes, line breaks
nasty_text = st.text(alphabet=st.one_of(st.sampled_from(list('\x00\x01\x08\t\n\r\x1b\x7f"\'\\#=[]{}\u2028\u202e🙂é')),
                                        st.characters()), max_size=12)
garbage = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(keys, inner, max_size=4)), max_leaves=10)


def spots(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, Any, tuple[Any, ...]]]:
    """Every (container, key or index, path) of a document, tables and lists included."""
    if isinstance(value, dict):
        for k in list(value):
            yield value, k, (*path, k)
            yield from spots(value[k], (*path, k))
    elif isinstance(value, list):
        for i in range(len(value)):
            yield value, i, (*path, i)
            yield from spots(value[i], (*path, i))


def _nudged(value: Any, how: str) -> Any:
    """A number pushed out of its range or to another type: the sign, zero, huge, tiny, a float for an int."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    as_float = float(value) if abs(value) < 1e308 else math.copysign(1e308, value)  # an int beyond floats
    return {"negate": -value if value else -1, "zero": 0 * value,
            "huge": value * 10**300 if isinstance(value, int) else value * 1e300,
            "tiny": as_float * 1e-300 if value else 5e-324, "float": as_float + 0.5, "string": str(value),
            "int": int(value) if math.isfinite(value) else 10**20}[how]


@st.composite
def broken_documents(draw: st.DrawFn) -> tuple[str, dict[str, Any], list[str]]:
    """A valid scenario with one to four things broken; returns (base name, document, what was done)."""
    base = draw(st.sampled_from(BASE_NAMES))
    doc = copy.deepcopy(BASES[base])
    done: list[str] = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 4]))):
        places = list(spots(doc))
        kind = draw(st.sampled_from(["replace", "replace", "nudge", "nudge", "text", "delete", "unknown",
                                     "misspell", "move", "empty", "top"]))
        if kind == "top":  # a new or replaced top-level key
            key = draw(keys)
            doc[key] = draw(garbage)
            done.append(f"top {key!r}")
            continue
        if not places:
            continue
        parent, key, path = draw(st.sampled_from(places))
        if kind == "replace":
            parent[key] = draw(garbage)
        elif kind == "nudge":
            numbers = [(p, k, q) for p, k, q in places if isinstance(p[k], int | float) and not isinstance(p[k], bool)]
            if not numbers:
                continue
            parent, key, path = draw(st.sampled_from(numbers))
            parent[key] = _nudged(parent[key], draw(st.sampled_from(["negate", "zero", "huge", "tiny", "float",
                                                                     "string", "int"])))
        elif kind == "text":  # unicode, control characters, quotes and line breaks in a string
            strings = [(p, k, q) for p, k, q in places if isinstance(p[k], str)]
            strings += [(p, k, q) for p, k, q in strings if k in ("title", "description")] * 5  # free text: kept
            if not strings:
                continue
            parent, key, path = draw(st.sampled_from(strings))
            parent[key] = draw(st.sampled_from([parent[key], ""])) + draw(nasty_text)
        elif kind == "delete":
            del parent[key]
        elif kind == "unknown":
            tables = [p[k] for p, k, _ in places if isinstance(p[k], dict)] + [doc]
            table = draw(st.sampled_from(tables))
            new = draw(keys)
            table[new] = draw(garbage)
            path = (new,)
        elif kind == "misspell":
            if not isinstance(parent, dict):
                continue
            new = draw(st.sampled_from([key + "s", key.upper(), key.replace("_", "-"), key[:-1], "_" + key,
                                        key.replace("_ms", "_sec")]))
            parent[new] = parent.pop(key)
        elif kind == "move":  # a value that belongs elsewhere in the document
            _, _, other = draw(st.sampled_from(places))
            value: Any = doc
            for part in other:
                value = value[part]
            parent[key] = copy.deepcopy(value)
        else:  # empty the list or table
            if isinstance(parent[key], list | dict):
                parent[key] = type(parent[key])()
        done.append(f"{kind} {path!r}")
    return base, doc, done


# --- what a refusal must look like --------------------------------------------------------------------------------


def _resolves(node: Any, rest: str) -> bool:
    """Does the field path ``rest`` (``jobs[0] (name).service.mean_ms``) lead somewhere in the document ``node``?
    Its last part may be a field the document lacks (a missing field). Keys that are not plain words are quoted.
    """
    if rest == "":
        return True
    if rest.startswith(" ("):
        label = f" ({node.get('name')})" if isinstance(node, dict) else None
        return bool(label) and rest.startswith(label) and _resolves(node, rest[len(label or ""):])
    m = re.match(r"\[(\d+)\]", rest)
    if m:
        index = int(m.group(1))
        return isinstance(node, list) and index < len(node) and _resolves(node[index], rest[m.end():])
    if rest.startswith("."):
        rest = rest[1:]
    if not isinstance(node, dict):
        return False
    if rest.startswith('"'):  # a quoted key (empty, or with dots, spaces, line breaks...)
        key, end = json.JSONDecoder().raw_decode(rest)
    else:
        bare = re.match(r"[A-Za-z0-9_-]+", rest)
        if bare is None:
            return False
        key, end = bare.group(), bare.end()
    if key in node:
        return _resolves(node[key], rest[end:])
    return end == len(rest) and key in SCHEMA_FIELDS  # a missing field, named as the schema names it


#: every field name of every table of the format
SCHEMA_FIELDS = {name for model in vars(schema_module).values()
                 if isinstance(model, type) and issubclass(model, BaseModel) for name in model.model_fields}


RAW_MARKERS = ("Traceback", "validation error", "For further information", "pydantic", "Error(", "KeyError",
               "TypeError", "AttributeError", "object has no attribute")


def check_refusal(err: ScenarioError, shown: str, doc: dict[str, Any] | None) -> None:
    """One clean refusal: every line starts with the file, every message is plain words; a parsed document's
    problems each name a field path found in it; an unparsed one says why it could not be read."""
    assert err.problems
    assert err.path == err.problems[0][0]
    for line in str(err).split("\n"):
        assert line.startswith(f"{shown}: "), line
    for path, message in err.problems:
        assert message.strip(), err.problems
        assert not any(marker in message for marker in RAW_MARKERS), message
        if doc is None:
            assert path == ""
            assert message.startswith(("is not valid TOML", "cannot be read")), message
        else:
            assert path, f"no field path: {message}"
            assert _resolves(doc, path), f"{path!r} is not a path of the document: {message}"
            top = re.split(r"[.\[ ]", path, maxsplit=1)[0]
            REFUSED_FIELDS[top if top in Scenario.model_fields else "(unknown key)"] += 1


def check_accepted(path: Path) -> None:
    """The steps after loading work on an accepted scenario, and its resolved configuration round-trips."""
    loaded = load_scenario(path)
    laws = scenario_laws(loaded.scenario, loaded.base_dir)
    theory_for(loaded.scenario, laws)
    again = load_scenario(tomllib.loads(dump_toml(loaded.config)))
    assert same(again.config, loaded.config)


def load_outcome(path: Path, doc: dict[str, Any] | None) -> ScenarioError | None:
    """Load ``path``: None when accepted (after checking the later steps), else the checked refusal."""
    try:
        load_scenario(path)
    except ScenarioError as err:
        check_refusal(err, path.name, doc)
        return err
    check_accepted(path)
    return None


# --- the fuzz tests -----------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _in_folder(folder: Path) -> Iterator[None]:
    """Run from the fuzz folder, so that error messages show the file name as given."""
    old = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


@settings(FUZZ_SETTINGS, max_examples=500)
@given(case=broken_documents(), writer=st.sampled_from(["inline", "tables"]))
def test_broken_documents_are_refused_cleanly_or_accepted(folder: Path, case: Any, writer: str) -> None:
    base, doc, done = case
    note(f"from {base}: {done}")
    text = dump_toml(doc) if writer == "tables" and not _has_time(doc) and _dumpable(doc) else inline_toml(doc)
    assert same(tomllib.loads(text), doc)  # the document on disk is the one generated
    path = folder / "broken.toml"
    path.write_text(text, encoding="utf-8")
    TRIED["documents"] += 1
    outcome = load_outcome(path, doc)
    TRIED["documents refused" if outcome else "documents accepted"] += 1


def _dumpable(doc: Any) -> bool:
    """The project's writer is for validated configurations: no empty key, no nan in a key position."""
    try:
        return same(tomllib.loads(dump_toml(doc)), doc)
    except (TypeError, ValueError, tomllib.TOMLDecodeError):
        return False


@st.composite
def broken_texts(draw: st.DrawFn) -> bytes:
    """A scenario file's text cut, spliced or repeated; or random text; or bytes that are not UTF-8."""
    family = draw(st.sampled_from(["edit", "edit", "edit", "text", "bytes"]))
    if family == "text":
        return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    if family == "bytes":
        return draw(st.binary(max_size=200))
    text = TEXTS[draw(st.sampled_from(BASE_NAMES))]
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        how = draw(st.sampled_from(["cut", "insert", "repeat", "swap"]))
        if how == "cut":
            text = text[:at] + text[at + draw(st.integers(1, 40)):]
        elif how == "insert":
            text = text[:at] + draw(st.one_of(st.text(max_size=10), st.sampled_from(
                ["=", "[", "]]", "{", "}", '"', "'''", "\n", "#", ",", "[[jobs]]\n", "x = 1\n", "\\", "\t",
                 "\x00", "inf", "1e999", "-", "."]))) + text[at:]
        elif how == "repeat":
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            text = "\n".join([*lines[:i + 1], lines[i], *lines[i + 1:]])
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text.encode("utf-8", "surrogatepass")


@settings(FUZZ_SETTINGS, max_examples=200)
@given(data=broken_texts())
def test_broken_texts_are_refused_cleanly_or_accepted(folder: Path, data: bytes) -> None:
    path = folder / "text.toml"
    path.write_bytes(data)
    try:
        # read as the loader reads a file: UTF-8 with universal newlines (a lone CR counts as a line break)
        doc: dict[str, Any] | None = tomllib.loads(data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        doc = None
    TRIED["texts"] += 1
    outcome = load_outcome(path, doc)
    TRIED["texts refused" if outcome else "texts accepted"] += 1


OVERRIDE_PATHS = st.lists(st.one_of(st.sampled_from(FIELD_NAMES), st.integers(-2, 12).map(lambda i: f"[{i}]"),
                                    st.sampled_from(WORDS), st.text(max_size=6)), min_size=1, max_size=5)
OVERRIDE_VALUES = st.one_of(st.sampled_from(["1", "-1", "0", "1e999", "nan", "true", '"x"', "[1, 2]", "{a = 1}",
                                             "exponential", "", "=", "[", '"', "10000000000000000000000"]),
                            st.text(max_size=12))


@settings(FUZZ_SETTINGS, max_examples=150)
@given(base=st.sampled_from(BASE_NAMES), parts=st.lists(st.tuples(OVERRIDE_PATHS, OVERRIDE_VALUES), max_size=3),
       dots=st.booleans())
def test_any_set_override_is_refused_cleanly_or_accepted(folder: Path, base: str, parts: list[Any],
                                                         dots: bool) -> None:
    path = folder / f"{base}.toml"
    path.write_text(TEXTS[base], encoding="utf-8")
    overrides = []
    for tokens, value in parts:
        text = ""
        for t in tokens:
            text += t if t.startswith("[") and not dots else (f".{t}" if text else t)
        overrides.append(f"{text}={value}")
    TRIED["overrides"] += 1
    refusal: ScenarioError | None = None
    try:
        loaded = load_scenario(path, overrides)
    except ScenarioError as err:
        refusal = err
    if refusal is None:
        TRIED["overrides accepted"] += 1
        theory_for(loaded.scenario, scenario_laws(loaded.scenario, loaded.base_dir))
        return
    TRIED["overrides refused"] += 1
    assert refusal.problems
    for line in str(refusal).split("\n"):
        assert line.startswith((f"{path.name}: ", "--set: ")), line
    for _, message in refusal.problems:
        assert message.strip()
        assert not any(marker in message for marker in RAW_MARKERS), message


# --- inputs that once gave a raw error or no field path -------------------------------------------------------


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def apply(doc: dict[str, Any]) -> None:
        node: Any = doc
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return apply


def _drop(path: tuple[Any, ...]) -> Any:
    def apply(doc: dict[str, Any]) -> None:
        node: Any = doc
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
    return apply


REGRESSIONS = [
    # an unknown key that is empty or holds a line break: the message named no field, or broke over two lines
    pytest.param("batch-emails", _set(("",), []), '""', id="empty-unknown-key"),
    pytest.param("batch-emails", _set(("horizon", "a.b\n"), 1), 'horizon."a.b\\n"',
                 id="unknown-key-with-dot-and-newline"),
    # a lognormal law whose sd/mean ratio squares beyond floating point: a raw OverflowError
    pytest.param("daily-reports", _set(("jobs", 0, "service", "mean_ms"), 4e-297), "jobs[0] (daily-report).service",
                 id="lognormal-ratio-overflow"),
    # an empirical law with a huge duration: its variance overflowed (OverflowError)
    pytest.param("kitchen-sink", _set(("jobs", 5, "service", "values_ms"), [1e300, 1]), "jobs[5] (blast).service",
                 id="empirical-value-overflow"),
    # a whole-file check's message starts with "jobs[0] (name): ...": the path was left empty
    pytest.param("retry-storm", _drop(("jobs", 0, "arrivals")), "jobs[0] (sync-order)",
                 id="job-never-added"),
    # a dead-letter queue that is also worked: no path at all
    pytest.param("email-queue", _set(("queues", 0, "dead_letter_queue"), "email-queue"),
                 "queues[0] (email-queue).dead_letter_queue", id="dead-letter-queue-is-worked"),
    # a CSV file that is missing or lacks the column: a raw FileNotFoundError during the run
    pytest.param("kitchen-sink", _set(("jobs", 0, "service", "path"), "missing.csv"),
                 "jobs[0] (checkout).service.path", id="missing-csv"),
    pytest.param("kitchen-sink", _set(("jobs", 3, "arrivals", "column"), "t"), "jobs[3] (digest).arrivals.column",
                 id="missing-csv-column"),
    pytest.param("kitchen-sink", _set(("jobs", 0, "service", "path"), "."), "jobs[0] (checkout).service.path",
                 id="csv-path-is-a-folder"),
]


@pytest.mark.parametrize(("base", "breaks", "expected"), REGRESSIONS)
def test_inputs_that_once_gave_a_raw_error_now_name_their_field(folder: Path, base: str, breaks: Any,
                                                                expected: str) -> None:
    doc = copy.deepcopy(BASES[base])
    breaks(doc)
    path = folder / "regression.toml"
    path.write_text(inline_toml(doc), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    check_refusal(info.value, path.name, doc)
    assert expected in [p for p, _ in info.value.problems], info.value.problems


def test_a_set_path_with_a_line_break_stays_on_one_line(folder: Path) -> None:
    path = folder / "batch-emails.toml"
    path.write_text(TEXTS["batch-emails"], encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["[0]\n0=1"])
    assert str(info.value).count("\n") == 0
    assert str(info.value).startswith('--set: "[0]\\n0": ')


@pytest.mark.parametrize("text", ["a\x7fb", "one\ntwo\x1f", "nul\n\x00", "crlf\r\nkept", "esc\x1b[0m"])
def test_free_text_with_control_characters_is_written_back_as_valid_toml(folder: Path, text: str) -> None:
    """Before, ``queuesim show`` wrote such a description as it was: TOML that no parser reads (or, for a CRLF,
    reads back different)."""
    doc = copy.deepcopy(BASES["mmc-basics"])
    doc["description"] = text
    path = folder / "text.toml"
    path.write_text(inline_toml(doc), encoding="utf-8")
    loaded = load_scenario(path)
    assert tomllib.loads(dump_toml(loaded.config))["description"] == text


@pytest.mark.parametrize("mean_ms", [1e300, 1e-300])
def test_extreme_service_times_give_no_formula_rather_than_a_raw_error(folder: Path, mean_ms: float) -> None:
    """Before, the closed form of an M/M/1 scenario with such a mean raised OverflowError / ZeroDivisionError
    after the whole run; now no formula is claimed."""
    doc = copy.deepcopy(BASES["mmc-basics"])
    doc["jobs"][0]["service"] = {"law": "exponential", "mean_ms": mean_ms}
    path = folder / "extreme.toml"
    path.write_text(inline_toml(doc), encoding="utf-8")
    loaded = load_scenario(path)
    assert theory_for(loaded.scenario, scenario_laws(loaded.scenario)) is None
    doc["jobs"][0]["service"]["mean_ms"] = 100.0  # the same scenario with a sane mean does have one
    path.write_text(inline_toml(doc), encoding="utf-8")
    sane = load_scenario(path)
    assert theory_for(sane.scenario, scenario_laws(sane.scenario)) is not None


# --- a refused scenario writes nothing ----------------------------------------------------------------------------


@contextmanager
def stores_opened() -> Iterator[list[str]]:
    """Records every queue store created meanwhile (an embedded or real Redis backend, a memory backend) and
    every process pool (whose processes would open their own stores)."""
    opened: list[str] = []
    redis_init, memory_init = RedisBackend.__init__, MemoryBackend.__init__
    pool = runner_module.ProcessPoolExecutor

    def on_redis(self: Any, *args: Any, **kwargs: Any) -> None:
        opened.append("redis")
        redis_init(self, *args, **kwargs)

    def on_memory(self: Any, *args: Any, **kwargs: Any) -> None:
        opened.append("memory")
        memory_init(self, *args, **kwargs)

    def on_pool(*args: Any, **kwargs: Any) -> Any:
        opened.append("process pool")
        return pool(*args, **kwargs)

    with mock.patch.object(RedisBackend, "__init__", on_redis), \
            mock.patch.object(MemoryBackend, "__init__", on_memory), \
            mock.patch.object(runner_module, "ProcessPoolExecutor", on_pool):
        yield opened


@pytest.mark.parametrize(("reps", "seen"), [("1", "memory"), ("2", "process pool")])
def test_the_store_spy_sees_a_run_that_does_open_a_store(folder: Path, tmp_path: Path, reps: str,
                                                         seen: str) -> None:
    """The spy below is not blind: a valid scenario run from the command line opens a store (or a pool of
    processes that do) and writes its files."""
    path = folder / "mmc.toml"
    path.write_text(TEXTS["mmc-basics"], encoding="utf-8")
    out = tmp_path / "out"
    with stores_opened() as opened:
        result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--no-progress", "--no-charts",
                                          "--reps", reps, "--set", "horizon.duration_s=20",
                                          "--set", "horizon.warmup_s=0"])
    assert result.exit_code == 0, result.output
    assert seen in opened
    assert (out / "summary.json").is_file()


@settings(FUZZ_SETTINGS, max_examples=150)
@given(case=broken_documents())
def test_running_a_refused_scenario_writes_nothing_and_opens_no_store(folder: Path, tmp_path_factory: Any,
                                                                      case: Any) -> None:
    base, doc, done = case
    note(f"from {base}: {done}")
    path = folder / "bad.toml"
    path.write_text(inline_toml(doc), encoding="utf-8")
    try:
        load_scenario(path)
        refused = False
    except ScenarioError:
        refused = True
    assume(refused)
    TRIED["runs"] += 1
    workdir = tmp_path_factory.mktemp("run")
    out = workdir / "out"
    old = Path.cwd()
    os.chdir(workdir)
    try:
        with stores_opened() as opened:
            result = CliRunner().invoke(app, ["run", str(path), "--out", str(out)])
    finally:
        os.chdir(old)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "error:" in result.output
    assert "Traceback" not in result.output
    assert opened == []
    assert not out.exists()
    assert list(workdir.iterdir()) == []


def test_the_fuzzing_tried_enough_inputs_of_every_kind() -> None:
    """Runs last (file order): prints the figures and checks the generators reached both outcomes everywhere."""
    if not TRIED:
        pytest.skip("the fuzz tests did not run")
    print(f"\nscenario fuzzing: {sum(TRIED[k] for k in ('documents', 'texts', 'overrides', 'runs'))} inputs: "
          + ", ".join(f"{k} {v}" for k, v in sorted(TRIED.items())))
    print("refusals by top-level field: " + ", ".join(f"{k} {v}" for k, v in REFUSED_FIELDS.most_common()))
    for family in ("documents", "texts", "overrides"):
        if TRIED[family]:
            assert TRIED[f"{family} accepted"] > 0, family
            assert TRIED[f"{family} refused"] > 0, family
    if TRIED["documents"]:
        assert len(REFUSED_FIELDS) >= 6  # refusals come from many tables, not one
