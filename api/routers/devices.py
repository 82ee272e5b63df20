from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from api.deps import NodeDep, SessionDep
from api.models import DeviceIn, DeviceOut

router = APIRouter(prefix="/devices", tags=["device keys"])


@router.get("/{address}", response_model=DeviceOut)
def show_device(address: str, node: NodeDep) -> dict[str, Any]:
    return node.consortium.device(address).as_dict()


@router.post(
    "",
    response_model=DeviceOut,
    status_code=status.HTTP_201_CREATED,
    summary="Authorise a shop-floor device key (factories)",
)
def authorize(body: DeviceIn, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    node.consortium.authorize_device(node.sender(session.address), body.device, body.expires_at)
    return node.consortium.device(body.device).as_dict()


@router.delete("/{address}", response_model=DeviceOut, summary="Revoke a device key")
def revoke(address: str, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    node.consortium.revoke_device(node.sender(session.address), address)
    return node.consortium.device(address).as_dict()
