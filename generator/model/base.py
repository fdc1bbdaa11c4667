"""The ground of the site model: the closed base model, the checked string types every part uses, and the
errors that point at a field. Nothing here knows a section of the site file."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from generator.redact import shown


DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){DNS_LABEL}(\.{DNS_LABEL})+$")
DNS_LABEL_RE = re.compile(rf"^{DNS_LABEL}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
GIT_URL_RE = re.compile(r"^(https://|ssh://|http://)[^\s]+$")


class _Checked:
    """A string rule with a friendly error message that also shows up in the published JSON Schema."""

    def __init__(self, pattern: re.Pattern[str], what: str) -> None:
        self.pattern, self.what = pattern, what

    def __get_pydantic_json_schema__(self, core_schema, handler):  # noqa: ANN001
        schema = handler(core_schema)
        schema.update(pattern=self.pattern.pattern, description=f"A {self.what}.")
        return schema


def checked(pattern: re.Pattern[str], what: str):
    def validate(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{shown(value)} is not a valid {what}")
        return value

    return _Checked(pattern, what), AfterValidator(validate)


Hostname = Annotated[str, *checked(HOSTNAME_RE, "DNS hostname (lowercase labels separated by dots)")]
DnsLabel = Annotated[str, *checked(DNS_LABEL_RE, "DNS label (lowercase letters, digits and '-', at most 63)")]
EnvName = Annotated[str, *checked(ENV_NAME_RE, "environment variable name")]
SecretKey = Annotated[str, *checked(SECRET_KEY_RE, "secret key name (UPPER_SNAKE_CASE)")]
Duration = Annotated[str, *checked(DURATION_RE, "duration such as 30s, 5m or 1h")]


def _number_as_text(value: object) -> object:
    # `cpu: 1` is a YAML integer; Kubernetes quantities are strings.
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


Quantity = Annotated[
    str, BeforeValidator(_number_as_text), *checked(QUANTITY_RE, "Kubernetes quantity such as 500m, 512Mi or 2Gi")
]


HttpUrl = Annotated[str, *checked(URL_RE, "http(s) URL")]
KeycloakName = Annotated[str, *checked(re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$"), "Keycloak name (letters, digits, '_', '.', '-')")]
GitUrl = Annotated[str, *checked(GIT_URL_RE, "git URL (https:// or ssh://)")]


def refuse_duplicates(values: list[str], what: str, field: str) -> None:
    """Raise an error whose context names the repeated entry, so the loader can point at its line."""
    seen: dict[str, int] = {}
    for index, value in enumerate(values):
        if value in seen:
            raise PydanticCustomError(
                "duplicate",
                "duplicate {what} {value} (first used by entry {first})",
                {"what": what, "value": shown(value), "first": seen[value], "index": index, "field": field},
            )
        seen[value] = index


def rule_error(at: str, message: str) -> PydanticCustomError:
    """A cross-field error pointing at the field to change (``at``, a dotted camelCase path)."""
    return PydanticCustomError("site_rule", message, {"at": at})


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        strict=True,
        use_enum_values=True,
    )
