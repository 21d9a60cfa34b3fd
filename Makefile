# flask-svc — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
export PATH := $(CURDIR)/$(TOOLS)/bin:$(PATH)

# Per-area fragments add their own setup steps to SETUP and their own targets.
SETUP :=
include $(sort $(wildcard mk/*.mk))

.PHONY: help run test lint typecheck pytest setup venv venv-dev clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# The runtime virtualenv, built from the hashed lock; rebuilt when the lock changes.
$(VENV)/.runtime: requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	touch $@

$(VENV)/.dev: requirements-dev.lock $(VENV)/.runtime
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock
	touch $@

venv: $(VENV)/.runtime
venv-dev: $(VENV)/.dev

run: venv ## serve on http://127.0.0.1:8080 (metrics on 127.0.0.1:9797)
	HOST=$${HOST:-127.0.0.1} LOG_FORMAT=$${LOG_FORMAT:-console} $(BIN)/python -m service

setup: venv-dev $(SETUP) ## install everything the test suite needs

lint: venv-dev ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv-dev ## mypy (strict) on service/
	$(BIN)/mypy

PYTEST_ARGS ?= -m "not e2e"
pytest: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: setup lint typecheck pytest ## set up and run the whole suite (ruff, mypy, pytest)

lock: ## re-resolve both locks with hashes (needs uv)
	uv pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 -o requirements.lock -q
	uv pip compile pyproject.toml --extra dev --generate-hashes --universal --python-version 3.11 -o requirements-dev.lock -q

clean: ## remove the virtualenv, tools and caches
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .hypothesis
