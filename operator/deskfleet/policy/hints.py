"""What a refused user may be told: which kind of condition stood in the way, never which
policy, group list or country list decided it (those are for the audit log and
`deskfleet explain`, not for someone who may be probing from a hostile network).

Hints come from the AccessDecision's matches alone, so they cannot disagree with it.
"""

from __future__ import annotations

from .conditions import COUNTRY, MFA, SOURCE, SUBJECTS, TIME
from .model import AccessDecision

HINT_MFA = "mfa"  # complete multi-factor authentication
HINT_HOURS = "hours"  # outside the hours the app may be opened
HINT_LOCATION = "location"  # not from this network or country
HINT_BLOCKED = "blocked"  # a deny applies to this account
HINT_NOT_GRANTED = "not-granted"  # no policy grants this account the app

HINT_ORDER = (HINT_MFA, HINT_HOURS, HINT_LOCATION, HINT_BLOCKED, HINT_NOT_GRANTED)

_BY_CHECK = {MFA: HINT_MFA, TIME: HINT_HOURS, COUNTRY: HINT_LOCATION, SOURCE: HINT_LOCATION}


def denial_hints(decision: AccessDecision) -> tuple[str, ...]:
    """The kinds of obstacle to a denied decision, most actionable first; () if allowed.

    - Refused by a deny: `location` if the deny is conditioned on the network or country
      (the request met those conditions), else `blocked`.
    - No allow applied: the failed conditions of the enforced allows that name the user
      or one of their groups; `not-granted` if none names them.
    """
    if decision.allowed:
        return ()
    hints: set[str] = set()
    deciding = set(decision.decided_by)
    for match in decision.matches:
        if match.policy in deciding:  # the applying denies
            located = SOURCE in match.checked or COUNTRY in match.checked
            hints.add(HINT_LOCATION if located else HINT_BLOCKED)
    if not deciding:
        for match in decision.matches:
            if match.enforced and match.action == "allow" and SUBJECTS not in match.failed:
                hints.update(_BY_CHECK[kind] for kind in match.failed if kind in _BY_CHECK)
        if not hints:
            hints.add(HINT_NOT_GRANTED)
    return tuple(h for h in HINT_ORDER if h in hints)
