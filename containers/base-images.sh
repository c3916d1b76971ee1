#!/usr/bin/env bash
# base-images.sh: make sure every base image our Dockerfiles and docker-compose.yml
# name exists in the local Docker engine, so `docker-compose up --build`
# works on a machine that cannot reach a container registry.
#
# For each image (the FROM lines of */Dockerfile, and the redis image of
# docker-compose.yml):
#   1. present locally: kept (a stand-in made by an older recipe is remade);
#   2. else `docker pull`: a machine with registry access gets the real image;
#   3. else a local stand-in is made from Debian packages and the Go and Node
#      toolchains, and tagged with the upstream name.
# The stand-ins, and how each differs from the upstream image, are described
# in docs/deployment.md ("Offline base images").
#
# Environment:
#   DOCKER            the docker client (default: docker)
#   DEBIAN_MIRROR     debootstrap's mirror (default: http://deb.debian.org/debian)
#   BASE_IMAGES_PULL  0: never try `docker pull` (default 1)
#   BASE_IMAGES_CACHE where the Debian root filesystems are cached (default:
#                     ${XDG_CACHE_HOME:-$HOME/.cache}/titanium/base-images)
#   HOST_CA_BUNDLE    CA bundle the build stand-ins trust, so `go mod download`
#                     and `npm ci` work behind the same TLS proxy as this host
#                     (default: /etc/ssl/certs/ca-certificates.crt)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
readonly here root
docker=${DOCKER:-docker}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${BASE_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/titanium/base-images}
host_ca=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
readonly suite=bookworm
# A stand-in carries the hash of this recipe; a different hash means remake.
recipe=$(cat "$here"/base-images.sh "$here"/*.Dockerfile | sha256sum | cut -c1-12)
readonly recipe
readonly label=org.titanium.stand-in

# Packages of the two Debian root filesystems. "build" is the base of the
# golang and node stand-ins; "slim" is the base of the redis stand-in, and its
# .deb files give the distroless stand-ins their contents.
readonly build_pkgs=ca-certificates,gcc,libc6-dev,make,pkg-config,git,curl,xz-utils,netbase,tzdata,procps
readonly slim_pkgs=ca-certificates,netbase,tzdata,libssl3,redis-server,redis-tools

log() { printf 'base-images: %s\n' "$*"; }
die() { printf 'base-images: FAIL: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d)
cleanup() {
  # debootstrap mounts /proc and /sys inside its target; never leave them.
  grep -o " $work[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# images lists every image the Dockerfiles build FROM, then compose's redis.
images() {
  awk 'toupper($1) == "FROM" { print $2 }' "$root"/*/Dockerfile
  awk '$1 == "image:" && $2 ~ /^redis:/ { print $2 }' "$root"/docker-compose.yml
}

# rootfs NAME PACKAGES builds (once, cached) a tarball of a minimal Debian
# root filesystem with the given extra packages, keeping their .deb files.
rootfs() {
  local name=$1 pkgs=$2 tar=$cache/$1.tar stamp=$cache/$1.stamp
  local want="$suite $mirror $pkgs"
  if [[ -f $tar && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "$tar"
    return
  fi
  command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
  [[ $(id -u) == 0 ]] || die "debootstrap needs root to make the $name root filesystem"
  log "debootstrap $suite ($name: $pkgs); about a minute" >&2
  mkdir -p "$cache/debs"
  local dir=$work/$name
  debootstrap --variant=minbase --include="$pkgs" --cache-dir="$cache/debs" \
    "$suite" "$dir" "$mirror" >"$work/$name.log" 2>&1 ||
    { tail -20 "$work/$name.log" >&2; die "debootstrap $name failed"; }
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/log/*.log
  tar --numeric-owner -C "$dir" -cf "$tar.tmp" .
  mv "$tar.tmp" "$tar"
  echo "$want" >"$stamp"
  echo "$tar"
}

# import TARBALL TAG [--change ...] imports a root filesystem as an image.
import() {
  local tar=$1 tag=$2
  shift 2
  "$docker" import "$@" --change "LABEL $label=$recipe" "$tar" "$tag" >/dev/null
}

# build TAG CONTEXT DOCKERFILE [ARGS] builds a stand-in on top of an import.
build() {
  local tag=$1 ctx=$2 file=$3
  shift 3
  DOCKER_BUILDKIT=0 "$docker" build -q --label "$label=$recipe" -f "$file" -t "$tag" "$@" "$ctx" >/dev/null
}

# build_base imports the "build" root filesystem once per run, with the
# host's CA bundle, and prints its tag.
build_base() {
  local tag=titanium-stand-in/bookworm-build:$recipe
  if ! "$docker" image inspect "$tag" >/dev/null 2>&1; then
    import "$(rootfs build "$build_pkgs")" "$tag" --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    local ctx=$work/ca
    mkdir -p "$ctx"
    cp "$host_ca" "$ctx/ca-certificates.crt"
    printf 'FROM %s\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n' "$tag" >"$ctx/Dockerfile"
    build "$tag" "$ctx" "$ctx/Dockerfile"
  fi
  echo "$tag"
}

make_golang() {
  local image=$1 version
  version=${image#golang:}
  version=${version%%-*}
  local goroot
  goroot=$(GOTOOLCHAIN="go$version" go env GOROOT) ||
    die "cannot get the Go $version toolchain (GOTOOLCHAIN=go$version go env GOROOT)"
  [[ $("$goroot/bin/go" env GOVERSION) == "go$version" ]] || die "$goroot is not Go $version"
  build "$image" "$goroot" "$here/golang.Dockerfile" \
    --build-arg BASE="$(build_base)" --build-arg GOLANG_VERSION="$version"
}

make_node() {
  local image=$1 version
  version=${image#node:}
  version=${version%%-*}
  local node npm_dir have
  node=$(command -v node) || die "node is not installed: the node stand-in copies this machine's Node.js"
  have=$("$node" --version)
  [[ $have == "v$version" ]] || die "$image needs Node.js v$version; this machine has $have"
  npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
  local ctx=$work/node
  mkdir -p "$ctx/bin" "$ctx/lib/node_modules"
  cp "$node" "$ctx/bin/node"
  cp -a "$npm_dir" "$ctx/lib/node_modules/npm"
  build "$image" "$ctx" "$here/node.Dockerfile" \
    --build-arg BASE="$(build_base)" --build-arg NODE_VERSION="$version"
}

# distroless_rootfs DIR [glibc] assembles a distroless-like tree from the
# .deb files of the slim root filesystem: base-files, netbase, tzdata,
# Debian's CA bundle, and with glibc also libc6 and libssl3.
distroless_rootfs() {
  local dir=$1 glibc=${2:-} slim
  slim=$(rootfs slim "$slim_pkgs")
  local pkgs=(base-files netbase tzdata)
  [[ -n $glibc ]] && pkgs+=(libc6 libssl3)
  mkdir -p "$dir"
  local p deb
  for p in "${pkgs[@]}"; do
    deb=$(find "$cache/debs" -name "${p}_*.deb" | sort -V | tail -1)
    [[ -n $deb ]] || die "no $p .deb in $cache/debs"
    dpkg-deb -x "$deb" "$dir"
  done
  rm -rf "$dir"/usr/share/doc "$dir"/usr/share/man "$dir"/usr/share/lintian
  mkdir -p "$dir"/etc/ssl/certs "$dir"/tmp "$dir"/home/nonroot "$dir"/root
  tar -xf "$slim" -C "$dir" ./etc/ssl/certs/ca-certificates.crt
  chmod 1777 "$dir"/tmp
  chown 65532:65532 "$dir"/home/nonroot
  cat >"$dir"/etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
  cat >"$dir"/etc/group <<'GROUP'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
GROUP
}

make_distroless() {
  local image=$1 dir=$work/distroless-$RANDOM glibc=""
  [[ $image == *distroless/base* ]] && glibc=1
  distroless_rootfs "$dir" "$glibc"
  tar --numeric-owner -C "$dir" -cf "$dir.tar" .
  import "$dir.tar" "$image" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'USER 65532' --change 'WORKDIR /home/nonroot'
}

make_redis() {
  local image=$1
  import "$(rootfs slim "$slim_pkgs")" "$image" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'WORKDIR /data' --change 'EXPOSE 6379' --change 'CMD ["redis-server"]'
}

# ensure IMAGE makes sure IMAGE exists, pulling or making it.
ensure() {
  local image=$1 have
  if have=$("$docker" image inspect -f "{{index .Config.Labels \"$label\"}}" "$image" 2>/dev/null); then
    if [[ -z $have || $have == "$recipe" ]]; then
      log "$image: present${have:+ (stand-in)}"
      return
    fi
    log "$image: stand-in from an older recipe, remaking"
  elif [[ ${BASE_IMAGES_PULL:-1} != 0 ]] && timeout 120 "$docker" pull -q "$image" >/dev/null 2>&1; then
    log "$image: pulled"
    return
  fi
  local start=$SECONDS
  case $image in
    golang:*-bookworm) make_golang "$image" ;;
    node:*-bookworm-slim) make_node "$image" ;;
    gcr.io/distroless/static-debian12:* | gcr.io/distroless/base-debian12:*) make_distroless "$image" ;;
    redis:*) make_redis "$image" ;;
    *) die "$image: cannot be pulled and there is no local recipe for it" ;;
  esac
  log "$image: stand-in made ($((SECONDS - start)) s)"
}

"$docker" version -f '{{.Server.Version}}' >/dev/null 2>&1 || die "no Docker engine answers ($docker version)"
for image in $(images | sort -u); do
  ensure "$image"
done
