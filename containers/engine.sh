# engine.sh: sourced by the container scripts. It picks a docker client that
# can build with BuildKit, puts it first on PATH (docker-compose v1 runs
# whatever `docker` comes first), and starts a Docker engine when none runs.
#
# Why the client matters: Debian's docker.io (20.10) has BuildKit built in,
# while a newer client without the buildx plugin refuses DOCKER_BUILDKIT=1
# ("BuildKit is enabled but the buildx component is missing or broken").
#
# After sourcing: $DOCKER is the client, PATH starts with its directory,
# DOCKER_BUILDKIT=1 and COMPOSE_DOCKER_CLI_BUILD=1 are exported (Compose v1
# needs both for the Dockerfiles' RUN --mount=type=cache).
# shellcheck shell=bash

titanium_cache=${XDG_CACHE_HOME:-$HOME/.cache}/titanium

# pick_docker prints the first docker client on PATH, then /usr/bin/docker,
# that builds with BuildKit: a 20.10 client (BuildKit built in), or one that
# has the buildx plugin.
pick_docker() {
  local c
  for c in $(type -ap docker) /usr/bin/docker; do
    [[ -x $c ]] || continue
    if "$c" buildx version >/dev/null 2>&1; then echo "$c"; return; fi
    case $("$c" version -f '{{.Client.Version}}' 2>/dev/null) in
      1[89].* | 20.*) echo "$c"; return ;;
    esac
  done
  return 1
}

# engine_up makes sure a Docker engine answers; when none does and dockerd is
# installed and we are root, it starts one in the background and says so.
engine_up() {
  if "$DOCKER" version -f '{{.Server.Version}}' >/dev/null 2>&1; then
    return 0
  fi
  command -v dockerd >/dev/null ||
    { echo "engine: no Docker engine answers and dockerd is not installed (apt-get install docker.io)" >&2; return 1; }
  [[ $(id -u) == 0 ]] ||
    { echo "engine: no Docker engine answers; start dockerd (it needs root)" >&2; return 1; }
  mkdir -p "$titanium_cache"
  echo "engine: no Docker engine was running: starting dockerd (log: $titanium_cache/dockerd.log); it keeps running afterwards"
  nohup dockerd >"$titanium_cache/dockerd.log" 2>&1 &
  local i
  for ((i = 0; i < 60; i++)); do
    if "$DOCKER" version -f '{{.Server.Version}}' >/dev/null 2>&1; then
      echo "engine: dockerd $("$DOCKER" version -f '{{.Server.Version}}') is up (pid $!)"
      return 0
    fi
    kill -0 $! 2>/dev/null || break
    sleep 1
  done
  echo "engine: dockerd did not come up; its log ends with:" >&2
  tail -15 "$titanium_cache/dockerd.log" >&2
  return 1
}

DOCKER=$(pick_docker) || { echo "engine: no docker client that builds with BuildKit (apt-get install docker.io)" >&2; return 1; }
PATH=$(dirname "$DOCKER"):$PATH
export DOCKER PATH DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
