from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import MemberDep, NodeDep
from api.models import RawTxIn, TxOut
from ledger.eth import tx

router = APIRouter(prefix="/tx", tags=["transactions"])


def tx_out(receipt: Any) -> TxOut:
    return TxOut(
        tx_hash=receipt["transactionHash"].to_0x_hex(),
        block_number=int(receipt["blockNumber"]),
        status=int(receipt["status"]),
    )


@router.post("", response_model=TxOut, summary="Relay a transaction you signed yourself")
def relay(body: RawTxIn, node: NodeDep, member: MemberDep) -> TxOut:
    return tx_out(tx.relay(node.chain, body.raw, member.address))
