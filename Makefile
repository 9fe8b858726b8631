# `make test` is the one command that does everything on a fresh machine:
# create .venv, install the pinned dependencies, lint, type-check, run the whole suite.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_VERSION := 26.3
# Touched after a successful install; re-installs only when these inputs change.
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.DEFAULT_GOAL := test
.PHONY: venv install lock lint format typecheck test unit integration run bench clean distclean

venv install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

# Re-resolve the dependencies of pyproject.toml in a scratch venv and pin them all.
lock:
	rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(VENV)-lock/bin/python -m pip install --quiet -e '.[dev,bench]'
	{ sed -n '/^#/p' requirements.lock; \
	  $(VENV)-lock/bin/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf $(VENV)-lock

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)
	$(BIN)/mypy services/dispute/domain services/dispute/application.py shared

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

# The whole stack (dispute service, deadline worker, gateway on 127.0.0.1:8000) until Ctrl-C.
run: $(STAMP)
	$(BIN)/python -m services.run

# The benchmark suite against this machine's limits, on PostgreSQL (DATABASE_URL, default
# the local test database): prints a Markdown table and writes bench/results/. About 4.5 min;
# `make bench ARGS=--quick` takes under 2.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev,bench]'
	touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(VENV)-lock
