#!/usr/bin/env bash
# build-tool.sh: build Go commands pinned by a tools module (a go.mod with a
# `tool` block, kept outside go.work) into a cache directory, once per
# machine. `make k8s-verify` and `make cluster-up` both build through here,
# so they share one build of the Kubernetes binaries.
#
# Usage: build-tool.sh CACHE_DIR MODULE_DIR LDFLAGS PACKAGE...
#
# Each binary (named after the last element of its package path) is rebuilt
# only when its stamp differs: a hash of the module's go.mod and go.sum, the
# ldflags, the Go version and CGO_ENABLED (set it in the environment for a
# static binary). Commands asked for together are built by one
# `go build`, so their shared packages compile once. A lock serialises
# builds into the same cache, so a second caller waits and then reuses.
set -euo pipefail

[[ $# -ge 4 ]] || { echo "usage: build-tool.sh CACHE_DIR MODULE_DIR LDFLAGS PACKAGE..." >&2; exit 2; }
cache=$1 module=$2 ldflags=$3
shift 3

stamp=$({ cat "$module/go.mod" "$module/go.sum"; echo "$ldflags"; go version; go env CGO_ENABLED; } | sha256sum | cut -c1-32)
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

missing=()
for pkg in "$@"; do
  bin=${pkg##*/}
  if [[ ! -x $cache/$bin || $(cat "$cache/.stamp-$bin" 2>/dev/null) != "$stamp" ]]; then
    missing+=("$pkg")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "cached in $cache"
  exit 0
fi

start=$SECONDS
log=$cache/build.log
tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# -mod=mod: the tools modules carry no vendor directory; go.sum still pins
# every module. -trimpath keeps build paths out of the binaries.
if ! (cd "$module" && GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" \
  go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${missing[@]}") >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "build-tool: building ${missing[*]##*/} failed (full log: $log)" >&2
  exit 1
fi
for pkg in "${missing[@]}"; do
  bin=${pkg##*/}
  mv -f "$tmp/$bin" "$cache/$bin"
  echo "$stamp" >"$cache/.stamp-$bin"
done
echo "built ${missing[*]##*/} into $cache in $((SECONDS - start))s"
