# Dev loop on kind (issue 6): kind-up → dev → port-forward → kind-down. See docs/cluster.md, "Run it on kind".
# These targets drive kind, kubectl, helm and skaffold on a developer's machine; `make test` needs none of them.

KIND ?= kind
KUBECTL ?= kubectl
HELM ?= helm
SKAFFOLD ?= skaffold
KIND_CLUSTER ?= flask-svc
KUBE_CONTEXT ?= kind-$(KIND_CLUSTER)
NAMESPACE ?= flask-svc
# `make kind-install`: the image built here and loaded into kind, installed with plain helm (no registry, no skaffold).
RELEASE ?= flask-svc
LOCAL_IMAGE_REPOSITORY ?= flask-svc
LOCAL_IMAGE_TAG ?= local
# Comma-separated skaffold profiles, e.g. `make dev PROFILES=observability`.
PROFILES ?=
SKAFFOLD_FLAGS = --kube-context $(KUBE_CONTEXT) $(if $(PROFILES),--profile $(PROFILES))
SKAFFOLD_BUILD := $(TOOLS)/skaffold-build.json

# Versions the dev loop is written against (the e2e workflow pins the same ones). Prefixed: chart.mk has its own
# HELM_VERSION for the helm it installs into .tools for the chart tests.
DEVLOOP_KIND_VERSION := v0.33.0
DEVLOOP_SKAFFOLD_VERSION := v2.24.0
DEVLOOP_HELM_VERSION := v3.20.2
METRICS_SERVER_CHART_VERSION := 3.13.0
MONITORING_NAMESPACE ?= monitoring

# The devloop tests validate against the schemas in ../shared/schemas; .ci/run and CI set the variable.
export FLASK_SVC_SCHEMA_DIR ?= $(abspath $(CURDIR)/../shared/schemas)

DEVLOOP_CHECKOV_VERSION := 3.3.30

SETUP += setup-devloop

.PHONY: setup-devloop devloop-tools kind-up metrics-server kind-install dev deploy skaffold-verify port-forward \
	port-forward-observability kind-down test-e2e

# The devloop tests need checkov (workflows) and helm (rendering the chart with k8s/values-*.yaml); setup-chart
# installs both into .tools. The checkov step only fills in should the chart's fragment ever stop providing it.
setup-devloop: $(filter setup-chart,$(SETUP))
	@if ! ls $(TOOLS)/checkov-venv/.installed-$(DEVLOOP_CHECKOV_VERSION) >/dev/null 2>&1 \
		&& ! ls $(TOOLS)/checkov-venv/.devloop-$(DEVLOOP_CHECKOV_VERSION) >/dev/null 2>&1; then \
		echo "setup-devloop: installing checkov $(DEVLOOP_CHECKOV_VERSION) into $(TOOLS)/checkov-venv"; \
		rm -rf $(TOOLS)/checkov-venv && $(PYTHON) -m venv $(TOOLS)/checkov-venv && \
		$(TOOLS)/checkov-venv/bin/pip install --quiet --disable-pip-version-check \
			$(if $(wildcard mk/chart/checkov-constraints.txt),-c mk/chart/checkov-constraints.txt) \
			checkov==$(DEVLOOP_CHECKOV_VERSION) && \
		touch $(TOOLS)/checkov-venv/.devloop-$(DEVLOOP_CHECKOV_VERSION); \
	fi

devloop-tools: ## check that kind, kubectl, helm and skaffold are installed
	@missing=; for tool in $(KIND) $(KUBECTL) $(HELM) $(SKAFFOLD) docker; do \
		command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "missing:$$missing"; \
		echo "install kind $(DEVLOOP_KIND_VERSION), skaffold $(DEVLOOP_SKAFFOLD_VERSION), helm $(DEVLOOP_HELM_VERSION), kubectl and docker;"; \
		echo "see 'Run it on kind' in docs/cluster.md"; exit 1; fi

kind-up: devloop-tools ## create the kind cluster (k8s/kind-config.yaml) and install metrics-server
	@if $(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
		echo "kind cluster $(KIND_CLUSTER) already exists"; \
	else \
		$(KIND) create cluster --name $(KIND_CLUSTER) --config k8s/kind-config.yaml --wait 120s; \
	fi
	$(MAKE) --no-print-directory metrics-server

metrics-server: ## install metrics-server (pinned chart, --kubelet-insecure-tls for kind) so the HPA has metrics
	$(HELM) upgrade --install metrics-server metrics-server \
		--repo https://kubernetes-sigs.github.io/metrics-server/ --version $(METRICS_SERVER_CHART_VERSION) \
		--kube-context $(KUBE_CONTEXT) --namespace kube-system -f k8s/metrics-server.yaml --wait --timeout 5m

# The chart page's first install (docs/chart.md): nothing is pulled. pullPolicy Never makes a missed `kind load` an ErrImageNeverPull
# naming the image, instead of a pull from a registry that does not have it.
kind-install: devloop-tools ## build the image, kind-load it and helm install the chart with it (no registry needed)
	DOCKER_BUILDKIT=1 docker build -t $(LOCAL_IMAGE_REPOSITORY):$(LOCAL_IMAGE_TAG) .
	$(KIND) load docker-image $(LOCAL_IMAGE_REPOSITORY):$(LOCAL_IMAGE_TAG) --name $(KIND_CLUSTER)
	$(HELM) upgrade --install $(RELEASE) charts/flask-svc --kube-context $(KUBE_CONTEXT) \
		--namespace $(NAMESPACE) --create-namespace \
		--set image.repository=$(LOCAL_IMAGE_REPOSITORY) --set image.tag=$(LOCAL_IMAGE_TAG) --set image.pullPolicy=Never \
		--wait --timeout 5m

dev: devloop-tools ## skaffold dev: build, deploy, sync service/**/*.py, port-forward 8080/9797, tail logs
	$(SKAFFOLD) dev $(SKAFFOLD_FLAGS) --port-forward=user

# `skaffold run`, split into its build and deploy phases so that `skaffold verify` checks the very same build.
deploy: devloop-tools ## skaffold run (build + deploy), then skaffold verify in the cluster
	@mkdir -p $(TOOLS)
	$(SKAFFOLD) build $(SKAFFOLD_FLAGS) --file-output $(SKAFFOLD_BUILD)
	$(SKAFFOLD) deploy $(SKAFFOLD_FLAGS) --build-artifacts $(SKAFFOLD_BUILD) --load-images=true
	$(MAKE) --no-print-directory skaffold-verify

skaffold-verify: ## run the skaffold verify Job (/readyz and /api/v1/analyze from inside the cluster)
	$(SKAFFOLD) verify $(SKAFFOLD_FLAGS) --build-artifacts $(SKAFFOLD_BUILD)

# Foreground; Ctrl-C stops every forward. Loopback only.
port-forward: ## forward the app (127.0.0.1:8080) and its metrics (127.0.0.1:9797)
	$(KUBECTL) --context $(KUBE_CONTEXT) -n $(NAMESPACE) port-forward --address 127.0.0.1 \
		deployment/flask-svc 8080:8080 9797:9797

port-forward-observability: ## forward Grafana (:3000), Prometheus (:9090) and Jaeger (:16686)
	@trap 'kill $$(jobs -p) 2>/dev/null' INT TERM EXIT; \
	$(KUBECTL) --context $(KUBE_CONTEXT) -n $(MONITORING_NAMESPACE) port-forward --address 127.0.0.1 \
		service/kube-prometheus-stack-grafana 3000:80 & \
	$(KUBECTL) --context $(KUBE_CONTEXT) -n $(MONITORING_NAMESPACE) port-forward --address 127.0.0.1 \
		service/kube-prometheus-stack-prometheus 9090:9090 & \
	$(KUBECTL) --context $(KUBE_CONTEXT) -n $(MONITORING_NAMESPACE) port-forward --address 127.0.0.1 \
		service/jaeger 16686:16686 & \
	wait

kind-down: ## delete the kind cluster
	$(KIND) delete cluster --name $(KIND_CLUSTER)

test-e2e: venv-dev ## run the e2e suite against the current kube context (fails, not skips, without a cluster)
	FLASK_SVC_E2E_REQUIRED=true FLASK_SVC_E2E_CONTEXT=$(KUBE_CONTEXT) FLASK_SVC_E2E_NAMESPACE=$(NAMESPACE) \
		$(BIN)/python -m pytest -m e2e tests/e2e $(E2E_PYTEST_ARGS)
