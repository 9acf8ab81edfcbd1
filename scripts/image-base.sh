#!/usr/bin/env bash
# Makes stand-ins for the official Node images the Dockerfile starts from, for a
# machine that can reach Debian's packages but no container registry (CI here):
#
#   <ref>        = Debian bookworm (debootstrap, minbase) + g++, make, python3 + this
#                  machine's Node; stands in for node:20-bookworm (the build stage)
#   <ref>-slim   = Debian bookworm (minbase) + this machine's Node; stands in for
#                  node:20-bookworm-slim (the runtime stage)
#
# "This machine's Node" is the node on PATH: its binary, headers and npm, put under
# /usr/local as the official images have them (so the addon builds against the
# same Node that runs it). Prints <ref>, for `--build-arg NODE_IMAGE=<ref>`.
#
# Cached twice, keyed by the inputs (this script, the Node binary, the suite):
#   - the root filesystems as tar files under $WEIGHTCACHE_IMAGE_CACHE
#     (default /var/cache/weightcache/image-base/KEY/), outside the repository;
#   - the images themselves in podman's storage (localhost/weightcache-node-base:KEY).
# Cold (debootstrap, downloads from the Debian mirror apt uses): ~2-3 min on 2 cores.
# Warm: seconds. Needs root, podman and debootstrap (scripts/install-test-deps.sh).
set -euo pipefail

SUITE=bookworm
BUILD_PACKAGES=g++,make,python3 # what node-gyp needs; the official node:*-bookworm has them too

log() { echo "image-base: $*" >&2; }

[[ $(id -u) -eq 0 ]] || {
  log "run as root (debootstrap and podman storage need it)"
  exit 1
}
for tool in podman debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || {
    log "$tool is not installed: run 'npm run test:deps' (as root)"
    exit 1
  }
done

node_bin=$(command -v node)
node_bin=$(readlink -f "$node_bin")
nodedir=$(dirname "$(dirname "$node_bin")")
for part in "$nodedir/include/node/node_api.h" "$nodedir/lib/node_modules/npm/bin/npm-cli.js"; do
  [[ -f $part ]] || {
    log "this node ($node_bin) has no $part: the build stage needs Node's headers and npm"
    exit 1
  }
done

script_sum=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-64)
node_sum=$(sha256sum "$node_bin" | cut -c1-64)
npm_version=$(node "$nodedir/lib/node_modules/npm/bin/npm-cli.js" --version)
key=$(printf '%s\n' "$SUITE" "$(uname -m)" "$script_sum" "$node_sum" "$npm_version" | sha256sum | cut -c1-16)
ref=localhost/weightcache-node-base:$key
cache=${WEIGHTCACHE_IMAGE_CACHE:-/var/cache/weightcache/image-base}
dir=$cache/$key

# The mirror apt already uses on this machine (deb822 or one-line sources), else debootstrap's default.
mirror() {
  local m
  m=$(grep -hs -E '^URIs:' /etc/apt/sources.list.d/debian.sources | awk '{print $2}' | grep -v security | head -1 || true)
  [[ -n $m ]] || m=$(grep -hs -E '^deb[[:space:]]' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1 || true)
  echo "$m"
}

# debootstrap a root filesystem, add Node, trim what a container never uses, tar it.
make_rootfs() { # $1 = tar to write, $2 = extra packages ("" for none)
  local out=$1 include=$2
  tmp=$(mktemp -d /var/tmp/weightcache-rootfs.XXXXXX)
  local args=(--variant=minbase --cache-dir="$cache/debs")
  [[ -n $include ]] && args+=(--include="$include")
  mkdir -p "$cache/debs"
  # dpkg fsyncs every file it unpacks; a root filesystem that ends up in a tar file
  # needs none of that. eatmydata turns fsync off: 3x faster on a busy disk here.
  local nosync=()
  command -v eatmydata >/dev/null 2>&1 && nosync=(eatmydata)
  log "debootstrap $SUITE${include:+ + $include} (first run only)"
  # shellcheck disable=SC2046 # an empty mirror must be no argument at all
  "${nosync[@]}" debootstrap "${args[@]}" "$SUITE" "$tmp/root" $(mirror) >"$tmp/debootstrap.log" 2>&1 || {
    tail -20 "$tmp/debootstrap.log" >&2
    log "debootstrap failed"
    exit 1
  }
  local r=$tmp/root
  install -D -m 0755 "$node_bin" "$r/usr/local/bin/node"
  mkdir -p "$r/usr/local/include" "$r/usr/local/lib/node_modules"
  cp -a "$nodedir/include/node" "$r/usr/local/include/"
  cp -a "$nodedir/lib/node_modules/npm" "$r/usr/local/lib/node_modules/"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
  # As the official images: no package lists or downloaded .debs, docs or translations.
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/usr/share/doc/* "$r"/usr/share/man/* \
    "$r"/usr/share/locale/* "$r"/usr/share/info/* "$r"/var/log/* "$r"/tmp/* "$r"/root/.npm
  chroot "$r" /usr/local/bin/node --version >/dev/null || {
    log "node does not run inside the new root filesystem"
    exit 1
  }
  tar --numeric-owner --xattrs -C "$r" -cf "$out.tmp" .
  mv "$out.tmp" "$out"
  rm -rf "$tmp"
  tmp=
}

tmp=
trap '[[ -z $tmp ]] || rm -rf "$tmp"' EXIT

have_image() { podman image exists "$1" 2>/dev/null; }

ensure() { # $1 = image ref, $2 = tar name, $3 = extra packages
  local image=$1 tar=$dir/$2
  have_image "$image" && return
  mkdir -p "$dir"
  [[ -f $tar ]] || make_rootfs "$tar" "$3"
  log "importing $tar as $image"
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' \
    "$tar" "$image" >/dev/null
}

t0=$SECONDS
ensure "$ref" build.tar "$BUILD_PACKAGES"
ensure "$ref-slim" runtime.tar ""
# Older keys' tar files: a new Node or a changed script makes them dead weight.
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" ! -name debs -exec rm -rf {} +
podman images --format '{{.Repository}}:{{.Tag}}' localhost/weightcache-node-base |
  grep -v -E ":$key(-slim)?\$" | xargs -r podman rmi >/dev/null 2>&1 || true
log "ready in $((SECONDS - t0))s: $ref and $ref-slim"
echo "$ref"
