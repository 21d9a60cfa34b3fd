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

{{- define "flask-svc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: name + instance only, so they never change between upgrades. */}}
{{- define "flask-svc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flask-svc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "flask-svc.labels" -}}
helm.sh/chart: {{ include "flask-svc.chart" . }}
{{ include "flask-svc.selectorLabels" . }}
app.kubernetes.io/version: {{ include "flask-svc.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flask-svc
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Test pods must not carry the selector labels, or the Service, PDB and NetworkPolicy would select them. */}}
{{- define "flask-svc.testLabels" -}}
helm.sh/chart: {{ include "flask-svc.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flask-svc
app.kubernetes.io/component: helm-test
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
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

{{- define "flask-svc.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* The digest wins over the tag when both are set. */}}
{{- define "flask-svc.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "flask-svc.imageTag" .) }}
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
