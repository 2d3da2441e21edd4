"""The pod annotations through which the agent and the operator talk. Names only.

The agent writes the `deskfleet.io/sessions*` ones (the chart's admission policy lets it
change nothing else); the operator writes the drain ones, which reach the agent through
the downward-API file of the pod's annotations, so the agent needs no read permission.
"""

from __future__ import annotations

# Written by the agent: what counts as load (every session the host holds, disconnected
# ones included), how many of those are disconnected, where the count came from, when.
SESSIONS_ANNOTATION = "deskfleet.io/sessions"
DISCONNECTED_ANNOTATION = "deskfleet.io/sessions-disconnected"
SOURCE_ANNOTATION = "deskfleet.io/sessions-source"
REPORTED_AT_ANNOTATION = "deskfleet.io/sessions-reported-at"

# Written by the operator. They carry the drain's whole state, so an operator restart
# loses nothing: the scaling core reads them back as its input.
DRAINING_ANNOTATION = "deskfleet.io/draining-since"  # RFC 3339
DRAIN_MESSAGE_ANNOTATION = "deskfleet.io/drain-message"  # the notice users see
LOGOFF_DEADLINE_ANNOTATION = "deskfleet.io/logoff-deadline"  # RFC 3339, forced logoff only
LOGOFF_REQUESTED_ANNOTATION = "deskfleet.io/logoff-requested-at"  # RFC 3339
