# Protocol clients that cannot share the project's virtualenv (issue 21). KServe's Python client pins psutil<6 and
# pulls in gRPC, protobuf, pandas and FastAPI, so it gets .tools/kserve-venv from its own hashed lock;
# tests/integration/test_kserve_client.py drives the real server with it. The stamp carries the lock's hash: a
# changed lock rebuilds the venv, an unchanged one costs nothing (a first build takes about 40 s).

KSERVE_LOCK := tests/clients/kserve/requirements.lock
KSERVE_VENV := $(TOOLS)/kserve-venv
KSERVE_STAMP := $(KSERVE_VENV)/.installed-$(shell sha256sum $(KSERVE_LOCK) 2>/dev/null | cut -c1-16)

SETUP += setup-clients

.PHONY: setup-clients clients-lock

setup-clients: $(KSERVE_STAMP) ## KServe's Python client in .tools/kserve-venv (for the real-client tests)

$(KSERVE_STAMP): | $(VENV)/.runtime
	rm -rf $(KSERVE_VENV)
	$(BIN)/python -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $(KSERVE_LOCK)
	touch $@

clients-lock: ## re-resolve tests/clients/kserve/requirements.lock with hashes (needs uv)
	uv pip compile tests/clients/kserve/requirements.in --generate-hashes --universal --python-version 3.11 -o $(KSERVE_LOCK) -q
