# Quick start: `make run` (set up .venv, start every actor on the embedded defaults)
#              `make test` (same set-up, then ruff, mypy and the whole test suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LINT_DIRS := $(wildcard gateway tests bench)

.PHONY: run test lint typecheck venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/xdsi-gateway serve $(if $(CONFIG),--config $(CONFIG))

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)

typecheck: $(STAMP)
	$(BIN)/mypy

# Tests marked `slow` (gigabyte transfers, the HAProxy scale-out run, the 50-study first paint, the
# forwarding outage: about four minutes together) run in CI (CI=true) or with SLOW=1.
SLOW_FILTER := $(if $(or $(filter true 1,$(CI)),$(SLOW)),,-m "not slow")

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest $(SLOW_FILTER) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
