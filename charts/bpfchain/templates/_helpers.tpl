{{/*
The chart name, or nameOverride.
*/}}
{{- define "bpfchain.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, else the release name when it already
contains the chart name (release "bpfchain" gives bpfchain-operator, bpfchain-agent, as in
manifests/), else "<release>-<chart>". Truncated so that "<prefix>-operator" etc. stay within 63.
*/}}
{{- define "bpfchain.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
helm.sh/chart label value.
*/}}
{{- define "bpfchain.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels every object carries (app.kubernetes.io/name is added per component).
*/}}
{{- define "bpfchain.commonLabels" -}}
helm.sh/chart: {{ include "bpfchain.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: bpfchain
{{- end }}

{{/*
Per component: app.kubernetes.io/name is the program ("bpfchain-operator", "bpfchain-agent"),
as in manifests/, so that `kubectl -l app.kubernetes.io/name=bpfchain-agent` works for both.
*/}}
{{- define "bpfchain.operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bpfchain.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "bpfchain.operator.labels" -}}
{{ include "bpfchain.commonLabels" . }}
app.kubernetes.io/name: {{ include "bpfchain.name" . }}-operator
app.kubernetes.io/component: operator
{{- end }}

{{- define "bpfchain.agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bpfchain.name" . }}-agent
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "bpfchain.agent.labels" -}}
{{ include "bpfchain.commonLabels" . }}
app.kubernetes.io/name: {{ include "bpfchain.name" . }}-agent
app.kubernetes.io/component: agent
{{- end }}

{{/*
Object names.
*/}}
{{- define "bpfchain.operator.fullname" -}}
{{- printf "%s-operator" (include "bpfchain.fullname" .) }}
{{- end }}

{{- define "bpfchain.agent.fullname" -}}
{{- printf "%s-agent" (include "bpfchain.fullname" .) }}
{{- end }}

{{- define "bpfchain.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "bpfchain.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bpfchain.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create }}
{{- default (include "bpfchain.agent.fullname" .) .Values.agent.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.agent.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image: repository@digest, else repository:tag (the tag defaults to appVersion).
*/}}
{{- define "bpfchain.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The trusted-keys Secret the agent mounts ("" when there are no keys), and the file names in it.
*/}}
{{- define "bpfchain.agent.trustedKeysSecret" -}}
{{- if .Values.agent.trustedKeys.existingSecret }}
{{- .Values.agent.trustedKeys.existingSecret }}
{{- else if .Values.agent.trustedKeys.keys }}
{{- printf "%s-trusted-keys" (include "bpfchain.fullname" .) }}
{{- end }}
{{- end }}

{{- define "bpfchain.agent.trustedKeyFiles" -}}
{{- if .Values.agent.trustedKeys.existingSecret }}
{{- toJson .Values.agent.trustedKeys.existingSecretKeys }}
{{- else }}
{{- toJson (keys .Values.agent.trustedKeys.keys | sortAlpha) }}
{{- end }}
{{- end }}

{{/*
Combinations values.schema.json cannot express; each fails the render with the reason.
*/}}
{{- define "bpfchain.validate" -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.operator.leaderElect) }}
{{- fail "operator.replicas > 1 needs operator.leaderElect: true (replicas without leader election would all act on every BpfChain)" }}
{{- end }}
{{- if and .Values.agent.trustedKeys.existingSecret .Values.agent.trustedKeys.keys }}
{{- fail "agent.trustedKeys: give either keys or existingSecret, not both" }}
{{- end }}
{{- if and .Values.agent.trustedKeys.existingSecret (not .Values.agent.trustedKeys.existingSecretKeys) }}
{{- fail "agent.trustedKeys.existingSecret needs agent.trustedKeys.existingSecretKeys (the Secret's keys to pass as --trusted-key)" }}
{{- end }}
{{- if and .Values.agent.requireSignatures (not (include "bpfchain.agent.trustedKeysSecret" .)) }}
{{- fail "agent.requireSignatures needs agent.trustedKeys (keys or existingSecret): without a trusted key the agent cannot verify any package and refuses to start" }}
{{- end }}
{{- end }}
