"""Device keys: a factory binds a shop-floor key with the key's own signed consent."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, status
from pydantic import Field

from api.deps import NodeDep, SessionDep
from api.models import DeviceBindingOut, DeviceIn, DeviceOut
from api.params import MAX_UINT48
from ledger.eth import eip712

router = APIRouter(prefix="/devices", tags=["device keys"])


class FactoryDeviceOut(DeviceOut):
    status: str = Field(description="active | expired | revoked (revoked or unbound)")


@router.get(
    "",
    response_model=list[FactoryDeviceOut],
    summary="The device keys a factory authorised, with their status now",
)
def list_devices(
    node: NodeDep,
    factory: str = Query(pattern=r"^0x[0-9a-fA-F]{40}$", description="the factory"),
) -> list[dict[str, Any]]:
    now = int(node.chain.w3.eth.get_block("latest")["timestamp"])
    out = []
    for d in node.consortium.devices_of(factory):
        expired = d.expires_at != 0 and d.expires_at <= now
        status = "revoked" if not d.active else "expired" if expired else "active"
        out.append({**d.as_dict(), "status": status})
    return out


@router.get("/{address}", response_model=DeviceOut)
def show_device(address: str, node: NodeDep) -> dict[str, Any]:
    return node.consortium.device(address).as_dict()


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
    response_model=DeviceOut,
    status_code=status.HTTP_201_CREATED,
    summary="Authorise a shop-floor device key with its signed consent (factories)",
)
def authorize(body: DeviceIn, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    # the transaction is the signed-in member's; the consent is the device key's own
    sender = node.sender(session.address)
    node.consortium.authorize_device(sender, body.device, body.expires_at, body.signature)
    return node.consortium.device(body.device).as_dict()


@router.delete("/{address}", response_model=DeviceOut, summary="Revoke a device key")
def revoke(address: str, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    node.consortium.revoke_device(node.sender(session.address), address)
    return node.consortium.device(address).as_dict()
