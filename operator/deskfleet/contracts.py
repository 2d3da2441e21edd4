"""Names shared by parts that run apart — the operator's rendered routes, the portal the
gateways call, the hosts behind them — kept in one neutral module so that neither side
imports the other to agree on a string.
"""

from __future__ import annotations

from urllib.parse import quote

AUTHZ_PREFIX = "/authz"
"""Gateways call the portal at `/authz/<namespace>/<app>` (anything after it is ignored:
Envoy and Gateway API's ExternalAuth append the original path). The app is named by the
route the operator rendered, never by anything the client sends."""

USER_HEADER = "X-Deskfleet-User"
"""The user the portal identified, percent-encoded UTF-8 (as policies name users)."""
GROUPS_HEADER = "X-Deskfleet-Groups"
"""The user's groups as a JSON array (a group name may contain a comma)."""
MFA_HEADER = "X-Deskfleet-MFA"
"""`true` or `false`."""
CONTROLS_HEADER = "X-Deskfleet-Controls"
"""The effective session controls of the decision, as JSON (`Controls.wire()`)."""
POLICIES_HEADER = "X-Deskfleet-Policies"
"""The allow policies that decided, comma-separated (policy names have no commas)."""
REQUEST_ID_HEADER = "X-Deskfleet-Request-Id"
"""The audit line's requestId, so a host's logs can be joined with the decision."""

AUTH_RESPONSE_HEADERS = (USER_HEADER, GROUPS_HEADER, MFA_HEADER, CONTROLS_HEADER,
                         POLICIES_HEADER, REQUEST_ID_HEADER)
"""Every header the portal sets on an allowed request. A gateway must be told to copy
exactly these to the upstream request, replacing any copy the client sent (Traefik's
authResponseHeaders, ingress-nginx's auth-response-headers, Envoy's headersToBackend);
the portal always sends all of them so that none can be left over from the client."""


def authz_path(namespace: str, app: str) -> str:
    return f"{AUTHZ_PREFIX}/{quote(namespace, safe='')}/{quote(app, safe='')}"
