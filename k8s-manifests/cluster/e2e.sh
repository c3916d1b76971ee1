#!/usr/bin/env bash
# e2e.sh (make cluster-e2e): cluster-up, the cluster tests (e2e/cluster,
# through NodePort 30700 and kubectl only), cluster-down. The cluster comes
# down whatever happened, and the exit status is the first failure's.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

down() {
  local rc=$?
  trap - EXIT
  echo "== cluster-down"
  if ! bash "$here/down.sh" && [[ $rc -eq 0 ]]; then
    rc=1
  fi
  exit "$rc"
}
trap down EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== cluster-up"
t0=$SECONDS
bash "$here/up.sh"
up=$((SECONDS - t0))

echo "== cluster tests (e2e/cluster)"
t1=$SECONDS
cd "$repo_root"
set +e
CLUSTER_E2E=1 KUBECONFIG=$KUBECONFIG_FILE CLUSTER_KUBECTL=$KUBECTL \
  go test -count=1 -p 1 -timeout 30m -v titanium/e2e/cluster/ 2>&1 | tee "$LOGS/e2e.log" |
  grep -E '^(=== RUN|--- |    --- |PASS|FAIL|ok|panic)|cluster_test|load_test|backup_test|browser_test'
rc=${PIPESTATUS[0]}
set -e
echo "cluster-e2e: up ${up}s, tests $((SECONDS - t1))s (full test log: $LOGS/e2e.log)"
exit "$rc"
