"""Security properties that can be checked in the code itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import queuesim
from queuesim import OptionError, Queue, VirtualClock

PACKAGE = Path(queuesim.__file__).parent
#: modules that turn bytes back into live objects; only pickle.dumps (to hand our own tasks to a process pool)
#: is allowed, never loading
UNSAFE_MODULES = {"marshal", "shelve", "dill", "cloudpickle"}
DESERIALISERS = {"pickle", "cPickle", *UNSAFE_MODULES}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_pickle_or_eval_of_scenario_or_job_data(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & UNSAFE_MODULES, path
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in UNSAFE_MODULES, path
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in UNSAFE_CALLS, f"{path}:{node.lineno} calls {node.func.id}()"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if isinstance(target, ast.Name) and target.id in DESERIALISERS:
                assert node.func.attr not in ("load", "loads", "Unpickler"), f"{path}:{node.lineno}"


@pytest.mark.parametrize("job_id", ["a:b", "x:1:lock", "..:meta"])
def test_a_job_id_cannot_address_another_key(job_id: str) -> None:
    conn = queuesim.connect(clock=VirtualClock())
    q = Queue("safe", conn)
    with pytest.raises(OptionError, match="job_id"):
        q.add("j", {}, job_id=job_id)


@pytest.mark.parametrize("name", ["other:meta", "q:1", ""])
def test_a_queue_name_cannot_address_another_queue(name: str) -> None:
    conn = queuesim.connect(clock=VirtualClock())
    with pytest.raises(OptionError, match="queue name"):
        Queue(name, conn)
