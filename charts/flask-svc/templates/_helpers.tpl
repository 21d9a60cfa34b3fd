{{/* Names, labels and the few computed values every template shares. */}}

{{- define "flask-svc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or just the release name when it already contains the chart name (helm create's rule). */}}
{{- define "flask-svc.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A suffixed name that still fits the 63-character limit. */}}
{{- define "flask-svc.suffixed" -}}
{{- $full := include "flask-svc.fullname" .ctx }}
{{- printf "%s-%s" ($full | trunc (int (sub 62 (len .suffix))) | trimSuffix "-") .suffix }}
{{- end }}

{{- define "flask-svc.metricsServiceName" -}}
{{- include "flask-svc.suffixed" (dict "ctx" . "suffix" "metrics") }}
{{- end }}

{{/*
The `job` label Prometheus gives this release's targets, as the Prometheus Operator derives it from the ServiceMonitor:
the metrics Service's value of metrics.serviceMonitor.jobLabel when it has one, else the Service name. The alert
rules and the dashboard select the release by it (with the release namespace).
*/}}
{{- define "flask-svc.metricsJob" -}}
{{- $job := include "flask-svc.metricsServiceName" . }}
{{- with .Values.metrics.serviceMonitor.jobLabel }}
{{- $fixed := dict "app.kubernetes.io/component" "metrics" }}
{{- $labels := include "flask-svc.labelsWith" (dict "ctx" $ "own" $.Values.metrics.service.labels "fixed" $fixed) | fromYaml }}
{{- $job = default $job (get $labels .) }}
{{- end }}
{{- $job }}
{{- end }}

{{- define "flask-svc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: name + instance only, so they never change between upgrades. */}}
{{- define "flask-svc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flask-svc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
A resource's labels, each key written once (a duplicate key breaks kustomize post-renderers and server-side apply).
Precedence, lowest first: the chart's descriptive labels, commonLabels, the resource's own (.own), and last the
labels that identify it (selector labels and .fixed, e.g. the component), which nothing overrides.
Call with (dict "ctx" $ "own" .Values.x.labels "fixed" (dict ...)); "flask-svc.labels" is the plain form.
*/}}
{{- define "flask-svc.labelsWith" -}}
{{- $ctx := .ctx }}
{{- $labels := dict
  "helm.sh/chart" (include "flask-svc.chart" $ctx)
  "app.kubernetes.io/version" (include "flask-svc.imageTag" $ctx | trunc 63 | trimAll "-_.")
  "app.kubernetes.io/managed-by" $ctx.Release.Service
  "app.kubernetes.io/part-of" "flask-svc" }}
{{- $identity := include "flask-svc.selectorLabels" $ctx | fromYaml }}
{{- if or .test .component }}
{{- /* Test and batch stage pods must not carry the selector labels, or the Service, PDB and NetworkPolicy would
       select them. */}}
{{- $identity = dict "app.kubernetes.io/instance" $ctx.Release.Name "app.kubernetes.io/component" (default "helm-test" .component) }}
{{- end }}
{{- $merged := merge (merge (deepCopy (default dict .fixed)) $identity) (deepCopy (default dict .own)) (deepCopy $ctx.Values.commonLabels) $labels }}
{{- toYaml $merged }}
{{- end }}

{{- define "flask-svc.labels" -}}
{{- include "flask-svc.labelsWith" (dict "ctx" .) }}
{{- end }}

{{- define "flask-svc.testLabels" -}}
{{- include "flask-svc.labelsWith" (dict "ctx" . "test" true) }}
{{- end }}

{{/* commonAnnotations merged with a resource's own; renders the whole `annotations:` key or nothing. */}}
{{- define "flask-svc.annotations" -}}
{{- $all := merge (deepCopy (default dict .own)) (deepCopy .ctx.Values.commonAnnotations) }}
{{- with $all }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "flask-svc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flask-svc.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "flask-svc.modelDir" -}}
/models
{{- end }}

{{/* The pod volume that holds the model, when it comes from outside the image; empty otherwise. */}}
{{- define "flask-svc.modelVolume" -}}
{{- with .Values.model }}
{{- if and .enabled (eq .source.type "pvc") }}
{{- dict "name" "model" "persistentVolumeClaim" (dict "claimName" .source.claimName "readOnly" true) | toJson }}
{{- else if and .enabled (eq .source.type "imageVolume") }}
{{- dict "name" "model" "image" (dict "reference" .source.reference "pullPolicy" .source.pullPolicy) | toJson }}
{{- end }}
{{- end }}
{{- end }}

{{- define "flask-svc.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* The digest wins over the tag when both are set. */}}
{{- define "flask-svc.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- $suffix := ternary .Values.model.imageTagSuffix "" .Values.model.enabled }}
{{- printf "%s:%s%s" .Values.image.repository (include "flask-svc.imageTag" .) $suffix }}
{{- end }}
{{- end }}

{{/* Who manages the replica count: "keda", "hpa" or "" (the Deployment's replicas field). */}}
{{- define "flask-svc.scaler" -}}
{{- if .Values.keda.enabled }}keda{{ else if .Values.autoscaling.enabled }}hpa{{ end }}
{{- end }}

{{/*
The drain budget: preStop sleep, then gunicorn's graceful timeout for in-flight requests, then a margin for the
master to exit. An explicit terminationGracePeriodSeconds shorter than that would SIGKILL requests mid-flight.
*/}}
{{- define "flask-svc.drainSeconds" -}}
{{- add .Values.lifecycle.preStopSleepSeconds .Values.gunicorn.gracefulTimeout .Values.lifecycle.drainMarginSeconds }}
{{- end }}

{{- define "flask-svc.terminationGracePeriodSeconds" -}}
{{- $drain := include "flask-svc.drainSeconds" . | int }}
{{- $set := .Values.terminationGracePeriodSeconds }}
{{- if kindIs "invalid" $set }}
{{- $drain }}
{{- else if lt (int $set) $drain }}
{{- fail (printf "terminationGracePeriodSeconds=%d is shorter than the drain: lifecycle.preStopSleepSeconds (%d) + gunicorn.gracefulTimeout (%d) + lifecycle.drainMarginSeconds (%d) = %d; raise terminationGracePeriodSeconds or leave it empty to compute it" (int $set) (int .Values.lifecycle.preStopSleepSeconds) (int .Values.gunicorn.gracefulTimeout) (int .Values.lifecycle.drainMarginSeconds) $drain) }}
{{- else }}
{{- int $set }}
{{- end }}
{{- end }}

{{/* Native sleep action from Kubernetes 1.30 (beta, on by default); exec sleep needs /bin/sleep in the image. */}}
{{- define "flask-svc.preStop" -}}
{{- $action := .Values.lifecycle.preStopAction }}
{{- if eq $action "auto" }}
{{- $action = ternary "sleep" "exec" (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if eq $action "sleep" }}
sleep:
  seconds: {{ int .Values.lifecycle.preStopSleepSeconds }}
{{- else }}
exec:
  command: ["sleep", {{ .Values.lifecycle.preStopSleepSeconds | int | toString | quote }}]
{{- end }}
{{- end }}

{{/* ServiceMonitor / PrometheusRule: wanted, and either the operator's API is served or the user forces it. */}}
{{- define "flask-svc.monitoringApi" -}}
{{- if and .cfg.enabled (or .cfg.force (.ctx.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) }}true{{ end }}
{{- end }}

{{- define "flask-svc.serviceMonitorEnabled" -}}
{{- include "flask-svc.monitoringApi" (dict "ctx" . "cfg" .Values.metrics.serviceMonitor) }}
{{- end }}

{{- define "flask-svc.prometheusRuleEnabled" -}}
{{- include "flask-svc.monitoringApi" (dict "ctx" . "cfg" .Values.metrics.prometheusRule) }}
{{- end }}

{{- define "flask-svc.metricsServiceEnabled" -}}
{{- if or .Values.metrics.service.enabled (include "flask-svc.serviceMonitorEnabled" .) }}true{{ end }}
{{- end }}

{{/* Label a pod carries to reach the app port when networkPolicy.allowExternal is false. */}}
{{- define "flask-svc.clientLabel" -}}
{{- include "flask-svc.suffixed" (dict "ctx" . "suffix" "client") }}
{{- end }}

{{/* Egress to the DNS peers on each DNS port, UDP and TCP (the app's and the test pods' policies share it). */}}
{{- define "flask-svc.dnsEgressRule" -}}
- to:
    {{- toYaml .Values.networkPolicy.egress.dns | nindent 4 }}
  ports:
    {{- range .Values.networkPolicy.egress.dnsPorts }}
    - port: {{ . }}
      protocol: UDP
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}

{{/*
Lists of objects merged by one key (env by name, volumes by name, mounts by path): an entry of .extra whose key
matches one of .base replaces it in place, the others follow. Two .extra entries with the same key fail, naming the
value (.what): the API server, and Helm 4's server-side apply, reject duplicate keys in these lists.
*/}}
{{- define "flask-svc.mergeByKey" -}}
{{- $key := .key }}
{{- $what := .what }}
{{- $extra := dict }}
{{- range .extra }}
{{- $k := toString (get . $key) }}
{{- if hasKey $extra $k }}
{{- fail (printf "%s: two entries with %s %q; each %s must be unique" $what $key $k $key) }}
{{- end }}
{{- $_ := set $extra $k . }}
{{- end }}
{{- $out := list }}
{{- $chart := dict }}
{{- range .base }}
{{- $k := toString (get . $key) }}
{{- $_ := set $chart $k true }}
{{- $out = append $out (ternary (get $extra $k) . (hasKey $extra $k)) }}
{{- end }}
{{- range .extra }}
{{- if not (hasKey $chart (toString (get . $key))) }}
{{- $out = append $out . }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* A Kubernetes quantity (`500m`, `1.5`, `512Mi`, `1G`, or a number) as a float, for comparisons only. */}}
{{- define "flask-svc.quantity" -}}
{{- if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) }}
{{- float64 . }}
{{- else }}
{{- $number := regexFind "^[0-9]*\\.?[0-9]*" . }}
{{- $factor := get (dict "" 1.0 "m" 0.001 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18
  "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0)
  (trimPrefix $number .) }}
{{- mulf (float64 $number) $factor }}
{{- end }}
{{- end }}

{{/* A Prometheus duration (`1m30s`) in milliseconds. */}}
{{- define "flask-svc.durationMs" -}}
{{- $units := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000 "w" 604800000 "y" 31536000000 }}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+(ms|s|m|h|d|w|y)" . -1 }}
{{- $unit := regexFind "[a-z]+$" . }}
{{- $total = add $total (mul (trimSuffix $unit . | int64) (get $units $unit)) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
Checks the schema cannot express (it compares no two values, and its own "not" messages name no reason). Each
failure names the key and says why, at `helm install` / `helm template`. Included by the Deployment, which every
install renders.
*/}}
{{- define "flask-svc.validateValues" -}}
{{- $fullname := include "flask-svc.fullname" . }}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $fullname) }}
{{- fail (printf "the resource name %q (from the release name, nameOverride or fullnameOverride) is not a DNS-1035 label (a lowercase letter first, then lowercase letters, digits and '-'); the API server would refuse the Service. Set fullnameOverride" $fullname) }}
{{- end }}
{{- if eq .Values.strategy.type "RollingUpdate" }}
{{- $ru := .Values.strategy.rollingUpdate | default dict }}
{{- if and (has (toString $ru.maxSurge) (list "0" "0%")) (has (toString $ru.maxUnavailable) (list "0" "0%")) }}
{{- fail "strategy.rollingUpdate.maxSurge and strategy.rollingUpdate.maxUnavailable are both 0: a rollout could never replace a pod, and the API server refuses the Deployment; raise one of them" }}
{{- end }}
{{- end }}
{{- if eq (int .Values.metrics.port) 8080 }}
{{- fail "metrics.port: 8080 is the application's port (the container listens there); pick another, e.g. the default 9797" }}
{{- end }}
{{- if has (trimSuffix "/" .Values.metricsDir.path) (list "/tmp" "") }}
{{- fail (printf "metricsDir.path: %q is where the tmp emptyDir is mounted; use a directory of its own, e.g. /tmp/flask-svc-metrics" .Values.metricsDir.path) }}
{{- end }}
{{- $resources := .Values.resources | default dict }}
{{- $limits := $resources.limits | default dict }}
{{- range $name, $request := ($resources.requests | default dict) }}
{{- $limit := get $limits $name }}
{{- if and (not (kindIs "invalid" $request)) (not (kindIs "invalid" $limit)) (ne (toString $limit) "") }}
{{- if gt (include "flask-svc.quantity" $request | float64) (include "flask-svc.quantity" $limit | float64) }}
{{- fail (printf "resources.requests.%s (%v) is above resources.limits.%s (%v); Kubernetes refuses such a pod" $name $request $name $limit) }}
{{- end }}
{{- end }}
{{- end }}
{{- $sm := .Values.metrics.serviceMonitor }}
{{- if and $sm.enabled (gt (include "flask-svc.durationMs" $sm.scrapeTimeout | int64) (include "flask-svc.durationMs" $sm.interval | int64)) }}
{{- fail (printf "metrics.serviceMonitor.scrapeTimeout (%s) is longer than metrics.serviceMonitor.interval (%s); Prometheus refuses the scrape config" $sm.scrapeTimeout $sm.interval) }}
{{- end }}
{{- if and .Values.model.enabled (eq .Values.model.source.type "pvc") (not .Values.model.source.claimName) }}
{{- fail "model.source.claimName: name the PersistentVolumeClaim that holds the model (model.source.type is pvc)" }}
{{- end }}
{{- if and .Values.model.enabled (eq .Values.model.source.type "imageVolume") (not .Values.model.source.reference) }}
{{- fail "model.source.reference: name the OCI image that holds the model (model.source.type is imageVolume)" }}
{{- end }}
{{- if and .Values.ingress.enabled .Values.ingress.className (hasKey .Values.ingress.annotations "kubernetes.io/ingress.class") }}
{{- fail "ingress.className and the annotation kubernetes.io/ingress.class in ingress.annotations are both set; keep ingress.className (the API server refuses an Ingress with both)" }}
{{- end }}
{{- end }}

{{/* Batch stage pods: identified by instance + component, never by the selector labels. */}}
{{- define "flask-svc.batchStageSelector" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: batch-stage
{{- end }}

{{- define "flask-svc.batchClaimName" -}}
{{- default (include "flask-svc.suffixed" (dict "ctx" . "suffix" "batch")) .Values.batch.persistence.existingClaim }}
{{- end }}

{{/* The Lease whose holder is the one pod reconciling batch jobs. */}}
{{- define "flask-svc.batchLeaseName" -}}
{{- include "flask-svc.suffixed" (dict "ctx" . "suffix" "batch-reconciler") }}
{{- end }}

{{/*
Batch values that cannot work together, each failing naming its key. A claim only one pod may mount
(ReadWriteOncePod) cannot be shared by several replicas, nor by a replica and its stage pods; a ReadWriteOnce one
cannot when the pods are forced onto different nodes (a required spread or anti-affinity by hostname). A soft spread
with ReadWriteOnce works where the volume pins its pods to its node (local volumes, one-node clusters) and hangs
elsewhere: NOTES warns, since the chart cannot see the nodes at render.
*/}}
{{- define "flask-svc.batchValidate" -}}
{{- $b := .Values.batch }}
{{- if $b.enabled }}
{{- $modes := $b.persistence.accessModes }}
{{- if and (has "ReadWriteOncePod" $modes) (not (has "ReadWriteMany" $modes)) }}
{{- fail "batch.persistence.accessModes: ReadWriteOncePod lets one pod mount the claim, but the service and its stage pods share it; use ReadWriteMany (or ReadWriteOnce on one node)" }}
{{- end }}
{{- if and (gt (int (include "flask-svc.batchMaxReplicas" .)) 1) (not (has "ReadWriteMany" $modes)) }}
{{- $forced := false }}
{{- range .Values.topologySpreadConstraints }}
{{- if and (eq .topologyKey "kubernetes.io/hostname") (eq (default "DoNotSchedule" .whenUnsatisfiable) "DoNotSchedule") }}{{ $forced = true }}{{ end }}
{{- end }}
{{- if and .Values.affinity .Values.affinity.podAntiAffinity .Values.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution }}{{ $forced = true }}{{ end }}
{{- if $forced }}
{{- fail (printf "batch.persistence.accessModes: %s mounts on one node, but topologySpreadConstraints/affinity force the %s replicas onto different nodes; use ReadWriteMany" (join "," $modes) (include "flask-svc.batchMaxReplicas" .)) }}
{{- end }}
{{- end }}
{{- if le (float64 $b.leaseSeconds) (mulf 2 (float64 $b.reconcileSeconds)) }}
{{- fail (printf "batch.leaseSeconds (%v) must exceed twice batch.reconcileSeconds (%v): the reconciling pod renews its Lease once a round" $b.leaseSeconds $b.reconcileSeconds) }}
{{- end }}
{{- if and $b.jobQuota (lt (int $b.jobQuota) (mul 2 (int $b.maxRunningStages))) }}
{{- fail (printf "batch.jobQuota (%d) is below twice batch.maxRunningStages (%d): a counting job still holds its finished tokenize Job, so stages would be refused" (int $b.jobQuota) (int $b.maxRunningStages)) }}
{{- end }}
{{- if and .Values.networkPolicy.enabled .Values.networkPolicy.egress.enabled (not $b.apiServerEgress.cidrs) (not $b.apiServerEgress.to) }}
{{- fail "batch.apiServerEgress.cidrs: name the API server's addresses (kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes), or set batch.apiServerEgress.to" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The most replicas that may run at once. */}}
{{- define "flask-svc.batchMaxReplicas" -}}
{{- $scaler := include "flask-svc.scaler" . }}
{{- if eq $scaler "keda" }}{{ .Values.keda.maxReplicaCount }}{{ else if eq $scaler "hpa" }}{{ .Values.autoscaling.maxReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{- define "flask-svc.batchSecretName" -}}
{{- include "flask-svc.suffixed" (dict "ctx" . "suffix" "batch") }}
{{- end }}

{{/* Where stages call back: the release's own Service. */}}
{{- define "flask-svc.batchCallbackUrl" -}}
{{- printf "http://%s.%s.svc:%d" (include "flask-svc.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- end }}

{{/*
The stage Jobs' spec, handed to the service as JSON (FLASK_SVC_BATCH_JOB_TEMPLATE): the pod's own image, the chart's
restricted security contexts, the stage resources, the shared volume and the Job's limits. The runner adds the
name, the job-id labels, the stage's arguments and environment. Exit codes 3-5 (bad input, full volume, job gone)
fail the Job at once; a pod deleted or evicted (DisruptionTarget) is retried without counting against backoffLimit.
*/}}
{{- define "flask-svc.batchJobTemplate" -}}
{{- $b := .Values.batch }}
{{- $labels := include "flask-svc.labelsWith" (dict "ctx" . "component" "batch-stage") | fromYaml }}
{{- $container := dict
  "name" "stage"
  "image" (include "flask-svc.image" .)
  "imagePullPolicy" .Values.image.pullPolicy
  "command" (list "python" "-m" "service.batch")
  "securityContext" .Values.securityContext
  "resources" $b.resources
  "volumeMounts" (list (dict "name" "data" "mountPath" $b.persistence.mountPath) (dict "name" "tmp" "mountPath" "/tmp"))
}}
{{- $pod := dict
  "restartPolicy" "Never"
  "automountServiceAccountToken" false
  "enableServiceLinks" false
  "securityContext" .Values.podSecurityContext
  "containers" (list $container)
  "volumes" (list (dict "name" "data" "persistentVolumeClaim" (dict "claimName" (include "flask-svc.batchClaimName" .))) (dict "name" "tmp" "emptyDir" (dict "sizeLimit" .Values.tmpDir.sizeLimit)))
}}
{{- with .Values.nodeSelector }}{{ $_ := set $pod "nodeSelector" . }}{{ end }}
{{- with .Values.tolerations }}{{ $_ := set $pod "tolerations" . }}{{ end }}
{{- with .Values.imagePullSecrets }}{{ $_ := set $pod "imagePullSecrets" . }}{{ end }}
{{- $failurePolicy := dict "rules" (list
  (dict "action" "FailJob" "onExitCodes" (dict "containerName" "stage" "operator" "In" "values" (include "flask-svc.batchPermanentExitCodes" . | fromJsonArray)))
  (dict "action" "Ignore" "onPodConditions" (list (dict "type" "DisruptionTarget")))
) }}
{{- $spec := dict
  "backoffLimit" (int $b.backoffLimit)
  "activeDeadlineSeconds" (int $b.activeDeadlineSeconds)
  "ttlSecondsAfterFinished" (int $b.ttlSecondsAfterFinished)
  "podFailurePolicy" $failurePolicy
  "template" (dict "metadata" (dict "labels" $labels) "spec" $pod)
}}
{{- toJson (dict "metadata" (dict "name" (include "flask-svc.fullname" . | trunc 30 | trimSuffix "-") "labels" $labels) "spec" $spec) }}
{{- end }}

{{/* The container's resources: `resources`, with `model.resources` over it when the model is on (its memory was
measured with the largest inference bodies, docs/model-serving.md). */}}
{{- define "flask-svc.resources" -}}
{{- $resources := deepCopy (.Values.resources | default dict) }}
{{- if .Values.model.enabled }}
{{- $resources = mergeOverwrite $resources (deepCopy .Values.model.resources) }}
{{- end }}
{{- toYaml $resources }}
{{- end }}
