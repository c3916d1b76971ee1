#!/usr/bin/env bash
# k8s-verify.sh: prove the Kustomize manifests against a real kube-apiserver
# and etcd on loopback, with no cluster, no nodes and no network.
#
# Static checks catch typos; a real API server catches what a user would hit
# at `skaffold dev`: validation, defaulting, strict field decoding, cron
# syntax, selectors that do not match their labels, port ranges, PodSecurity.
#
# Steps: build kube-apiserver and kubectl once (cached), start etcd and
# kube-apiserver on 127.0.0.1, then for every overlay: kustomize, server-side
# dry run, real apply into a fresh namespace, check every object exists,
# delete. Finally the deliberately broken manifests in testdata/broken must
# each be rejected, so the check itself can fail. Everything started here is
# stopped on exit.
#
# Environment:
#   K8S_VERIFY_OVERLAYS  space-separated overlay dirs (default: every dir in
#                        k8s-manifests/overlays that holds a kustomization)
#   K8S_VERIFY_CACHE     where the built binaries live (default:
#                        ${XDG_CACHE_HOME:-$HOME/.cache}/titanium/kubernetes-v1.33.5,
#                        shared with make cluster-up)
#   K8S_VERIFY_KEEP=1    keep the temp dir (logs, rendered manifests) on exit
# Functions run through check() and the EXIT trap look unreachable to shellcheck.
# shellcheck disable=SC2317
set -euo pipefail

readonly K8S_VERSION=v1.33.5
readonly K8S_MAJOR=1 K8S_MINOR=33

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
readonly here root
readonly tools_mod=$here/kubernetes
readonly fixture_overlays=$here/testdata/fixture/overlays
readonly broken_dir=$here/testdata/broken
readonly broken_ns=titanium-verify-broken
cache=${K8S_VERIFY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/titanium/kubernetes-$K8S_VERSION}

# ---------------------------------------------------------------- output

failures=()
broken_count=0

# shellcheck source=../steps.sh
source "$root/k8s-manifests/steps.sh"
# fail records a failure and keeps going, so one run reports every problem.
fail() {
  printf '    FAIL: %s\n' "$1" >&2
  failures+=("$1")
}
die() {
  printf 'k8s-verify: FAIL: %s\n' "$1" >&2
  exit 1
}

# check runs one check (an overlay, a broken manifest) and counts it as
# passed when it recorded no failure.
checks_passed=0
checks_failed=0
check() {
  local before=${#failures[@]}
  "$@"
  if [[ ${#failures[@]} -gt $before ]]; then
    checks_failed=$((checks_failed + 1))
  else
    checks_passed=$((checks_passed + 1))
  fi
}

# ---------------------------------------------------------------- teardown

work=""
etcd_pid=""
apiserver_pid=""

# stop_proc ends one process this script started: TERM, then KILL after 10 s.
stop_proc() {
  local pid=$1 name=$2 i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "k8s-verify: $name did not stop on TERM, killing" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_proc "$apiserver_pid" kube-apiserver
  stop_proc "$etcd_pid" etcd
  if [[ -n $work && -d $work ]]; then
    if [[ ${K8S_VERIFY_KEEP:-} == 1 ]]; then
      echo "k8s-verify: kept $work"
    else
      rm -rf "$work"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers

# free_port prints a loopback port nobody listens on, below the kernel's
# ephemeral range so outgoing connections do not take it meanwhile. A race
# with another process remains; the start functions retry on "in use".
free_port() {
  local p i
  for ((i = 0; i < 100; i++)); do
    p=$((21000 + RANDOM % 9000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  die "no free loopback port found"
}

# k runs kubectl against the loopback API server with a bounded wait.
k() { "$KUBECTL" --request-timeout=60s "$@"; }

# objects_tsv lists apiVersion, kind, name and namespace of every object in a
# JSON stream (one object or a List per document).
objects_tsv() {
  jq -r 'if .kind == "List" then .items[] else . end
         | [.apiVersion, .kind, .metadata.name, (.metadata.namespace // "")] | @tsv' "$1"
}

# kind_arg turns apiVersion + kind into kubectl's Kind.version.group form, so
# a kind that exists in two groups is never confused.
kind_arg() {
  local api=$1 kind=$2
  if [[ $api == */* ]]; then echo "$kind.${api#*/}.${api%%/*}"; else echo "$kind"; fi
}

# purge_namespace deletes a namespace and waits until it is gone. With no
# controller manager the namespace controller never runs, so after its
# objects are deleted the "kubernetes" finalizer is cleared by hand through
# the finalize subresource, as that controller would.
purge_namespace() {
  local ns=$1 i
  k get namespace "$ns" >/dev/null 2>&1 || return 0
  k delete namespace "$ns" --wait=false >/dev/null
  if k get namespace "$ns" -o json 2>/dev/null | jq '.spec.finalizers = []' >"$work/finalize.json"; then
    k replace --raw "/api/v1/namespaces/$ns/finalize" -f "$work/finalize.json" >/dev/null 2>&1 || true
  fi
  for ((i = 0; i < 300; i++)); do
    k get namespace "$ns" >/dev/null 2>&1 || return 0
    sleep 0.1
  done
  fail "namespace $ns still exists 30 s after deletion"
  return 1
}

# one_line joins a server message file into one line for the summary.
one_line() { tr '\n' ' ' <"$1" | sed 's/  */ /g; s/ $//'; }

# server_warnings prints the "Warning:" lines of a kubectl output file. With
# "strict" it records PodSecurity violations as a failure and returns 1: a
# Deployment is admitted with only a warning, but its pods are then refused
# in an enforcing namespace, so `skaffold dev` would never see them run.
server_warnings() {
  local out=$1 what=$2 mode=${3:-} warnings
  grep -q '^Warning:' "$out" || return 0
  # kubectl prints an object's warnings just before its own result line
  # ("deployment.apps/x created"), so that line names the object.
  warnings=$(awk '/^Warning:/ { w[n++] = $0; next }
                  n { for (i = 0; i < n; i++) print $1 ": " w[i]; n = 0 }
                  END { for (i = 0; i < n; i++) print "?: " w[i] }' "$out")
  note "server warnings ($what):"
  indent <<<"$warnings"
  if [[ $mode == strict ]] && grep -q 'would violate PodSecurity' <<<"$warnings"; then
    fail "$what: $(grep 'would violate PodSecurity' <<<"$warnings" | head -n 3 | tr '\n' ' ')"
    return 1
  fi
}

# ---------------------------------------------------------------- tools

ensure_packages() {
  local missing=() sudo=""
  command -v etcd >/dev/null || missing+=(etcd-server)
  command -v jq >/dev/null || missing+=(jq)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  command -v flock >/dev/null || missing+=(util-linux)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  note "installing ${missing[*]}"
  [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# kube_ldflags prints the version ldflags of the Kubernetes binaries. They
# matter: without them the server reports v0.0.0-master and kubectl cannot
# parse it.
kube_ldflags() {
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$K8S_MAJOR"
    ldflags+=" -X $pkg.gitMinor=$K8S_MINOR -X $pkg.gitTreeState=clean"
  done
  echo "$ldflags"
}

# build_tools builds kube-apiserver and kubectl from the tools module into the
# cache through build-tool.sh, which the cluster (make cluster-up) shares:
# whichever runs first builds, the other reuses.
build_tools() {
  KUBE_APISERVER=$cache/kube-apiserver
  KUBECTL=$cache/kubectl
  note "kube-apiserver and kubectl $K8S_VERSION (cold: ~13 min on 2 cores, ~3 GB of Go caches)"
  local out
  if ! out=$("$here/build-tool.sh" "$cache" "$tools_mod" "$(kube_ldflags)" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl 2>&1); then
    indent <<<"$out"
    die "building kube-apiserver failed"
  fi
  ok "$(tail -n 1 <<<"$out")"
}

# ---------------------------------------------------------------- servers

start_etcd() {
  local attempt client peer i
  for ((attempt = 1; attempt <= 3; attempt++)); do
    client=$(free_port)
    peer=$(free_port)
    [[ $client != "$peer" ]] || continue
    rm -rf "$work/etcd"
    etcd --name verify --data-dir "$work/etcd" \
      --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "verify=http://127.0.0.1:$peer" --initial-cluster-state new \
      >"$work/etcd.log" 2>&1 &
    etcd_pid=$!
    for ((i = 0; i < 200; i++)); do
      if curl -fsS --max-time 1 "http://127.0.0.1:$client/health" 2>/dev/null | grep -q '"health":"true"'; then
        ETCD_URL=http://127.0.0.1:$client
        ok "pid $etcd_pid, $ETCD_URL"
        return 0
      fi
      kill -0 "$etcd_pid" 2>/dev/null || break
      sleep 0.1
    done
    stop_proc "$etcd_pid" etcd
    etcd_pid=""
    grep -q 'address already in use' "$work/etcd.log" || break
    note "port taken meanwhile, retrying"
  done
  tail -n 20 "$work/etcd.log" | indent
  die "etcd did not become healthy"
}

start_apiserver() {
  local attempt port i token
  mkdir -p "$work/certs"
  openssl genrsa -out "$work/sa.key" 2048 2>/dev/null
  token=$(openssl rand -hex 24)
  # token,user,uid,groups: system:masters is what AlwaysAllow would grant anyway.
  echo "$token,verify-admin,verify-admin,system:masters" >"$work/tokens.csv"
  for ((attempt = 1; attempt <= 3; attempt++)); do
    port=$(free_port)
    # StorageObjectInUseProtection only adds a finalizer to PVCs that a
    # controller (absent here) would remove, so deletes would hang.
    "$KUBE_APISERVER" \
      --etcd-servers="$ETCD_URL" \
      --bind-address=127.0.0.1 --secure-port="$port" --advertise-address=127.0.0.1 \
      --cert-dir="$work/certs" \
      --service-account-issuer=https://kubernetes.default.svc.cluster.local \
      --service-account-key-file="$work/sa.key" \
      --service-account-signing-key-file="$work/sa.key" \
      --token-auth-file="$work/tokens.csv" \
      --authorization-mode=AlwaysAllow \
      --service-cluster-ip-range=10.96.0.0/16 \
      --endpoint-reconciler-type=none \
      --disable-admission-plugins=StorageObjectInUseProtection \
      --profiling=false \
      >"$work/apiserver.log" 2>&1 &
    apiserver_pid=$!
    for ((i = 0; i < 600; i++)); do
      if [[ $(curl -sk --max-time 2 -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz" 2>/dev/null) == ok ]]; then
        write_kubeconfig "$port" "$token"
        ok "pid $apiserver_pid, https://127.0.0.1:$port, $(k version -o json | jq -r '.serverVersion.gitVersion')"
        return 0
      fi
      kill -0 "$apiserver_pid" 2>/dev/null || break
      sleep 0.1
    done
    stop_proc "$apiserver_pid" kube-apiserver
    apiserver_pid=""
    grep -q 'address already in use' "$work/apiserver.log" || break
    note "port taken meanwhile, retrying"
  done
  tail -n 30 "$work/apiserver.log" | indent
  die "kube-apiserver was not ready within 60 s"
}

write_kubeconfig() {
  local port=$1 token=$2
  # The self-signed serving cert file holds its CA too, so TLS is verified.
  cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: verify
    cluster:
      server: https://127.0.0.1:$port
      certificate-authority: $work/certs/apiserver.crt
users:
  - name: verify-admin
    user:
      token: $token
contexts:
  - name: verify
    context: {cluster: verify, user: verify-admin, namespace: default}
current-context: verify
EOF
  export KUBECONFIG=$work/kubeconfig
}

# ---------------------------------------------------------------- overlays

# verify_overlay proves one overlay; it returns 0 even when the overlay fails
# (the failure is recorded) so later overlays are still checked.
verify_overlay() {
  local dir=$1 name rendered d nsfile nslist n kinds missing ns api kind obj
  name=${dir#"$root"/}
  d=$work/overlay/${name//\//_}
  mkdir -p "$d"
  rendered=$d/rendered.yaml

  step "$name: kubectl kustomize"
  if ! k kustomize "$dir" >"$rendered" 2>"$d/kustomize.err"; then
    indent "$d/kustomize.err"
    fail "$name: kustomize build failed"
    return 0
  fi
  # A client-side dry run turns the YAML stream into JSON for jq; it checks
  # nothing the server will not check again below.
  if ! k create --dry-run=client --validate=false -f "$rendered" -o json >"$d/objects.json" 2>"$d/list.err"; then
    indent "$d/list.err"
    fail "$name: rendered output is not a list of Kubernetes objects"
    return 0
  fi
  objects_tsv "$d/objects.json" >"$d/objects.tsv"
  n=$(wc -l <"$d/objects.tsv")
  kinds=$(cut -f2 "$d/objects.tsv" | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')
  ok "$n objects: $kinds"

  # Namespaces the objects live in; those the overlay declares itself are
  # applied for real first (a dry run of the rest needs them to exist).
  awk -F'\t' '$2 == "Namespace" { print $3 } $4 != "" { print $4 }' "$d/objects.tsv" | sort -u >"$d/namespaces"
  mapfile -t nslist <"$d/namespaces"
  step "$name: fresh namespaces ${nslist[*]:-(none)}"
  for ns in "${nslist[@]}"; do
    purge_namespace "$ns" || return 0
  done
  nsfile=$d/namespaces.json
  jq -s '{apiVersion: "v1", kind: "List", items: [.[] | if .kind == "List" then .items[] else . end | select(.kind == "Namespace")]}' \
    "$d/objects.json" >"$nsfile"
  if [[ $(jq '.items | length' "$nsfile") -gt 0 ]] && ! k apply -f "$nsfile" >"$d/ns.out" 2>&1; then
    indent "$d/ns.out"
    fail "$name: Namespace objects rejected"
    return 0
  fi
  for ns in "${nslist[@]}"; do
    k get namespace "$ns" >/dev/null 2>&1 || k create namespace "$ns" >/dev/null
  done
  ok

  step "$name: kubectl apply --dry-run=server"
  if ! k apply --dry-run=server -f "$rendered" >"$d/dryrun.out" 2>&1; then
    grep -v '^Warning:' "$d/dryrun.out" | grep -v 'dry run)$' >"$d/dryrun.err" || true
    indent "$d/dryrun.err"
    fail "$name: server-side dry run rejected: $(one_line "$d/dryrun.err")"
    cleanup_overlay "$name" "$d" "${nslist[@]}"
    return 0
  fi
  server_warnings "$d/dryrun.out" "$name dry run" strict &&
    ok "$(grep -c 'dry run)$' "$d/dryrun.out") objects accepted"

  step "$name: kubectl apply (real create)"
  if ! k apply -f "$rendered" >"$d/apply.out" 2>&1; then
    grep -v '^Warning:' "$d/apply.out" | grep -Ev ' (created|configured|unchanged)$' >"$d/apply.err" || true
    indent "$d/apply.err"
    fail "$name: real create rejected: $(one_line "$d/apply.err")"
    cleanup_overlay "$name" "$d" "${nslist[@]}"
    return 0
  fi
  server_warnings "$d/apply.out" "$name apply" && ok

  step "$name: every object exists"
  missing=0
  while IFS=$'\t' read -r api kind obj ns; do
    if ! k get "$(kind_arg "$api" "$kind")" "$obj" ${ns:+-n "$ns"} -o name >/dev/null 2>"$d/get.err"; then
      fail "$name: $kind $obj${ns:+ in $ns} missing after apply: $(one_line "$d/get.err")"
      missing=$((missing + 1))
    fi
  done <"$d/objects.tsv"
  [[ $missing -eq 0 ]] && ok "$n/$n found"

  cleanup_overlay "$name" "$d" "${nslist[@]}"
}

# cleanup_overlay deletes what an overlay created, namespaces last.
cleanup_overlay() {
  local name=$1 d=$2 ns
  shift 2
  step "$name: delete"
  jq -s '{apiVersion: "v1", kind: "List", items: [.[] | if .kind == "List" then .items[] else . end | select(.kind != "Namespace")]}' \
    "$d/objects.json" >"$d/delete.json"
  if ! k delete -f "$d/delete.json" --ignore-not-found --wait=true --timeout=60s >"$d/delete.out" 2>&1; then
    indent "$d/delete.out"
    fail "$name: deleting the objects failed"
  fi
  for ns in "$@"; do
    purge_namespace "$ns" || true
  done
  ok
}

# ---------------------------------------------------------------- broken

# verify_broken applies every file in testdata/broken and requires the server
# to refuse it with the message fragment named on its "# expect:" line. A
# file passing the dry run is then created for real: some checks (NodePort
# range) run only when the object is stored.
verify_broken() {
  local f
  step "broken manifests must be rejected"
  k create namespace "$broken_ns" >/dev/null
  ok "namespace $broken_ns"
  for f in "$broken_dir"/*.yaml; do
    broken_count=$((broken_count + 1))
    check reject_broken "$f"
  done
}

# reject_broken requires the server to refuse one broken manifest.
reject_broken() {
  local f=$1 name expect stage out
  name=${f#"$root"/}
  expect=$(sed -n 's/^# expect: //p' "$f" | head -n 1)
  step "$name"
  if [[ -z $expect ]]; then
    fail "$name: no '# expect:' line"
    return 0
  fi
  out=$work/broken.out
  stage="server-side dry run"
  if k apply -n "$broken_ns" --dry-run=server -f "$name" >"$out" 2>&1; then
    stage="real create"
    if k apply -n "$broken_ns" -f "$name" >"$out" 2>&1; then
      indent "$out"
      fail "$name: ACCEPTED by the server, but it must be rejected ($expect)"
      k delete -n "$broken_ns" -f "$name" --ignore-not-found >/dev/null 2>&1 || true
      return 0
    fi
  fi
  if grep -qF -- "$expect" "$out"; then
    ok "rejected at $stage:"
    grep -v '^Warning:' "$out" | indent
  else
    indent "$out"
    fail "$name: rejected at $stage, but not with the expected message ($expect): $(one_line "$out")"
  fi
}

# ---------------------------------------------------------------- main

overlay_dirs() {
  local d
  if [[ -n ${K8S_VERIFY_OVERLAYS:-} ]]; then
    for d in $K8S_VERIFY_OVERLAYS; do (cd "$d" && pwd); done
    return 0
  fi
  for d in "$root"/k8s-manifests/overlays/*/; do
    d=${d%/}
    if [[ -f $d/kustomization.yaml || -f $d/kustomization.yml || -f $d/Kustomization ]]; then
      echo "$d"
    fi
  done
}

main() {
  local overlays=() d
  mapfile -t overlays < <(overlay_dirs)
  [[ ${#overlays[@]} -gt 0 ]] || die "no overlays with a kustomization in k8s-manifests/overlays/"
  cd "$root" # relative file names in kubectl's messages

  step "tools: etcd, jq, openssl, curl"
  ensure_packages
  ok "$(etcd --version | head -n 1)"

  step "tools: kube-apiserver and kubectl $K8S_VERSION"
  build_tools

  work=$(mktemp -d "${TMPDIR:-/tmp}/k8s-verify.XXXXXX")
  export KUBECACHEDIR=$work/kube-cache # keep discovery caches out of $HOME

  step "start etcd on 127.0.0.1"
  start_etcd
  step "start kube-apiserver on 127.0.0.1"
  start_apiserver

  # The fixture overlays first: they prove the harness accepts valid objects
  # and recreates a namespace two overlays share.
  for d in "$fixture_overlays"/*/ ; do
    check verify_overlay "${d%/}"
  done
  for d in "${overlays[@]}"; do
    check verify_overlay "$d"
  done
  verify_broken

  step "done"
  if [[ ${#failures[@]} -gt 0 ]]; then
    printf 'k8s-verify: %d failure(s):\n' "${#failures[@]}" >&2
    printf '  - %s\n' "${failures[@]}" >&2
  else
    echo "k8s-verify: all ${#overlays[@]} overlay(s) valid on a real API server, $broken_count broken manifest(s) rejected, in $(secs "$run_start")"
  fi
  # Last, the plain summary line CI runners recognise: one check per overlay
  # (fixtures included) and per broken manifest.
  echo "k8s-verify: $checks_passed passed, $checks_failed failed"
  [[ ${#failures[@]} -eq 0 ]]
}

# On one line: bash reads a script as it runs, so an edit to this file during
# a run cannot make it execute anything after main.
main "$@"; exit
