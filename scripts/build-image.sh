#!/usr/bin/env bash
# Builds the weightcache image from the Dockerfile with podman (docker-format, so the
# HEALTHCHECK is kept) and prints its reference on the last line.
#
# Usage: scripts/build-image.sh [--tag REF] [--debian-base] [--offline]
#   --tag REF       the image's name (default localhost/weightcache:VERSION)
#   --debian-base   start from stand-ins for the official Node images, made from Debian
#                   packages and this machine's Node by scripts/image-base.sh (for
#                   machines that cannot pull from a container registry)
#   --offline       no network inside the build: `npm ci` installs from this machine's
#                   npm cache (mounted copy-on-write, the cache itself is not changed),
#                   which works only if package-lock.json is complete and `npm install`
#                   has filled the cache. With an official image, pass NODE_IMAGE yourself.
# Env: NODE_IMAGE overrides the Dockerfile's base (the build stage; `-slim` for the runtime).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/podman.sh
source "$root/scripts/podman.sh"

version=$(node -p "require('$root/package.json').version")
tag=localhost/weightcache:$version
debian_base=0
offline=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --tag) tag=$2 && shift 2 ;;
    --debian-base) debian_base=1 && shift ;;
    --offline) offline=1 && shift ;;
    *) echo "build-image: unknown argument '$1' (expected --tag REF, --debian-base, --offline)" >&2 && exit 2 ;;
  esac
done

args=(--format docker --tag "$tag")
if [[ $debian_base == 1 ]]; then
  NODE_IMAGE=$(bash "$root/scripts/image-base.sh" | tail -1)
fi
[[ -n ${NODE_IMAGE:-} ]] && args+=(--build-arg "NODE_IMAGE=$NODE_IMAGE")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ $offline == 1 ]]; then
  cache=$(npm config get cache)
  [[ -d $cache/_cacache ]] || {
    echo "build-image: no npm cache at $cache: run 'npm install' first" >&2
    exit 1
  }
  # npm's global config file in the Node images (/usr/local/etc/npmrc): never ask the
  # registry, take every package from the cache.
  printf 'offline=true\nupdate-notifier=false\n' >"$tmp/npmrc"
  args+=(--network none --volume "$cache:/root/.npm:O" --volume "$tmp/npmrc:/usr/local/etc/npmrc:ro")
fi

t0=$SECONDS
wc_podman build "${args[@]}" "$root" >&2
size=$(wc_podman image inspect --format '{{.Size}}' "$tag")
echo "build-image: $tag built in $((SECONDS - t0))s, $((size / 1024 / 1024)) MiB" >&2
echo "$tag"
