#!/usr/bin/env bash
# compose-v2.sh: build Docker Compose v2 from source (the version pinned in
# containers/compose-v2/go.mod), once, and print the binary's path. It is a
# docker CLI plugin: put it at $DOCKER_CONFIG/cli-plugins/docker-compose and
# `docker compose` runs it. A stamp of go.mod, go.sum and the Go version
# decides whether to rebuild.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mod=$here/compose-v2
out=${XDG_CACHE_HOME:-$HOME/.cache}/titanium/compose-v2
version=$(awk '$1 == "github.com/docker/compose/v2" { print $2 }' "$mod/go.mod")
[[ -n $version ]] || { echo "compose-v2: no github.com/docker/compose/v2 version in $mod/go.mod" >&2; exit 1; }
stamp=$(cat "$mod/go.mod" "$mod/go.sum" <(go env GOVERSION) | sha256sum | cut -c1-16)
if [[ -x $out/docker-compose && -f $out/stamp && $(cat "$out/stamp") == "$stamp" ]]; then
  echo "$out/docker-compose"
  exit 0
fi
mkdir -p "$out"
echo "compose-v2: building Docker Compose $version from source (a few minutes, once)" >&2
start=$SECONDS
(cd "$mod" && GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath \
  -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$version" \
  -o "$out/docker-compose.tmp" github.com/docker/compose/v2/cmd)
mv "$out/docker-compose.tmp" "$out/docker-compose"
echo "$stamp" >"$out/stamp"
echo "compose-v2: built in $((SECONDS - start)) s" >&2
echo "$out/docker-compose"
