# Dubhe Channel Lab. Quick start: `make run` and `make test`; both do all set-up they need.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml scripts/setup-system.sh 2>/dev/null | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: setup run test test-fast lint types imports scenarios nightly nightly-tests bench contracts images clean distclean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup-system.sh
	@bash scripts/setup-system.sh
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "== installing the project and its extras into $(VENV)"
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[fast,lab,test,dev,docker]'
	@rm -f $(VENV)/.installed-*
	@touch $@

## run: start the lab demo on the embedded default config (Ctrl-C stops it)
run: setup
	@$(BIN)/python -m lab.demo $(ARGS)

## test: all fast tests, the import-layer contracts, lint and types
test: setup
	@$(BIN)/lint-imports --no-cache
	@$(BIN)/ruff check node lab bench reports tests scenarios conftest.py
	@$(BIN)/mypy
	@$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests scenarios

test-fast: setup
	@$(BIN)/python -m pytest -q -x $(PYTEST_ARGS) tests

lint: setup
	@$(BIN)/ruff check node lab bench reports tests scenarios conftest.py

types: setup
	@$(BIN)/mypy

imports: setup
	@$(BIN)/lint-imports --no-cache

scenarios: setup
	@$(BIN)/python -m pytest -q scenarios

## nightly: the full nightly run (scenarios full profile, swarm, scheduler properties on the
## nightly Hypothesis profile, every benchmark) into reports/nightly/<id>/, then its HTML report
nightly: setup
	@$(BIN)/dubhe-lab nightly $(NIGHTLY_ARGS)

## nightly-tests: every test with the long profiles (slow and nightly tests, full scenarios)
nightly-tests: setup
	@HYPOTHESIS_PROFILE=nightly $(BIN)/python -m pytest -q -m 'slow or nightly or not slow' tests scenarios --scenario-profile full $(PYTEST_ARGS)

bench: setup
	@$(BIN)/dubhe-bench --help

## images: the container backend's images (base + lab), rebuilt only when their inputs change
images: setup
	@$(BIN)/dubhe-lab images $(ARGS)

## contracts: rebuild the RISC-V contract ELFs (needs gcc-riscv64-unknown-elf)
contracts:
	@$(MAKE) -C contracts

clean:
	rm -rf data reports/out .pytest_cache .mypy_cache .ruff_cache

distclean: clean
	rm -rf $(VENV)
