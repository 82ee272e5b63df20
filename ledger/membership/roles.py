"""Member roles as a bitmask, the same bits as the Consortium contract."""

from __future__ import annotations

from enum import IntFlag

from ledger.core.errors import InvalidInput


class Role(IntFlag):
    COUNCIL = 1
    FACTORY = 2
    DESIGNER = 4
    AUDITOR = 8
    BUYER = 16


ALL_ROLES = int(Role.COUNCIL | Role.FACTORY | Role.DESIGNER | Role.AUDITOR | Role.BUYER)


def parse_roles(text: str | list[str]) -> int:
    """'factory,designer' (or a list of names) to a bitmask; unknown names are an error."""
    names = text.split(",") if isinstance(text, str) else text
    mask = 0
    for raw in names:
        name = raw.strip().upper()
        if not name:
            continue
        try:
            mask |= Role[name]
        except KeyError:
            valid = ", ".join(r.name.lower() for r in Role if r.name)
            raise InvalidInput(
                f"unknown role {raw.strip()!r}: use {valid}", field="roles"
            ) from None
    if not mask:
        raise InvalidInput("at least one role is needed", field="roles")
    return int(mask)


def role_names(mask: int) -> list[str]:
    return [r.name.lower() for r in Role if r.name and mask & r]
