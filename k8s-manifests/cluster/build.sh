#!/usr/bin/env bash
# build.sh: every binary the cluster runs, built from the Go module proxy into
# ~/.cache/titanium (once per machine; later runs print "cached"):
# - the Kubernetes components and kubectl, through the same recipe and cache
#   as `make k8s-verify` (k8s-manifests/verify/build-tool.sh);
# - crictl, CoreDNS, skaffold and the registry (distribution), each pinned
#   by its own tools module in tools/.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_tool="$repo_root/k8s-manifests/verify/build-tool.sh"

# build DIR MODULE LDFLAGS PACKAGE... prints build-tool's verdict under a step.
build() {
  local dir=$1 mod=$2 ldflags=$3 out
  shift 3
  step "build ${*##*/}"
  if ! out=$("$build_tool" "$dir" "$mod" "$ldflags" "$@" 2>&1); then
    indent <<<"$out"
    die "building ${*##*/} failed"
  fi
  ok "$(tail -n 1 <<<"$out")"
}

kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$K8S_MAJOR"
  kube_ldflags+=" -X $pkg.gitMinor=$K8S_MINOR -X $pkg.gitTreeState=clean"
done
build "$KUBE_BIN" "$repo_root/k8s-manifests/verify/kubernetes" "$kube_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl \
  k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy

build "${CRICTL%/*}" "$cluster_here/tools/crictl" \
  "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL_VERSION#v}" \
  sigs.k8s.io/cri-tools/cmd/crictl

# CoreDNS runs in a FROM-scratch image: it must be static.
CGO_ENABLED=0 build "${COREDNS%/*}" "$cluster_here/tools/coredns" \
  "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
  github.com/coredns/coredns

build "${SKAFFOLD%/*}" "$cluster_here/tools/skaffold" \
  "-s -w -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$SKAFFOLD_VERSION" \
  github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold

build "${REGISTRY_BIN%/*}" "$cluster_here/tools/registry" \
  "-s -w -X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION" \
  github.com/distribution/distribution/v3/cmd/registry
