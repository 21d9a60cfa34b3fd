# Container image (issue 4): a local Docker engine for tests/container, and `make image` for humans.
#
# Debian's docker.io ships a client with BuildKit built in; prefer it over any other `docker` on PATH.
DOCKER ?= $(firstword $(wildcard /usr/bin/docker) docker)
IMAGE ?= flask-svc
IMAGE_TAG ?= dev
# Empty means the Dockerfile's default (python:3.12-slim); set it for a digest pin or a private mirror.
BASE_IMAGE ?=
DOCKERD_LOG ?= /var/log/flask-svc-dockerd.log
DOCKERD_LOCK := /run/flask-svc-dockerd.lock
CONTAINER_COMMA := ,

SETUP += setup-container

.PHONY: setup-container image image-ml

# Installs the engine and debootstrap when missing, then starts dockerd when no engine answers.
# Other areas may run setup at the same time: apt waits for its lock, and the start is serialised by flock.
setup-container:
	@# An engine already installed (e.g. docker-ce) is used as it is: docker.io only where there is none.
	@if ! test -x /usr/bin/docker || ! command -v dockerd >/dev/null; then $(call apt_install,docker.io); fi
	@$(call apt_install,debootstrap debian-archive-keyring)
	@flock -o $(DOCKERD_LOCK) sh -c '\
		$(DOCKER) info >/dev/null 2>&1 && exit 0; \
		echo "setup-container: starting dockerd (log: $(DOCKERD_LOG))"; \
		setsid nohup dockerd --bridge=none --iptables=false >>$(DOCKERD_LOG) 2>&1 </dev/null & \
		for _ in $$(seq 1 120); do $(DOCKER) info >/dev/null 2>&1 && exit 0; sleep 0.5; done; \
		echo "setup-container: dockerd did not answer within 60 s; last log lines:" >&2; \
		tail -n 20 $(DOCKERD_LOG) >&2; exit 1'

# Where no registry is reachable (as on this project's machines), the image package builds the same Dockerfile on a
# stand-in base with pip fed from a loopback wheelhouse: `.venv/bin/python -m image build --image flask-svc:dev
# [--target ml]` (what `make e2e` and the local cluster's skaffold builder run).
#
# For humans: the image from the working tree, labelled with the version, commit and build time.
# Behind a TLS-intercepting proxy, `make image PIP_CA=/path/to/ca.pem`; for a private index,
# `make image PIP_CONF=/path/to/pip.conf`. Both go in as BuildKit secrets, never into a layer.
PIP_CA ?=
PIP_CONF ?=
# Extra `docker build` flags, e.g. --network=host where the engine has no bridge network.
IMAGE_BUILD_FLAGS ?=
# A Dockerfile stage other than the default: `ml` is the model-serving variant, tagged with the suffix -ml.
IMAGE_TARGET ?=
image: ## build the container image (vars: IMAGE IMAGE_TAG IMAGE_TARGET BASE_IMAGE PIP_CA PIP_CONF)
	DOCKER_BUILDKIT=1 $(DOCKER) build \
		$(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) \
		--build-arg VERSION=$$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml) \
		--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
		--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
		$(if $(PIP_CA),--secret id=pip_ca$(CONTAINER_COMMA)src=$(PIP_CA)) \
		$(if $(PIP_CONF),--secret id=pip_conf$(CONTAINER_COMMA)src=$(PIP_CONF)) \
		$(if $(IMAGE_TARGET),--target $(IMAGE_TARGET)) \
		$(IMAGE_BUILD_FLAGS) -t $(IMAGE):$(IMAGE_TAG)$(if $(IMAGE_TARGET),-$(IMAGE_TARGET)) .

image-ml: ## the model-serving image: numpy, scikit-learn, skops and the Iris model (tag suffix -ml)
	$(MAKE) image IMAGE_TARGET=ml
