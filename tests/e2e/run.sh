#!/usr/bin/env bash
# `make e2e`: the chart and the service on a live cluster, then the e2e suite with nothing allowed to skip.
#
# Cluster: the current kube context when it answers (a kind cluster from `make kind-up`, say); otherwise, on Linux
# as root, the local cluster of cluster/local-cluster.sh, brought up here and torn down on exit whatever happened.
# FLASK_SVC_E2E_LOCAL_CLUSTER=true always uses the local one; FLASK_SVC_E2E_KEEP_CLUSTER=true leaves it running.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="${PWD}"
export PATH="${ROOT}/.tools/bin:${PATH}"
PYTHON="${ROOT}/.venv/bin/python"
IMAGE_REPOSITORY=flask-svc
IMAGE_TAG=e2e
export FLASK_SVC_E2E_NAMESPACE="${FLASK_SVC_E2E_NAMESPACE:-flask-svc}"
export FLASK_SVC_E2E_RELEASE="${FLASK_SVC_E2E_RELEASE:-flask-svc}"
export FLASK_SVC_E2E_IMAGE="${IMAGE_REPOSITORY}:${IMAGE_TAG}"
export FLASK_SVC_E2E_REQUIRED=true
ARTIFACTS="${FLASK_SVC_E2E_ARTIFACTS:-${ROOT}/.e2e-artifacts}"
LOCAL=false
T0=$SECONDS

log() { printf '%s e2e: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
elapsed() { echo "$((SECONDS - $1)) s"; }

# On the way out: what the cluster looked like (for a failure's reader), then the local cluster torn down.
finish() {
  local rc=$?
  set +e
  if [[ $rc -ne 0 ]] && kubectl version --request-timeout=5s >/dev/null 2>&1; then
    mkdir -p "${ARTIFACTS}"
    kubectl get all,events -A -o wide >"${ARTIFACTS}/cluster-state.txt" 2>&1
    kubectl describe pods -n "${FLASK_SVC_E2E_NAMESPACE}" >"${ARTIFACTS}/pods.txt" 2>&1
    log "failed (exit ${rc}); cluster state saved in ${ARTIFACTS}"
  fi
  if [[ "${LOCAL}" == true ]]; then
    if [[ "${FLASK_SVC_E2E_KEEP_CLUSTER:-}" == true ]]; then
      log "local cluster left running: eval \"\$(cluster/local-cluster.sh env)\"; make cluster-down when done"
    else
      cluster/local-cluster.sh down
    fi
  fi
  log "finished in $(elapsed "${T0}") (exit ${rc})"
  exit "${rc}"
}
trap finish EXIT

# --- the cluster -------------------------------------------------------------------------------------------------

if [[ "${FLASK_SVC_E2E_LOCAL_CLUSTER:-}" != true ]] && kubectl version --request-timeout=5s >/dev/null 2>&1; then
  CONTEXT="$(kubectl config current-context)"
  log "using the current kube context ${CONTEXT}"
else
  [[ "$(uname -s)" == Linux && "$(id -u)" == 0 ]] ||
    { log "no cluster answers on the current kube context, and the local cluster needs Linux and root (or: make kind-up)"; exit 1; }
  LOCAL=true
  t=$SECONDS
  cluster/local-cluster.sh up
  eval "$(cluster/local-cluster.sh env)"
  CONTEXT="$(kubectl config current-context)"
  log "local cluster up in $(elapsed "$t")"
fi
export FLASK_SVC_E2E_CONTEXT="${CONTEXT}"

# --- the image, made visible to the node without a registry --------------------------------------------------------

t=$SECONDS
# The default image, and its model-serving variant (`--target ml`, tag suffix -ml) for test_e2e_model.py.
"${PYTHON}" -m image build --image "${FLASK_SVC_E2E_IMAGE}"
"${PYTHON}" -m image build --image "${FLASK_SVC_E2E_IMAGE}-ml" --target ml
for image in "${FLASK_SVC_E2E_IMAGE}" "${FLASK_SVC_E2E_IMAGE}-ml"; do
  if [[ "${LOCAL}" == true || "${CONTEXT}" == flask-svc-local ]]; then  # brought up here, or by `make cluster-up`
    cluster/local-cluster.sh load "${image}"
  elif [[ "${CONTEXT}" == kind-* ]]; then
    kind load docker-image "${image}" --name "${CONTEXT#kind-}"
  else
    log "context ${CONTEXT} is neither kind nor the local cluster: make ${image} available to its nodes first"
  fi
done
log "images built and loaded in $(elapsed "$t")"

# --- the release: restricted Pod Security, the chart's defaults plus what the suite needs ------------------------

kubectl create namespace "${FLASK_SVC_E2E_NAMESPACE}" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl label --overwrite namespace "${FLASK_SVC_E2E_NAMESPACE}" \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted \
  pod-security.kubernetes.io/audit=restricted >/dev/null
t=$SECONDS
HELM_STDERR="$(mktemp)"
helm upgrade --install "${FLASK_SVC_E2E_RELEASE}" charts/flask-svc --namespace "${FLASK_SVC_E2E_NAMESPACE}" \
  -f k8s/values-e2e.yaml --set image.repository="${IMAGE_REPOSITORY}" --set image.tag="${IMAGE_TAG}" \
  --wait --timeout 5m 2>"${HELM_STDERR}" || { cat "${HELM_STDERR}" >&2; exit 1; }
cat "${HELM_STDERR}" >&2
# Any warning the API server sent back (Pod Security's "would violate", a deprecated API, …) fails the run.
if grep -Eqi 'warning|would violate' "${HELM_STDERR}"; then
  log "helm install (Helm $(helm version --template '{{.Version}}')) drew the warnings above"
  exit 1
fi
log "helm install --wait (Helm $(helm version --template '{{.Version}}')): every pod Ready in $(elapsed "$t")"

# --- the suite ---------------------------------------------------------------------------------------------------

t=$SECONDS
# The skaffold module last and on its own: it redeploys the release and `skaffold dev` removes it when it stops.
# -rP: what passing tests print (the rolling restart's request count, the saturation summary) ends up in the log.
# Most of the suite waits on the cluster (rollouts, the HPA, timed load), so its modules run side by side on
# FLASK_SVC_E2E_WORKERS pytest-xdist workers: a module with a release of its own is a group of its own, the tests
# of the main release one group run in order (tests/e2e/conftest.py). FLASK_SVC_E2E_WORKERS=0 runs them in turn.
WORKERS="${FLASK_SVC_E2E_WORKERS:-3}"
"${PYTHON}" -m pytest -m e2e tests/e2e --ignore=tests/e2e/test_e2e_skaffold.py -v -rsP -p no:cacheprovider \
  --durations=30 -n "${WORKERS}" --dist loadscope ${FLASK_SVC_E2E_PYTEST_ARGS:-}
if [[ "${LOCAL}" == true ]]; then
  cluster/local-cluster.sh rss
fi
"${PYTHON}" -m pytest -m e2e tests/e2e/test_e2e_skaffold.py -v -rs -p no:cacheprovider --durations=5 \
  ${FLASK_SVC_E2E_PYTEST_ARGS:-}
log "e2e suite passed in $(elapsed "$t")"
