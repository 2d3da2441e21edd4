"""Types shared by the three kinds: formats, conditions and the model base class.

Every constrained type here carries two things at once: a JSON-schema fragment (pattern,
format, bounds) that ends up in the CRD and is enforced by the API server at admission,
and the same rule on the Python side, so `deskfleet render`/`explain` reject offline
exactly what the cluster would.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

GROUP = "deskfleet.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class Model(BaseModel):
    """Base for every API object: camelCase on the wire, unknown fields refused.

    `extra="forbid"` mirrors the API server's strict field validation, so an offline
    render of a manifest with a typo fails the same way `kubectl apply` does.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        strict=True,  # like the API server: "yes" is not a boolean, "3" is not an integer
        use_attribute_docstrings=True,
        frozen=True,
    )

    # CEL rules (`x-kubernetes-validations`) for this object, emitted into the CRD.
    cel_rules: ClassVar[list[dict[str, str]]] = []

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        if cls.cel_rules:
            handler.resolve_ref_schema(schema)["x-kubernetes-validations"] = [
                dict(rule) for rule in cls.cel_rules
            ]
        return schema

    def wire(self) -> dict[str, Any]:
        """The object as it appears in YAML: aliases, no unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# --- Kubernetes names -----------------------------------------------------------------

DNS_LABEL_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_RE)]
"""A Kubernetes object name that must also be a DNS label (Services, ports)."""

ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_RE)]
"""A Kubernetes object name (DNS subdomain)."""

# Rules added since v1alpha1 first shipped are CEL rules on the value itself: the API
# server reports them at the field's path with a message saying what to write, and
# ratchets them (an object stored before keeps an unchanged value), so an upgrade never
# turns a working app into one the operator and the portal refuse. The models repeat
# offline only what never made a working app: a wildcard host has no URL users can open,
# and Ingress and HTTPRoute refuse dot segments and `//` themselves.


def cel(rule: str, message: str) -> dict[str, str]:
    return {"rule": rule, "message": message}


def _refused(*checks: tuple[str, str]) -> Any:
    """An AfterValidator for the offline path: each Python regular expression must not
    be found in the value; the message is the CEL rule's."""
    def check(value: str) -> str:
        for forbidden, message in checks:
            if re.search(forbidden, value):
                raise ValueError(message)
        return value
    return AfterValidator(check)


_HOST_WILDCARD = ("a wildcard host cannot be published: users open one URL, so give the "
                  "app's full host name, e.g. workspace.example.org")
_HOST_IP = ("must be a DNS name, not an IP address: gateways route by name "
            "(and Ingress and HTTPRoute refuse addresses)")

HostName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        # The shape allows a leading `*.` only so that the rule below can say why it is
        # refused, instead of the bare regular expression a pattern mismatch prints.
        pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        json_schema_extra={"x-kubernetes-validations": [
            cel("!self.startsWith('*')", _HOST_WILDCARD),
            cel("!self.matches('^[0-9.]+$')", _HOST_IP),
        ]},
    ),
    _refused((r"^\*", _HOST_WILDCARD), (r"^[0-9.]+\Z", _HOST_IP)),
]
"""A DNS host name users open (lower case; no wildcard, no IP address)."""

# URL paths: only what every gateway reads the same way. Gateways and the hosts behind
# them decode `%2e%2e`, `\` and `;` differently (path-traversal and route-confusion
# bugs), and ingress-nginx writes the path into its configuration; so unreserved
# characters and `/`, without empty or dot segments.
_PATH_CHARS = ("must be an absolute URL path of letters, digits, '-', '.', '_', '~' and "
               "'/' only (no spaces, quotes, '%'-escapes, '\\', ';', query or fragment), "
               "e.g. /epr/")
_PATH_DOTS = ("must not contain '.' or '..' segments (path traversal): write the path "
              "as the gateway should match it, e.g. /epr/ rather than /epr/../epr/")
_PATH_EMPTY = "must not contain '//' (an empty segment, which gateways normalise differently)"

UrlPath = Annotated[
    str,
    Field(min_length=1, max_length=1024, pattern=r"^/[^\s?#]*$",
          json_schema_extra={"x-kubernetes-validations": [
              cel("self.matches('^/[A-Za-z0-9._~/-]*$')", _PATH_CHARS),
              cel("!self.matches('(^|/)[.][.]?(/|$)')", _PATH_DOTS),
              cel("!self.contains('//')", _PATH_EMPTY),
          ]}),
    _refused((r"(^|/)\.\.?(/|\Z)", _PATH_DOTS), ("//", _PATH_EMPTY)),
]
"""An absolute URL path: unreserved characters and `/`, no `.`/`..` or empty segments."""

# Text people read on the landing page and in the catalog: no C0 or C1 control
# characters (newlines included: a description is one line), no Unicode line separators
# or bidirectional overrides, which make a name read differently from what it is.
_CONTROL = (r"[\\x00-\\x1f\\x7f-\\x9f\\x{2028}\\x{2029}"
            r"\\x{202a}-\\x{202e}\\x{2066}-\\x{2069}]")
_PLAIN = ("must be plain text on one line: no newlines, tabs, other control characters or "
          "bidirectional overrides")

PlainText = Annotated[str, Field(json_schema_extra={"x-kubernetes-validations": [
    cel(f"!self.matches('{_CONTROL}')", _PLAIN)]})]
"""One line of text for people; bound its length with `Annotated[PlainText, Field(...)]`."""

# Icons: an https URL a browser fetches as an image, or an inline raster image. SVG is
# refused inline: it is a document that can carry scripts and event handlers, inert in
# an <img> (the portal's page) but not wherever another landing page inlines it or a
# user opens it. An https URL may name an SVG: it is fetched as an image from its own
# origin, never inlined.
_ICON_RE = (r"^(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&()*+,;=:@%/-]*)?"
            r"([?][A-Za-z0-9._~!$&()*+,;=:@%/?-]*)?"
            r"|data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+={0,2})$")
_ICON = ("must be an https:// URL (without quotes, spaces, angle brackets or a fragment) "
         "or a base64 data: URI of a PNG, JPEG, GIF or WebP image "
         "(data:image/png;base64,...); SVG data: URIs are refused because they can carry "
         "scripts")

IconRef = Annotated[str, Field(
    max_length=65536, pattern=r"^(https://|data:image/)",
    json_schema_extra={"x-kubernetes-validations": [cel(f"self.matches('{_ICON_RE}')", _ICON)]})]
"""An icon a browser can only show: an https URL or a base64 PNG/JPEG/GIF/WebP."""


# --- Networks -------------------------------------------------------------------------


def _check_cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as err:
        raise ValueError(f"not a CIDR: {value!r} ({err})") from err
    if "/" not in value:
        raise ValueError(f"not a CIDR (missing prefix length): {value!r}")
    return value


Cidr = Annotated[
    str,
    Field(min_length=3, max_length=43),
    AfterValidator(_check_cidr),
    WithJsonSchema(
        {"type": "string", "format": "cidr", "maxLength": 43,
         "description": "An IPv4 or IPv6 network in CIDR notation, e.g. 10.20.0.0/16."}
    ),
]
"""A network in CIDR notation; validated by the API server's `cidr` format."""

Port = Annotated[int, Field(ge=1, le=65535)]


# --- Time -----------------------------------------------------------------------------

TIME_OF_DAY_RE = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
TimeOfDay = Annotated[str, Field(max_length=5, pattern=TIME_OF_DAY_RE)]
"""A wall-clock time `HH:MM` (24-hour); `24:00` means the end of the day."""

DURATION_RE = r"^([0-9]+(h|m|s))+$"
_DURATION_PART = re.compile(r"([0-9]+)(h|m|s)")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


@lru_cache(maxsize=4096)  # pure; every authorization combines a few of these
def parse_duration(text: str) -> timedelta:
    """`1h30m` -> 5400 s. The format is a subset of Go's, as Kubernetes uses it."""
    if not re.fullmatch(DURATION_RE, text):
        raise ValueError(f"not a duration like 90s, 10m or 1h30m: {text!r}")
    return timedelta(
        seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    )


Duration = Annotated[str, Field(max_length=32, pattern=DURATION_RE)]
"""A duration written with h, m and s units, e.g. `90s`, `10m`, `1h30m`."""

DATE_RE = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


def _check_date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError as err:
        raise ValueError(f"not a calendar date: {value!r}") from err
    return value


Date = Annotated[str, Field(max_length=10, pattern=DATE_RE), AfterValidator(_check_date)]
"""A calendar date `YYYY-MM-DD`."""

TIME_ZONE_RE = r"^(UTC|[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2})$"


def _check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/London)"
                         ) from err
    return value


TimeZoneName = Annotated[
    str, Field(max_length=64, pattern=TIME_ZONE_RE), AfterValidator(_check_time_zone)]
"""An IANA time zone name such as `Europe/London`. The shape is checked at admission;
whether the zone exists is checked by the operator (the API server has no zone database)
and reported in status."""

Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WEEKDAYS: tuple[Weekday, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def minute_of_day(hhmm: str) -> int:
    """`HH:MM` -> minutes since midnight; `24:00` -> 1440, the end of the day."""
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def in_weekly_window(days: Sequence[str], start: str, end: str, local: datetime) -> bool:
    """Whether a local moment falls in [start, end) on one of `days` (access-policy time
    windows and schedule phases). Minutes are floored, so 17:59:59 is inside an
    08:00-18:00 window and 18:00:00 is not."""
    minute = local.hour * 60 + local.minute
    return (WEEKDAYS[local.weekday()] in days
            and minute_of_day(start) <= minute < minute_of_day(end))


# ISO 3166-1 alpha-2 codes, as an enum so admission refuses made-up countries.
COUNTRY_CODES: tuple[str, ...] = tuple(sorted(c.alpha_2 for c in pycountry.countries))


def _check_country(value: str) -> str:
    if value not in COUNTRY_CODES:
        raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {value!r}")
    return value


CountryCode = Annotated[
    str,
    AfterValidator(_check_country),
    WithJsonSchema({"type": "string", "enum": list(COUNTRY_CODES),
                    "description": "An ISO 3166-1 alpha-2 country code, e.g. GB."}),
]

Quantity = Annotated[
    str,
    Field(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"),
]
"""A Kubernetes resource quantity such as `500m`, `2` or `4Gi`."""


# --- Status ---------------------------------------------------------------------------


class Condition(Model):
    """A condition in the shape the Kubernetes API conventions define."""

    type: Annotated[str, Field(max_length=316)]
    """The aspect this condition describes: Ready, Progressing or Degraded."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    reason: Annotated[str, Field(max_length=1024)]
    """A CamelCase word a program can switch on."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """What a person should know, in a sentence."""
    observed_generation: int | None = None
    """The spec generation this condition was computed from."""
    last_transition_time: str | None = None
    """When the status last changed (RFC 3339)."""


class LabelSelector(Model):
    """A Kubernetes label selector. An empty selector selects every object."""

    match_labels: dict[str, str] | None = None
    """Labels that must all be present with these values."""
    match_expressions: Annotated[list[LabelSelectorRequirement], Field(max_length=16)] | None = (
        None
    )
    """Set-based requirements, all of which must hold."""


class LabelSelectorRequirement(Model):
    """One set-based requirement of a label selector."""

    key: Annotated[str, Field(min_length=1, max_length=317)]
    """The label key."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """How the key relates to the values."""
    values: Annotated[list[str], Field(max_length=64)] | None = None
    """Values for In and NotIn; empty for Exists and DoesNotExist."""

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "(self.operator in ['In', 'NotIn'])"
                    " == (has(self.values) && size(self.values) > 0)",
            "message": "values must be non-empty for In and NotIn, "
                       "and empty for Exists and DoesNotExist",
        }
    ]


LabelSelector.model_rebuild()
