# Two commands for a fresh clone: `make run` and `make test`. Everything they need is
# installed inside the project (.venv, node_modules, .toolchain); nothing global.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# schemathesis needs a newer Hypothesis than brownie pins: the API fuzzer has its own venv
FUZZ_VENV := .venv-fuzz
TOOLBIN := $(CURDIR)/.toolchain/bin
export PATH := $(TOOLBIN):$(CURDIR)/$(BIN):$(PATH)
export SOLCX_BINARY_PATH := $(CURDIR)/.toolchain/solcx
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run test test-python test-contracts fuzz compile lint bench demo clean

setup: $(VENV)/.installed node_modules/.installed .toolchain/.installed

$(VENV)/.installed: pyproject.toml
	@echo "==> Python venv ($(PYTHON))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	@touch $@

$(FUZZ_VENV)/.installed: pyproject.toml
	@echo "==> API fuzzer venv"
	@test -x $(FUZZ_VENV)/bin/python || $(PYTHON) -m venv $(FUZZ_VENV)
	@$(FUZZ_VENV)/bin/python -m pip install --quiet --upgrade pip
	@$(FUZZ_VENV)/bin/python -m pip install --progress-bar on -e '.[fuzz]'
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> npm packages (solc, OpenZeppelin, anvil)"
	@npm install --no-save --no-audit --no-fund --loglevel=error
	@touch $@

.toolchain/.installed: $(VENV)/.installed node_modules/.installed brownie-config.yaml toolchain/solc.cjs
	@$(BIN)/python -m ledger.eth.toolchain install
	@touch $@

compile: setup
	@mkdir -p build/brownie  # brownie creates only the last level of its build folder
	@$(BIN)/brownie compile

run: setup
	@$(BIN)/cofab up

# Two workers; each deploys the contracts once and rewinds its chain for every test
# (tests/conftest.py). worksteal hands queued tests to a worker that runs dry, so the few
# long end-to-end tests do not leave one worker idle at the end.
PYTEST_WORKERS := -n 2 --dist worksteal

test: setup
	@$(BIN)/ruff check .
	@$(BIN)/python -m pytest $(PYTEST_WORKERS)
	@$(MAKE) --no-print-directory test-contracts
	@$(MAKE) --no-print-directory fuzz

test-python: setup
	@$(BIN)/python -m pytest $(PYTEST_WORKERS)

# tests/brownie/pytest.ini keeps brownie's pytest plugin on there (pyproject.toml turns it
# off for the plain suite); tests/brownie/conftest.py binds anvil to 127.0.0.1 on this port.
test-contracts: setup
	@mkdir -p build/brownie
	@COFAB_BROWNIE_PORT=$$($(BIN)/python -m ledger.eth.toolchain free-port) $(BIN)/brownie test

# Every operation of the OpenAPI schema, anonymous and signed in: no 5xx. Bounded by
# COFAB_FUZZ_EXAMPLES inputs per operation (default 20).
fuzz: setup $(FUZZ_VENV)/.installed
	@$(FUZZ_VENV)/bin/python -m pytest tests/fuzz -p no:cacheprovider -o addopts="" -q -W ignore

lint: setup
	@$(BIN)/ruff check .

bench: setup
	@for b in designs settlement steps audit signin; do echo "==> bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done

clean:
	rm -rf build reports .toolchain .pytest_cache .ruff_cache .hypothesis $(FUZZ_VENV)
