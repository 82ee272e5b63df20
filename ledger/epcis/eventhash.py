"""The EPCIS event hash ID of GS1's CBV 2.0 (section 8.9): `ni:///sha-256;…?ver=CBV2.0`.

An event's identity that does not depend on how it is written: the event is turned into a
pre-hash string (its fields in the canonical property order, values canonicalised: times in
UTC with milliseconds, numbers without trailing zeros, CBV bare words and EPCIS 1.x URNs as
GS1 web URIs, EPC URIs as constrained canonical GS1 Digital Link URIs, list members and
user extensions sorted, extension names as `{namespace}local`), then SHA-256 of it is put in
an RFC 6920 `ni` URI. The same event sent as an MES writes it and as another system writes
it gets the same eventID, which is what makes capture idempotent.

Written from the CBV 2.0 algorithm rather than taken from GS1's reference implementation
(PyPI `epcis-event-hash-generator`): that one expands each document with a JSON-LD
processor (milliseconds an event), keeps module-level state (not thread-safe), and fetches
unknown contexts from the network. tests/test_epcis_capture_hash.py checks this one against
the hashes GS1 publishes with its examples. EPC URI schemes converted to Digital Link:
every EPC scheme with a GS1 key (sgtin, sscc, sgln, grai, giai, gsrn, gsrnp, gdti, cpi, sgcn,
ginc, gsin, itip, upui, pgln), lgtin classes and the patterns of the keyed schemes; other
identifiers are hashed as written.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from ledger.steps.epcis import BIZ_STEPS

CBV = "https://ref.gs1.org/cbv/"
GS1_VOC = "https://gs1.org/voc/"
DEFAULT_PREFIXES = {"cbv": CBV, "gs1": GS1_VOC, "epcis": "https://ref.gs1.org/epcis/"}
IGNORED = frozenset(
    {
        "type",
        "eventID",
        "recordTime",
        "errorDeclaration",
        "@context",
        "#text",
        "comment",
        "rdfs:comment",
    }
)
_URNS = (
    ("urn:epcglobal:cbv:bizstep:", CBV + "BizStep-"),
    ("urn:epcglobal:cbv:disp:", CBV + "Disp-"),
    ("urn:epcglobal:cbv:btt:", CBV + "BTT-"),
    ("urn:epcglobal:cbv:sdt:", CBV + "SDT-"),
    ("urn:epcglobal:cbv:er:", CBV + "ER-"),
)

_EPC = ("epc", None)
_QUANTITY = ("quantityElement", ("epcClass", "quantity", "uom"))
_METADATA = (
    "time", "startTime", "endTime", "deviceID", "deviceMetadata", "rawData",
    "dataProcessingMethod", "bizRules",
)  # fmt: skip
_REPORT = (
    "type", "exception", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod",
    "time", "microorganism", "chemicalSubstance", "value", "component", "stringValue",
    "booleanValue", "hexBinaryValue", "uriValue", "minValue", "maxValue", "meanValue",
    "sDev", "percRank", "percValue", "uom", "coordinateReferenceSystem",
)  # fmt: skip
_LISTS = {
    "epcList": _EPC, "inputEPCList": _EPC, "childEPCs": _EPC, "outputEPCList": _EPC,
    "quantityList": _QUANTITY, "childQuantityList": _QUANTITY,
    "inputQuantityList": _QUANTITY, "outputQuantityList": _QUANTITY,
}  # fmt: skip
_ORDER = (
    "eventTime", "eventTimeZoneOffset", "certificationInfo", "parentID", "epcList",
    "inputEPCList", "childEPCs", "quantityList", "childQuantityList", "inputQuantityList",
    "outputEPCList", "outputQuantityList", "action", "transformationID", "bizStep",
    "disposition", "persistentDisposition", "readPoint", "bizLocation", "sensorElementList",
)  # fmt: skip
_PAIRED = {"bizTransactionList": "bizTransaction", "sourceList": "source",
           "destinationList": "destination"}  # fmt: skip
_VOCAB = {  # bare words of a CBV/GS1 vocabulary: field -> the web URI prefix
    "disposition": CBV + "Disp-", "set": CBV + "Disp-", "unset": CBV + "Disp-",
    "bizTransactionList": CBV + "BTT-", "sourceList": CBV + "SDT-",
    "destinationList": CBV + "SDT-", "type": GS1_VOC, "exception": GS1_VOC,
    "component": CBV + "Comp-",
}  # fmt: skip


def event_id(event: Mapping[str, Any], context: Any = None) -> str:
    """The CBV 2.0 event hash ID of `event`; `context` is the document's `@context` (its
    prefixes name extension fields), the event's own `@context` counts too."""
    digest = hashlib.sha256(prehash(event, context).encode()).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"


def prehash(event: Mapping[str, Any], context: Any = None) -> str:
    """The pre-hash string (what is hashed), useful to see why two events differ."""
    own = event.get("@context")
    if _plain(context) and _plain(own):  # no prefixes beyond the defaults (the usual case)
        h = _DEFAULT
    else:
        h = _hasher(tuple(_prefixes(context, own).items()))
    try:
        return _fast(event, h)
    except _Slow:
        return _reference(event, h)


def reference_prehash(event: Mapping[str, Any], context: Any = None) -> str:
    """`prehash` as CBV 2.0 states it, field by field: the reference the fast path
    (`_fast`) is checked against (tests/test_epcis_capture_hash.py)."""
    return _reference(event, _hasher(tuple(_prefixes(context, event.get("@context")).items())))


def _reference(event: Mapping[str, Any], h: _Hasher) -> str:
    out = [f"eventType={event.get('type', '')}"]
    for name in _ORDER:
        if name in event:
            out.append(h.field(name, event[name]))
    rest = [h.paired(k, v) if k in _PAIRED else h.generic(k, v)
            for k, v in event.items() if k not in IGNORED and k not in _ORDER]  # fmt: skip
    return "".join(out) + "".join(sorted(rest))


def _prefixes(*contexts: Any) -> dict[str, str]:
    found = dict(DEFAULT_PREFIXES)
    for context in contexts:
        for part in context if isinstance(context, list) else [context]:
            if isinstance(part, dict):
                found.update({k: v for k, v in part.items() if isinstance(v, str)})
    return found


@lru_cache(maxsize=64)
def _hasher(prefixes: tuple[tuple[str, str], ...]) -> _Hasher:
    """One hasher per set of prefixes, so its value cache serves every event of a capture."""
    return _Hasher(dict(prefixes))


def _plain(context: Any) -> bool:
    """Whether a `@context` names no prefixes (absent, a URL, or a list of URLs)."""
    return (
        context is None
        or type(context) is str
        or (type(context) is list and all(type(part) is str for part in context))
    )


class _Slow(Exception):
    """The event has a shape the fast path leaves to the reference."""


def _fast(event: Mapping[str, Any], h: _Hasher) -> str:
    """The pre-hash string of an everyday event: the reference's output, built with fewer
    calls (whole fields looked up, times and numbers formatted directly). Raises _Slow for
    anything it does not cover."""
    out = [f"eventType={event.get('type', '')}"]
    rest = []
    fields = h.fields
    for name, value in event.items():
        if name in _ORDER_SET:
            continue
        if name not in IGNORED:
            rest.append(h.paired(name, value) if name in _PAIRED else h.generic(name, value))
    for name in _ORDER:
        if name not in event:
            continue
        value = event[name]
        kind = _FAST_KIND.get(name)
        if kind is _SIMPLE and type(value) is str:
            text = fields.get((name, value)) or h.whole(name, value, value)
        elif kind is _TIME and type(value) is str:
            text = _fast_time(name, value) or h.field(name, value)
        elif (
            kind is _ID and type(value) is dict and len(value) == 1 and type(value.get("id")) is str
        ):
            text = fields.get((name, value["id"])) or h.whole(name, value["id"], value)
        elif kind is _EPCS and type(value) is list:
            parts = []
            for epc in value:
                if type(epc) is not str:
                    raise _Slow
                parts.append(h.value("epc", epc))
            body = "".join(sorted(p for p in parts if p))
            text = name + body if body else ""
        elif kind is _SENSORS and type(value) is list:
            elements = [_fast_sensor_element(h, e) for e in value if isinstance(e, dict)]
            text = name + "".join(sorted(elements)) if elements else ""
        else:
            text = h.field(name, value)
        out.append(text)
    return "".join(out) + "".join(sorted(rest))


_ORDER_SET = frozenset(_ORDER)
_SIMPLE, _TIME, _ID, _EPCS, _SENSORS = range(5)
_FAST_KIND = {
    "eventTime": _TIME, "eventTimeZoneOffset": _SIMPLE, "action": _SIMPLE,
    "bizStep": _SIMPLE, "disposition": _SIMPLE, "transformationID": _SIMPLE,
    "parentID": _SIMPLE, "certificationInfo": _SIMPLE, "readPoint": _ID, "bizLocation": _ID,
    "epcList": _EPCS, "inputEPCList": _EPCS, "childEPCs": _EPCS, "outputEPCList": _EPCS,
    "sensorElementList": _SENSORS,
}  # fmt: skip
_UTC = re.compile(
    r"([1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,3}))?(?:Z|\+00:00)"
)
_SAFE = 2**53
_REPORT_INDEX = {k: i for i, k in enumerate(_REPORT)}
_REPORT_VOCAB = {k: _VOCAB[k] for k in ("type", "exception", "component")}


def _fast_time(name: str, value: str) -> str | None:
    """`name=…` of a UTC time written with at most milliseconds, without a datetime
    round trip; None for any other form (the reference handles it)."""
    m = _UTC.fullmatch(value)
    if m is None:
        return None
    try:
        datetime.fromisoformat(m.group(1))  # a real date and time (no 24:00, no Feb 30)
    except ValueError:
        return None
    return f"{name}={m.group(1)}.{(m.group(2) or '').ljust(3, '0')}Z"


def _fast_sensor_element(h: _Hasher, element: Mapping[str, Any]) -> str:
    """The reference's `sensor_element` for an element of reports alone."""
    reports = element.get("sensorReport")
    if len(element) != 1 or type(reports) is not list:
        return h.sensor_element(element)
    out = []
    for report in reports:
        if type(report) is not dict:
            raise _Slow
        parts = []
        for key, value in report.items():
            index = _REPORT_INDEX.get(key)
            if index is None:
                raise _Slow  # an extension in the report
            if type(value) is int and -_SAFE < value < _SAFE:
                parts.append((index, f"{key}={value}"))
            elif type(value) is str:
                parts.append((index, h.value(key, value, _REPORT_VOCAB.get(key))))
            else:
                raise _Slow
        parts.sort()
        out.append("sensorReport" + "".join(text for _, text in parts))
    return "sensorElement" + "".join(sorted(out))


class _Hasher:
    CACHE = 8192  # canonical forms of string values kept (bizSteps, locations, EPCs, ...)

    def __init__(self, prefixes: dict[str, str]) -> None:
        self.prefixes = prefixes
        self._strings: dict[tuple[str, str, str | None], str] = {}
        self.fields: dict[tuple[str, str], str] = {}  # whole fields of the fast path

    def whole(self, name: str, key: str, value: Any) -> str:
        """`field(name, value)`, kept under (name, key) for the next event."""
        if len(self.fields) >= self.CACHE:
            self.fields.clear()
        text = self.fields[(name, key)] = self.field(name, value)
        return text

    def name(self, key: str) -> str:
        prefix, sep, local = key.partition(":")
        if sep and prefix in self.prefixes and not local.startswith("//"):
            return "{" + self.prefixes[prefix] + "}" + local
        return key

    def value(self, key: str, value: Any, vocab: str | None = None) -> str:
        if type(value) is str:  # most values repeat from event to event: look them up
            cached = self._strings.get((key, value, vocab))
            if cached is None:
                cached = self._value(key, value, vocab)
                if len(self._strings) >= self.CACHE:
                    self._strings.clear()
                self._strings[(key, value, vocab)] = cached
            return cached
        return self._value(key, value, vocab)

    def _value(self, key: str, value: Any, vocab: str | None) -> str:
        if isinstance(value, bool):
            text = str(value)  # as GS1's implementation writes xsd:boolean: True / False
        elif isinstance(value, (int, float)):
            text = _number(str(value))
        else:
            text = str(value).strip()
            if "time" in key.lower() and "offset" not in key.lower():
                return f"{key}={_utc_millis(text)}"
            prefix, sep, local = text.partition(":")
            if vocab and not sep:
                text = vocab + text
            elif sep and prefix in self.prefixes and not local.startswith("//"):
                text = self.prefixes[prefix] + local
            if text.startswith("urn:epcglobal:cbv:"):
                for urn, web in _URNS:
                    if text.startswith(urn):
                        text = web + text[len(urn) :]
            text = digital_link(text) or _number(text)
        return f"{key}={text}" if text else ""

    def field(self, name: str, value: Any) -> str:
        if name in _LISTS:
            item, keys = _LISTS[name]
            if keys is None:
                parts = [self.value(item, v) for v in value or []]
            else:
                parts = [item + self.ordered(e, keys) for e in value or [] if isinstance(e, dict)]
            body = "".join(sorted(p for p in parts if p))
            return name + body if body else ""
        if name == "bizStep":
            word = str(value)
            return self.value(name, value, CBV + "BizStep-" if word in BIZ_STEPS else None)
        if name in ("readPoint", "bizLocation"):
            return name + self.ordered(value, ("id",)) if isinstance(value, dict) else ""
        if name == "persistentDisposition" and isinstance(value, dict):
            body = "".join(
                "".join(sorted(self.value(k, v, _VOCAB[k]) for v in value.get(k) or []))
                for k in ("set", "unset")
            )
            return name + body if body else ""
        if name == "sensorElementList":
            elements = [self.sensor_element(e) for e in value or [] if isinstance(e, dict)]
            return name + "".join(sorted(elements)) if elements else ""
        return self.value(name, value, _VOCAB.get(name))

    def ordered(self, obj: Mapping[str, Any], keys: tuple[str, ...]) -> str:
        """`obj`'s standard fields in order, then its extensions, sorted."""
        parts = [self.value(k, obj[k], _VOCAB.get(k) if k in ("type", "exception",
                 "component") else None) for k in keys if k in obj]  # fmt: skip
        extra = sorted(self.generic(k, v) for k, v in obj.items() if k not in keys and
                       k not in IGNORED)  # fmt: skip
        return "".join(parts) + "".join(extra)

    def sensor_element(self, element: Mapping[str, Any]) -> str:
        out = "sensorElement"
        if isinstance(element.get("sensorMetadata"), dict):
            out += "sensorMetadata" + self.ordered(element["sensorMetadata"], _METADATA)
        reports = [self.ordered(r, _REPORT) for r in element.get("sensorReport") or []]
        out += "".join(sorted("sensorReport" + r for r in reports))
        extra = [self.generic(k, v) for k, v in element.items()
                 if k not in ("sensorMetadata", "sensorReport") and k not in IGNORED]  # fmt: skip
        return out + "".join(sorted(extra))

    def paired(self, name: str, items: Any) -> str:
        """bizTransactionList, sourceList, destinationList: `type=…` then the value."""
        member = _PAIRED[name]
        parts = []
        for item in items or []:
            if isinstance(item, dict):
                kind = self.value("type", item["type"], _VOCAB[name]) if "type" in item else ""
                parts.append(kind + self.value(member, item.get(member, "")))
        return name + "".join(sorted(parts))

    def generic(self, key: str, value: Any) -> str:
        """A user extension (or ilmd): `{namespace}local=value`, children sorted; a list
        is one entry per member, as in XML."""
        name = self.name(key)
        if isinstance(value, list):
            return "".join(sorted(self.generic(key, v) for v in value))
        if isinstance(value, dict):
            children = [self.generic(k, v) for k, v in value.items() if k not in IGNORED]
            return name + "".join(sorted(children))
        text = self.value("", value)
        return name + text


def _number(text: str) -> str:
    """`1.0` -> `1`, `0.3434000` -> `0.3434`: numbers without trailing zeros."""
    if not text or text[0] not in _NUMERIC_START:
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return str(int(number)) if number == int(number) else str(number)


_NUMERIC_START = frozenset("0123456789+-.iInN")  # as float() reads them


def _utc_millis(text: str) -> str:
    """An xsd:dateTimeStamp in UTC with milliseconds (`…T10:00:30.000Z`)."""
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        return text
    moment = moment.astimezone(UTC)
    millis = round(moment.microsecond / 1000)
    if millis == 1000:
        moment = moment.replace(microsecond=0) + _SECOND
        millis = 0
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


_DEFAULT = _hasher(tuple(DEFAULT_PREFIXES.items()))
_SECOND = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)


def _check_digit(digits: str) -> str:
    """GS1 mod-10 check digit (GTIN, GLN, SSCC, GSRN, GDTI, GRAI)."""
    total = 3 * sum(map(int, digits[-1::-2])) + sum(map(int, digits[-2::-2]))
    return str((10 - total % 10) % 10)


def _encode(text: str) -> str:
    for char, code in (("!", "%21"), ("(", "%28"), (")", "%29"), ("*", "%2A"), ("+", "%2B"),
                       (",", "%2C"), (":", "%3A")):  # fmt: skip
        text = text.replace(char, code)
    return text


_EPC_URI = re.compile(r"^urn:epc:(id|class|idpat):([a-z]+):(\d{6,12})\.([^.]*)(?:\.(.*))?$")
_DL = re.compile(r"^https?://[^/?#]+((?:/[^/?#]+/[^/?#]+)+)/?(?:\?[^#]*)?(?:#.*)?$")
_DL_AIS = {"gtin": "01", "sscc": "00", "gln": "414", "party": "417", "gsrn": "8018",
           "gsrnp": "8017", "gdti": "253", "grai": "8003", "giai": "8004", "lot": "10",
           "ser": "21", "cpv": "22", "itip": "8006", "cpid": "8010", "gcn": "255",
           "ginc": "401", "gsin": "402"}  # fmt: skip
_DL_KEYS = frozenset({"00", "01", "253", "255", "401", "402", "414", "417", "8003", "8004",
                      "8006", "8010", "8017", "8018"})  # fmt: skip


@lru_cache(maxsize=65536)
def digital_link(uri: str) -> str | None:
    """The constrained canonical GS1 Digital Link URI of an EPC (class, pattern) URI or a
    GS1 Digital Link URI; None for anything else."""
    if not uri.startswith(("urn:epc:", "http")):
        return None
    m = _EPC_URI.match(uri)
    if m:
        return _from_epc(m.group(1), m.group(2), m.group(3), m.group(4), m.group(5))
    m = _DL.match(uri)
    if m is None:
        return None
    parts = m.group(1).strip("/").split("/")
    pairs = [(_DL_AIS.get(parts[i], parts[i]), parts[i + 1]) for i in range(0, len(parts), 2)]
    if not pairs or pairs[0][0] not in _DL_KEYS:
        return None
    keep = [(ai, v) for ai, v in pairs if ai != "22"]  # drop the consumer product variant
    if any(ai == "21" for ai, _ in keep):
        keep = [(ai, v) for ai, v in keep if ai != "10"]  # the finest level only
    return "https://id.gs1.org/" + "/".join(f"{ai}/{v}" for ai, v in keep)


def _from_epc(kind: str, scheme: str, prefix: str, ref: str, rest: str | None) -> str | None:
    dl = "https://id.gs1.org/"
    if scheme in ("sgtin", "lgtin") and len(prefix) + len(ref) == 13 and ref.isdigit():
        gtin = ref[:1] + prefix + ref[1:]
        gtin += _check_digit(gtin)
        if kind == "idpat" and rest == "*":
            return f"{dl}01/{gtin}"
        if rest is None:
            return None
        return f"{dl}01/{gtin}/{'21' if scheme == 'sgtin' else '10'}/{_encode(rest)}"
    if scheme in ("itip", "upui") and len(prefix) + len(ref) == 13 and rest is not None:
        gtin = ref[:1] + prefix + ref[1:]
        gtin += _check_digit(gtin)
        if scheme == "upui":
            return f"{dl}01/{gtin}" if rest == "*" else f"{dl}01/{gtin}/235/{_encode(rest)}"
        piece, total, *serial = rest.split(".", 2)
        tail = "" if serial == ["*"] else f"/21/{_encode(serial[0])}" if serial else None
        return None if tail is None else f"{dl}8006/{gtin}{piece}{total}{tail}"
    if scheme == "cpi" and rest is not None:
        return f"{dl}8010/{_encode(prefix + ref)}" + ("" if rest == "*" else f"/8011/{rest}")
    keyed = scheme in ("grai", "gdti", "sgcn") and len(prefix) + len(ref) == 12
    if kind == "idpat" and rest == "*" and keyed:
        raw = ("0" if scheme == "grai" else "") + prefix + ref
        ai = {"grai": "8003", "gdti": "253", "sgcn": "255"}[scheme]
        return f"{dl}{ai}/{raw}{_check_digit(raw)}"
    if kind != "id":
        return None
    if scheme == "sgcn" and len(prefix) + len(ref) == 12 and rest is not None:
        raw = prefix + ref
        return f"{dl}255/{raw}{_check_digit(raw)}{rest}"
    if scheme == "ginc":
        return f"{dl}401/{prefix}{_encode(ref if rest is None else f'{ref}.{rest}')}"
    if scheme == "gsin" and len(prefix) + len(ref) == 16 and rest is None:
        raw = prefix + ref
        return f"{dl}402/{raw}{_check_digit(raw)}"
    if scheme == "sscc" and len(prefix) + len(ref) == 17 and rest is None:
        raw = ref[:1] + prefix + ref[1:]
        return f"{dl}00/{raw}{_check_digit(raw)}"
    if scheme in ("sgln", "pgln") and len(prefix) + len(ref) == 12:
        gln = prefix + ref
        gln += _check_digit(gln)
        if scheme == "pgln":
            return f"{dl}417/{gln}" if rest is None else None
        if rest is None:
            return None
        return f"{dl}414/{gln}" if rest == "0" else f"{dl}414/{gln}/254/{_encode(rest)}"
    if scheme in ("grai", "gdti") and len(prefix) + len(ref) == 12 and rest is not None:
        raw = ("0" if scheme == "grai" else "") + prefix + ref
        ai = "8003" if scheme == "grai" else "253"
        return f"{dl}{ai}/{raw}{_check_digit(raw)}{_encode(rest)}"
    if scheme == "giai":
        return f"{dl}8004/{prefix}{_encode(ref if rest is None else f'{ref}.{rest}')}"
    if scheme in ("gsrn", "gsrnp") and len(prefix) + len(ref) == 17 and rest is None:
        raw = prefix + ref
        return f"{dl}{'8018' if scheme == 'gsrn' else '8017'}/{raw}{_check_digit(raw)}"
    return None
