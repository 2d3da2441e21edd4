"""The pure access-policy core: from AccessPolicies and one request to an AccessDecision, the
gateway route's access settings and the who-can-open view. No Kubernetes I/O here; the
contract is at the top of evaluate.py and in docs/access-policy.md.
"""

from .conditions import policy_applies
from .evaluate import evaluate
from .gateway import route_access, who_can_open
from .model import NO_POLICY_MATCHED, AccessDecision, AccessRow, Controls, Match, Outcome, Request
from .selection import app_selected, covering, ordered

__all__ = [
    "NO_POLICY_MATCHED",
    "AccessDecision",
    "AccessRow",
    "Controls",
    "Match",
    "Outcome",
    "Request",
    "app_selected",
    "covering",
    "evaluate",
    "ordered",
    "policy_applies",
    "route_access",
    "who_can_open",
]
