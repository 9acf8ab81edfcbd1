# weightcache image: `docker build -t weightcache:0.1.0 .` from the repository root
# (podman/buildah: add `--format docker`, or the HEALTHCHECK is dropped).
# The build stage compiles the native addon (node-gyp against the image's own Node
# headers) and the TypeScript, then drops the dev dependencies (the compilers among
# them); the runtime stage gets only what `weightcache` loads: dist/, the built
# addon, bin/ and the production node_modules, and no compiler. CI builds and runs
# it (test/image/image.test.ts, scripts/build-image.sh); hadolint lints it
# (scripts/check-helm.sh).

# The Node image the build stage starts from; the runtime stage uses the same name
# with `-slim` appended. Point it at a mirror with
# `--build-arg NODE_IMAGE=mirror.example.com/library/node:20.20.2-bookworm`.
# Same Node as development and CI (package.json engines: >=20.18 <23).
ARG NODE_IMAGE=node:20.20.2-bookworm

FROM ${NODE_IMAGE} AS build
# node:*-bookworm is buildpack-deps: g++, make and python3 are there for node-gyp,
# and the official image ships the Node headers under /usr/local/include/node,
# which scripts/build-addon.mjs builds against (no header download).
WORKDIR /src
# Dependencies first, in a layer of their own that the build cache keeps until
# package.json or the lock changes: exactly the lock (`npm ci`), with every dev
# dependency the build needs. --ignore-scripts: this package's own install
# scripts (below) need the sources; no dependency needs its scripts here.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
# The package's install script: the native addon, node-gyp against this image's Node.
COPY scripts/build-addon.mjs scripts/
COPY addon/ addon/
RUN node scripts/build-addon.mjs && test -f addon/build/Release/weightcache.node
# Its postinstall: TypeScript → dist/. Then the dev dependencies go (typescript,
# node-gyp, node-addon-api, the test tools), so node_modules is what runs.
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
 && test -f dist/src/cli/main.js \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}-slim AS runtime
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
