"""The portal's HTML: the landing page and the short pages users meet on the way (sign
in, refused, please wait). Server-rendered with jinja2 autoescaping; no script at all,
one inline stylesheet allowed by its hash, images only from the app icons' https: or
data: URLs (an SVG in an <img> runs no script). App names, descriptions and icons are
user data, and render as text.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import jinja2

from ..policy.hints import HINT_BLOCKED, HINT_HOURS, HINT_LOCATION, HINT_MFA, HINT_NOT_GRANTED

_ICON_PREFIXES = ("https://", "data:image/png;", "data:image/jpeg;", "data:image/gif;",
                  "data:image/webp;", "data:image/svg+xml;")

HINT_TEXT = {
    HINT_MFA: "Sign in again with multi-factor authentication (MFA) to open it.",
    HINT_HOURS: "It can only be opened at certain times; try again during the allowed hours.",
    HINT_LOCATION: "It cannot be opened from your current network or country.",
    HINT_BLOCKED: "Access to it is blocked for your account at the moment.",
    HINT_NOT_GRANTED: "You have not been given access to it. Ask your IT service desk if "
                      "you need it.",
}

CSS = resources.files(__package__).joinpath("templates/portal.css").read_text()
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"style-src 'sha256-{_CSS_HASH}'; "
    "img-src 'self' https: data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("deskfleet.portal", "templates"),
    autoescape=True,  # every template, whatever its file name
    undefined=jinja2.StrictUndefined,
    trim_blocks=True, lstrip_blocks=True,
)


def safe_icon(icon: str | None) -> str | None:
    """Only image URLs a browser will not execute; anything else is dropped."""
    if icon and icon.startswith(_ICON_PREFIXES) and not any(c in icon for c in "\"'<> \n"):
        return icon
    return None


def with_query(url: str, **params: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode(params)}"


@dataclass(frozen=True)
class Tile:
    namespace: str
    name: str
    display_name: str
    description: str
    category: str
    icon: str | None
    available: bool
    step_up: bool
    step_up_href: str = ""

    @property
    def href(self) -> str:
        return f"/launch/{quote(self.namespace, safe='')}/{quote(self.name, safe='')}"


@dataclass(frozen=True)
class Chrome:
    """What every page shows around its content."""

    title: str
    user: str | None = None
    mfa: bool = False
    signout_url: str = ""


def _render(template: str, chrome: Chrome, refresh_url: str = "", refresh_seconds: int = 0,
            **context: Any) -> str:
    return _ENV.get_template(template).render(
        title=chrome.title, user=chrome.user, mfa=chrome.mfa, signout_url=chrome.signout_url,
        css=CSS, refresh_url=refresh_url, refresh_seconds=refresh_seconds, **context)


def landing_page(chrome: Chrome, tiles: Iterable[Tile]) -> str:
    by_category: dict[str, list[Tile]] = {}
    for tile in sorted(tiles, key=lambda t: (t.display_name.casefold(), t.namespace, t.name)):
        by_category.setdefault(tile.category, []).append(tile)
    categories = sorted(by_category.items(), key=lambda item: item[0].casefold())
    return _render("landing.html.j2", chrome, categories=categories)


@dataclass(frozen=True)
class Link:
    href: str
    text: str


def message_page(chrome: Chrome, heading: str, lines: Iterable[str] = (),
                 links: Iterable[Link] = (), request_id: str = "", refresh_url: str = "",
                 refresh_seconds: int = 0) -> str:
    return _render("message.html.j2", chrome, refresh_url=refresh_url,
                   refresh_seconds=refresh_seconds, heading=heading, lines=list(lines),
                   links=list(links), request_id=request_id)
