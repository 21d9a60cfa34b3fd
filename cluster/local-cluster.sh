#!/usr/bin/env bash
# A single-node Kubernetes on this machine, from upstream components built by cluster/build.sh — for `make e2e`
# where kind cannot run (no node image can be pulled). In the manner of Kubernetes' hack/local-up-cluster.sh:
# every component's flags are in this file, one function each.
#
#   cluster/local-cluster.sh up      build what is missing, start everything, wait for the node and DNS
#   cluster/local-cluster.sh down    stop everything and remove what it made: processes, containers, mounts,
#                                    cgroups, network namespaces, the bridge, iptables rules, state
#   cluster/local-cluster.sh env     print `export KUBECONFIG=…` and PATH for the cluster's kubectl
#   cluster/local-cluster.sh load IMAGE…   copy images from the Docker engine into the node's containerd
#
# Linux, root. The node, pods and Services live on a bridge of their own (NODE_IP, POD_CIDR, SERVICE_CIDR below);
# a FORWARD rule drops anything a pod sends off that bridge, and the DNS has no upstream: nothing leaves the machine.
set -euo pipefail

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${CLUSTER_DIR}/versions.env"

STATE="${FLASK_SVC_CLUSTER_STATE:-/var/lib/flask-svc-cluster}"
RUN="${FLASK_SVC_CLUSTER_RUN:-/run/flask-svc-cluster}"
LOGS="${FLASK_SVC_CLUSTER_LOGS:-/var/log/flask-svc-cluster}"
NODE_NAME=flask-svc-node
BRIDGE=fsvc0
NODE_IP=10.244.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/24
KUBERNETES_SERVICE_IP=10.96.0.1
CLUSTER_DOMAIN=cluster.local
APISERVER_PORT=6443
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380
METRICS_SERVER_PORT=4443
# Our own chain in the filter table: the rule that keeps pod traffic on the bridge, removed as a whole at `down`.
GUARD_CHAIN=FLASK-SVC-CLUSTER
CONTAINERD_SOCK="${RUN}/containerd.sock"
# Debian's client, as in the Makefile: another `docker` earlier on PATH may be newer than the engine.
DOCKER="${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}"
PKI="${STATE}/pki"
KUBECONFIG_ADMIN="${STATE}/admin.kubeconfig"

log() { printf '%s cluster: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }

bin_dir() { "${CLUSTER_DIR}/build.sh" path "$1"; }
KUBE_BIN="$(bin_dir kubernetes)"
kubectl_admin() { "${KUBE_BIN}/kubectl" --kubeconfig "${KUBECONFIG_ADMIN}" "$@"; }

# --- processes ---------------------------------------------------------------------------------------------------

# start NAME COMMAND…: run in the background, in its own session, logging to $LOGS/NAME.log; pid in $RUN/NAME.pid.
start() {
  local name="$1"
  shift
  (umask 022 && exec setsid "$@" >>"${LOGS}/${name}.log" 2>&1 </dev/null) &
  echo $! >"${RUN}/${name}.pid"
}

# wait_for WHAT SECONDS COMMAND…: poll until COMMAND succeeds; on time-out show the logs that explain why.
wait_for() {
  local what="$1" limit="$2" deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      log "${what}: not ready after ${limit} s; last log lines:"
      tail -n 30 "${LOGS}"/*.log >&2 || true
      exit 1
    fi
    sleep 1
  done
  log "${what}: ready"
}

stop_process() {
  local pidfile="${RUN}/$1.pid" pid
  [[ -f "${pidfile}" ]] || return 0
  pid="$(cat "${pidfile}")"
  kill -TERM "${pid}" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "${pid}" 2>/dev/null || true
  rm -f "${pidfile}"
}

# --- preflight ---------------------------------------------------------------------------------------------------

preflight() {
  [[ "$(uname -s)" == Linux ]] || die "the local cluster needs Linux (elsewhere: make kind-up)"
  [[ "$(id -u)" == 0 ]] || die "the local cluster needs root (it creates a bridge, iptables rules and cgroups)"
  local missing="" p
  for p in ${DEBIAN_PACKAGES}; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=" $p"
  done
  if [[ -n "${missing}" ]]; then
    log "installing${missing}"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing} >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing} >/dev/null; }
  fi
  [[ -d /sys/fs/cgroup/memory || -f /sys/fs/cgroup/cgroup.controllers ]] || die "no memory cgroup controller"
  "${CLUSTER_DIR}/build.sh" all
  mkdir -p "${STATE}" "${RUN}" "${LOGS}" "${PKI}"
}

# --- certificates (one CA; a client certificate per component) ---------------------------------------------------

# cert NAME SUBJECT [SANS]: a key and a certificate signed by the cluster CA.
cert() {
  local name="$1" subject="$2" sans="${3:-}"
  openssl req -new -newkey rsa:2048 -nodes -keyout "${PKI}/${name}.key" -subj "${subject}" \
    -out "${PKI}/${name}.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n "${sans}" ]]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=${sans}"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"${PKI}/${name}.ext"
  openssl x509 -req -in "${PKI}/${name}.csr" -CA "${PKI}/ca.crt" -CAkey "${PKI}/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "${PKI}/${name}.ext" -out "${PKI}/${name}.crt" 2>/dev/null
  rm -f "${PKI}/${name}.csr" "${PKI}/${name}.ext"
}

# kubeconfig NAME: a kubeconfig for the client certificate NAME.
kubeconfig() {
  local name="$1" file="${STATE}/$1.kubeconfig"
  cat >"${file}" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: flask-svc-local
    cluster:
      server: https://${NODE_IP}:${APISERVER_PORT}
      certificate-authority: ${PKI}/ca.crt
users:
  - name: ${name}
    user:
      client-certificate: ${PKI}/${name}.crt
      client-key: ${PKI}/${name}.key
contexts:
  - name: flask-svc-local
    context: {cluster: flask-svc-local, user: ${name}}
current-context: flask-svc-local
EOF
  # It names a private key; helm and kubectl warn about group- or world-readable kubeconfigs.
  chmod 0600 "${file}"
}

make_pki() {
  # Keys readable by root only; the umask goes back afterwards, or containerd would unpack image layers that the
  # containers' users cannot read.
  local umask_before
  umask_before="$(umask)"
  umask 077
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "${PKI}/ca.key" -subj "/CN=flask-svc-local-ca" \
    -days 30 -out "${PKI}/ca.crt" 2>/dev/null
  # The aggregation layer (metrics.k8s.io) authenticates the apiserver to metrics-server with its own CA.
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "${PKI}/front-proxy-ca.key" \
    -subj "/CN=flask-svc-local-front-proxy-ca" -days 30 -out "${PKI}/front-proxy-ca.crt" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" \
    "IP:${NODE_IP},IP:127.0.0.1,IP:${KUBERNETES_SERVICE_IP},DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.${CLUSTER_DOMAIN},DNS:localhost"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  cert admin "/O=system:masters/CN=flask-svc-admin"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  cert kubelet "/O=system:nodes/CN=system:node:${NODE_NAME}"
  cert kubelet-serving "/O=system:nodes/CN=system:node:${NODE_NAME}" "IP:${NODE_IP},DNS:${NODE_NAME}"
  cert kube-proxy "/CN=system:kube-proxy"
  cert coredns "/CN=flask-svc:coredns"
  cert metrics-server "/CN=flask-svc:metrics-server" "IP:${NODE_IP},DNS:metrics-server.kube-system.svc"
  # The front-proxy client is signed by its own CA, not the cluster CA.
  openssl req -new -newkey rsa:2048 -nodes -keyout "${PKI}/front-proxy-client.key" -subj "/CN=front-proxy-client" \
    -out "${PKI}/front-proxy-client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"${PKI}/fp.ext"
  openssl x509 -req -in "${PKI}/front-proxy-client.csr" -CA "${PKI}/front-proxy-ca.crt" \
    -CAkey "${PKI}/front-proxy-ca.key" -CAcreateserial -days 30 -sha256 -extfile "${PKI}/fp.ext" \
    -out "${PKI}/front-proxy-client.crt" 2>/dev/null
  rm -f "${PKI}/front-proxy-client.csr" "${PKI}/fp.ext"
  openssl genrsa -out "${PKI}/service-account.key" 2048 2>/dev/null
  openssl rsa -in "${PKI}/service-account.key" -pubout -out "${PKI}/service-account.pub" 2>/dev/null
  local name
  for name in admin controller-manager scheduler kubelet kube-proxy coredns metrics-server; do
    kubeconfig "${name}"
  done
  umask "${umask_before}"
}

# --- network -----------------------------------------------------------------------------------------------------

# The bridge exists before any pod, carrying the node's address, so the apiserver and kubelet can bind to it.
make_network() {
  ip link show "${BRIDGE}" >/dev/null 2>&1 || ip link add "${BRIDGE}" type bridge
  ip addr replace "${NODE_IP}/24" dev "${BRIDGE}"
  ip link set "${BRIDGE}" up
  # Pods may talk to each other and to the node; anything else they send is dropped. Service addresses are
  # rewritten to pod addresses (or the node's) before this rule sees them.
  iptables -N "${GUARD_CHAIN}" 2>/dev/null || iptables -F "${GUARD_CHAIN}"
  iptables -A "${GUARD_CHAIN}" -s "${POD_CIDR}" -d "${POD_CIDR}" -j RETURN
  iptables -A "${GUARD_CHAIN}" -s "${POD_CIDR}" -j DROP
  iptables -C FORWARD -j "${GUARD_CHAIN}" 2>/dev/null || iptables -I FORWARD 1 -j "${GUARD_CHAIN}"
  mkdir -p "${STATE}/cni/net.d"
  cat >"${STATE}/cni/net.d/10-flask-svc.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "flask-svc",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "${POD_CIDR}", "gateway": "${NODE_IP}"}]],
               "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "${STATE}/cni/ipam"}
    },
    {"type": "loopback"}
  ]
}
EOF
}

# --- control plane -----------------------------------------------------------------------------------------------

start_etcd() {
  # One member on loopback; fsync off: the data is thrown away at `down`, and fsync dominates on a shared disk.
  start etcd "$("${CLUSTER_DIR}/build.sh" path etcd)/etcd" \
    --name flask-svc-local \
    --data-dir "${STATE}/etcd" \
    --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORT}" \
    --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORT}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster "flask-svc-local=http://127.0.0.1:${ETCD_PEER_PORT}" \
    --listen-metrics-urls "" \
    --unsafe-no-fsync \
    --quota-backend-bytes 1073741824 \
    --log-level warn
  wait_for etcd 60 curl -fsS "http://127.0.0.1:${ETCD_CLIENT_PORT}/health"
}

start_apiserver() {
  # Pod Security admission is built in and on by default; namespaces opt in with their labels.
  start kube-apiserver "${KUBE_BIN}/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:${ETCD_CLIENT_PORT}" \
    --bind-address "${NODE_IP}" \
    --advertise-address "${NODE_IP}" \
    --secure-port "${APISERVER_PORT}" \
    --service-cluster-ip-range "${SERVICE_CIDR}" \
    --service-node-port-range 30000-32767 \
    --tls-cert-file "${PKI}/apiserver.crt" \
    --tls-private-key-file "${PKI}/apiserver.key" \
    --client-ca-file "${PKI}/ca.crt" \
    --kubelet-client-certificate "${PKI}/apiserver-kubelet-client.crt" \
    --kubelet-client-key "${PKI}/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "${PKI}/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-key-file "${PKI}/service-account.pub" \
    --service-account-signing-key-file "${PKI}/service-account.key" \
    --service-account-issuer "https://kubernetes.default.svc.${CLUSTER_DOMAIN}" \
    --api-audiences "https://kubernetes.default.svc.${CLUSTER_DOMAIN}" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --allow-privileged=false \
    --requestheader-client-ca-file "${PKI}/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --requestheader-group-headers X-Remote-Group \
    --requestheader-username-headers X-Remote-User \
    --proxy-client-cert-file "${PKI}/front-proxy-client.crt" \
    --proxy-client-key-file "${PKI}/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --profiling=false \
    --v 1
  wait_for kube-apiserver 120 kubectl_admin get --raw /readyz
}

start_controller_manager() {
  start kube-controller-manager "${KUBE_BIN}/kube-controller-manager" \
    --kubeconfig "${STATE}/controller-manager.kubeconfig" \
    --authentication-kubeconfig "${STATE}/controller-manager.kubeconfig" \
    --authorization-kubeconfig "${STATE}/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 \
    --service-account-private-key-file "${PKI}/service-account.key" \
    --root-ca-file "${PKI}/ca.crt" \
    --use-service-account-credentials \
    --cluster-signing-cert-file "${PKI}/ca.crt" \
    --cluster-signing-key-file "${PKI}/ca.key" \
    --service-cluster-ip-range "${SERVICE_CIDR}" \
    --allocate-node-cidrs=false \
    --leader-elect=false \
    --horizontal-pod-autoscaler-sync-period 10s \
    --profiling=false \
    --v 1
}

start_scheduler() {
  start kube-scheduler "${KUBE_BIN}/kube-scheduler" \
    --kubeconfig "${STATE}/scheduler.kubeconfig" \
    --authentication-kubeconfig "${STATE}/scheduler.kubeconfig" \
    --authorization-kubeconfig "${STATE}/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 \
    --leader-elect=false \
    --profiling=false \
    --v 1
}

# --- node --------------------------------------------------------------------------------------------------------

start_containerd() {
  mkdir -p "${STATE}/containerd" "${RUN}/containerd"
  cat >"${STATE}/containerd/config.toml" <<EOF
version = 2
root = "${STATE}/containerd/root"
state = "${RUN}/containerd/state"
[grpc]
  address = "${CONTAINERD_SOCK}"
[plugins."io.containerd.internal.v1.opt"]
  path = "${STATE}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  enable_selinux = false
  # This VM grants root no CAP_SYS_RESOURCE, so no process may lower its OOM score (the pause container's -998,
  # a Guaranteed pod's -997): clamp those to containerd's own score instead of failing every sandbox.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${STATE}/cni/net.d"
EOF
  start containerd containerd --config "${STATE}/containerd/config.toml"
  wait_for containerd 60 ctr --address "${CONTAINERD_SOCK}" version
}

start_kubelet() {
  mkdir -p "${STATE}/kubelet"
  cat >"${STATE}/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://${CONTAINERD_SOCK}
failSwapOn: false
clusterDomain: ${CLUSTER_DOMAIN}
clusterDNS: [${NODE_IP}]
# No host search domains or resolvers in pods: cluster names only.
resolvConf: ""
staticPodPath: ""
# Images are loaded from the local Docker engine, never pulled: nothing may garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
tlsCertFile: ${PKI}/kubelet-serving.crt
tlsPrivateKeyFile: ${PKI}/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${PKI}/ca.crt}
authorization: {mode: Webhook}
serializeImagePulls: false
maxPods: 110
EOF
  start kubelet "${KUBE_BIN}/kubelet" \
    --config "${STATE}/kubelet/config.yaml" \
    --kubeconfig "${STATE}/kubelet.kubeconfig" \
    --root-dir "${STATE}/kubelet" \
    --hostname-override "${NODE_NAME}" \
    --node-ip "${NODE_IP}" \
    --v 1
}

start_kube_proxy() {
  cat >"${STATE}/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: ${STATE}/kube-proxy.kubeconfig}
hostnameOverride: ${NODE_NAME}
clusterCIDR: ${POD_CIDR}
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Leave the machine's conntrack sysctls alone, and its OOM score (lowering it needs CAP_SYS_RESOURCE, not had here).
conntrack: {maxPerCore: 0}
oomScoreAdj: 0
EOF
  start kube-proxy "${KUBE_BIN}/kube-proxy" --config "${STATE}/kube-proxy.yaml" --v 1
}

# --- add-ons: DNS and resource metrics, as host processes ----------------------------------------------------------

start_coredns() {
  # Cluster names only: no forward plugin is compiled in (cluster/modules/coredns), other names get REFUSED.
  cat >"${STATE}/Corefile" <<EOF
.:53 {
    bind ${NODE_IP}
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:18181
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${STATE}/coredns.kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 10
    loadbalance
}
EOF
  start coredns "$("${CLUSTER_DIR}/build.sh" path coredns)/coredns" -conf "${STATE}/Corefile"
  wait_for coredns 60 curl -fsS http://127.0.0.1:18181/ready
}

start_metrics_server() {
  mkdir -p "${STATE}/metrics-server"
  start metrics-server "$("${CLUSTER_DIR}/build.sh" path metrics-server)/metrics-server" \
    --kubeconfig "${STATE}/metrics-server.kubeconfig" \
    --authentication-kubeconfig "${STATE}/metrics-server.kubeconfig" \
    --authorization-kubeconfig "${STATE}/metrics-server.kubeconfig" \
    --bind-address "${NODE_IP}" \
    --secure-port "${METRICS_SERVER_PORT}" \
    --tls-cert-file "${PKI}/metrics-server.crt" \
    --tls-private-key-file "${PKI}/metrics-server.key" \
    --kubelet-certificate-authority "${PKI}/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --metric-resolution 15s
}

# RBAC for the host add-ons, the Service and EndpointSlice that route metrics.k8s.io to metrics-server on the node.
apply_addons() {
  sed -e "s/@NODE_IP@/${NODE_IP}/g" -e "s/\"@METRICS_SERVER_PORT@\"/${METRICS_SERVER_PORT}/g" \
    -e "s|@CA_BUNDLE@|$(base64 -w0 "${PKI}/ca.crt")|" \
    "${CLUSTER_DIR}/addons.yaml" | kubectl_admin apply -f - >/dev/null
}

# --- images ------------------------------------------------------------------------------------------------------

# The pause image from cluster/pause/pause.c: one static binary, imported into Docker and then into containerd.
load_pause_image() {
  local dir
  if ! "${DOCKER}" image inspect "${PAUSE_IMAGE}" >/dev/null 2>&1; then
    dir="$(mktemp -d)"
    gcc -static -O2 -o "${dir}/pause" "${CLUSTER_DIR}/pause/pause.c"
    tar -C "${dir}" -c pause | "${DOCKER}" import --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535' \
      - "${PAUSE_IMAGE}" >/dev/null
    rm -rf "${dir}"
  fi
  load_images "${PAUSE_IMAGE}"
}

load_images() {
  local image
  for image in "$@"; do
    "${DOCKER}" save "${image}" | ctr --address "${CONTAINERD_SOCK}" -n k8s.io images import --no-unpack=false - >/dev/null
    log "image ${image} loaded into the node"
  done
}

# --- up / down ---------------------------------------------------------------------------------------------------

node_ready() {
  kubectl_admin get node "${NODE_NAME}" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}

up() {
  preflight
  if [[ -f "${RUN}/kube-apiserver.pid" ]] && kill -0 "$(cat "${RUN}/kube-apiserver.pid")" 2>/dev/null; then
    log "already up (KUBECONFIG=${KUBECONFIG_ADMIN}); 'down' first to start afresh"
    return 0
  fi
  local t0=$SECONDS
  "${DOCKER}" info >/dev/null 2>&1 || die "no Docker engine answers: images are built and imported from it (make setup-container)"
  make_pki
  make_network
  start_etcd
  start_apiserver
  start_controller_manager
  start_scheduler
  start_containerd
  load_pause_image
  start_kubelet
  start_kube_proxy
  wait_for "node ${NODE_NAME}" 180 node_ready
  apply_addons
  start_coredns
  start_metrics_server
  wait_for metrics.k8s.io 120 kubectl_admin get --raw /apis/metrics.k8s.io/v1beta1/nodes
  log "up in $((SECONDS - t0)) s: export KUBECONFIG=${KUBECONFIG_ADMIN}"
}

# Every mount below a directory, deepest first.
unmount_below() {
  local dir="$1" m
  [[ -d "${dir}" ]] || return 0
  { findmnt -rn -o TARGET | grep -E "^${dir}(/|$)" || true; } | sort -r | while read -r m; do
    umount "${m}" 2>/dev/null || umount -l "${m}" 2>/dev/null || true
  done
}

# iptables chains that kube-proxy, the kubelet and the CNI plugins made, with the jumps into them.
remove_chains() {
  local cmd="$1" table chain rule
  for table in filter nat mangle; do
    { "${cmd}" -t "${table}" -S 2>/dev/null | grep -E -- "-j (KUBE-|CNI-|${GUARD_CHAIN})" || true; } | while read -r rule; do
      # "-A CHAIN …" → "-D CHAIN …"
      eval "${cmd} -t ${table} -D ${rule#-A }" 2>/dev/null || true
    done
    for chain in $("${cmd}" -t "${table}" -S 2>/dev/null | awk -v g="${GUARD_CHAIN}" '$1 == "-N" && ($2 ~ /^(KUBE-|CNI-)/ || $2 == g) {print $2}'); do
      "${cmd}" -t "${table}" -F "${chain}" 2>/dev/null || true
    done
    for chain in $("${cmd}" -t "${table}" -S 2>/dev/null | awk -v g="${GUARD_CHAIN}" '$1 == "-N" && ($2 ~ /^(KUBE-|CNI-)/ || $2 == g) {print $2}'); do
      "${cmd}" -t "${table}" -X "${chain}" 2>/dev/null || true
    done
  done
}

# Kill every process in the pods' cgroups, then remove those cgroups (deepest first).
remove_pod_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/kubepods* /sys/fs/cgroup/kubepods*; do
    [[ -d "${d}" ]] || continue
    find "${d}" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  done
  sleep 0.5
  for d in /sys/fs/cgroup/*/kubepods* /sys/fs/cgroup/kubepods*; do
    [[ -d "${d}" ]] || continue
    find "${d}" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

down() {
  [[ "$(id -u)" == 0 ]] || die "down needs root"
  local name ns
  for name in metrics-server coredns kube-proxy kubelet; do stop_process "${name}"; done
  # Containers outlive containerd (their shims are separate processes): stop them through the pods' cgroups.
  remove_pod_cgroups
  pkill -KILL -f "containerd-shim-runc-v2 -namespace k8s.io -address ${CONTAINERD_SOCK}" 2>/dev/null || true
  for name in containerd kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_process "${name}"; done
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do ip netns delete "${ns}" 2>/dev/null || true; done
  unmount_below "${STATE}"
  unmount_below "${RUN}"
  unmount_below /run/netns
  ip link delete "${BRIDGE}" 2>/dev/null || true
  remove_chains iptables
  remove_chains ip6tables
  rm -rf "${STATE}" "${RUN}"
  leftovers
  log "down: processes, pods, mounts, network namespaces, ${BRIDGE}, iptables rules and ${STATE} removed"
}

# After `down`: anything of the cluster still on the machine is an error, named.
leftovers() {
  local found="" _
  for _ in $(seq 1 20); do # processes killed a moment ago may still be exiting
    pgrep -f "${STATE}|${RUN}" >/dev/null || break
    sleep 0.5
  done
  pgrep -f "${STATE}|${RUN}" >/dev/null && found+=" processes($(pgrep -af "${STATE}|${RUN}" | cut -c1-120 | tr '\n' ';'))"
  ip link show "${BRIDGE}" >/dev/null 2>&1 && found+=" bridge ${BRIDGE}"
  findmnt -rn -o TARGET | grep -qE "^(${STATE}|${RUN})(/|$)" && found+=" mounts"
  ip netns list 2>/dev/null | grep -q '^cni-' && found+=" network namespaces"
  iptables-save 2>/dev/null | grep -qE "KUBE-|CNI-|${GUARD_CHAIN}" && found+=" iptables rules"
  ip6tables-save 2>/dev/null | grep -qE "KUBE-|CNI-" && found+=" ip6tables rules"
  [[ -z "${found}" ]] || die "down left behind:${found}"
}

# The resident memory of the cluster's own processes (not the pods'), summed; fails above RSS_LIMIT_MIB.
RSS_LIMIT_MIB=3072
rss() {
  local name pid kib total=0 line=""
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns \
    metrics-server; do
    pid="$(cat "${RUN}/${name}.pid" 2>/dev/null)" || continue
    kib="$(awk '/^VmRSS:/ {print $2}' "/proc/${pid}/status" 2>/dev/null || echo 0)"
    total=$((total + kib))
    line+=" ${name}=$((kib / 1024))"
  done
  for pid in $(pgrep -f "containerd-shim-runc-v2 -namespace k8s.io -address ${CONTAINERD_SOCK}"); do
    total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/${pid}/status" 2>/dev/null || echo 0)))
  done
  log "RSS of the cluster's processes: $((total / 1024)) MiB (MiB:${line}, shims included in the total)"
  ((total / 1024 <= RSS_LIMIT_MIB)) || die "above the ${RSS_LIMIT_MIB} MiB budget"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) printf 'export KUBECONFIG=%s\nexport PATH=%s:%s:$PATH\n' "${KUBECONFIG_ADMIN}" "${KUBE_BIN}" "$(bin_dir skaffold)" ;;
  load) shift; load_images "$@" ;;
  rss) rss ;;
  *) echo "usage: $0 up|down|env|rss|load IMAGE…" >&2; exit 2 ;;
esac
