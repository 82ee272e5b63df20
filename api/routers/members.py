from __future__ import annotations

from fastapi import APIRouter, Query

from api.deps import MemberDep, NodeDep, signer_for
from api.models import ProfileIn, RolesAtOut, TxOut
from api.params import MAX_UINT256
from api.routers.tx import tx_out
from ledger.core.abi import checksum
from ledger.membership.consortium import Member
from ledger.membership.roles import role_names

router = APIRouter(prefix="/members", tags=["members"])


@router.get("", response_model=list[Member], summary="Every member, in admission order")
def list_members(node: NodeDep) -> list[Member]:
    return node.consortium.members()


@router.get("/{address}", response_model=Member)
def show_member(address: str, node: NodeDep) -> Member:
    return node.consortium.member(checksum(address))


@router.get("/{address}/at", response_model=RolesAtOut, summary="Roles and status at a past block")
def member_at(
    address: str,
    node: NodeDep,
    block: int = Query(ge=0, le=MAX_UINT256, description="block number (uint256)"),
) -> RolesAtOut:
    roles, status = node.consortium.roles_at(checksum(address), block)
    return RolesAtOut(
        address=checksum(address),
        block_number=block,
        roles=role_names(roles),
        status=status.name.lower(),
    )


@router.put("/me/profile", response_model=TxOut, summary="Update your metadata hash and key")
def update_profile(body: ProfileIn, node: NodeDep, member: MemberDep) -> TxOut:
    receipt = node.consortium.update_profile(
        signer_for(node, member), body.metadata_hash, body.encryption_key
    )
    return tx_out(receipt)
