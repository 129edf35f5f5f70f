"""Request and response bodies of the design API. Every request body refuses unknown
fields: a misspelt field is an error, never silently ignored."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from overture.catalog.model import Name, Offer
from overture.design.access import NAME_PATTERN

T = TypeVar("T")
S = TypeVar("S")


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


Timestamp = Annotated[dt.datetime, AfterValidator(_utc)]
"""A UTC instant, sent as RFC 3339 with its zone (the database keeps naive UTC)."""


INT_MAX = 2**31 - 1
"""The largest number an id or number column holds (a 32-bit INTEGER): ids, numbers and
offsets are bounded by it, so an absurd one is a 422 that says so, not a driver error."""


def _no_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL: refuse it in any string of a request body (the error
    names the field) instead of failing at the database."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text may not contain the NUL character (\\u0000)")
    elif isinstance(value, dict):
        for k, v in value.items():
            _no_nul(k)
            _no_nul(v)
    elif isinstance(value, list):
        for v in value:
            _no_nul(v)
    return value


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _text_without_nul(cls, value: Any) -> Any:
        return _no_nul(value)


class Issue(BaseModel):
    where: str
    message: str
    hint: str | None = None
    severity: str = "error"


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class ObjectOut(BaseModel, Generic[S]):
    kind: str
    key: str
    version: int = Field(description="Send it back in If-Match to change or delete the object")
    spec: S
    created_at: Timestamp | None = None
    created_by: str | None = None
    updated_at: Timestamp | None = None
    updated_by: str | None = None
    warnings: list[Issue] = Field(default_factory=list)


class OfferOut(ObjectOut[Offer]):
    status: str = Field(description="draft, pending, approved or rejected (of the head revision)")
    revision: int
    approved_revision: int | None = Field(
        description="What deployments take; none if never approved"
    )
    live: dict[str, int] | None = Field(None, description="Environment -> revision running there")


class Revision(BaseModel):
    revision: int
    status: str
    head: bool
    approved: bool
    created_by: str
    created_at: Timestamp
    submitted_by: str | None
    submitted_at: Timestamp | None
    decisions: list[dict[str, Any]]
    spec: dict[str, Any]


class Comment(Input):
    comment: str = Field("", max_length=2000)


Password = Annotated[str, StringConstraints(min_length=1, max_length=200)]
NewPassword = Annotated[
    str,
    StringConstraints(min_length=10, max_length=200),
    Field(description="At least 10 characters; a passphrase of a few words is best"),
]
OperatorName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


class LoginIn(Input):
    name: Annotated[str, StringConstraints(max_length=64)]
    password: Password


class LoginOut(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_at: Timestamp
    operator: str
    roles: list[str]


class PasswordIn(Input):
    current: Password
    new: NewPassword


class OperatorIn(Input):
    name: OperatorName
    password: NewPassword
    roles: list[str] = Field(min_length=1, max_length=6)


class OperatorPatch(Input):
    roles: list[str] | None = Field(None, min_length=1, max_length=6)
    disabled: bool | None = None
    password: NewPassword | None = None


class OperatorOut(BaseModel):
    name: str
    roles: list[str]
    disabled: bool
    created_at: Timestamp


class EnvironmentIn(Input):
    name: Name
    description: str = Field("", max_length=200)
    requires: Name | None = Field(
        None, description="An environment whose deployments must have run the same content first"
    )


class EnvironmentOut(BaseModel):
    name: str
    description: str
    requires: str | None
    current: int | None = Field(description="Its current deployment number")


class ApiKeyIn(Input):
    environment: Name
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ApiKeyOut(BaseModel):
    id: int
    name: str
    environment: str
    prefix: str
    created_by: str
    created_at: Timestamp
    revoked_at: Timestamp | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="Shown once: only its hash is kept")


class DeployIn(Input):
    comment: str = Field("", max_length=2000)
    force: bool = Field(
        False,
        description="Administrators only: skip the check that the "
        "same content ran on the environment this one requires",
    )


class SimulationIn(Input):
    placement: str = Field(min_length=1, max_length=64, description="The placement to fill")
    n: int | None = Field(None, ge=1, le=100, description="Offers per recipient")
    limit: int | None = Field(
        None, ge=1, le=10_000_000, description="At most this many stored profiles (by id)"
    )
    at: dt.datetime | None = Field(None, description="Decide as at this UTC instant")
    format: Literal["json", "html"] = Field("json", description="Figures, or the HTML report")


class RollbackIn(Input):
    to: int = Field(ge=1, le=INT_MAX, description="The deployment number to deploy again")
    comment: str = Field("", max_length=2000)


class DeploymentOut(BaseModel):
    environment: str
    number: int
    content_hash: str
    comment: str
    deployed_by: str
    deployed_at: Timestamp
    forced: bool
    rollback_of: int | None
    offers: dict[str, int]


class DeploymentDetail(DeploymentOut):
    catalog: dict[str, Any] = Field(description="The deployed catalog snapshot")


class SectionChanges(BaseModel):
    added: list[str]
    changed: list[str]
    removed: list[str]


class PlanOut(BaseModel):
    environment: str
    current: int | None
    unchanged: bool
    changes: dict[str, SectionChanges]
    settings_changed: bool
    content_hash: str
    requires: str | None
    ran_on_required: bool | None
    not_yet_approved: list[str]
    errors: list[Issue]


FileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}\.ya?ml$")]


class Files(Input):
    files: dict[FileName, Annotated[str, StringConstraints(max_length=8_000_000)]] = Field(
        min_length=1, description="YAML files of a catalog, by name"
    )


class ImportOut(BaseModel):
    settings_changed: bool
    sections: dict[str, SectionChanges]


class AuditOut(BaseModel):
    id: int
    at: Timestamp
    operator: str
    action: str
    kind: str
    key: str
    before: Any = None
    after: Any = None
