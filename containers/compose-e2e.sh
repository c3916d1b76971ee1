#!/usr/bin/env bash
# compose-e2e.sh (`make compose-e2e`): the whole stack under docker-compose,
# as a user runs it, proven through http://localhost:7100 only.
#
#   1. a Docker engine (started here when none runs, and said so);
#   2. the base images (containers/base-images.sh: pulled, or local stand-ins);
#   3. Docker Compose v2 built from source as a CLI plugin, beside Debian's
#      docker-compose v1;
#   4. the Go test e2e/compose, which runs `docker-compose up --build -d` and
#      every check, then `docker compose up --build -d` (v2), and leaves
#      nothing behind (`down -v`).
#
# Exits non-zero, saying why, when no engine can run: it never passes
# silently. COMPOSE_E2E_KEEP=1 leaves the v1 stack up after a failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
start=$SECONDS

# shellcheck source=containers/engine.sh
source "$here/engine.sh"
engine_up || { echo "compose-e2e: FAIL: no Docker engine can run here" >&2; exit 1; }
echo "compose-e2e: docker client $DOCKER ($("$DOCKER" version -f '{{.Client.Version}}')), engine $("$DOCKER" version -f '{{.Server.Version}}')"
command -v docker-compose >/dev/null || { echo "compose-e2e: FAIL: docker-compose (v1) is not installed (apt-get install docker-compose)" >&2; exit 1; }

bash "$here/base-images.sh"

plugin=$(bash "$here/compose-v2.sh")
DOCKER_CONFIG=$(mktemp -d)
trap 'rm -rf "$DOCKER_CONFIG"' EXIT
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -s "$plugin" "$DOCKER_CONFIG/cli-plugins/docker-compose"
export DOCKER_CONFIG
echo "compose-e2e: $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /'), $("$DOCKER" compose version)"

echo "compose-e2e: setup took $((SECONDS - start)) s"
TITANIUM_COMPOSE_E2E=1 go test -count=1 -timeout 40m -v -run 'TestCompose' titanium/e2e/compose
echo "compose-e2e: PASS in $((SECONDS - start)) s"
