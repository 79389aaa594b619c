"""Reading scenario files: TOML in, a validated :class:`~queuesim.scenario.schema.Scenario` out.

* :func:`load_scenario` reads a file (or a built-in scenario by name), applies ``--set path=value`` overrides and
  validates the result. Every problem becomes one :class:`ScenarioError` whose text names the file, the field
  path (``jobs[0].arrivals.rate_per_s``) and what is allowed, e.g.::

      scenarios/email-queue.toml: jobs[1] (password-reset).service.law: unknown distribution 'exponentail';
      allowed: exponential, deterministic, uniform, erlang, gamma, lognormal, hyperexponential, empirical

* :func:`apply_override` understands paths with dots, list indexes (``jobs[1]`` or ``jobs.1``) and list items
  by name (``jobs.password-reset.priority``); the value is read as a TOML value (``2.5``, ``true``,
  ``"text"``, ``[1, 2]``), or as a plain string when it is not one (``backend=memory``).
* :func:`dump_toml` writes a configuration back as TOML (what ``queuesim show`` prints).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from queuesim.errors import OptionError
from queuesim.scenario.schema import NAME_PATTERN, Scenario

__all__ = [
    "BUILTIN_DIRS",
    "LoadedScenario",
    "ScenarioError",
    "apply_override",
    "builtin_scenarios",
    "dump_toml",
    "load_scenario",
    "parse_override",
    "resolve_path",
    "scenario_hash",
    "validate_config",
]

#: Where built-in scenarios live: the repository's ``scenarios/`` folder, or the copy packed into the wheel.
BUILTIN_DIRS = (Path(__file__).resolve().parents[2] / "scenarios", Path(__file__).resolve().parent / "builtin")

_NAME = re.compile(NAME_PATTERN)

#: What each discriminator key is called in messages.
_TAG_WORDS = {"law": "distribution", "process": "arrival process", "action": "fault action"}


class ScenarioError(OptionError):
    """A scenario that cannot be used: names the file, the field path and what is allowed.

    Attributes:
        file: the scenario file (or ``--set`` for a bad override).
        path: the field path, e.g. ``jobs[0].arrivals.rate_per_s`` (empty for the whole file).
        problems: every problem found, as ``(path, message)`` pairs (the first one is ``path``/``message``).
    """

    def __init__(self, file: str, path: str, message: str,
                 problems: Sequence[tuple[str, str]] | None = None) -> None:
        self.file = file
        self.path = path
        self.problems = list(problems) if problems else [(path, message)]
        super().__init__(path or file, message)

    def __str__(self) -> str:
        lines = [f"{self.file}: {_printable(p)}: {m}" if p else f"{self.file}: {m}" for p, m in self.problems]
        return "\n".join(lines)


def _printable(path: str) -> str:
    """A path as typed, or quoted when it holds a line break or another control character (one problem, one
    line)."""
    return path if path.isprintable() else json.dumps(path, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class LoadedScenario:
    """A validated scenario with where it came from.

    Attributes:
        scenario: the validated configuration.
        file: the file it was read from (``None`` for one built from a mapping).
        overrides: the ``--set`` overrides applied, as given.
        config: the fully resolved configuration (defaults filled in) as plain data.
    """

    scenario: Scenario
    file: Path | None
    overrides: tuple[str, ...]
    config: dict[str, Any]

    @property
    def base_dir(self) -> Path | None:
        """The folder relative paths in the file (traces, CSV laws) are read from."""
        return self.file.parent if self.file is not None else None

    @property
    def hash(self) -> str:
        return scenario_hash(self.config)


def builtin_scenarios() -> dict[str, Path]:
    """The built-in scenarios, by name (the file name without ``.toml``)."""
    for folder in BUILTIN_DIRS:
        if folder.is_dir():
            found = {p.stem: p for p in sorted(folder.glob("*.toml"))}
            if found:
                return found
    return {}


def resolve_path(name_or_path: str | Path) -> Path:
    """A scenario file: an existing path, or the name of a built-in scenario."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    builtins = builtin_scenarios()
    key = p.stem if p.suffix == ".toml" and not p.exists() and p.parent == Path() else str(name_or_path)
    if key in builtins:
        return builtins[key]
    raise ScenarioError(str(name_or_path), "", "no such file, and not a built-in scenario; built-in scenarios: "
                        f"{', '.join(builtins) or 'none found'}")


def scenario_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the resolved configuration (sorted keys, compact JSON): two runs with the same hash and seed
    ran the same scenario."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --- overrides -------------------------------------------------------------------------------------------------


_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _path_parts(path: str) -> list[str | int]:
    if not path or path.startswith(".") or path.endswith(".") or ".." in path:
        raise ScenarioError("--set", path, "not a field path; write e.g. horizon.duration_s or jobs[0].priority")
    parts: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(path):
        between = path[pos:m.start()]
        if between not in ("", "."):
            raise ScenarioError("--set", path, "not a field path; write e.g. horizon.duration_s or jobs[0].priority")
        pos = m.end()
        parts.append(int(m.group(2)) if m.group(2) is not None else m.group(1))
    if path[pos:]:
        raise ScenarioError("--set", path, "not a field path; write e.g. horizon.duration_s or jobs[0].priority")
    return parts


def parse_override(text: str) -> tuple[str, Any]:
    """``"jobs[0].priority=5"`` → ``("jobs[0].priority", 5)``. The value is read as TOML, else as a string."""
    if "=" not in text:
        raise ScenarioError("--set", text, "must look like path=value, e.g. horizon.duration_s=60")
    path, raw = text.split("=", 1)
    path, raw = path.strip(), raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return path, value


def apply_override(config: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` in ``config`` to ``value`` in place (creating missing tables)."""
    parts = _path_parts(path)
    node: Any = config
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        shown = _shown(parts[:i + 1])
        if isinstance(node, list):
            index = _list_index(node, part, shown, path)
            if last:
                node[index] = value
                return
            node = node[index]
        elif isinstance(node, dict):
            if isinstance(part, int):
                raise ScenarioError("--set", path, f"{_shown(parts[:i]) or 'the file'} is a table, not a list")
            if last:
                node[part] = value
                return
            if part not in node or node[part] is None:
                node[part] = {}
            node = node[part]
        else:
            raise ScenarioError("--set", path, f"{_shown(parts[:i])} is a value ({node!r}), it has no field "
                                               f"{parts[i]!r}")
    raise AssertionError("unreachable")


def _list_index(items: list[Any], part: str | int, shown: str, path: str) -> int:
    if isinstance(part, int) or (isinstance(part, str) and part.isdigit()):
        index = int(part)
        if not 0 <= index < len(items):
            raise ScenarioError("--set", path, f"index {index} of {shown.rsplit('[', 1)[0] or 'the list'} is out of "
                                               f"range; the list has {len(items)} item(s)")
        return index
    names = [item.get("name") for item in items if isinstance(item, dict)]
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return index
    raise ScenarioError("--set", path, f"no item named {part!r}; allowed: {', '.join(map(str, names))} "
                                       f"or an index 0..{len(items) - 1}")


def _shown(parts: Sequence[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


# --- validation with readable messages --------------------------------------------------------------------------


def _annotation_models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, list, Annotated and unions)."""
    out: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in get_args(annotation):
        out.extend(_annotation_models(arg))
    return out


def _tag_field(models: list[type[BaseModel]]) -> str | None:
    for key in _TAG_WORDS:
        if models and all(key in m.model_fields for m in models):
            return key
    return None


def _tag_of(model: type[BaseModel], key: str) -> str:
    return get_args(model.model_fields[key].annotation)[0]


def _field_name(key: Any) -> str:
    """A key as it appears in a field path: bare when it is a plain word, else quoted as TOML would quote it
    (an empty key, or one with dots, spaces or line breaks, stays readable and on one line)."""
    text = str(key)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else json.dumps(text, ensure_ascii=False)


def _walk(loc: Sequence[Any], data: Any) -> tuple[str, list[type[BaseModel]], Any]:
    """Follow a pydantic error location: the readable path, the models possible at its end, the data there."""
    models: list[type[BaseModel]] = [Scenario]
    path = ""
    node = data
    i = 0
    while i < len(loc):
        part = loc[i]
        i += 1
        if isinstance(part, int):
            path += f"[{part}]"
            if isinstance(node, list) and 0 <= part < len(node):
                node = node[part]
                name = node.get("name") if isinstance(node, dict) else None
                if isinstance(name, str) and _NAME.fullmatch(name) and len(name) <= 100 and path.count("[") == 1:
                    path += f" ({name})"  # a valid name helps find the item; a broken one would only confuse
            else:
                node = None
            continue
        key = _tag_field(models)
        if key is not None and part in [_tag_of(m, key) for m in models]:
            models = [m for m in models if _tag_of(m, key) == part]  # a union member picked by its tag
            continue
        model = next((m for m in models if part in m.model_fields), None)
        path += f".{_field_name(part)}" if path else _field_name(part)
        node = node.get(part) if isinstance(node, dict) else None
        if model is None:
            models = []
            continue
        inner = _annotation_models(model.model_fields[part].annotation)
        models = inner
        # skip pydantic's union-member labels such as 'bool' / 'int' / 'KeepSpec' in the location
        while i < len(loc) and isinstance(loc[i], str) and not any(loc[i] in m.model_fields for m in models) \
                and (_tag_field(models) is None or loc[i] not in [_tag_of(m, _tag_field(models) or "")
                                                                  for m in models]):
            if loc[i] in ("bool", "int", "float", "str", "list", "dict", "function-after", "nullable") \
                    or loc[i][:1].isupper():
                i += 1
                continue
            break
    return path, models, node


def _allowed_fields(models: list[type[BaseModel]]) -> list[str]:
    fields: list[str] = []
    for m in models:
        for name in m.model_fields:
            if name not in fields:
                fields.append(name)
    return fields


_TYPE_WORDS = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "string_type": "a string (in quotes)", "list_type": "a list [...]",
    "model_type": "a table", "dict_type": "a table", "model_attributes_type": "a table",
}


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


def _message(err: Mapping[str, Any], models: list[type[BaseModel]], node: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "extra_forbidden":
        parent = _allowed_fields(models)
        return f"unknown field; allowed: {', '.join(parent)}" if parent else "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        key = str(ctx.get("discriminator", "")).strip("'")
        word = _TAG_WORDS.get(key, key)
        tags = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
        if not tags:
            tags = [_tag_of(m, key) for m in models if key in m.model_fields]
        if kind == "union_tag_not_found":
            return f"needs a {key!r} key naming the {word}; allowed: {', '.join(tags)}"
        return f"unknown {word} {ctx.get('tag')!r}; allowed: {', '.join(tags)}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace(" or ", ", ")
        return f"must be one of {expected}, got {value!r}"
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]}, got {value!r} ({_toml_type(value)})"
    if kind == "greater_than":
        return f"must be > {_g(ctx.get('gt'))}, got {value!r}"
    if kind == "greater_than_equal":
        return f"must be >= {_g(ctx.get('ge'))}, got {value!r}"
    if kind == "less_than":
        return f"must be < {_g(ctx.get('lt'))}, got {value!r}"
    if kind == "less_than_equal":
        return f"must be <= {_g(ctx.get('le'))}, got {value!r}"
    if kind == "finite_number":
        return f"must be a finite number, got {value!r}"
    if kind == "string_pattern_mismatch":
        return f"must be a name of letters, digits, '-', '_' or '.', got {value!r}"
    if kind in ("too_short", "string_too_short"):
        return f"must not be empty (at least {ctx.get('min_length')}), got {value!r}"
    if kind in ("too_long", "string_too_long"):
        return f"is too long (at most {ctx.get('max_length')}), got {len(value) if value else value} items"
    if kind == "value_error":
        return str(ctx.get("error", err.get("msg", "")))
    if kind == "union_type" or kind.endswith("_type"):
        return f"has the wrong type: {value!r} ({_toml_type(value)})"
    return str(err.get("msg", kind))


def _g(number: Any) -> str:
    return f"{number:g}" if isinstance(number, int | float) else str(number)


def _line_of(text: str | None, path: str) -> int | None:
    """Best effort: the line of the last key of ``path`` when it appears once in the file."""
    if not text or not path:
        return None
    key = path.rsplit(".", 1)[-1].split("[")[0].split(" ")[0]
    if not key:
        return None
    pattern = re.compile(rf"(^|[\s{{,]){re.escape(key)}\s*=")
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if pattern.search(line)]
    return hits[0] if len(hits) == 1 else None


def validate_config(config: dict[str, Any], file: str = "<scenario>", text: str | None = None,
                    overridden: Iterable[str] = ()) -> Scenario:
    """Validate a configuration mapping; raise a :class:`ScenarioError` naming every problem."""
    try:
        return Scenario.model_validate(config)
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            path, models, node = _walk(loc, config)
            msg = _message(err, models if err["type"] != "extra_forbidden" else _parent_models(loc, config), node)
            if not path:
                # a whole-file check names its field first: "jobs[0].dependency: ..." or "jobs[0] (name): ..."
                m = re.match(r"^([A-Za-z_][\w\[\].]*(?: \([^()]*\))?[\w\[\].]*): (.*)$", msg, re.S)
                if m:
                    path, msg = m.group(1), m.group(2)
            bare = re.sub(r" \([^)]*\)", "", path)
            line = _line_of(text, bare) if bare.rsplit(".", 1)[-1] not in ("name",) else None
            if any(bare == o or bare.startswith(o + ".") for o in overridden):
                msg += " (set with --set)"
            elif line is not None:
                msg += f" (line {line})"
            problems.append((path, msg))
        # an unknown field is usually the cause of a "missing" one next to it (a misspelling): show it first
        problems.sort(key=lambda p: 0 if p[1].startswith("unknown field") else 1)
        path, msg = problems[0]
        raise ScenarioError(file, path, msg, problems) from None
    except OptionError as exc:  # raised by a queuesim.sim constructor inside a validator
        raise ScenarioError(file, exc.field, exc.message) from None


def _parent_models(loc: Sequence[Any], config: Any) -> list[type[BaseModel]]:
    """The models that own the last key of ``loc`` (for 'unknown field' messages)."""
    _, models, _ = _walk(loc[:-1], config)
    return models


# --- loading --------------------------------------------------------------------------------------------------


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_scenario(source: str | Path | Mapping[str, Any], overrides: Iterable[str] = ()) -> LoadedScenario:
    """Read, override and validate a scenario.

    Args:
        source: a path to a ``.toml`` file, the name of a built-in scenario, or an already parsed mapping.
        overrides: ``path=value`` strings, applied in order before validation.
    """
    given = tuple(overrides)
    text: str | None = None
    file: Path | None = None
    if isinstance(source, Mapping):
        config = copy.deepcopy(dict(source))
        shown = "<scenario>"
    else:
        file = resolve_path(source)
        shown = _display(file)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(shown, "", f"cannot be read: {exc}") from None
        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(shown, "", f"is not valid TOML: {exc}") from None
    paths = []
    for item in given:
        path, value = parse_override(item)
        apply_override(config, path, value)
        paths.append(re.sub(r"\[(\d+)\]", r"[\1]", path))
    scenario = validate_config(config, shown, text, _normalised(paths, config))
    if file is not None:
        _check_files(scenario, file.parent, shown)
    resolved = scenario.model_dump(mode="json", exclude_none=True)
    return LoadedScenario(scenario, file, given, resolved)


def _check_files(scenario: Scenario, base: Path, shown: str) -> None:
    """Read the CSV files the scenario names (empirical laws, arrival traces) now, relative to the scenario's
    folder: a missing file, a missing column or a value that is not a number is refused here, with its field
    path, instead of failing the run halfway."""
    for i, job in enumerate(scenario.jobs):
        where = f"jobs[{i}] ({job.name})"
        specs: list[tuple[str, Any]] = [(f"{where}.service", job.service), (f"{where}.arrivals", job.arrivals)]
        for k, step in enumerate(job.steps or []):
            specs += [(f"{where}.steps[{k}].service", step.service),
                      (f"{where}.steps[{k}].compensation", step.compensation)]
        for at, spec in specs:
            path = getattr(spec, "path", None)
            if path is None:
                continue
            try:
                built = spec.build(base)
                if hasattr(built, "scv"):
                    _ = built.mean_ms, built.scv  # durations so large that their variance overflows
            except (OSError, ValueError) as exc:  # no such file, a folder, a name with a NUL byte...
                if isinstance(exc, OptionError):
                    field = "column" if exc.field == "column" else "path"
                    raise ScenarioError(shown, f"{at}.{field}", exc.message) from None
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise ScenarioError(shown, f"{at}.path", f"cannot read {path!r} (relative to the scenario "
                                                         f"file's folder): {reason}") from None
            except ArithmeticError:
                raise ScenarioError(shown, f"{at}.path", f"the durations in {path!r} are too large to compute "
                                                         "the law's variance") from None


def _normalised(paths: list[str], config: dict[str, Any]) -> list[str]:
    """Override paths in the ``jobs[0].x`` form the error messages use."""
    out = []
    for path in paths:
        try:
            parts = _path_parts(path)
        except ScenarioError:
            continue
        node: Any = config
        shown: list[str | int] = []
        for part in parts:
            if isinstance(node, list):
                try:
                    index = _list_index(node, part, "", path)
                except ScenarioError:
                    break
                shown.append(index)
                node = node[index]
            else:
                shown.append(part)
                node = node.get(part) if isinstance(node, dict) else None
        out.append(_shown(shown))
    return out


# --- writing TOML ----------------------------------------------------------------------------------------------


#: Characters TOML does not allow as they are inside a multi-line string (all control characters but tab and
#: line feed; a carriage return is escaped too, or a CRLF would read back as LF) and inside a one-line string
#: once JSON has escaped the ones below U+0020 (DEL is left).
_CONTROL_IN_MULTILINE = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_CONTROL_IN_LINE = re.compile("\x7f")


def _escape_control(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"nan": "nan", "inf": "inf", "-inf": "-inf"}[str(value)]
        return repr(value)
    if isinstance(value, str):
        if "\n" in value:
            body = value.replace("\\", "\\\\").replace('"""', '\\"""')
            return '"""\n' + _CONTROL_IN_MULTILINE.sub(_escape_control, body) + '"""'
        return _CONTROL_IN_LINE.sub(_escape_control, json.dumps(value, ensure_ascii=False))
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _emit(table: Mapping[str, Any], prefix: str, out: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_table_list(v)}
    for k, v in scalars.items():
        out.append(f"{_key(k)} = {_toml_value(v)}")
    for k, v in table.items():
        name = f"{prefix}.{_key(k)}" if prefix else _key(k)
        if isinstance(v, dict):
            out.append("")
            out.append(f"[{name}]")
            _emit(v, name, out)
        elif _is_table_list(v):
            for item in v:
                out.append("")
                out.append(f"[[{name}]]")
                _emit(item, name, out)


def dump_toml(config: Mapping[str, Any]) -> str:
    """Write a configuration (plain dicts, lists and scalars; no None) as TOML that :mod:`tomllib` reads back
    to the same data."""
    out: list[str] = []
    _emit(config, "", out)
    return "\n".join(out).strip() + "\n"
