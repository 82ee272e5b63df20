"""Member roles as a bitmask (`Role`, the bits of Solidity's `library Roles`), parsed from
and shown as names."""

from __future__ import annotations

from ledger.core.abi import ALL_ROLES, Role, role_names
from ledger.core.errors import InvalidInput

__all__ = ["ALL_ROLES", "Role", "parse_roles", "role_names"]


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
