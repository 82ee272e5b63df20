"""What the query index keeps of an event: bare CBV words, EPCs by role, times in ms."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ledger.core.errors import QueryParameterError

_WEB = ("https://ref.gs1.org/cbv/BizStep-", "https://ref.gs1.org/cbv/Disp-")
_URN = ("urn:epcglobal:cbv:bizstep:", "urn:epcglobal:cbv:disp:")
EPC_ROLES = {
    "epcList": "epc",
    "childEPCs": "epc",
    "parentID": "parent",
    "inputEPCList": "input",
    "outputEPCList": "output",
}
QUANTITY_ROLES = {
    "quantityList": "class",
    "childQuantityList": "class",
    "inputQuantityList": "inputClass",
    "outputQuantityList": "outputClass",
}


def bare(value: Any) -> str | None:
    """A bizStep or disposition as its bare CBV word when it is one (`shipping` for
    `https://ref.gs1.org/cbv/BizStep-shipping`), else as written: one form to match."""
    if value is None:
        return None
    text = str(value)
    for prefix in (*_WEB, *_URN):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def epc_roles(event: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(identifier, role) of every EPC and EPC class the event names."""
    for field, role in EPC_ROLES.items():
        value = event.get(field)
        for epc in value if isinstance(value, list) else [value] if value else []:
            yield str(epc), role
    for field, role in QUANTITY_ROLES.items():
        for q in event.get(field) or []:
            if isinstance(q, dict) and q.get("epcClass"):
                yield str(q["epcClass"]), role


def millis(text: str) -> int:
    """An RFC 3339 time as unix milliseconds."""
    return int(datetime.fromisoformat(text.upper().replace("Z", "+00:00")).timestamp() * 1000)


def query_time(name: str, text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise QueryParameterError(
            f"{name} must be a date-time with its offset (2026-11-22T08:15:00Z), not {text!r}",
            field=name,
        )
    return int(moment.timestamp() * 1000)
