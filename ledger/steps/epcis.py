"""EPCIS 2.0 event documents: the payload of a production step.

A step's payload is one EPCIS 2.0 event (ObjectEvent, AggregationEvent,
TransformationEvent, AssociationEvent or TransactionEvent) in its JSON/JSON-LD form. It is
validated against the structure EPCIS 2.0 requires of each event type, canonicalised with
RFC 8785 (JSON Canonicalization Scheme), and its SHA-256 is the step's `payloadHash`, so
any party can recompute the hash from the document alone. Extension fields are allowed
(and hashed) as EPCIS allows them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ledger.core import canonical_json
from ledger.core.errors import InvalidInput
from ledger.steps.record import normalize_biz_step

MAX_PAYLOAD_BYTES = 64 * 1024
EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransformationEvent",
    "AssociationEvent",
    "TransactionEvent",
)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class QuantityElement(_Open):
    epcClass: str = Field(min_length=1)
    quantity: float = Field(ge=0)
    uom: str | None = None


class Place(_Open):
    id: str = Field(min_length=1)


class SensorReport(_Open):
    type: str | None = None
    value: float | None = None
    uom: str | None = None


class SensorElement(_Open):
    sensorMetadata: dict[str, Any] | None = None
    sensorReport: list[SensorReport] = Field(min_length=1)


class EpcisEvent(_Open):
    type: Literal[
        "ObjectEvent",
        "AggregationEvent",
        "TransformationEvent",
        "AssociationEvent",
        "TransactionEvent",
    ]
    eventTime: datetime
    eventTimeZoneOffset: str = Field(pattern=r"^[+-](0\d|1[0-4]):[0-5]\d$")
    action: Literal["ADD", "OBSERVE", "DELETE"] | None = None
    bizStep: str | None = None
    disposition: str | None = None
    epcList: list[str] = Field(default_factory=list)
    quantityList: list[QuantityElement] = Field(default_factory=list)
    parentID: str | None = None
    childEPCs: list[str] = Field(default_factory=list)
    childQuantityList: list[QuantityElement] = Field(default_factory=list)
    inputEPCList: list[str] = Field(default_factory=list)
    inputQuantityList: list[QuantityElement] = Field(default_factory=list)
    outputEPCList: list[str] = Field(default_factory=list)
    outputQuantityList: list[QuantityElement] = Field(default_factory=list)
    readPoint: Place | None = None
    bizLocation: Place | None = None
    sensorElementList: list[SensorElement] = Field(default_factory=list)

    @model_validator(mode="after")
    def _by_type(self) -> EpcisEvent:
        if self.eventTime.tzinfo is None:
            raise ValueError("eventTime must carry a time zone offset (e.g. Z or +01:00)")
        if self.type == "TransformationEvent":
            if self.action is not None:
                raise ValueError("a TransformationEvent has no action")
            if not (
                self.inputEPCList
                or self.inputQuantityList
                or self.outputEPCList
                or self.outputQuantityList
            ):
                raise ValueError("a TransformationEvent needs inputs or outputs")
            return self
        if self.action is None:
            raise ValueError(f"a {self.type} needs an action (ADD, OBSERVE or DELETE)")
        if self.type == "ObjectEvent" and not (self.epcList or self.quantityList):
            raise ValueError("an ObjectEvent needs epcList or quantityList")
        if self.type in ("AggregationEvent", "AssociationEvent"):
            if self.action != "OBSERVE" and not self.parentID:
                raise ValueError(f"a {self.type} with action {self.action} needs parentID")
            if self.action == "ADD" and not (self.childEPCs or self.childQuantityList):
                raise ValueError(f"a {self.type} ADD needs childEPCs or childQuantityList")
        return self


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "event"
    return f"{where}: {first['msg'].removeprefix('Value error, ')}"


def _where(exc: ValidationError) -> str:
    """The payload field the first validation error is about (`payload.eventTime`)."""
    first = exc.errors()[0]
    return ".".join(["payload", *(str(p) for p in first["loc"])])


def parse(document: dict[str, Any] | bytes | str) -> dict[str, Any]:
    """Check `document` is one well-formed EPCIS 2.0 event; return it as a dict."""
    if isinstance(document, (bytes, str)):
        raw = document.encode() if isinstance(document, str) else document
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise InvalidInput(
                f"payload is {len(raw)} bytes; the limit is {MAX_PAYLOAD_BYTES}", field="payload"
            )
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise InvalidInput(f"payload is not JSON: {exc}", field="payload") from None
    if not isinstance(document, dict):
        raise InvalidInput("payload must be one EPCIS event object", field="payload")
    try:
        EpcisEvent.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(f"malformed EPCIS event: {_describe(exc)}", field=_where(exc)) from None
    return document


def canonical(document: dict[str, Any]) -> bytes:
    try:
        data = canonical_json.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidInput(
            f"payload cannot be canonicalised (RFC 8785): {exc}", field="payload"
        ) from None
    if len(data) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(
            f"payload is {len(data)} bytes; the limit is {MAX_PAYLOAD_BYTES}", field="payload"
        )
    return data


def payload_hash(canonical_bytes: bytes) -> bytes:
    return hashlib.sha256(canonical_bytes).digest()


def event_time(document: dict[str, Any]) -> int:
    return int(
        datetime.fromisoformat(str(document["eventTime"]).replace("Z", "+00:00")).timestamp()
    )


def check_matches(document: dict[str, Any], biz_step: str, time: int) -> None:
    """The record and its payload must say the same thing about what and when."""
    if document.get("bizStep") is not None:
        stated = normalize_biz_step(str(document["bizStep"]))
        if stated != biz_step:
            raise InvalidInput(
                f"payload bizStep {stated!r} differs from the step's {biz_step!r}",
                field="payload.bizStep",
            )
    if event_time(document) != time:
        raise InvalidInput(
            f"payload eventTime ({event_time(document)}) differs from the step time ({time})",
            field="payload.eventTime",
        )


def evidence_hash(file_hashes: list[str]) -> bytes:
    """SHA-256 over the sorted, canonical list of evidence file SHA-256s (zero for none)."""
    if not file_hashes:
        return bytes(32)
    cleaned = sorted(h.lower().removeprefix("0x") for h in file_hashes)
    for h in cleaned:
        if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
            raise InvalidInput(
                f"evidence hash {h!r} is not a SHA-256 hex digest", field="evidence_hashes"
            )
    return hashlib.sha256(canonical_json.dumps(cleaned)).digest()
