"""Types shared by the three kinds: formats, conditions and the model base class.

Every constrained type here carries two things at once: a JSON-schema fragment (pattern,
format, bounds) that ends up in the CRD and is enforced by the API server at admission,
and the same rule on the Python side, so `deskfleet render`/`explain` reject offline
exactly what the cluster would.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date, timedelta
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

HostName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    ),
]
"""A DNS host name, optionally a leading wildcard label."""

UrlPath = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^/[^\s?#]*$")]
"""An absolute URL path without query or fragment."""


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
