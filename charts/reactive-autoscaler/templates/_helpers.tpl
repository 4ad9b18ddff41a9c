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
user's (webhook.tls.secretName), else with hardened or metricsAuth
kubernetes one the chart generates; "" = plain HTTP. */}}
{{- define "ra.tlsSecret" -}}
{{- if .Values.webhook.tls.secretName -}}
{{- .Values.webhook.tls.secretName -}}
{{- else if or .Values.hardened (eq .Values.metricsAuth "kubernetes") -}}
{{- include "ra.fullname" . }}-tls
{{- end -}}
{{- end }}

{{/* The webhook over TLS: with the user's certificate or hardened (not
for metricsAuth alone, which must not change what Alertmanager trusts). */}}
{{- define "ra.webhookTLS" -}}
{{- if or .Values.webhook.tls.secretName .Values.hardened }}{{ include "ra.tlsSecret" . }}{{ end -}}
{{- end }}

{{/* Who may read /metrics: hardened means kubernetes. */}}
{{- define "ra.metricsAuth" -}}
{{- if .Values.hardened }}kubernetes{{ else }}{{ .Values.metricsAuth }}{{ end -}}
{{- end }}

{{/* /metrics over TLS: whenever scrapers send tokens (metricsAuth
kubernetes, which hardened implies); the certificate must then name the
metrics Service too. */}}
{{- define "ra.metricsTLS" -}}
{{- if eq (include "ra.metricsAuth" .) "kubernetes" }}{{ include "ra.tlsSecret" . }}{{ end -}}
{{- end }}

{{/* An HTTP client block of the config file (Prometheus' own format) from
<name>.auth values: every credential a file of the existing Secret mounted
at /etc/reactive-autoscaler/<name>/. Args: auth, name, key. */}}
{{- define "ra.httpClientConfig" -}}
{{- $dir := printf "/etc/reactive-autoscaler/%s/" .name }}
{{- with .auth }}
{{- $keys := list .basicAuthPasswordKey .bearerTokenKey .tls.caKey .tls.certKey .tls.keyKey | compact }}
{{- if and $keys (not .existingSecret) }}
{{- fail (printf "%s.auth: the *Key values name entries of %s.auth.existingSecret, which is not set" $.name $.name) }}
{{- end }}
{{- if and .basicAuthPasswordKey .bearerTokenKey }}
{{- fail (printf "%s.auth: basic auth or a bearer token, not both" $.name) }}
{{- end }}
{{- if and .basicAuthUsername (not .basicAuthPasswordKey) }}
{{- fail (printf "%s.auth.basicAuthUsername needs %s.auth.basicAuthPasswordKey" $.name $.name) }}
{{- end }}
{{- if or $keys .headers .proxyURL .tls.serverName .tls.insecureSkipVerify }}
# How to reach the {{ $.name }}: Prometheus' own client block ({{ $.name }}.auth).
{{ $.key }}:
  {{- if .basicAuthPasswordKey }}
  basic_auth:
    username: {{ .basicAuthUsername | quote }}
    password_file: {{ print $dir .basicAuthPasswordKey | quote }}
  {{- end }}
  {{- if .bearerTokenKey }}
  authorization:
    credentials_file: {{ print $dir .bearerTokenKey | quote }}
  {{- end }}
  {{- if or .tls.caKey .tls.certKey .tls.serverName .tls.insecureSkipVerify }}
  tls_config:
    {{- with .tls.caKey }}
    ca_file: {{ print $dir . | quote }}
    {{- end }}
    {{- with .tls.certKey }}
    cert_file: {{ print $dir . | quote }}
    {{- end }}
    {{- with .tls.keyKey }}
    key_file: {{ print $dir . | quote }}
    {{- end }}
    {{- with .tls.serverName }}
    server_name: {{ . | quote }}
    {{- end }}
    insecure_skip_verify: {{ .tls.insecureSkipVerify }}
  {{- end }}
  {{- with .headers }}
  http_headers:
    {{- range $k, $v := . }}
    {{ $k | quote }}:
      values: [{{ $v | quote }}]
    {{- end }}
  {{- end }}
  {{- with .proxyURL }}
  proxy_url: {{ . | quote }}
  {{- end }}
{{- end }}
{{- end }}
{{- end }}
