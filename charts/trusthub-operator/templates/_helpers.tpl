{{/* Chart name, overridable. */}}
{{- define "trusthub-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object name: the release name, plus the chart name unless it contains it. */}}
{{- define "trusthub-operator.fullname" -}}
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

{{- define "trusthub-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator pods; fixed for the life of a release. */}}
{{- define "trusthub-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trusthub-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "trusthub-operator.labels" -}}
helm.sh/chart: {{ include "trusthub-operator.chart" . }}
{{ include "trusthub-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: trusthub-operator
{{- end }}

{{- define "trusthub-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "trusthub-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "trusthub-operator.leaseName" -}}
{{- default (include "trusthub-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "trusthub-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The URL Twilio posts status callbacks to: explicit, else derived from the Ingress host. */}}
{{- define "trusthub-operator.webhookPublicUrl" -}}
{{- if .Values.webhook.publicUrl }}
{{- .Values.webhook.publicUrl }}
{{- else if and .Values.webhook.ingress.enabled .Values.webhook.ingress.host }}
{{- printf "https://%s/twilio/status-callback" .Values.webhook.ingress.host }}
{{- end }}
{{- end }}

{{/* Refuse combinations that would misbehave at run time. */}}
{{- define "trusthub-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: two active operators would both write to Twilio" }}
{{- end }}
{{- if and .Values.webhook.ingress.enabled (not .Values.webhook.enabled) }}
{{- fail "webhook.ingress.enabled needs webhook.enabled=true" }}
{{- end }}
{{- if and .Values.webhook.ingress.enabled (not .Values.webhook.ingress.host) }}
{{- fail "webhook.ingress.enabled needs webhook.ingress.host" }}
{{- end }}
{{- if and .Values.webhook.enabled (eq (int .Values.webhook.port) (int .Values.metrics.port)) }}
{{- fail "webhook.port must differ from metrics.port" }}
{{- end }}
{{- end }}
