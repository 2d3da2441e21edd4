"""Prometheus metrics of the portal (its own registry, served on the internal port).

Labels stay bounded: namespaces and apps the portal knows (a request for an unknown app
is counted as `(unknown)`, so a client cannot mint label values), ISO country codes,
and small fixed sets of outcomes and reasons.
"""

from __future__ import annotations

from collections import OrderedDict

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()
UNKNOWN = "(unknown)"

DECISIONS = Counter(
    "deskfleet_portal_decisions", "Authorization decisions by app, outcome (allow, deny, "
    "unauthenticated, fail-closed) and reason.", ["namespace", "app", "decision", "reason"],
    registry=REGISTRY)
DECISIONS_BY_COUNTRY = Counter(
    "deskfleet_portal_decisions_by_country", "Authorization decisions by the client's "
    "country (`unknown` when geo-IP could not tell) and outcome.", ["country", "decision"],
    registry=REGISTRY)
FAIL_CLOSED = Counter(
    "deskfleet_portal_fail_closed", "Requests refused because the portal could not decide "
    "safely (no or stale policy data, unknown app, unreadable policy, identity provider "
    "unreachable, invalid token, internal error).", ["reason"], registry=REGISTRY)
DRY_RUN_DIFFERENCES = Counter(
    "deskfleet_portal_dry_run_differences", "Requests whose decision a dry-run policy "
    "would have changed, had it been enforced.", ["namespace", "policy"], registry=REGISTRY)
NEW_COUNTRY = Counter(
    "deskfleet_portal_user_new_country", "Signed-in users seen from a country this portal "
    "replica had not seen them in before (first sightings after a restart do not count).",
    ["country"], registry=REGISTRY)
LAUNCHES = Counter(
    "deskfleet_portal_launches", "Apps opened from the landing page, by pool and whether a "
    "host was ready (`started`) or the user was asked to wait (`waiting`).",
    ["namespace", "pool", "outcome"], registry=REGISTRY)
DECISION_SECONDS = Histogram(
    "deskfleet_portal_decision_duration_seconds", "Time to answer an authorization request, "
    "identity included.", buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                   1.0), registry=REGISTRY)
DATA_AGE = Gauge(
    "deskfleet_portal_data_age_seconds", "Seconds since the stalest watch of policies, apps "
    "and pools last proved itself (+Inf before the first list).", registry=REGISTRY)
READY = Gauge("deskfleet_portal_ready", "1 when the portal can decide (fresh data, keys "
              "loaded), else 0.", registry=REGISTRY)

METRIC_NAMES = frozenset({
    "deskfleet_portal_decisions_total", "deskfleet_portal_decisions_by_country_total",
    "deskfleet_portal_fail_closed_total", "deskfleet_portal_dry_run_differences_total",
    "deskfleet_portal_user_new_country_total", "deskfleet_portal_launches_total",
    "deskfleet_portal_decision_duration_seconds_bucket",
    "deskfleet_portal_decision_duration_seconds_count",
    "deskfleet_portal_decision_duration_seconds_sum", "deskfleet_portal_data_age_seconds",
    "deskfleet_portal_ready",
})


class CountryMemory:
    """Which countries each user was seen in (bounded LRU): a user's sign-in from a new
    country — the clinician stranded abroad, or a stolen password — is counted."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._seen: OrderedDict[str, frozenset[str]] = OrderedDict()

    def is_new(self, user: str, country: str | None) -> bool:
        """Record the sighting; True when the user was known here, in other countries."""
        if country is None:
            return False
        known = self._seen.get(user)
        self._seen[user] = (known or frozenset()) | {country}
        self._seen.move_to_end(user)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return known is not None and country not in known
