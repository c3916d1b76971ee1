#!/usr/bin/env bash
# up.sh (make cluster-up): a single-node Kubernetes cluster on this machine,
# with the local overlay deployed by skaffold as users deploy it:
#  1. build the binaries from module source (cached: build.sh);
#  2. a fresh node: credentials, kernel settings, the pod bridge;
#  3. a registry on 127.0.0.1:5000 with the pause, CoreDNS and redis images;
#  4. containerd, etcd, kube-apiserver, controller-manager, scheduler,
#     kubelet, kube-proxy, each as a process of its own (pids in
#     /run/titanium-cluster/pids, logs in .cluster/logs);
#  5. CoreDNS and node-local volumes;
#  6. `skaffold run --default-repo=127.0.0.1:5000`: the six images built by
#     the local docker, pushed to the registry, pulled by containerd;
#  7. wait until every Deployment is Available and NodePort 30700 answers.
# It leaves the cluster running; kubeconfig: .cluster/kubeconfig. Any
# failure tears everything down again (CLUSTER_KEEP=1 keeps it to debug).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=pki.sh
source "$here/pki.sh"
# shellcheck source=node.sh
source "$here/node.sh"
# shellcheck source=images.sh
source "$here/images.sh"

readonly NAMESPACE=titanium-local NODEPORT_URL=http://127.0.0.1:30700

on_exit() {
  local rc=$?
  trap - EXIT
  if [[ $rc -ne 0 ]]; then
    if [[ ${CLUSTER_KEEP:-} == 1 ]]; then
      echo "cluster-up failed; kept running for debugging (make cluster-down removes it). Logs: $LOGS" >&2
    else
      echo "cluster-up failed; tearing down (CLUSTER_KEEP=1 keeps it). Logs: $LOGS" >&2
      bash "$here/down.sh" >&2 || true
    fi
  fi
  exit "$rc"
}

stats_healthy() {
  curl -fsS --max-time 2 "$NODEPORT_URL/stats" | jq -e '.status == "HEALTHY"' >/dev/null
}

wait_node_ready() {
  wait_for 60 "node registered" k get node "$NODE_NAME" || die "node $NODE_NAME never registered (log: $LOGS/kubelet.log)"
  k wait --for=condition=Ready "node/$NODE_NAME" --timeout=90s >/dev/null
}

# deploy runs skaffold as a user would, with the repository's skaffold.yaml.
deploy() {
  # Debian's docker client first: skaffold runs `docker build` for BuildKit.
  local path="$KUBE_BIN:/usr/bin:$PATH"
  # A global config of its own: no metrics prompt, no update check (there is
  # no network), nothing written to ~/.skaffold.
  printf 'global:\n  collect-metrics: false\n  update-check: false\n  survey:\n    disable-prompt: true\n' \
    >"$STATE/skaffold-config.yaml"
  (cd "$repo_root" && PATH=$path SKAFFOLD_UPDATE_CHECK=false \
    "$SKAFFOLD" run --default-repo="$REGISTRY" --kubeconfig="$KUBECONFIG_FILE" \
      --config="$STATE/skaffold-config.yaml" \
      --update-check=false --interactive=false --status-check=true \
      --cache-artifacts=true) >"$LOGS/skaffold.log" 2>&1 || {
    tail -n 40 "$LOGS/skaffold.log" | indent
    die "skaffold run failed (log: $LOGS/skaffold.log)"
  }
}

main() {
  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  step "packages"
  ensure_packages
  ok
  bash "$here/build.sh"

  step "docker and the base images"
  # The same engine start (dockerd when none answers) and base images as
  # make compose-e2e, so make cluster-up also works on a fresh machine.
  # A fresh bash: engine.sh sets DOCKER, which lib.sh holds read-only.
  bash -c 'source "$1/containers/engine.sh" && engine_up && bash "$1/containers/base-images.sh"' _ "$repo_root" ||
    die "no Docker engine, or the base images could not be made (containers/base-images.sh)"
  "$DOCKER" info >/dev/null 2>&1 || die "the docker daemon does not answer ($DOCKER info); start dockerd first"
  ok "$("$DOCKER" version -f 'server {{.Server.Version}}')"

  step "fresh node: tear down what a previous run left"
  bash "$here/down.sh" >/dev/null
  ok
  step "credentials, kernel settings, bridge $BRIDGE ($GATEWAY)"
  make_pki
  prepare_host
  ok

  step "registry on $REGISTRY; pause, CoreDNS and third-party images"
  start_registry
  build_system_images
  push_third_party_images
  ok

  step "containerd, etcd, kube-apiserver on https://$GATEWAY:$APISERVER_PORT"
  start_containerd
  start_etcd
  start_apiserver
  ok "$(k version -o json | jq -r .serverVersion.gitVersion)"
  step "controller-manager, scheduler, kubelet, kube-proxy"
  start_controllers
  start_kubelet
  start_kube_proxy
  wait_node_ready
  ok "node $NODE_NAME Ready"

  step "CoreDNS and node-local volumes"
  render coredns.yaml | k apply -f - >/dev/null
  render volumes.yaml | k apply -f - >/dev/null
  k -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null
  ok

  step "skaffold run --default-repo=$REGISTRY (log: $LOGS/skaffold.log)"
  deploy
  ok
  step "every Deployment Available, $NODEPORT_URL answering"
  k -n "$NAMESPACE" wait --for=condition=Available deployment --all --timeout=300s >/dev/null
  wait_for 60 "$NODEPORT_URL/readyz" curl -fsS --max-time 2 "$NODEPORT_URL/readyz" ||
    die "NodePort 30700 does not answer on 127.0.0.1"
  # Ready pods are not yet a ready stack: the load balancers find the other
  # services through DNS (cached up to 30 s by CoreDNS). Done when /stats
  # says HEALTHY, every service ONLINE.
  wait_for 120 "/stats HEALTHY" stats_healthy || die "$NODEPORT_URL/stats not HEALTHY within 120 s"
  ok
  k -n "$NAMESPACE" get deployments
  echo "cluster up in $(secs "$run_start"): KUBECONFIG=$KUBECONFIG_FILE, $NODEPORT_URL"
}

main "$@"; exit
