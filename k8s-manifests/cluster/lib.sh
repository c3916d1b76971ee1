# lib.sh: what every cluster script shares: versions, addresses, where each
# piece keeps its files, output, and starting and stopping processes by pid.
# Sourced, never run.
# shellcheck shell=bash

readonly K8S_VERSION=v1.33.5 K8S_MAJOR=1 K8S_MINOR=33
readonly CRICTL_VERSION=v1.34.0 COREDNS_VERSION=v1.12.1
readonly SKAFFOLD_VERSION=v2.16.1 REGISTRY_VERSION=v3.0.0
readonly PAUSE_IMAGE=registry.k8s.io/pause:3.10
readonly COREDNS_IMAGE=registry.k8s.io/coredns/coredns:$COREDNS_VERSION

# The node. Pods live on the bridge BRIDGE, POD_CIDR; the API server and the
# kubelet listen on the bridge's own address (GATEWAY), so pods reach the API
# through the `kubernetes` Service and nothing outside this machine can.
readonly NODE_NAME=titanium-node
readonly BRIDGE=titanium0
readonly POD_CIDR=10.244.0.0/24 GATEWAY=10.244.0.1
readonly SERVICE_CIDR=10.96.0.0/16 KUBERNETES_SVC_IP=10.96.0.1 DNS_IP=10.96.0.10
readonly APISERVER_PORT=6443
readonly ETCD_CLIENT_PORT=12379 ETCD_PEER_PORT=12380
readonly REGISTRY=127.0.0.1:5000

cluster_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$cluster_here/../.." && pwd)
readonly cluster_here repo_root

# Where things live:
# - STATE: what users and tests read (kubeconfig, logs), in the repository
#   (.cluster/, git-ignored);
# - VAR, RUN: the node's data and runtime files (containerd, kubelet, etcd,
#   volumes; sockets, pids, network namespaces), removed by cluster-down;
# - CACHE: the binaries built from module source and the registry's layers,
#   kept between runs.
readonly STATE=${CLUSTER_STATE:-$repo_root/.cluster}
readonly VAR=/var/lib/titanium-cluster RUN=/run/titanium-cluster
readonly CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/titanium
readonly KUBE_BIN=$CACHE/kubernetes-$K8S_VERSION
readonly CRICTL=$CACHE/crictl-$CRICTL_VERSION/crictl
readonly COREDNS=$CACHE/coredns-$COREDNS_VERSION/coredns
readonly SKAFFOLD=$CACHE/skaffold-$SKAFFOLD_VERSION/skaffold
readonly REGISTRY_BIN=$CACHE/registry-$REGISTRY_VERSION/registry
readonly REGISTRY_DATA=$CACHE/cluster-registry
readonly KUBECTL=$KUBE_BIN/kubectl
readonly KUBECONFIG_FILE=$STATE/kubeconfig
readonly CONTAINERD_SOCK=$RUN/containerd/containerd.sock
readonly PKI=$VAR/pki
readonly LOGS=$STATE/logs
readonly PIDS=$RUN/pids

# Debian's docker client: the Docker 28 client some machines put first on
# PATH has no buildx and refuses BuildKit builds.
readonly DOCKER=/usr/bin/docker

# ---------------------------------------------------------------- output

# shellcheck source=../steps.sh
source "$repo_root/k8s-manifests/steps.sh"
die() {
  printf 'cluster: FAIL: %s\n' "$1" >&2
  exit 1
}

# kubectl against this cluster, with a bounded wait.
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" --request-timeout=60s "$@"; }

# ---------------------------------------------------------------- processes

# start_proc NAME CMD... runs a long-lived process in its own session, its
# output in $LOGS/NAME.log and its pid in $PIDS/NAME.pid, so cluster-down
# stops exactly it, whichever shell started it.
start_proc() {
  local name=$1
  shift
  mkdir -p "$LOGS" "$PIDS"
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo "$!" >"$PIDS/$name.pid"
  printf '%s' "$1" >"$PIDS/$name.argv0"
}

# proc_alive NAME: the process in NAME.pid runs and is still the program
# start_proc started (a pid reused since is not ours).
proc_alive() {
  local pid argv0
  [[ -f $PIDS/$1.pid ]] || return 1
  pid=$(<"$PIDS/$1.pid")
  argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1) || return 1
  [[ -n $argv0 && $argv0 == "$(<"$PIDS/$1.argv0")" ]]
}

# stop_pid PID NAME [GRACE]: TERM, then KILL after GRACE seconds (default 10).
stop_pid() {
  local pid=$1 name=$2 grace=${3:-10} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  note "$name (pid $pid) did not stop on TERM, killing"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

# stop_proc NAME [GRACE] stops the process start_proc started as NAME.
stop_proc() {
  local name=$1
  if proc_alive "$name"; then
    stop_pid "$(<"$PIDS/$name.pid")" "$name" "${2:-10}"
  fi
  rm -f "$PIDS/$name.pid" "$PIDS/$name.argv0"
}

# wait_for SECONDS WHAT CMD...: polls CMD every 0.2 s until it succeeds.
wait_for() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      note "timed out after ${limit}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

# wait_proc_ready NAME SECONDS CMD...: wait_for, but fail at once when the
# process NAME has died, and show its log's tail.
wait_proc_ready() {
  local name=$1 limit=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ! proc_alive "$name"; then
      tail -n 25 "$LOGS/$name.log" | indent
      die "$name exited (log: $LOGS/$name.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 25 "$LOGS/$name.log" | indent
      die "$name not ready within ${limit}s (log: $LOGS/$name.log)"
    fi
    sleep 0.2
  done
}
