# Observability: promtool + prometheus for the rules tests and the real-Prometheus integration test.
# Debian's `prometheus` package ships both binaries. Its postinst would start a system Prometheus on :9090;
# the tests never use it (they start their own on a free loopback port), so we keep it from starting by
# installing a temporary policy-rc.d (exit 101 = "action forbidden") when the machine has none.

.PHONY: setup-observability test-observability

SETUP += setup-observability

setup-observability: ## install promtool and prometheus (Debian package) when missing
	@if command -v promtool >/dev/null && command -v prometheus >/dev/null; then exit 0; fi; \
	set -e; \
	own_policy=; \
	if [ ! -e /usr/sbin/policy-rc.d ]; then \
		printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
		$(SUDO) chmod 755 /usr/sbin/policy-rc.d; own_policy=1; \
	fi; \
	trap '[ -z "$$own_policy" ] || $(SUDO) rm -f /usr/sbin/policy-rc.d' EXIT; \
	$(call apt_install,prometheus); \
	command -v promtool >/dev/null && command -v prometheus >/dev/null

test-observability: setup-observability venv-dev ## rules tests + real-Prometheus test only
	$(BIN)/python -m pytest tests/observability $(PYTEST_ARGS)
