# flask-svc — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
export PATH := $(CURDIR)/$(TOOLS)/bin:$(PATH)

# apt for the setup steps, shared by every fragment: as root or through sudo, installing only the packages that are
# missing, and refreshing the package lists only when an install cannot find what it needs.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3
apt_install = missing=""; \
	for p in $(1); do dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "setup: installing$$missing"; \
		$(APT_GET) install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 \
		|| { $(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends $$missing >/dev/null; }; \
	fi

# The tools under .tools live in a machine-wide cache keyed by what they are made from (mk/toolcache.sh): a clean
# clone links them. TOOL_KEY_PYTHON names the interpreter a tool's virtualenv is made with (a part of its key).
TOOLCACHE := mk/toolcache.sh
TOOL_KEY_PYTHON = $(shell $(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable), sys.version.split()[0])' 2>/dev/null)
file_sha256 = $(shell sha256sum $(1) 2>/dev/null | cut -c1-64)

# Per-area fragments add their own setup steps to SETUP and their own targets.
SETUP :=
include $(sort $(wildcard mk/*.mk))

.PHONY: help run test lint typecheck pytest setup venv venv-dev clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# Installs a hashed lock into a virtualenv: `$(call install_lock,<venv's python>,<lock>)`. With uv on PATH it installs
# (uv checks every hash and keeps a machine-wide cache of what it unpacked: a warm clean clone's dev venv takes
# seconds instead of minutes of pip); without it, pip. The same pins and hashes either way. UV= forces pip.
# --compile-bytecode, as pip does: without .pyc files every gunicorn the tests start compiles scikit-learn and scipy
# again (the servers write none), and a model server missed its 20 s readiness wait.
UV ?= $(shell command -v uv 2>/dev/null)
install_lock = $(if $(UV),$(UV) pip install --quiet --compile-bytecode --python $(1),$(1) -m pip install --quiet --disable-pip-version-check) \
	--require-hashes --no-deps -r $(2)

# The runtime virtualenv, built from the hashed lock; rebuilt when the lock changes. A half-made one (venv failed,
# e.g. no ensurepip) is removed, so the next run starts over instead of finding python without pip.
$(VENV)/.runtime: requirements.lock
	test -x $(BIN)/pip || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); } || { rm -rf $(VENV); \
		echo "make: '$(PYTHON) -m venv' failed: install your Python's venv module (Debian: apt-get install python3-venv)" >&2; exit 1; }
	$(call install_lock,$(BIN)/python,requirements.lock)
	touch $@

$(VENV)/.dev: requirements-dev.lock $(VENV)/.runtime
	$(call install_lock,$(BIN)/python,requirements-dev.lock)
	touch $@

venv: $(VENV)/.runtime
venv-dev: $(VENV)/.dev

run: venv ## serve on http://127.0.0.1:8080 (metrics on 127.0.0.1:9797)
	HOST=$${HOST:-127.0.0.1} LOG_FORMAT=$${LOG_FORMAT:-console} $(BIN)/python -m service

setup: venv-dev $(SETUP) ## install everything the test suite needs

lint: venv-dev ## ruff lint and format check, and the import contracts (pyproject.toml [tool.importlinter])
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# mypy's cache is shared by the machine's clones (mk/toolcache.sh --dir), keyed by the dev lock: a clean clone checks
# only what differs (a cold strict run is ~15 CPU-seconds, minutes of wall time on a loaded disk).
typecheck: venv-dev ## mypy (strict) on service/ and image/
	$(BIN)/mypy --cache-dir "$$($(TOOLCACHE) --dir mypy '$(call file_sha256,requirements-dev.lock) $(TOOL_KEY_PYTHON)')"

# --durations: the slowest tests named at the end of every run, so that a slow one is seen where it is added.
PYTEST_ARGS ?= -m "not e2e" --durations=30
pytest: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: setup lint typecheck pytest ## set up and run the whole suite (ruff, mypy, pytest)

lock: ## re-resolve the locks with hashes (needs uv)
	uv pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 -o requirements.lock -q
	uv pip compile pyproject.toml --extra ml --generate-hashes --universal --python-version 3.11 -o requirements-ml.lock -q
	uv pip compile pyproject.toml --extra dev --extra ml --generate-hashes --universal --python-version 3.11 -o requirements-dev.lock -q

clean: ## remove the virtualenv, tools and caches
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .hypothesis
