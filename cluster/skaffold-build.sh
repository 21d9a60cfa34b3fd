#!/usr/bin/env bash
# skaffold's builder for the local cluster (profile local-cluster in skaffold.yaml, active on its kube context):
# the image on the debootstrap stand-in base with pip fed from a loopback wheelhouse (no registry, no base image can
# be pulled here), then copied into the node's containerd. skaffold sets IMAGE; nothing is pushed.
# APP_CODE_OWNER as in the Dockerfile: 10001:10001 (the dev default, so file sync can write) unless set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
: "${IMAGE:?skaffold sets IMAGE}"
.venv/bin/python -m image build --image "${IMAGE}" \
  --build-arg "APP_CODE_OWNER=${APP_CODE_OWNER:-10001:10001}"
# Without a push skaffold deploys the image by its ID (repository:<image id>), not by the tag it asked for: give the
# node both names.
id="$(/usr/bin/docker image inspect --format '{{.Id}}' "${IMAGE}")"
/usr/bin/docker tag "${IMAGE}" "${IMAGE%:*}:${id#sha256:}"
cluster/local-cluster.sh load "${IMAGE}" "${IMAGE%:*}:${id#sha256:}"
