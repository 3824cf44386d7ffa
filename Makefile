# Dubhe Channel Lab. Quick start: `make run` and `make test`; both do all set-up they need.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml scripts/setup-system.sh scripts/sdk/*.txt 2>/dev/null | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
SHELL_NAME := $(or $(notdir $(shell echo $$SHELL)),bash)
# The checks, each defined once: make test runs them all, the single targets one each, and
# tox.ini's environments the same commands (tests/test_tooling.py compares them).
LINT_PATHS := node lab bench reports tests scenarios conftest.py

.PHONY: help setup shell run test test-fast lint types imports scenarios nightly nightly-tests mutation bench contracts images clean distclean

## help: list the targets (this text)
help:
	@awk '/^## [a-z-]+: / { t = $$2; sub(/:$$/, "", t); sub(/^## [a-z-]+: /, ""); \
	    printf "  make %-14s %s\n", t, $$0; next } \
	  /^## / { sub(/^## /, ""); printf "  %-19s %s\n", "", $$0 }' $(firstword $(MAKEFILE_LIST))
	@echo "  (the tools: source $(BIN)/activate, or make shell; docs/cli.md: their conventions)"

## setup: the .venv with the project and its extras, and the Debian packages (idempotent)
setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup-system.sh $(wildcard scripts/sdk/*.txt)
	@bash scripts/setup-system.sh
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "== installing the project and its extras into $(VENV)"
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[fast,lab,test,dev,docker]'
	@echo "== SDK venvs for the mock-L1 SDK tests (scripts/sdk/*.txt -> .venv/sdk/)"
	@$(BIN)/python scripts/sdk_venvs.py >/dev/null
	@rm -f $(VENV)/.installed-*
	@touch $@

## shell: a shell with .venv/bin on PATH (dubhe-node, dubhe-lab, dubhe-proxy, ...); exit leaves it
shell: setup
	@echo "== $(SHELL_NAME) with $(BIN) on PATH; 'exit' leaves it"
	@VIRTUAL_ENV="$(CURDIR)/$(VENV)" PATH="$(CURDIR)/$(BIN):$$PATH" $(SHELL_NAME) -i

## run: start the lab demo on the embedded default config (Ctrl-C stops it)
run: setup
	@$(BIN)/python -m lab.demo $(ARGS)

## test: the import-layer contracts, lint, types, then every fast test (tests and scenarios)
test: setup
	@echo "== 1/4 imports: lint-imports (the layer contracts in pyproject.toml)"
	@$(BIN)/lint-imports --no-cache
	@echo "== 2/4 lint: ruff check $(LINT_PATHS)"
	@$(BIN)/ruff check $(LINT_PATHS)
	@echo "== 3/4 types: mypy (strict)"
	@$(BIN)/mypy
	@echo "== 4/4 tests: pytest tests scenarios (not slow, not nightly)"
	@$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests scenarios

## test-fast: the unit tests only, stopping at the first failure
test-fast: setup
	@$(BIN)/python -m pytest -q -x $(PYTEST_ARGS) tests

## lint: ruff
lint: setup
	@$(BIN)/ruff check $(LINT_PATHS)

## types: mypy (strict)
types: setup
	@$(BIN)/mypy

## imports: the import-layer contracts (import-linter)
imports: setup
	@$(BIN)/lint-imports --no-cache

## scenarios: the production incidents reproduced in the lab (pytest scenarios)
scenarios: setup
	@$(BIN)/python -m pytest -q -p no:cacheprovider scenarios

## nightly: the full nightly run (scenarios full profile, swarm, scheduler properties on the
## nightly Hypothesis profile, every benchmark) into reports/nightly/<id>/, then its HTML report
nightly: setup
	@$(BIN)/dubhe-lab nightly $(NIGHTLY_ARGS)

## nightly-tests: every test with the long profiles (slow and nightly tests, full scenarios)
nightly-tests: setup
	@HYPOTHESIS_PROFILE=nightly $(BIN)/python -m pytest -q -m 'slow or nightly or not slow' tests scenarios --scenario-profile full $(PYTEST_ARGS)

## mutation: mutation testing (mutmut 3) of the core modules, one target at a time, into
## reports/mutation/<time>/<target>.json (slow: not part of make test; MUTATION_ARGS=--only NAME)
mutation: setup
	@$(BIN)/python -m lab.mutation $(MUTATION_ARGS)

## bench: list the benchmarks (dubhe-bench NAME runs one)
bench: setup
	@$(BIN)/dubhe-bench --help

## images: the container backend's images (base + lab), rebuilt only when their inputs change
images: setup
	@$(BIN)/dubhe-lab images $(ARGS)

## contracts: rebuild the RISC-V contract ELFs (needs gcc-riscv64-unknown-elf)
contracts:
	@$(MAKE) -C contracts

## clean: remove run output and caches (data, reports/out, tool caches, mutmut work dirs)
clean:
	rm -rf data reports/out .pytest_cache .mypy_cache .ruff_cache .mutation

## distclean: clean, and remove the .venv
distclean: clean
	rm -rf $(VENV)
