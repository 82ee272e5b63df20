"""EPCIS 2.0 event documents: the payload of a production step.

A step's payload is one EPCIS 2.0 event in its JSON/JSON-LD form, as it stands in an
EPCISDocument's `eventList` (its `@context` may be left to the document). It must be valid
under GS1's normative EPCIS 2.0 JSON schema (`gs1/EPCIS-JSON-Schema.json`, unmodified), with
its `uri` and `date-time` formats checked, and under the few rules of the standard the
schema cannot state (`_SEMANTIC_RULES`). It is canonicalised with RFC 8785 and its SHA-256 is
the step's `payloadHash`, so any party can recompute the hash from the document alone.

The schema is compiled once, at import, with jsonschema-rs: it checks an event in tens of
microseconds, where the pure-Python `jsonschema` package takes milliseconds on this schema
(its `if`/`then` dispatch and `propertyNames` over `$ref`s); tests/test_epcis.py checks
that the two agree.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema_rs
import rfc8785

from ledger.core import canonical_json
from ledger.core.errors import InvalidInput

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_BIZ_STEP_BYTES = 2048
EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransformationEvent",
    "AssociationEvent",
    "TransactionEvent",
)
SCHEMA: dict[str, Any] = json.loads(
    resources.files("ledger.steps").joinpath("gs1/EPCIS-JSON-Schema.json").read_text()
)
"""GS1's EPCIS 2.0 JSON schema (draft-07)."""


def _definition(name: str) -> jsonschema_rs.Draft7Validator:
    """A validator of one of the schema's definitions, formats checked."""
    schema = {
        "$schema": SCHEMA["$schema"],
        "$ref": f"#/definitions/{name}",
        "definitions": SCHEMA["definitions"],
    }
    return jsonschema_rs.Draft7Validator(schema, validate_formats=True)


_EVENT = _definition("EPCIS-Document-Event")
_BIZ_STEP = _definition("bizStep")
BIZ_STEPS = frozenset(
    word for branch in SCHEMA["definitions"]["bizStep"]["anyOf"] for word in branch.get("enum", ())
)
"""The GS1 CBV 2.0 business steps (bare words); any other URI outside GS1's namespaces is a
valid custom bizStep too."""
_EPC_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")


def _pointer(path: Any) -> str:
    """`payload.epcList[0]` from a JSON instance path."""
    out = "payload"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _schema_error(document: dict[str, Any]) -> InvalidInput | None:
    """The most specific schema violation (the deepest in the document), if any."""
    if _EVENT.is_valid(document):  # the everyday case, without collecting errors
        return None
    errors = list(_EVENT.iter_errors(document))
    if not errors:
        return None
    first = max(errors, key=lambda e: len(e.instance_path))
    if isinstance(first.kind, jsonschema_rs.ValidationErrorKind.PropertyNames):
        name = str(first.kind.error.instance)
        where = _pointer([*first.instance_path, name])
        return InvalidInput(
            f"not a valid EPCIS 2.0 event (GS1 schema): {where}: {name!r} is neither a field "
            "EPCIS defines here nor a namespaced extension (name extensions by a URI or a "
            "compact IRI such as ex:lotNumber, with ex in @context)",
            field=where,
        )
    path = list(first.instance_path)
    if isinstance(first.kind, jsonschema_rs.ValidationErrorKind.Required):
        path.append(str(first.kind.property))  # name the missing member itself
    where = _pointer(path)
    return InvalidInput(
        f"not a valid EPCIS 2.0 event (GS1 schema): {where}: {_short(first.message)}",
        field=where,
    )


def _rule(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"not a valid EPCIS 2.0 event: {field}: {message}", field=field)


def _aggregation_parent(document: dict[str, Any]) -> InvalidInput | None:
    action = document.get("action")
    if document.get("type") != "AggregationEvent" or action not in ("ADD", "DELETE"):
        return None
    if document.get("parentID"):
        return None
    return _rule(
        "payload.parentID",
        f"an AggregationEvent with action {action} needs parentID (it may be omitted only "
        "when action is OBSERVE)",
    )


def _duplicate_epcs(document: dict[str, Any]) -> InvalidInput | None:
    for name in _EPC_LISTS:
        epcs = document.get(name)
        if isinstance(epcs, list) and len(set(epcs)) != len(epcs):
            seen: set[str] = set()
            for i, epc in enumerate(epcs):
                if epc in seen:
                    return _rule(f"payload.{name}[{i}]", f"{epc!r} is listed twice")
                seen.add(epc)
    return None


def _readable_time(document: dict[str, Any]) -> InvalidInput | None:
    try:
        event_time(document)
    except ValueError:
        return _rule(
            "payload.eventTime",
            f"{document['eventTime']!r} is not a time this node can date (a leap second?)",
        )
    return None


_SEMANTIC_RULES = (_aggregation_parent, _duplicate_epcs, _readable_time)
"""EPCIS 2.0 rules beyond the JSON schema, checked once the schema holds (the schema has
made every EPC a string)."""


def validate(document: Any) -> None:
    """Raise InvalidInput naming the first thing that makes `document` no valid event."""
    if not isinstance(document, dict):
        raise InvalidInput("payload must be one EPCIS event object", field="payload")
    if not isinstance(document.get("type"), str):
        raise InvalidInput(
            f"payload.type must name the event type ({', '.join(EVENT_TYPES)})",
            field="payload.type",
        )
    error = _schema_error(document)
    if error is None:
        for rule in _SEMANTIC_RULES:
            error = rule(document)
            if error is not None:
                break
    if error is not None:
        raise error


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
    validate(document)
    assert isinstance(document, dict)
    return document


@lru_cache(maxsize=1024)
def check_biz_step(value: str) -> str:
    """`value` if it is a valid EPCIS 2.0 bizStep (a CBV word such as `assembling`, or a URI
    outside GS1's CBV namespaces); the URN form `urn:epcglobal:cbv:bizstep:…` is EPCIS 1.x."""
    try:
        size = len(value.encode())
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 text
        raise InvalidInput("bizStep is not UTF-8 text", field="bizStep") from None
    if size > MAX_BIZ_STEP_BYTES:
        raise InvalidInput(f"bizStep is longer than {MAX_BIZ_STEP_BYTES} bytes", field="bizStep")
    if not _BIZ_STEP.is_valid(value):
        raise InvalidInput(
            f"business step {value!r} is not an EPCIS 2.0 bizStep: give a GS1 CBV word "
            "(e.g. assembling, inspecting, packing, shipping) or your own URI outside the "
            "CBV namespaces (e.g. https://example.com/steps/anodizing)",
            field="bizStep",
        )
    return value


def canonical(document: dict[str, Any]) -> bytes:
    try:
        data = canonical_json.dumps(document)
    except canonical_json.InexactNumber as exc:
        where = "payload" + exc.path.removeprefix("$")
        raise InvalidInput(
            f"payload cannot be canonicalised (RFC 8785): {where}{str(exc).removeprefix(exc.path)}",
            field=where,
        ) from None
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
    """The event's time in whole seconds (RFC 3339: `t`/`z` may be lower case)."""
    return int(datetime.fromisoformat(str(document["eventTime"]).upper()).timestamp())


def check_matches(document: dict[str, Any], biz_step: str, time: int) -> None:
    """The record and its payload must say the same thing about what and when: the
    record's bizStep is the payload's, as written (when the payload states one)."""
    stated = document.get("bizStep")
    if stated is not None and stated != biz_step:
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
