# steps.sh: the step output of the scripts that build, verify and run
# Kubernetes here (cluster/*.sh, verify/k8s-verify.sh): each step printed
# with the time since the run began, and how long it took. Sourced, never run.
# shellcheck shell=bash

run_start=${run_start:-$EPOCHREALTIME}
step_start=$EPOCHREALTIME
secs() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }
step() {
  step_start=$EPOCHREALTIME
  printf '==> [%6s] %s\n' "$(secs "$run_start")" "$*"
}
ok() { printf '    ok (%s)%s\n' "$(secs "$step_start")" "${1:+ $1}"; }
note() { printf '    %s\n' "$@"; }
# indent prints a captured command output, indented, so server messages stand
# out under the step that produced them.
indent() { sed 's/^/      | /' "$@"; }
