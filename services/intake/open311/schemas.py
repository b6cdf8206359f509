"""What the Open311 routes answer, as pydantic models for the OpenAPI document (JSON; the XML
answer holds the same fields as elements). The routes build their answers in ``catalog`` and
``status``; the tests check those against these models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Service(_Model):
    service_code: str = Field(description="The taxonomy's category code")
    service_name: str
    description: str
    metadata: bool = Field(description="Always true: every service has a definition")
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str = Field(description="Comma-separated")
    group: str = Field(description="The agency mode: 诉求代理, 意愿代言 or 事务代办")


class AttributeValue(_Model):
    key: str
    name: str


class Attribute(_Model):
    variable: bool
    code: str
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[AttributeValue] | None = None


class ServiceDefinition(_Model):
    service_code: str
    attributes: list[Attribute]


class PostedRequest(_Model):
    service_request_id: str = Field(description="The case's id (an existing one when seconded)")
    service_notice: str | None
    account_id: str | None
    status_url: str | None = Field(
        None,
        description="The case's status page for the resident (an extension; with "
        "WANGGE_LINK_KEY): hand it to the resident, it is the only way in",
    )


class UnitRef(_Model):
    code: str
    name: str | None


class ExtendedAttributes(_Model):
    channel: str = Field(description="The report source of the upstream system's key")
    case_state: Literal[
        "opened", "dispatched", "escalated", "accepted", "resolved", "reopened", "closed"
    ]
    duplicate: bool = Field(description="The request seconded (附议) a case already open")
    supporter_count: int = Field(description="Distinct reporters of the case (附议 included)")
    district: UnitRef | None
    street: UnitRef | None
    community: UnitRef | None
    grid: UnitRef | None
    building: UnitRef | None
    tier: Literal["grid", "community", "street", "district"] | None
    handling_unit: UnitRef | None
    respond_by: str | None = Field(description="Response deadline (W3C date-time)")
    resolve_by: str | None = Field(description="Resolution deadline (W3C date-time)")
    accepted_datetime: str | None
    resolved_datetime: str | None
    overdue: bool
    rating_state: Literal["none", "awaiting", "unsatisfied", "satisfied", "unrated"]
    reopen_count: int


class ServiceRequest(_Model):
    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None
    service_name: str | None
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None
    extended_attributes: ExtendedAttributes | None = Field(None, description="With extensions=true")


class Endpoint(_Model):
    specification: str
    url: str
    changeset: str
    type: Literal["production", "test"]
    formats: list[str]


class Discovery(_Model):
    changeset: str
    contact: str
    key_service: str
    endpoints: list[Endpoint]


class Error(_Model):
    code: int = Field(description="The HTTP status")
    description: str


class Submission(BaseModel):
    """A POST's fields (form-encoded as the specification says, or a JSON object); the service
    definition's attributes as ``attribute[code]=value`` (in JSON also ``"attribute": {code:
    value}``)."""

    model_config = ConfigDict(extra="allow")

    api_key: str | None = Field(None, description="Or the query's api_key, or HTTP Basic")
    jurisdiction_id: str | None = None
    service_code: str
    lat: float | None = Field(None, description="With long; or address_string or address_id")
    long: float | None = None
    address_string: str | None = None
    address_id: str | None = Field(None, description="A registry code (building, grid, …)")
    email: str | None = Field(None, description="Accepted and not kept")
    device_id: str | None = Field(None, description="Accepted and not kept")
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = Field(None, description="A mainland China mobile number")
    description: str = Field(description="Required here (the specification has it optional)")
    media_url: str | None = None
