# images.sh: the images the cluster needs besides our six, pushed to the
# local registry that containerd pulls from (certs.d mirrors registry.k8s.io
# and docker.io to it). Nothing can be pulled from the internet here, so:
# - pause and CoreDNS are built locally, FROM scratch;
# - third-party images the overlay names (redis) must already be in the local
#   docker (`make base-images` makes them); they are pushed as they are.
# Sourced by up.sh.
# shellcheck shell=bash

# push_image LOCAL REMOTE: tag a local docker image into the registry, push.
push_image() {
  local out
  "$DOCKER" tag "$1" "$2"
  if ! out=$("$DOCKER" push "$2" 2>&1); then
    indent <<<"$out"
    die "docker push $2 failed"
  fi
}

# registry_path IMAGE: where containerd will ask the mirror for IMAGE:
# registry.k8s.io/pause:3.10 -> pause:3.10, redis:7 -> library/redis:7.
registry_path() {
  local image=$1 first=${1%%/*}
  if [[ $image != */* ]]; then
    echo "library/$image"
  elif [[ $first == *.* || $first == *:* ]]; then
    echo "${image#*/}"
  else
    echo "$image"
  fi
}

build_system_images() {
  local tmp
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: tmp is local
  trap "rm -rf '$tmp'" RETURN
  mkdir -p "$tmp/pause"
  (cd "$cluster_here/images/pause" && GOWORK=off CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w" -o "$tmp/pause/pause" pause.go)
  cp "$cluster_here/images/pause/Dockerfile" "$tmp/pause/"
  mkdir -p "$tmp/coredns"
  cp "$COREDNS" "$cluster_here/images/coredns/Dockerfile" "$tmp/coredns/"
  DOCKER_BUILDKIT=1 "$DOCKER" build -q -t "$PAUSE_IMAGE" "$tmp/pause" >/dev/null
  DOCKER_BUILDKIT=1 "$DOCKER" build -q -t "$COREDNS_IMAGE" "$tmp/coredns" >/dev/null
  push_image "$PAUSE_IMAGE" "$REGISTRY/$(registry_path "$PAUSE_IMAGE")"
  push_image "$COREDNS_IMAGE" "$REGISTRY/$(registry_path "$COREDNS_IMAGE")"
}

# push_third_party_images pushes every image the overlay names that skaffold
# does not build.
push_third_party_images() {
  local image
  for image in $(k kustomize "$repo_root/k8s-manifests/overlays/local" |
    awk '$1 == "image:" || $1 == "-" && $2 == "image:" { print $NF }' | sort -u); do
    [[ $image == titanium/* ]] && continue
    if ! "$DOCKER" image inspect "$image" >/dev/null 2>&1; then
      die "image $image is not in the local docker and cannot be pulled here: run make base-images"
    fi
    push_image "$image" "$REGISTRY/$(registry_path "$image")"
    note "$image -> $REGISTRY/$(registry_path "$image")"
  done
}
