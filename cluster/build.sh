#!/usr/bin/env bash
# Builds the local cluster's programs from their Go modules (versions: cluster/versions.env) into a cache outside the
# repository, keyed by version and by the hash of the wrapper module, so a warm run builds nothing.
#
#   cluster/build.sh [all|kubernetes|etcd|coredns|metrics-server|skaffold]   build what is missing (default: all)
#   cluster/build.sh path COMPONENT                                  print the directory holding COMPONENT's binaries
#   cluster/build.sh crds                                            print the upstream CRD files the e2e suite applies
#   cluster/build.sh regen                                           rewrite the wrapper modules after a version change
#
# Module downloads are checked against each wrapper's go.sum (-mod=readonly): a changed upstream zip fails the build.
set -euo pipefail

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${CLUSTER_DIR}/versions.env"
CACHE="${FLASK_SVC_CLUSTER_CACHE:-/var/cache/flask-svc-cluster}"
MODULES="${CLUSTER_DIR}/modules"
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -trimpath" CGO_ENABLED=0

log() { printf 'build: %s\n' "$*" >&2; }

# The version a component is built at, from versions.env.
version_of() {
  case "$1" in
    kubernetes) echo "${KUBERNETES_VERSION}" ;;
    etcd) echo "${ETCD_VERSION}" ;;
    coredns) echo "${COREDNS_VERSION}" ;;
    metrics-server) echo "${METRICS_SERVER_VERSION}" ;;
    skaffold) echo "${SKAFFOLD_VERSION}" ;;
    *) log "unknown component: $1"; exit 2 ;;
  esac
}

# $CACHE/bin/<component>-<version>-<hash of its wrapper module>: a module edit (new pin, new plugin) rebuilds.
path_of() {
  local hash
  hash="$(cat "${MODULES}/$1"/go.mod "${MODULES}/$1"/go.sum "${MODULES}/$1"/*.go | sha256sum | cut -c1-12)"
  echo "${CACHE}/bin/$1-$(version_of "$1")-${hash}"
}

# The -X flags Kubernetes' own build sets (hack/lib/version.sh), so `kubectl version` and Helm's kubeVersion
# checks see the real version instead of v0.0.0.
kube_ldflags() {
  local v="${KUBERNETES_VERSION}" minor flags="" pkg
  minor="$(echo "$v" | cut -d. -f2)"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X ${pkg}.gitVersion=${v} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    flags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
  done
  echo "-s -w${flags}"
}

build_one() {
  local name="$1" out tmp start
  out="$(path_of "$name")"
  if [[ -f "${out}/.complete" ]]; then
    return 0
  fi
  log "${name} $(version_of "$name"): building into ${out} (cold builds take minutes; see docs/cluster.md)"
  start=$SECONDS
  tmp="${out}.tmp.$$"
  rm -rf "${tmp}" && mkdir -p "${tmp}"
  (
    cd "${MODULES}/${name}"
    case "$name" in
      kubernetes)
        go build -ldflags "$(kube_ldflags)" -o "${tmp}/" \
          k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
          k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
          k8s.io/kubernetes/cmd/kubectl ;;
      etcd) go build -ldflags "-s -w" -o "${tmp}/etcd" go.etcd.io/etcd/server/v3 ;;
      coredns) go build -ldflags "-s -w" -o "${tmp}/coredns" . ;;
      metrics-server) go build -ldflags "-s -w" -o "${tmp}/metrics-server" sigs.k8s.io/metrics-server/cmd/metrics-server ;;
      skaffold)
        go build -ldflags "-s -w -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=${SKAFFOLD_VERSION}" \
          -o "${tmp}/skaffold" github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold ;;
    esac
  )
  touch "${tmp}/.complete"
  rm -rf "${out}" && mv "${tmp}" "${out}"
  log "${name}: built in $((SECONDS - start)) s"
}

# The upstream CRD manifests the e2e suite installs, one path a line, downloaded and checked against
# cluster/modules/crds/go.sum.
crd_files() {
  local keda operator
  cd "${MODULES}/crds"
  keda="$(go mod download -json github.com/kedacore/keda/v2 | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  operator="$(go mod download -json github.com/prometheus-operator/prometheus-operator | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -n "${keda}" && -n "${operator}" ]] || { log "could not download the CRD modules"; exit 1; }
  printf '%s\n' "${operator}/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
    "${operator}/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" \
    "${keda}/config/crd/bases/keda.sh_scaledobjects.yaml"
}

# Rewrites each wrapper module for the versions in versions.env. Kubernetes' own go.mod replaces its staging
# modules (k8s.io/api, …) with local paths; the wrapper replaces each with its published v0.<minor>.<patch>.
regen() {
  local kmod staging
  go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" >/dev/null
  kmod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/${KUBERNETES_VERSION}.mod"
  staging="v0.${KUBERNETES_VERSION#v1.}"
  {
    sed -n '1,/^module /p' "${MODULES}/kubernetes/go.mod"
    printf '\ngo 1.24.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "${KUBERNETES_VERSION}"
    awk -v v="${staging}" '/=> \.\/staging\/src\// {print "\t" $1 " => " $1 " " v}' "${kmod}"
    printf ')\n'
  } >"${MODULES}/kubernetes/go.mod.new"
  mv "${MODULES}/kubernetes/go.mod.new" "${MODULES}/kubernetes/go.mod"
  (cd "${MODULES}/etcd" && go mod edit -require "go.etcd.io/etcd/server/v3@${ETCD_VERSION}")
  (cd "${MODULES}/coredns" && go mod edit -require "github.com/coredns/coredns@${COREDNS_VERSION}")
  (cd "${MODULES}/metrics-server" && go mod edit -require "sigs.k8s.io/metrics-server@${METRICS_SERVER_VERSION}")
  # skaffold's own replace directives apply only in a main module: copy them into the wrapper.
  go mod download -json "github.com/GoogleContainerTools/skaffold/v2@${SKAFFOLD_VERSION}" >/dev/null
  (
    cd "${MODULES}/skaffold"
    sed -i '/^replace /d' go.mod
    go mod edit -require "github.com/GoogleContainerTools/skaffold/v2@${SKAFFOLD_VERSION}"
    grep '^replace ' "$(go env GOMODCACHE)/cache/download/github.com/!google!container!tools/skaffold/v2/@v/${SKAFFOLD_VERSION}.mod" >>go.mod
  )
  for name in kubernetes etcd coredns metrics-server skaffold; do
    (cd "${MODULES}/${name}" && GOFLAGS=-mod=mod go mod tidy)
  done
  log "modules rewritten; review and commit cluster/modules/*/go.mod and go.sum"
}

command -v go >/dev/null || { log "Go is needed to build the local cluster (go.dev/dl; Go >= 1.24)"; exit 1; }
case "${1:-all}" in
  all) for name in kubernetes etcd coredns metrics-server skaffold; do build_one "$name"; done ;;
  kubernetes | etcd | coredns | metrics-server | skaffold) build_one "$1" ;;
  path) path_of "${2:?component}" ;;
  crds) crd_files ;;
  regen) regen ;;
  *) log "usage: $0 [all|kubernetes|etcd|coredns|metrics-server|skaffold|path COMPONENT|regen]"; exit 2 ;;
esac
