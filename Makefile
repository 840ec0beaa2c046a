# One-machine entry points. `make demo` and `make test` create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install install-dev demo test lint unit bench bench-quick bench-pipeline clean

# The demo needs only the runtime dependencies; the test tools (mypy, moto, Playwright, ...) come with `make test`.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 13), "Python 3.11 or 3.12 is required (pyqlib has no wheels for newer ones)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e .
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

install-dev: $(BIN)/.installed-dev

demo: install
	$(BIN)/qmp demo

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/mkdocs build --strict --quiet

# Two workers; the tests sharing a costly session fixture (trained models, a Prefect server) stay on one
# (tests/conftest.py assigns the groups). Then, alone, the tests that restart the shared PostgreSQL server.
TEST_WORKERS ?= 2

test: lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not serial"
	$(BIN)/pytest -q -m serial

unit: install-dev
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not slow and not e2e"

bench: install
	$(BIN)/python benchmarks/registry_vs_mlflow.py

bench-quick: install
	$(BIN)/python benchmarks/registry_vs_mlflow.py --quick

bench-pipeline: install
	$(BIN)/python benchmarks/pipeline_vs_qlib.py --repeats 3

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
