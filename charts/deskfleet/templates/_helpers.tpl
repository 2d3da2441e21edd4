{{- define "deskfleet.name" -}}deskfleet{{- end -}}
{{- define "deskfleet.fullname" -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- define "deskfleet.labels" -}}
app.kubernetes.io/name: deskfleet
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "deskfleet.selector" -}}
app.kubernetes.io/name: deskfleet
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "deskfleet.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}
