"""The documentation site: it builds without a warning, its Python examples run, its generated pages are current.

* The site is built with ``mkdocs build --strict`` (broken links, missing anchors and API pages that do not
  resolve are errors).
* Every ```` ```python ```` block of ``docs/**/*.md`` and ``README.md`` is executed. The blocks of one page run in
  order, in one namespace, in a fresh temporary working directory, as a reader pasting them one after the other
  would run them. A block followed by a ```` ```text title="Output" ```` block must print exactly that output.
* A block may carry one marker, an HTML comment on the line just above its fence (readers do not see it):

  - ``<!-- docs-test: needs-redis -->`` — runs only against a real Redis (``QUEUESIM_REDIS_URL``, or a private
    ``redis-server``, like the other real-Redis tests); the block reads the URL from ``QUEUESIM_REDIS_URL``;
  - ``<!-- docs-test: file NAME -->`` — the block (of any language: a script, a scenario file) is a file of the
    example: it is written to ``NAME`` in the working directory, in page order, instead of being executed;
  - ``<!-- docs-test: skip REASON -->`` — not run, for the rare block that cannot run here; the reason is
    required.

* The command-line reference is the one :mod:`queuesim.clidocs` generates from the live ``queuesim`` command.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import subprocess
import sys
import textwrap
import time
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted([*DOCS.rglob("*.md"), ROOT / "README.md"])
CLI_PAGE = DOCS / "reference" / "cli.md"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<kind>[a-z-]+)(?:\s+(?P<arg>.*?))?\s*-->\s*$")
_KINDS = ("needs-redis", "file", "skip")


@dataclass
class Block:
    """One fenced block of a page."""

    page: Path
    line: int  # 1-based line of the opening fence
    end: int  # 1-based line of the closing fence
    language: str
    info: str
    code: str
    marker: str | None = None
    marker_arg: str | None = None
    expected_output: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def fenced_blocks(page: Path) -> list[Block]:
    """Every fenced block of a Markdown page (also inside lists, admonitions and tabs), in page order, with the
    marker comment on the line above it, and the output block that follows a Python block."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.group("indent"), m.group("fence"), m.group("info").strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        language = info.split()[0].lower() if info else ""
        block = Block(page, i + 1, j + 1, language, info, "\n".join(body) + "\n")
        k = i - 1
        if k >= 0 and (mk := _MARKER.match(lines[k])):
            block.marker, block.marker_arg = mk.group("kind"), mk.group("arg")
        blocks.append(block)
        i = j + 1
    # a text block titled "Output" right after a Python block is that block's expected output
    for prev, nxt in itertools.pairwise(blocks):
        adjacent = not any(line.strip() for line in lines[prev.end:nxt.line - 1])
        if adjacent and prev.language in ("python", "py") and nxt.language == "text" \
                and 'title="Output"' in nxt.info:
            prev.expected_output = nxt.code
    return blocks


def python_blocks(page: Path) -> list[Block]:
    """The blocks the page test handles: Python blocks, and blocks of any language marked as files."""
    return [b for b in fenced_blocks(page) if b.language in ("python", "py") or b.marker == "file"]


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


PAGES_WITH_CODE = [p for p in PAGES if python_blocks(p)]
#: executed / skipped blocks per page, filled by the page tests, checked by the last test
RESULTS: dict[str, dict[str, int]] = {}


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


# --- the markers are used as documented --------------------------------------------------------------------


def test_every_marker_is_known_and_a_skip_says_why() -> None:
    problems = []
    for page in PAGES:
        for block in fenced_blocks(page):
            if block.marker is None:
                continue
            if block.marker not in _KINDS:
                problems.append(f"{block.where}: unknown marker {block.marker!r}; allowed: {', '.join(_KINDS)}")
            elif block.marker in ("skip", "file") and not block.marker_arg:
                problems.append(f"{block.where}: '{block.marker}' needs an argument (a reason / a file name)")
            elif block.language not in ("python", "py") and block.marker != "file":
                problems.append(f"{block.where}: '{block.marker}' above a {block.language or 'plain'} block")
    assert not problems, "\n".join(problems)


def test_the_block_parser_finds_blocks_markers_and_outputs(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(textwrap.dedent("""\
        Text.

        ```python
        print("hi")
        ```

        ```text title="Output"
        hi
        ```

        !!! note
            <!-- docs-test: skip needs a printer -->
            ```python
            print_it()
            ```

        === "Tab"

            ```sh
            ls
            ```
        """))
    blocks = fenced_blocks(page)
    assert [(b.language, b.line) for b in blocks] == [("python", 3), ("text", 7), ("python", 13), ("sh", 19)]
    assert blocks[0].expected_output == "hi\n"
    assert (blocks[2].marker, blocks[2].marker_arg, blocks[2].code) == ("skip", "needs a printer", "print_it()\n")


# --- the examples run --------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_page_id)
def test_the_python_examples_of_the_page_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             request: pytest.FixtureRequest) -> None:
    blocks = python_blocks(page)
    have_redis = False
    if any(b.marker == "needs-redis" for b in blocks):
        try:  # the suite's real Redis; without one (and outside CI) only those blocks are left out
            monkeypatch.setenv("QUEUESIM_REDIS_URL", request.getfixturevalue("redis_url"))
            have_redis = True
        except pytest.skip.Exception:
            have_redis = False
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    # The page's namespace is a registered module, so that functions defined on the page can be pickled by
    # reference (a process pool running a simulation model defined in an example).
    module_name = "docs_example_" + re.sub(r"\W", "_", _page_id(page))
    module = types.ModuleType(module_name)
    module.__file__ = str(tmp_path / "example.py")
    monkeypatch.setitem(sys.modules, module_name, module)
    executed = skipped = no_redis = 0
    for block in blocks:
        if block.marker == "skip":
            skipped += 1
            continue
        if block.marker == "needs-redis" and not have_redis:
            no_redis += 1
            continue
        if block.marker == "file":
            assert block.marker_arg is not None
            (tmp_path / block.marker_arg).write_text(block.code, encoding="utf-8")
            executed += 1
            continue
        out = io.StringIO()
        started = time.monotonic()
        try:
            code = compile(block.code, f"{block.where}", "exec")
            with contextlib.redirect_stdout(out):
                exec(code, module.__dict__)
        except BaseException as exc:
            printed = out.getvalue()
            raise AssertionError(f"the example at {block.where} raised {type(exc).__name__}: {exc}\n"
                                 f"--- it printed ---\n{printed}") from exc
        took = time.monotonic() - started
        if block.expected_output is not None:
            printed, expected = _normalise(out.getvalue()), _normalise(block.expected_output)
            assert printed == expected, (f"the example at {block.where} printed something else than the Output "
                                         f"block below it:\n--- printed ---\n{printed}\n--- expected ---\n{expected}")
        assert took < 60, f"the example at {block.where} took {took:.1f} s; examples must stay quick"
        executed += 1
    RESULTS[_page_id(page)] = {"executed": executed, "skipped": skipped, "no_redis": no_redis}
    assert executed + skipped + no_redis == len(blocks)


def test_all_examples_were_counted_and_few_are_skipped() -> None:
    """Runs after the page tests (same module, defined later): every Python block was executed or explicitly
    skipped, and skips stay rare."""
    if len(RESULTS) < len(PAGES_WITH_CODE):
        pytest.skip("run the whole file to count the examples")
    total = sum(len(python_blocks(p)) for p in PAGES_WITH_CODE)
    executed = sum(r["executed"] for r in RESULTS.values())
    skipped = sum(r["skipped"] for r in RESULTS.values())
    no_redis = sum(r["no_redis"] for r in RESULTS.values())
    assert executed + skipped + no_redis == total
    assert skipped <= max(2, total // 20), f"{skipped} of {total} examples are skipped; run them instead"
    print(f"\n{executed} Python examples executed, {skipped} skipped by a marker, {no_redis} left out for want of "
          f"a real Redis, on {len(RESULTS)} pages")


# --- generated pages are current ---------------------------------------------------------------------------


def test_the_cli_reference_is_generated_from_the_live_command() -> None:
    from queuesim.clidocs import BEGIN, END, cli_reference

    page = CLI_PAGE.read_text(encoding="utf-8")
    generated = page[page.index(BEGIN):page.index(END) + len(END)] + "\n"
    assert generated == cli_reference(), "run: python -m queuesim.clidocs --write docs/reference/cli.md"


def test_the_cli_reference_documents_every_command_and_option() -> None:
    import typer

    from queuesim.cli import app
    from queuesim.clidocs import cli_reference

    text = cli_reference()
    root = typer.main.get_command(app)
    ctx = root.make_context("queuesim", [], resilient_parsing=True)

    def walk(command: object, context: object, path: str) -> None:
        assert f"`{path}`" in text, f"{path} is missing from the reference"
        for param in command.get_params(context):  # type: ignore[attr-defined]
            for opt in param.opts:
                if opt != "--help" and param.param_type_name == "option":
                    assert f"`{opt}`" in text, f"{path} {opt} is missing from the reference"
        if hasattr(command, "list_commands"):
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                if sub is not None and not sub.hidden:
                    walk(sub, sub.make_context(name, [], parent=context, resilient_parsing=True), f"{path} {name}")

    walk(root, ctx, "queuesim")


def test_the_scenario_schema_page_is_generated_from_the_schema() -> None:
    from queuesim.scenario.docs import BEGIN, END, schema_reference

    page = (DOCS / "reference" / "scenario-schema.md").read_text(encoding="utf-8")
    generated = page[page.index(BEGIN):page.index(END) + len(END)] + "\n"
    assert generated == schema_reference()


# --- the site builds -----------------------------------------------------------------------------------------


def test_every_page_is_in_the_navigation() -> None:
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    # mkdocs.yml names a Python function with a !!python/name tag; the navigation is all this test needs
    _Loader.add_multi_constructor("tag:yaml.org,2002:python/name:", lambda loader, suffix, node: suffix)
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)

    def entries(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [e for item in node for e in entries(item)]
        if isinstance(node, dict):
            return [e for value in node.values() for e in entries(value)]
        return []

    in_nav = set(entries(config["nav"]))
    on_disk = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert on_disk <= in_nav, f"pages missing from the nav of mkdocs.yml: {sorted(on_disk - in_nav)}"


@pytest.mark.slow
def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_COLOR": "1"})
    took = time.monotonic() - started
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stderr[-6000:]}"
    site = tmp_path / "site"
    pages = list(site.rglob("index.html"))
    # every page of the nav became a page of the site, the API reference included
    assert (site / "reference" / "api" / "queue" / "index.html").is_file()
    api = (site / "reference" / "api" / "queue" / "index.html").read_text(encoding="utf-8")
    assert "add_bulk" in api, "the Queue API page has no members"
    assert "get_job_counts" in api, "the Queue API page has no members"
    assert (site / "search" / "search_index.json").is_file()
    print(f"\nsite built in {took:.1f} s: {len(pages)} pages")
