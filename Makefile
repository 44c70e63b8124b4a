# make test   — builds .venv, installs the package with its dev extras, starts what the tests use,
#               runs ruff, mypy --strict and pytest.
# make demo   — runs the example agent-runtime session on the embedded default (file:./mastra.db).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install test demo lint services services-stop bench bench-mastra

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

services: install
	scripts/services.sh start

services-stop:
	scripts/services.sh stop

lint: install
	$(PY) -m ruff check mastra_storage tests benchmarks examples
	$(PY) -m ruff format --check mastra_storage tests benchmarks examples
	$(PY) -m mypy

test: lint services
	$(PY) -m pytest

demo: install
	$(PY) -m mastra_storage.demo

bench: services
	$(PY) -m benchmarks.libsql_bench
	$(PY) -m benchmarks.pg_bench
	$(PY) -m benchmarks.clickhouse_bench
	$(PY) -m benchmarks.dynamodb_bench

# The same workload run by Mastra's TypeScript stores (npm, pinned) and by this package, same databases.
bench-mastra: services
	$(PY) -m benchmarks.vs_mastra.run --markdown benchmarks/vs_mastra/results.md --chart benchmarks/vs_mastra/ratios.png
