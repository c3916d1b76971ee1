#!/usr/bin/env bash
# down.sh (make cluster-down): remove everything cluster-up made, in the order
# that lets each piece clean up after itself, then by hand whatever is left:
# 1. kubelet and kube-proxy stop, so nothing restarts pods;
# 2. every pod sandbox is stopped and removed through the CRI, which tears
#    down its network (veth, IP) through the bridge plugin;
# 3. containerd, its leftover shims and container processes (by the pids in
#    its state directory), the control plane, etcd and the registry, each by
#    the pid recorded when it started;
# 4. iptables: kube-proxy's own cleanup, then any KUBE-* or CNI-* chain left;
# 5. mounts under the node's directories, the bridge and its veths;
# 6. kernel settings back to their saved values, the kubelet's cgroups;
# 7. the node's directories. The built binaries and registry layers stay in
#    ~/.cache/titanium.
# Safe to run twice, and on a half-started cluster.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

crictl() { "$CRICTL" --config "$VAR/crictl.yaml" --timeout 30s "$@"; }

remove_pods() {
  proc_alive containerd || return 0
  crictl rmp --all --force >/dev/null 2>&1 || note "crictl rmp failed; processes are killed below"
}

# kill_leftover_tasks kills what containerd left running: each container's
# init process and each shim, by the pids in the task bundles.
kill_leftover_tasks() {
  local f pid
  for f in "$RUN"/containerd/io.containerd.runtime.v2.task/*/*/init.pid \
    "$RUN"/containerd/io.containerd.runtime.v2.task/*/*/shim.pid; do
    [[ -f $f ]] || continue
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || continue
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# remove_iptables_chains deletes the jumps to and the chains named KUBE-* and
# CNI-* in every table, IPv4 and IPv6; docker's chains are left alone.
remove_iptables_chains() {
  local ipt table rule chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for table in filter nat mangle raw; do
      "$ipt" -t "$table" -S >/dev/null 2>&1 || continue
      # Rules jumping to our chains, from any chain, deleted one by one.
      "$ipt" -t "$table" -S | { grep -E -- '^-A .* -j (KUBE-|CNI-)' || true; } | while read -r rule; do
        eval "$ipt -t $table ${rule/-A/-D}" 2>/dev/null || true
      done
      for chain in $("$ipt" -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ { print $2 }'); do
        "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$ipt" -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ { print $2 }'); do
        "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

# unmount_all unmounts everything under the node's directories, deepest
# first (overlay roots, shm, network namespaces, the kubelet's tmpfs).
unmount_all() {
  local m
  for m in $(awk -v a="$VAR" -v b="$RUN" 'index($5, a) == 1 || index($5, b) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || note "could not unmount $m"
  done
}

remove_links() {
  local veth
  for veth in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
    ip link del "$veth" 2>/dev/null || true
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link del "$BRIDGE"
  fi
}

restore_sysctls() {
  [[ -f $VAR/sysctl.saved ]] || return 0
  sysctl -q -p "$VAR/sysctl.saved" >/dev/null 2>&1 || note "some kernel settings could not be restored: $(tr '\n' ' ' <"$VAR/sysctl.saved")"
}

# remove_cgroups removes the kubelet's /kubepods tree in each cgroup v1
# hierarchy (and cgroup v2), leaves first.
remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ -d $d ]] && note "cgroup $d still in use"
  done
  return 0
}

main() {
  local name
  step "stop kubelet and kube-proxy"
  stop_proc kubelet 20
  stop_proc kube-proxy
  ok
  step "remove pods, stop containerd"
  remove_pods
  stop_proc containerd 20
  kill_leftover_tasks
  ok
  step "stop control plane, etcd, registry"
  for name in kube-scheduler kube-controller-manager kube-apiserver etcd registry; do
    stop_proc "$name"
  done
  ok
  step "iptables, mounts, bridge, kernel settings, cgroups"
  if [[ -x $KUBE_BIN/kube-proxy ]]; then
    "$KUBE_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  remove_iptables_chains
  unmount_all
  remove_links
  restore_sysctls
  remove_cgroups
  ok
  step "remove node directories"
  if awk -v a="$VAR" -v b="$RUN" 'index($5, a) == 1 || index($5, b) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    die "mounts remain under $VAR or $RUN; not deleting them"
  fi
  rm -rf "$VAR" "$RUN"
  rm -f "$KUBECONFIG_FILE"
  ok "cluster down in $(secs "$run_start")"
}

main "$@"; exit
