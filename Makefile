# `make test` is the one command that does everything on a fresh machine:
# create .venv, install the pinned dependencies, lint, type-check, run the whole suite.

PYTHON ?= python3
# The Python this project runs on (pyproject's requires-python); `make` checks it first.
PYTHON_VERSION := 3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP_VERSION := 26.3
# Touched after a successful install; re-installs only when these inputs change.
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.DEFAULT_GOAL := test
.PHONY: help venv install lock lint format typecheck test unit integration run bench faults clean \
	distclean python-check

help: ## this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z -]*:.*## / {printf "  make %-12s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)
	@echo "  (PYTHON=python3.11 picks the interpreter; ARGS=... passes options to make bench and make faults)"

venv install: $(STAMP) ## create .venv and install the pinned dependencies

# The interpreter must be Python $(PYTHON_VERSION); a .venv made by another Python (or one
# left half-made) is removed and made again, so switching interpreters needs no distclean.
python-check:
	@$(PYTHON) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; sys.exit(0 if v == "$(PYTHON_VERSION)" else "$(PYTHON) is Python " + v + "; this project needs $(PYTHON_VERSION): install it and run make PYTHON=python$(PYTHON_VERSION)")'
	@if [ -e $(VENV) ] && ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(PYTHON_VERSION)".split("."))))' 2>/dev/null; then \
		echo "$(VENV) was made by another Python (or is broken): making it again"; \
		rm -rf $(VENV); \
	fi

# A .venv that is missing, broken or another Python's is (re)made even if its stamp is new.
ifneq ($(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null),$(PYTHON_VERSION))
.PHONY: $(STAMP)
endif

$(STAMP): pyproject.toml requirements.lock | python-check
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

# Re-resolve the dependencies of pyproject.toml in a scratch venv and pin them all.
lock: ## re-resolve and pin every dependency (bumps them all)
	rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(VENV)-lock/bin/python -m pip install --quiet -e '.[dev,bench]'
	{ sed -n '/^#/p' requirements.lock; \
	  $(VENV)-lock/bin/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf $(VENV)-lock

lint: $(STAMP) ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## fix what ruff can
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy --strict on every module of services/ and shared/
	$(BIN)/mypy services shared

test: $(STAMP) lint typecheck ## everything: install, lint, type-check, the whole suite
	$(BIN)/python -m pytest

unit: $(STAMP) ## the unit tests only
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP) ## the integration tests only
	$(BIN)/python -m pytest tests/integration

# The whole stack (dispute service, deadline worker, gateway on 127.0.0.1:8000) until Ctrl-C.
run: $(STAMP) ## the whole stack on 127.0.0.1:8000 until Ctrl-C
	$(BIN)/python -m services.run

# The benchmark suite against this machine's limits, on PostgreSQL (DATABASE_URL, default
# the local test database): prints a Markdown table and writes bench/results/. About 8 min
# (the Merkle log at 1,000,000 events adds about 3.5); `make bench ARGS=--quick` about 3.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev,bench]'
	touch $@

bench: $(BENCH_STAMP) ## the benchmark suite (about 9 min with the Merkle log at 1,000,000 events; ARGS=--quick about 3)
	$(BIN)/python -m bench $(ARGS)

# Fault injection on a private PostgreSQL cluster (initdb/pg_ctl as the postgres user).
faults: $(STAMP) ## kill processes, restart PostgreSQL under load; print what clients saw (90 s)
	$(BIN)/python -m tests.faults $(ARGS)

clean: ## remove caches
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean ## remove caches and .venv
	rm -rf $(VENV) $(VENV)-lock
