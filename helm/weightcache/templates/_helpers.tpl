{{/* Names and labels. */}}
{{- define "weightcache.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "weightcache.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "weightcache.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "weightcache.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels; call with (dict "root" $ "component" "node"). */}}
{{- define "weightcache.selectorLabels" -}}
app.kubernetes.io/name: {{ include "weightcache.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "weightcache.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "weightcache.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "weightcache.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "weightcache.headlessName" -}}
{{- printf "%s-headless" (include "weightcache.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "weightcache.originSecretName" -}}
{{- default (printf "%s-origin" (include "weightcache.fullname" .)) .Values.originSecret.existingSecret -}}
{{- end -}}

{{- define "weightcache.authSecretName" -}}
{{- default (printf "%s-auth" (include "weightcache.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{/*
A Kubernetes quantity ("8Gi", "500M", "1e9", 1073741824) → bytes, as a float.
Only the suffixes a memory or storage size uses; anything else fails the render.
*/}}
{{- define "weightcache.quantityBytes" -}}
{{- $q := toString . -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q -}}
{{- $suffix := trimPrefix $num $q -}}
{{- $mult := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 -}}
{{- if or (not $num) (not (hasKey $mult $suffix)) -}}
{{- fail (printf "cannot read %q as a byte quantity (use e.g. 8Gi, 512Mi, 8G)" $q) -}}
{{- end -}}
{{- mulf (float64 $num) (get $mult $suffix) -}}
{{- end -}}

{{/* A config duration (ms as a number, or "500ms", "30s", "2m", "1h") → whole seconds, rounded up. */}}
{{- define "weightcache.durationSeconds" -}}
{{- $d := toString . -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $d -}}
{{- $unit := trimPrefix $num $d -}}
{{- $mult := dict "" 0.001 "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 -}}
{{- if or (not $num) (not (hasKey $mult $unit)) -}}
{{- fail (printf "cannot read %q as a duration (use e.g. 30s)" $d) -}}
{{- end -}}
{{- ceil (mulf (float64 $num) (get $mult $unit)) | int -}}
{{- end -}}

{{/*
Auth keys, from the auth Secret's mount; call with (dict "root" $ "tokens" bool).
tokens false (a sidecar on loopback and its unix socket, local by construction):
only the cluster secret, which the sidecar needs to talk to the nodes.
*/}}
{{- define "weightcache.authConfig" -}}
{{- $v := .root.Values -}}
{{- if $v.auth.enabled -}}
{{- $a := dict "clusterSecretFile" "/etc/weightcache/auth/cluster-secret" -}}
{{- if .tokens -}}
{{- $_ := set $a "tokensFile" "/etc/weightcache/auth/tokens" -}}
{{- $_ := set $a "adminTokensFile" "/etc/weightcache/auth/admin-tokens" -}}
{{- end -}}
{{- toYaml $a -}}
{{- else if $v.auth.insecure -}}
{{- toYaml (dict "insecure" true) -}}
{{- end -}}
{{- end -}}

{{- define "weightcache.membersDns" -}}
{{- toYaml (dict "dns" (dict "name" (printf "%s.%s.svc.%s" (include "weightcache.headlessName" .) .Release.Namespace .Values.clusterDomain) "port" (int .Values.node.ports.transport))) -}}
{{- end -}}

{{/*
The node's config tree: keys computed from chart values, then `config`, then
`node.config` (later wins, key by key). Rendered to YAML by the ConfigMap.
*/}}
{{- define "weightcache.nodeConfig" -}}
{{- $v := .Values -}}
{{- $user := mergeOverwrite (deepCopy $v.config) (deepCopy $v.node.config) -}}
{{- $computed := dict -}}
{{- $_ := set $computed "http" (dict "listen" (printf "0.0.0.0:%d" (int $v.node.ports.http))) -}}
{{- $_ := set $computed "transport" (dict "listen" (printf "0.0.0.0:%d" (int $v.node.ports.transport))) -}}
{{- if $v.node.resp.enabled -}}
{{- $_ := set $computed "resp" (dict "listen" (printf "0.0.0.0:%d" (int $v.node.ports.resp))) -}}
{{- end -}}
{{- /* cluster.self comes from the pod IP (env WEIGHTCACHE_CLUSTER_SELF), not from here. */ -}}
{{- $_ := set $computed "cluster" (dict "members" (include "weightcache.membersDns" . | fromYaml)) -}}
{{- $cache := dict "dram" dict -}}
{{- if not (dig "cache" "dram" "maxBytes" "" $user) -}}
{{- $limit := dig "limits" "memory" "" $v.node.resources -}}
{{- if not $limit -}}
{{- fail "node.resources.limits.memory is required to size cache.dram.maxBytes (or set config.cache.dram.maxBytes)" -}}
{{- end -}}
{{- $_ := set $cache.dram "maxBytes" (floor (mulf (include "weightcache.quantityBytes" $limit) $v.node.dramFraction) | int64) -}}
{{- end -}}
{{- $nvme := dict "dir" "/var/lib/weightcache/chunks" -}}
{{- if and (or (eq $v.node.nvme.type "pvc") (eq $v.node.nvme.type "emptyDir")) (not (dig "cache" "nvme" "maxBytes" "" $user)) -}}
{{- $_ := set $nvme "maxBytes" (floor (mulf (include "weightcache.quantityBytes" $v.node.nvme.size) $v.node.nvme.maxFraction) | int64) -}}
{{- end -}}
{{- $_ := set $cache "nvme" $nvme -}}
{{- $_ := set $computed "cache" $cache -}}
{{- if eq (dig "origin" "type" "fs" $user) "fs" -}}
{{- $_ := set $computed "origin" (dict "fs" (dict "root" "/var/lib/weightcache/origin")) -}}
{{- end -}}
{{- with include "weightcache.authConfig" (dict "root" . "tokens" true) | fromYaml -}}
{{- $_ := set $computed "auth" . -}}
{{- end -}}
{{- /* /metrics needs a token unless auth.openMetrics opts in: a ServiceMonitor given no scrape
       token (metrics.serviceMonitor.authorization) gets the opt-in, so scraping keeps working. */ -}}
{{- if and $v.auth.enabled $v.metrics.serviceMonitor.enabled (not $v.metrics.serviceMonitor.authorization) -}}
{{- $_ := set $computed.auth "openMetrics" true -}}
{{- end -}}
{{- toYaml (mergeOverwrite $computed $user) -}}
{{- end -}}

{{/* The sidecar's config tree: computed keys, then `config`, then `sidecar.config`. */}}
{{/* Where the sidecar container sees sidecar.mount.hostPath, and the FUSE mount inside it. */}}
{{- define "weightcache.sidecarMountDir" -}}/var/lib/weightcache/mount{{- end -}}
{{- define "weightcache.sidecarMountPath" -}}{{ include "weightcache.sidecarMountDir" . }}/fs{{- end -}}

{{- define "weightcache.sidecarConfig" -}}
{{- $v := .Values -}}
{{- $user := mergeOverwrite (deepCopy $v.config) (deepCopy $v.sidecar.config) -}}
{{- $computed := dict -}}
{{- $_ := set $computed "http" (dict "listen" (printf "127.0.0.1:%d" (int $v.sidecar.port))) -}}
{{- $_ := set $computed "sidecar" (dict "socket" "/run/weightcache/weightcache.sock") -}}
{{- $_ := set $computed "cluster" (dict "members" (include "weightcache.membersDns" . | fromYaml)) -}}
{{- $cache := dict "nvme" (dict "dir" "/var/lib/weightcache/chunks" "maxBytes" $v.sidecar.tier.maxBytes) -}}
{{- if not (dig "cache" "dram" "maxBytes" "" $user) -}}
{{- $limit := dig "limits" "memory" "" $v.sidecar.resources -}}
{{- if not $limit -}}
{{- fail "sidecar.resources.limits.memory is required to size cache.dram.maxBytes (or set sidecar.config.cache.dram.maxBytes)" -}}
{{- end -}}
{{- $_ := set $cache "dram" (dict "maxBytes" (floor (mulf (include "weightcache.quantityBytes" $limit) $v.sidecar.dramFraction) | int64)) -}}
{{- end -}}
{{- $_ := set $computed "cache" $cache -}}
{{- if eq (dig "origin" "type" "fs" $user) "fs" -}}
{{- $_ := set $computed "origin" (dict "fs" (dict "root" "/var/lib/weightcache/origin")) -}}
{{- end -}}
{{- with include "weightcache.authConfig" (dict "root" . "tokens" (eq $v.sidecar.listen "hostIP")) | fromYaml -}}
{{- $_ := set $computed "auth" . -}}
{{- end -}}
{{- if $v.sidecar.mount.enabled -}}
{{- if not $v.sidecar.mount.containers -}}
{{- fail "sidecar.mount.containers: name at least one container for the mount's root (sidecar.mount.enabled is true)" -}}
{{- end -}}
{{- $mount := dict "path" (include "weightcache.sidecarMountPath" .) "containers" $v.sidecar.mount.containers -}}
{{- $_ := set $computed "mount" (mergeOverwrite (deepCopy $v.sidecar.mount.config) $mount) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $computed $user) -}}
{{- end -}}

{{/* Seconds the drain needs: preStop sleep + the longer of http/resp.shutdownGrace (+ margin for the NVMe flush). */}}
{{- define "weightcache.graceSeconds" -}}
{{- $cfg := include .configTemplate .root | fromYaml -}}
{{- $grace := include "weightcache.durationSeconds" (dig "http" "shutdownGrace" "30s" $cfg) | int -}}
{{- /* RESP drains in parallel with HTTP, for its own grace: the longer one counts. */ -}}
{{- if kindIs "map" (get $cfg "resp") -}}
{{- $grace = max $grace (include "weightcache.durationSeconds" (dig "resp" "shutdownGrace" "30s" $cfg) | int) | int -}}
{{- end -}}
{{- $explicit := .explicit -}}
{{- if $explicit -}}
{{- if le (int $explicit) (add .preStop $grace | int) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed http.shutdownGrace (and resp.shutdownGrace) plus the preStop sleep: %ds + %ds, or in-flight reads are cut by SIGKILL" (int $explicit) $grace .preStop) -}}
{{- end -}}
{{- $explicit | int -}}
{{- else -}}
{{- add .preStop $grace 15 -}}
{{- end -}}
{{- end -}}

{{/*
The sidecar listens on loopback and on a unix socket only, so kubelet's httpGet
probes (which dial the pod IP) cannot reach it: the probes ask over the socket.
*/}}
{{- define "weightcache.sidecarProbe" -}}
exec:
  command:
    - node
    - -e
    - "require('node:http').get({socketPath:'/run/weightcache/weightcache.sock',path:'{{ . }}',timeout:3000},(r)=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
{{- end }}
