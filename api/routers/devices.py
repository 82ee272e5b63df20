"""Device keys: a factory binds a shop-floor key with the key's own signed consent."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, status
from pydantic import Field

from api.deps import NodeDep, SessionDep
from api.models import DeviceBindingOut, DeviceIn
from api.params import MAX_UINT48
from ledger.eth import eip712
from ledger.membership.consortium import Device

router = APIRouter(prefix="/devices", tags=["device keys"])


class FactoryDevice(Device):
    status: str = Field(description="active | expired | revoked (revoked or unbound)")


@router.get(
    "",
    response_model=list[FactoryDevice],
    summary="The device keys a factory authorised, with their status now",
)
def list_devices(
    node: NodeDep,
    factory: str = Query(pattern=r"^0x[0-9a-fA-F]{40}$", description="the factory"),
) -> list[FactoryDevice]:
    now = int(node.chain.w3.eth.get_block("latest")["timestamp"])
    out = []
    for d in node.consortium.devices_of(factory):
        expired = d.expires_at != 0 and d.expires_at <= now
        status = "revoked" if not d.active else "expired" if expired else "active"
        out.append(FactoryDevice(**d.model_dump(), status=status))
    return out


@router.get("/{address}", response_model=Device)
def show_device(address: str, node: NodeDep) -> Device:
    return node.consortium.device(address)


@router.get(
    "/{address}/binding",
    response_model=DeviceBindingOut,
    summary="What a device key signs to consent to its binding to a factory",
)
def binding(
    address: str,
    node: NodeDep,
    factory: str = Query(pattern=r"^0x[0-9a-fA-F]{40}$", description="the factory to bind to"),
    expires_at: int = Query(default=0, ge=0, le=MAX_UINT48, description="0 for no expiry (uint48)"),
) -> dict[str, Any]:
    c = node.consortium
    data = c.binding_typed_data(c.device_binding(factory, address, expires_at))
    return {"typed_data": data, "digest": "0x" + eip712.digest(data).hex()}


@router.post(
    "",
    response_model=Device,
    status_code=status.HTTP_201_CREATED,
    summary="Authorise a shop-floor device key with its signed consent (factories)",
)
def authorize(body: DeviceIn, node: NodeDep, session: SessionDep) -> Device:
    # the transaction is the signed-in member's; the consent is the device key's own
    sender = node.sender(session.address)
    node.consortium.authorize_device(sender, body.device, body.expires_at, body.signature)
    return node.consortium.device(body.device)


@router.delete("/{address}", response_model=Device, summary="Revoke a device key")
def revoke(address: str, node: NodeDep, session: SessionDep) -> Device:
    node.consortium.revoke_device(node.sender(session.address), address)
    return node.consortium.device(address)
