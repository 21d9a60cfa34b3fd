# Protocol clients that cannot share the project's virtualenv (issue 21). KServe's Python client pins psutil<6 and
# pulls in gRPC, protobuf, pandas and FastAPI, so it gets .tools/kserve-venv from its own hashed lock;
# tests/integration/test_kserve_client.py drives the real server with it. The stamp carries the lock's hash: a
# changed lock rebuilds the venv, an unchanged one costs nothing (a first build takes about 40 s). It is built once per
# machine into the tool cache (mk/toolcache.sh) and linked from there.

KSERVE_LOCK := tests/clients/kserve/requirements.lock
KSERVE_VENV := $(TOOLS)/kserve-venv
KSERVE_STAMP := $(KSERVE_VENV)/.installed-$(shell sha256sum $(KSERVE_LOCK) 2>/dev/null | cut -c1-16)

SETUP += setup-clients

.PHONY: setup-clients clients-lock

setup-clients: $(KSERVE_STAMP) ## KServe's Python client in .tools/kserve-venv (for the real-client tests)

$(KSERVE_STAMP): | $(VENV)/.runtime
	$(TOOLCACHE) $(KSERVE_VENV) 'kserve $(call file_sha256,$(KSERVE_LOCK)) $(TOOL_KEY_PYTHON) $(if $(UV),uv --compile-bytecode,pip)' sh -ec '\
	  $(PYTHON) -m venv "$$TOOL_DIR"; \
	  $(call install_lock,"$$TOOL_DIR/bin/python",$(KSERVE_LOCK)); \
	  touch "$$TOOL_DIR/$(notdir $(KSERVE_STAMP))"'

clients-lock: ## re-resolve tests/clients/kserve/requirements.lock with hashes (needs uv)
	uv pip compile tests/clients/kserve/requirements.in --generate-hashes --universal --python-version 3.11 -o $(KSERVE_LOCK) -q
