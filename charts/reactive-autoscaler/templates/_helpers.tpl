{{/* Chart name. */}}
{{- define "ra.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "ra.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "ra.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "ra.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "ra.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ra.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ra.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "ra.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ra.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ra.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ra.tokenSecret" -}}
{{- default (printf "%s-webhook" (include "ra.fullname" .)) .Values.webhook.existingSecret }}
{{- end }}

{{/* The Secret of the TLS certificate of the webhook and /metrics: the
user's (webhook.tls.secretName), else with hardened one the chart
generates; "" = plain HTTP. */}}
{{- define "ra.tlsSecret" -}}
{{- if .Values.webhook.tls.secretName -}}
{{- .Values.webhook.tls.secretName -}}
{{- else if .Values.hardened -}}
{{- include "ra.fullname" . }}-tls
{{- end -}}
{{- end }}

{{/* Who may read /metrics: hardened means kubernetes. */}}
{{- define "ra.metricsAuth" -}}
{{- if .Values.hardened }}kubernetes{{ else }}{{ .Values.metricsAuth }}{{ end -}}
{{- end }}

{{/* /metrics over TLS: only with hardened (the certificate must then name
the metrics Service too). */}}
{{- define "ra.metricsTLS" -}}
{{- if .Values.hardened }}{{ include "ra.tlsSecret" . }}{{ end -}}
{{- end }}
