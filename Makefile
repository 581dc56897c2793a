# Two set-up commands: `make demo` runs the main job, `make test` runs the tests.
# Each creates .venv and installs the package (with its dev extra) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= demo-out

.PHONY: demo test install clean

$(STAMP): pyproject.toml roadtrack/io/_scan.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/roadtrack demo --out $(OUT)

# lint, types, layer contracts, then the tests (what CI runs: .ci/run)
test: $(STAMP)
	$(BIN)/ruff check roadtrack tests tools
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 tests

clean:
	rm -rf $(OUT) .pytest_cache
