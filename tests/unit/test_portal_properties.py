"""Properties of the portal's decision wrapper over the policy core."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given

from deskfleet.policy import Request, evaluate
from deskfleet.policy.selection import PolicySet
from deskfleet.portal.authorize import authorize
from deskfleet.portal.directory import AppEntry, NamespaceView

from .test_policy_properties import PROPERTY, apps, policy_lists, requests


@PROPERTY
@given(policy_lists(), apps, requests)
def test_step_up_is_offered_exactly_when_mfa_would_allow(policies: Any, app: Any,
                                                         req: Request) -> None:
    """The portal skips the second evaluation unless an allow failed on MFA alone; that
    shortcut must never hide a step-up nor offer a useless one."""
    entry = AppEntry("ns", app[0], app[1], "App", "", "General", None, "https://x/", "p")
    view = NamespaceView("ns", {app[0]: entry}, PolicySet(policies), {})
    verdict = authorize(view, entry, req)
    with_mfa = evaluate(policies, app[0], app[1], replace(req, mfa=True))
    assert verdict.step_up == (not verdict.allowed and not req.mfa and with_mfa.allowed)
