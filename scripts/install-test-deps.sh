#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages:
#   - real Redis clients (redis-cli, redis-benchmark from Debian's redis-tools;
#     redis-py from PyPI) that the RESP tests drive against weightcache, and
#     redis-server (Debian) to compare answers against;
#   - dnsmasq (the binary only: dnsmasq-base, no system service on port 53), a
#     real DNS server for the cluster's DNS-membership tests;
#   - spin, the model checker for the coherence protocol (spec/coherence.pml);
#   - podman (with runc) and debootstrap, for the image test (test/image/): it builds
#     the Dockerfile on stand-ins for the official Node images made from Debian
#     packages (scripts/image-base.sh, prepared here once and cached), since no
#     container registry can be reached.
#   - the Python clients the front-door tests drive (huggingface_hub, boto3, s3fs, moto's S3
#     server, azure-storage-blob, adlfs, the Run:ai Model Streamer), in venvs outside the repo.
#   - clang with its compiler-rt (libFuzzer, ASan, UBSan runtimes) for the fuzz
#     targets under addon/fuzz/ that npm test runs for a bounded time. The addon
#     itself still builds with g++ alone; only the fuzzers need clang.
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-test-deps: run as root (apt-get is needed for redis-tools)" >&2
    exit 1
  fi
fi

missing=()
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
# A real Redis holding the same bytes: the RESP tests compare GETRANGE answers against it.
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# /usr/sbin may not be on a non-root PATH: test the file itself.
[ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
# The Promela model checker: the coherence protocol's model check runs in npm test.
command -v spin >/dev/null 2>&1 || missing+=(spin)
# A container engine from Debian; runc is the runtime scripts/podman.sh selects.
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
[ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v eatmydata >/dev/null 2>&1 || missing+=(eatmydata) # no fsync while debootstrap unpacks
command -v clang++ >/dev/null 2>&1 || missing+=(clang)
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  # shellcheck disable=SC2068 # word splitting intended; duplicates are harmless to apt
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends ${missing[@]} >/dev/null
fi
# libFuzzer and the sanitizer runtimes are compiler-rt, only a Recommends of
# clang on Debian (libclang-rt-<major>-dev): install the one matching clang.
if [ ! -e "$(clang++ -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a" ]; then
  rt="libclang-rt-$(clang++ -dumpversion | cut -d. -f1)-dev"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$rt" >/dev/null \
    || { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$rt" >/dev/null; }
fi

PY_REDIS_VERSION="8.1.0" # protocol=3 (RESP3) needs redis-py 5 or later
if command -v python3 >/dev/null 2>&1; then
  if ! python3 -c "import redis, sys; sys.exit(0 if redis.__version__ == '${PY_REDIS_VERSION}' else 1)" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "redis==${PY_REDIS_VERSION}"
  fi
fi
echo "install-test-deps: redis-cli $(redis-cli --version | awk '{print $2}'), redis-py $(python3 -c 'import redis; print(redis.__version__)'), $(/usr/sbin/dnsmasq --version | awk 'NR == 1')"

# The base images of the image test: debootstrap takes minutes cold, so not inside a test's timeout.
bash "$(dirname "$0")/image-base.sh" >/dev/null
# Front-door clients: exact pins from test/python/*.txt, each set in its own venv under
# WEIGHTCACHE_TEST_VENVS (default /var/cache/weightcache), rebuilt only when its pins change
# (a stamp holds the pin file's hash). Cold, the main set takes ~5 min: torch from PyPI is
# the CUDA build with its libraries (~4.4 GiB), which the Run:ai streamer needs even on CPU.
VENVS="${WEIGHTCACHE_TEST_VENVS:-/var/cache/weightcache}"
PINS="$(cd "$(dirname "$0")/../test/python" && pwd)"
for set in main s3fs; do
  req="$PINS/requirements.txt"
  [ "$set" = s3fs ] && req="$PINS/requirements-s3fs.txt"
  dir="$VENVS/venv-$set"
  want="$(sha256sum "$req" | cut -c1-64)"
  if [ "$(cat "$dir/.weightcache-pins" 2>/dev/null)" != "$want" ]; then
    echo "install-test-deps: building $dir from $(basename "$req") (minutes on a cold machine)"
    rm -rf "$dir"
    mkdir -p "$VENVS"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check --no-input --progress-bar off -r "$req"
    echo "$want" > "$dir/.weightcache-pins"
  fi
done
echo "install-test-deps: python clients in $VENVS/venv-main, $VENVS/venv-s3fs"

# helm (built from the Go module proxy, ~5 min cold, cached in $(go env GOPATH)/bin) and the
# offline Kubernetes schema validators, so the chart tests in npm test start warm.
bash "$(dirname "$0")/check-helm.sh" --prepare
