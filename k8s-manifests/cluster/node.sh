# node.sh: the host side of the single node: the packages it needs, the
# kernel settings it changes (saved first, restored by cluster-down), the pod
# bridge, and each long-lived process: registry, containerd, etcd, the
# control plane, kubelet and kube-proxy. Sourced by up.sh.
# shellcheck shell=bash

# The kernel settings the kubelet (protectKernelDefaults: false), kube-proxy
# and this script may change; cluster-down writes the saved values back.
readonly SYSCTLS=(
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes
  net.ipv4.ip_forward net.ipv4.conf.all.route_localnet
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
)

# render FILE: a config file with its ${VARS} filled in.
render() {
  envsubst '${VAR} ${RUN} ${PKI} ${REGISTRY} ${PAUSE_IMAGE} ${COREDNS_IMAGE} ${BRIDGE} ${POD_CIDR} ${GATEWAY} ${DNS_IP} ${NODE_NAME}' \
    <"$cluster_here/config/$1"
}
export VAR RUN PKI REGISTRY PAUSE_IMAGE COREDNS_IMAGE BRIDGE POD_CIDR GATEWAY DNS_IP NODE_NAME

ensure_packages() {
  local missing=() cmd pkg
  for cmd in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
    etcd:etcd-server iptables:iptables conntrack:conntrack jq:jq openssl:openssl curl:curl \
    envsubst:gettext-base flock:util-linux ip:iproute2 /usr/bin/docker:docker.io; do
    pkg=${cmd#*:}
    cmd=${cmd%%:*}
    if [[ $cmd == /* ]]; then [[ -e $cmd ]] || missing+=("$pkg"); else command -v "$cmd" >/dev/null || missing+=("$pkg"); fi
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  note "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# save_sysctls records the settings once, before anything changes them; a
# second cluster-up over a running node keeps the first, original values.
save_sysctls() {
  local key
  [[ -f $VAR/sysctl.saved ]] && return 0
  mkdir -p "$VAR"
  for key in "${SYSCTLS[@]}"; do
    [[ -e /proc/sys/${key//.//} ]] && echo "$key=$(sysctl -n "$key")"
  done >"$VAR/sysctl.saved.tmp"
  mv "$VAR/sysctl.saved.tmp" "$VAR/sysctl.saved"
}

# prepare_host: directories, settings and the pod bridge. The API server binds
# to the bridge's address, so the bridge is made here rather than by the
# first pod's CNI call; the bridge plugin adopts it.
prepare_host() {
  local i
  save_sysctls
  # Bridged pod-to-Service traffic must pass through kube-proxy's rules.
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1
  mkdir -p "$VAR"/{cni/net.d,cni/ipam,pod-logs,volume-plugins,kubelet,etcd} "$RUN" "$LOGS" "$PIDS"
  for i in 1 2 3 4; do
    mkdir -p "$VAR/volumes/pv-$i"
    chmod 0777 "$VAR/volumes/pv-$i"
  done
  printf 'nameserver %s\n' "$DNS_IP" >"$VAR/resolv.conf"
  printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n' "$CONTAINERD_SOCK" "$CONTAINERD_SOCK" >"$VAR/crictl.yaml"
  render 10-titanium.conflist >"$VAR/cni/net.d/10-titanium.conflist"
  render containerd.toml >"$VAR/containerd.toml"
  local host
  for host in "$REGISTRY" registry.k8s.io docker.io; do
    mkdir -p "$VAR/certs.d/$host"
    render hosts.toml >"$VAR/certs.d/$host/hosts.toml"
  done
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$GATEWAY/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

start_registry() {
  mkdir -p "$REGISTRY_DATA"
  cat >"$VAR/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REGISTRY_DATA
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
  if ! proc_alive registry; then
    start_proc registry "$REGISTRY_BIN" serve "$VAR/registry.yml"
  fi
  wait_proc_ready registry 30 curl -fsS --max-time 1 "http://$REGISTRY/v2/"
}

start_containerd() {
  if ! proc_alive containerd; then
    start_proc containerd containerd --config "$VAR/containerd.toml"
  fi
  wait_proc_ready containerd 30 "$CRICTL" --config "$VAR/crictl.yaml" --timeout 2s info
}

start_etcd() {
  if ! proc_alive etcd; then
    start_proc etcd etcd --name titanium --data-dir "$VAR/etcd" \
      --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
      --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster "titanium=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new
  fi
  wait_proc_ready etcd 30 curl -fsS --max-time 1 "http://127.0.0.1:$ETCD_CLIENT_PORT/health"
}

start_apiserver() {
  if ! proc_alive kube-apiserver; then
    start_proc kube-apiserver "$KUBE_BIN/kube-apiserver" \
      --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
      --bind-address="$GATEWAY" --advertise-address="$GATEWAY" --secure-port="$APISERVER_PORT" \
      --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
      --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
      --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
      --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
      --kubelet-preferred-address-types=InternalIP \
      --authorization-mode=Node,RBAC \
      --enable-admission-plugins=NodeRestriction \
      --service-cluster-ip-range="$SERVICE_CIDR" \
      --service-account-issuer=https://kubernetes.default.svc.cluster.local \
      --service-account-key-file="$PKI/sa.key" --service-account-signing-key-file="$PKI/sa.key" \
      --allow-privileged=false --profiling=false
  fi
  wait_proc_ready kube-apiserver 90 k get --raw /readyz
}

start_controllers() {
  if ! proc_alive kube-controller-manager; then
    start_proc kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
      --kubeconfig="$PKI/controller-manager.kubeconfig" \
      --authentication-kubeconfig="$PKI/controller-manager.kubeconfig" \
      --authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
      --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
      --use-service-account-credentials=true \
      --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
      --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
      --service-cluster-ip-range="$SERVICE_CIDR" --profiling=false
  fi
  if ! proc_alive kube-scheduler; then
    start_proc kube-scheduler "$KUBE_BIN/kube-scheduler" \
      --kubeconfig="$PKI/scheduler.kubeconfig" \
      --authentication-kubeconfig="$PKI/scheduler.kubeconfig" \
      --authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
      --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false --profiling=false
  fi
  wait_proc_ready kube-controller-manager 60 curl -fsk --max-time 1 https://127.0.0.1:10257/healthz
  wait_proc_ready kube-scheduler 60 curl -fsk --max-time 1 https://127.0.0.1:10259/healthz
}

start_kubelet() {
  render kubelet.yaml >"$VAR/kubelet.yaml"
  if ! proc_alive kubelet; then
    start_proc kubelet "$KUBE_BIN/kubelet" \
      --config="$VAR/kubelet.yaml" --kubeconfig="$PKI/kubelet.kubeconfig" \
      --root-dir="$VAR/kubelet" --cert-dir="$VAR/kubelet/pki" \
      --hostname-override="$NODE_NAME" --node-ip="$GATEWAY"
  fi
  wait_proc_ready kubelet 60 curl -fsS --max-time 1 http://127.0.0.1:10248/healthz
}

start_kube_proxy() {
  render kube-proxy.yaml >"$VAR/kube-proxy.yaml"
  if ! proc_alive kube-proxy; then
    start_proc kube-proxy "$KUBE_BIN/kube-proxy" --config="$VAR/kube-proxy.yaml"
  fi
  wait_proc_ready kube-proxy 60 curl -fsS --max-time 1 http://127.0.0.1:10256/healthz
}
