"""Remove the outputs of notebooks before committing them.

The notebooks are stored without outputs: no cell results, no execution counts, no widget state. That keeps the
diffs small and readable, keeps images and machine-specific text out of the history, and lets the tests check
that what is stored is exactly what a reader will run.

Usage (from the repository root)::

    .venv/bin/python notebooks/strip_outputs.py notebooks/*.ipynb          # strip in place
    .venv/bin/python notebooks/strip_outputs.py --check notebooks/*.ipynb  # only report; exit 1 if any has outputs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

#: notebook-level metadata written by a running Jupyter that does not belong in the repository
VOLATILE_METADATA = ("widgets",)
#: cell-level metadata written while executing (timings, scroll state)
VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled")


def has_outputs(nb: nbformat.NotebookNode) -> bool:
    """Whether any code cell holds outputs or an execution count, or the notebook holds widget state."""
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            return True
    return any(key in nb.metadata for key in VOLATILE_METADATA)


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Clear outputs and execution counts of every code cell and drop execution metadata (in place).

    The kernel's ``language_info`` is reduced to the language name: the rest (the exact Python version) describes
    the machine that last ran the notebook, not the notebook."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
    for key in VOLATILE_METADATA:
        nb.metadata.pop(key, None)
    if "language_info" in nb.metadata:
        nb.metadata["language_info"] = {"name": nb.metadata["language_info"].get("name", "python")}
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Remove outputs and execution counts from notebooks.")
    parser.add_argument("paths", nargs="+", type=Path, help="notebook files (.ipynb)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook has outputs")
    args = parser.parse_args(argv)
    dirty = []
    for path in args.paths:
        if path.suffix != ".ipynb":
            parser.error(f"{path}: not a notebook (expected a .ipynb file)")
        nb = nbformat.read(path, as_version=4)
        if not has_outputs(nb):
            continue
        dirty.append(path)
        if not args.check:
            nbformat.write(strip(nb), path)
    verb = "has outputs" if args.check else "stripped"
    for path in dirty:
        print(f"{path}: {verb}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
