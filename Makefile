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
# The suite starts many Python processes (nodes, commands, workers): with bytecode caches
# each one loads the project's compiled modules instead of compiling them again (~0.6 s).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup run test test-python test-contracts beside-pytest fuzz compile lint bench demo clean portal portal-size chromium

setup: $(VENV)/.installed node_modules/.installed .toolchain/.installed build/portal/index.html

# pip installs uv (from PyPI) into the venv, and uv the rest: the same packages pip would
# choose, downloaded and unpacked in parallel (seconds instead of a minute or two). Its
# download cache is inside the project too (build/, which `make clean` removes), so a home
# directory that is missing or read-only does not matter.
UV := $(BIN)/uv pip install --quiet --compile-bytecode
export UV_CACHE_DIR ?= $(CURDIR)/build/uv-cache

$(VENV)/.installed: pyproject.toml
	@echo "==> Python venv ($(PYTHON))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet uv
	@$(UV) --python $(BIN)/python -e '.[dev]'
	@touch $@

$(FUZZ_VENV)/.installed: pyproject.toml $(VENV)/.installed
	@echo "==> API fuzzer venv"
	@test -x $(FUZZ_VENV)/bin/python || $(PYTHON) -m venv --without-pip $(FUZZ_VENV)
	@$(UV) --python $(FUZZ_VENV)/bin/python -e '.[fuzz]'
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> npm packages (solc, OpenZeppelin, anvil, the portal's Preact, ethers, esbuild)"
	@npm install --no-save --no-audit --no-fund --loglevel=error
	@touch $@

.toolchain/.installed: $(VENV)/.installed node_modules/.installed brownie-config.yaml toolchain/solc.cjs
	@$(BIN)/python -m ledger.eth.toolchain install
	@touch $@

# The portal (portal/, TypeScript) built by esbuild into build/portal, which the node
# serves at /. Rebuilt only when a source file or the npm packages changed.
PORTAL_SOURCES := $(shell find portal -type f 2>/dev/null)
build/portal/index.html: $(PORTAL_SOURCES) node_modules/.installed
	@echo "==> portal"
	@node portal/build.mjs

portal: build/portal/index.html

# The portal's JavaScript, raw and gzip-compressed (budget: 400 KB compressed).
portal-size: build/portal/index.html
	@node portal/size.mjs

# The browser tests drive Debian's Chromium (Playwright's own browser download needs a
# network the project does not assume), with a CJK font for the Chinese pages' screenshots.
# Installed here when missing and we are root; otherwise we say what to run.
chromium:
	@if [ -x /usr/bin/chromium ] && [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then echo "==> Chromium and a CJK font (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei; \
	else echo "Chromium is missing: run 'sudo apt-get install -y chromium fonts-wqy-microhei' (the browser tests skip without it)"; fi

compile: setup
	@mkdir -p build/brownie  # brownie creates only the last level of its build folder
	@$(BIN)/brownie compile

run: setup
	@$(BIN)/cofab up

# Four workers on two cores: many tests wait on a node process, a devnet or a browser
# (two workers kept the cores about 60 % busy). Each worker deploys the contracts once and
# rewinds its chain for every test (tests/conftest.py); worksteal hands queued tests to a
# worker that runs dry, so the long end-to-end tests do not leave one idle at the end.
# The slowest tests are listed at the end of the run.
PYTEST_WORKERS := -n 4 --dist worksteal --durations=25

# Lint, the contract suite and the API fuzz run beside pytest (its workers leave the cores
# idle while they wait); their output is printed after pytest's. Any part failing fails it.
test: setup chromium $(FUZZ_VENV)/.installed
	@mkdir -p build/test-logs
	@$(MAKE) --no-print-directory beside-pytest >build/test-logs/side.log 2>&1 & side=$$!; \
	$(BIN)/python -m pytest $(PYTEST_WORKERS); pytest_status=$$?; \
	wait $$side; side_status=$$?; cat build/test-logs/side.log; \
	test $$pytest_status = 0 && test $$side_status = 0

# Lint, the contract suite and the API fuzzer share nothing (each its own chain and ports)
# and mostly keep one core busy each: they run side by side, each into its own log under
# build/test-logs, printed in turn when all are done; any failing fails the target.
beside-pytest: setup $(FUZZ_VENV)/.installed
	@mkdir -p build/test-logs
	@$(MAKE) --no-print-directory lint >build/test-logs/lint.log 2>&1 & lint=$$!; \
	$(MAKE) --no-print-directory test-contracts >build/test-logs/contracts.log 2>&1 & contracts=$$!; \
	$(MAKE) --no-print-directory fuzz >build/test-logs/fuzz.log 2>&1 & fuzz=$$!; \
	wait $$lint; lint_status=$$?; wait $$contracts; contracts_status=$$?; \
	wait $$fuzz; fuzz_status=$$?; \
	echo "==> lint (ruff, mypy, tsc): exit $$lint_status"; cat build/test-logs/lint.log; \
	echo "==> contract tests (brownie): exit $$contracts_status"; cat build/test-logs/contracts.log; \
	echo "==> API fuzz: exit $$fuzz_status"; cat build/test-logs/fuzz.log; \
	test $$lint_status = 0 && test $$contracts_status = 0 && test $$fuzz_status = 0

test-python: setup chromium
	@$(BIN)/python -m pytest $(PYTEST_WORKERS)

# tests/brownie/pytest.ini keeps brownie's pytest plugin on there (pyproject.toml turns it
# off for the plain suite); tests/brownie/conftest.py binds anvil to 127.0.0.1 on this port.
test-contracts: setup
	@mkdir -p build/brownie
	@COFAB_BROWNIE_PORT=$$($(BIN)/python -m ledger.eth.toolchain free-port) $(BIN)/brownie test

# Every operation of the OpenAPI schema, anonymous and signed in: no 5xx. Each operation
# gets schemathesis's boundary cases (missing, empty, out-of-range and wrong-type values
# of each parameter: about 3,200 cases in all) and COFAB_FUZZ_EXAMPLES random inputs
# (default 6, which keeps `make test` within its time; `COFAB_FUZZ_EXAMPLES=100 make
# fuzz` searches deeper).
fuzz: setup $(FUZZ_VENV)/.installed
	@$(FUZZ_VENV)/bin/python -m pytest tests/fuzz -p no:cacheprovider -o addopts="" -q -W ignore

# ruff, mypy (strict on ledger/ and api/: [tool.mypy] in pyproject.toml), the portal's tsc
lint: setup
	@$(BIN)/ruff check .
	@$(BIN)/mypy ledger api
	@node_modules/.bin/tsc -p portal/tsconfig.json

# The benches measure the Ethereum Attestation Service's published bytecode on the same
# chain. Only its tarball is unpacked (its npm dependencies are a whole Hardhat).
EAS_VERSION := 1.9.0
build/eas/package/package.json:
	@mkdir -p build/eas
	@cd build/eas && npm pack --silent @ethereum-attestation-service/eas-contracts@$(EAS_VERSION) >/dev/null \
		&& tar -xzf ethereum-attestation-service-eas-contracts-$(EAS_VERSION).tgz && rm -f *.tgz

bench: setup build/eas/package/package.json
	@for b in designs settlement steps journal ingest audit signin chain_calls epcis portal; do echo "==> bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done
	@echo "==> bench/audit.py --steps 1000000"; $(BIN)/python bench/audit.py --steps 1000000

clean:
	rm -rf build reports .toolchain .pytest_cache .ruff_cache .hypothesis $(FUZZ_VENV)
