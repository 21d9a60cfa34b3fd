# Benchmarks (issue 7). `make bench` runs every scenario side by side (about 10 minutes on 2 cores) and writes
# bench/results/<date>.md, .png, .json and latest.md. `make test` only needs wrk, for the smoke test in tests/bench.
#   wrk, nginx   Debian packages (through the Makefile's apt_install)
#   bench venv   .tools/bench-venv from bench/requirements.lock (hashed): FastAPI, uvicorn, matplotlib, py-spy —
#                kept out of the project's .venv; flask-svc and bare Flask run on .venv, FastAPI on this one.
#   MLServer     .tools/mlserver-venv from bench/mlserver/requirements.lock (hashed): Seldon MLServer and
#                mlserver-sklearn, for bench.model (model serving side by side, about 1 minute more).

BENCH_VENV := $(TOOLS)/bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed
MLSERVER_VENV := $(TOOLS)/mlserver-venv
MLSERVER_STAMP := $(MLSERVER_VENV)/.installed
# Extra flags for bench.run, e.g. `make bench BENCH_ARGS="--workers 1 --rounds 3"`.
BENCH_ARGS ?=

SETUP += setup-bench

.PHONY: setup-bench setup-bench-full bench bench-batch bench-model bench-wordcount bench-render bench-lock bench-slow-clients liveness-soak

setup-bench: ## install wrk (the smoke test's load generator) when missing
	@command -v wrk >/dev/null 2>&1 || { $(call apt_install,wrk); }

# nginx's package starts the distribution's server (port 80) where no policy forbids it: stop that one at once,
# the bench runs its own on a free loopback port.
setup-bench-full: setup-bench $(BENCH_STAMP) $(MLSERVER_STAMP) ## everything `make bench` needs: wrk, nginx, the bench venvs
	@test -x /usr/sbin/nginx || { \
		$(call apt_install,nginx); \
		if test -s /run/nginx.pid && kill -0 "$$(cat /run/nginx.pid)" 2>/dev/null; then $(SUDO) /usr/sbin/nginx -s quit; fi; }

$(BENCH_STAMP): bench/requirements.lock | $(VENV)/.runtime
	rm -rf $(BENCH_VENV)
	$(BIN)/python -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r bench/requirements.lock
	touch $@

$(MLSERVER_STAMP): bench/mlserver/requirements.lock | $(VENV)/.runtime
	rm -rf $(MLSERVER_VENV)
	$(BIN)/python -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r bench/mlserver/requirements.lock
	touch $@

bench: venv-dev setup-bench-full ## run every benchmark (~10 min) → bench/results/<date>.md, .png, latest.md, model-<date>.md
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.model

bench-model: venv-dev setup-bench $(MLSERVER_STAMP) ## model serving: flask-svc beside MLServer, same skops file (~1 min)
	$(BIN)/python -m bench.model

bench-wordcount: venv ## word-count MB/s of the service's pipeline beside `wc -w` (issue 2)
	$(BIN)/python -m bench.wordcount

# `make bench-batch BATCH_ARGS="--peaks 1024"`: instead, 1 GiB through the local runner and each process's peak memory.
bench-batch: venv-dev ## batch jobs (upload → succeeded, stage starts included) beside POST /api/v1/wordcount
	$(BIN)/python -m bench.batch $(BATCH_ARGS)

bench-slow-clients: venv-dev $(BENCH_STAMP) ## idle and slow-header clients: flask-svc, stock gthread and uvicorn (~2 min)
	$(BIN)/python -m bench.slowclients

liveness-soak: venv-dev ## issue 11's full 90 s saturation: /livez must answer within the probe timeout throughout
	FLASK_SVC_TEST_SATURATION_SECONDS=90 $(BIN)/python -m pytest -q -s tests/integration/test_connections.py -k every_thread_is_busy

bench-render: venv-dev $(BENCH_STAMP) ## re-render bench/results/<date>.md, .png and latest.md from BENCH_JSON
	$(BIN)/python -m bench.run --render $(BENCH_JSON)

bench-lock: ## re-resolve bench/requirements.lock with hashes (needs uv)
	uv pip compile bench/requirements.in --generate-hashes --universal --python-version 3.11 -o bench/requirements.lock -q
	uv pip compile bench/mlserver/requirements.in --generate-hashes --universal --python-version 3.11 -o bench/mlserver/requirements.lock -q
