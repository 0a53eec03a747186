{{/* Names and labels, from one place. */}}
{{- define "wrinklefree.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wrinklefree.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "wrinklefree.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wrinklefree.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "wrinklefree.labels" -}}
{{ include "wrinklefree.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "wrinklefree.secretName" -}}
{{- .Values.apiKey.existingSecret | default (printf "%s-api-key" (include "wrinklefree.fullname" .)) -}}
{{- end -}}

{{/* The queue depth of this release's pods, as the autoscalers query it (one number: the sum). */}}
{{- define "wrinklefree.queueQuery" -}}
sum(wf_requests_queued{namespace="{{ .Release.Namespace }}",pod=~"{{ include "wrinklefree.fullname" . }}-.*"})
{{- end -}}

{{/* Seconds from SIGTERM's arrival (after the preStop) to the end of the drain, plus a margin. */}}
{{- define "wrinklefree.grace" -}}
{{- add (int .Values.preStop.seconds) (int .Values.server.drainTimeout) 5 -}}
{{- end -}}
