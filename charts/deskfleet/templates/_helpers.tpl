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

{{- /* The portal: its own name label, so that neither the operator's Deployment and
metrics Service nor its ServiceMonitor select the portal's pods or Services. */}}
{{- define "deskfleet.portal.fullname" -}}{{ include "deskfleet.fullname" . }}-portal{{- end -}}
{{- define "deskfleet.portal.internalName" -}}{{ include "deskfleet.fullname" . }}-portal-internal{{- end -}}
{{- define "deskfleet.portal.selector" -}}
app.kubernetes.io/name: deskfleet-portal
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "deskfleet.portal.labels" -}}
{{ include "deskfleet.portal.selector" . }}
app.kubernetes.io/component: portal
app.kubernetes.io/part-of: deskfleet
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- /* The portal's URL the operator renders into routes (DESKFLEET_PORTAL_URL). */}}
{{- define "deskfleet.portal.url" -}}
{{- if .Values.portal.enabled -}}
http://{{ include "deskfleet.portal.fullname" . }}.{{ .Release.Namespace }}.svc:8080
{{- else -}}
{{ .Values.portal.externalUrl }}
{{- end -}}
{{- end -}}

{{- /* Namespaces whose SecurityPolicies / HTTPRoutes refer to the portal's Service. */}}
{{- define "deskfleet.portal.appNamespaces" -}}
{{- toJson (.Values.portal.appNamespaces | default .Values.portal.namespaces) -}}
{{- end -}}

{{- /* Values the schema cannot judge alone; each message names the value. */}}
{{- define "deskfleet.validate" -}}
{{- if .Values.auth.url }}
{{- fail "auth.url was removed: the portal (portal.enabled) now enforces every AccessPolicy on every request; set portal.authProxy.url to your oauth2-proxy's /oauth2/auth instead (docs/operations.md)" }}
{{- end }}
{{- if .Values.auth.mfaUrl }}
{{- fail "auth.mfaUrl was removed: MFA is now decided by the portal from the token's amr/acr (portal.oidc.mfaAmr, portal.oidc.mfaAcr) and portal.stepUpUrl; unset auth.mfaUrl" }}
{{- end }}
{{- with .Values.portal }}
{{- if and .oidc.jwks.secretName .oidc.jwks.configMapName }}
{{- fail "portal.oidc.jwks: set secretName or configMapName, not both" }}
{{- end }}
{{- if and (or .oidc.jwks.secretName .oidc.jwks.configMapName .oidc.jwksUrl) (not .oidc.issuer) }}
{{- fail "portal.oidc.issuer: required when a JWKS is given (portal.oidc.jwks or portal.oidc.jwksUrl)" }}
{{- end }}
{{- if and .oidc.issuer (not .oidc.audiences) }}
{{- fail "portal.oidc.audiences: required with portal.oidc.issuer (which aud values to accept)" }}
{{- end }}
{{- if and .trustIdentityHeaders (not .trustedProxies) }}
{{- fail "portal.trustedProxies: required with portal.trustIdentityHeaders" }}
{{- end }}
{{- if and .route.enabled (not .route.parentRefs) }}
{{- fail "portal.route.parentRefs: required with portal.route.enabled (the Gateway to attach the landing page to)" }}
{{- end }}
{{- if and .enabled .externalUrl }}
{{- fail "portal.externalUrl: only with portal.enabled=false (the chart's portal is used otherwise)" }}
{{- end }}
{{- end }}
{{- end -}}
