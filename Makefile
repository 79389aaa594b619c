# Two entry points for a fresh machine (Python 3.11+): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m queuesim.demo
	$(BIN)/queuesim run scenarios/email-queue.toml --out out/demo
	@echo "Open out/demo/report.html in a browser (charts as PNG and SVG, tables as CSV, summary.json, next to it)."

test: $(STAMP)
	$(BIN)/ruff check queuesim tests bench
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check queuesim tests bench

bench: $(STAMP)
	$(BIN)/python bench/suite.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
