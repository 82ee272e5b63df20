from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_utils import ValidationError
from fastapi import APIRouter
from web3.exceptions import TimeExhausted, Web3RPCError

from api.deps import NodeDep, SessionDep
from api.models import RawTxIn, TxOut
from ledger.errors import ChainUnavailable, ContractRevert, Forbidden, InvalidInput

router = APIRouter(prefix="/tx", tags=["transactions"])


def tx_out(receipt: Any) -> TxOut:
    return TxOut(
        tx_hash=receipt["transactionHash"].to_0x_hex(),
        block_number=int(receipt["blockNumber"]),
        status=int(receipt["status"]),
    )


@router.post("", response_model=TxOut, summary="Relay a transaction you signed yourself")
def relay(body: RawTxIn, node: NodeDep, session: SessionDep) -> TxOut:
    try:
        sender = Account.recover_transaction(body.raw)
    except Exception:  # noqa: BLE001 - any decode failure is the caller's input
        raise InvalidInput("raw is not a signed Ethereum transaction") from None
    if sender.lower() != session.address.lower():
        raise Forbidden(f"the transaction is signed by {sender}, not by {session.address}")
    w3 = node.chain.w3
    try:
        tx_hash = w3.eth.send_raw_transaction(body.raw)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=node.chain.receipt_timeout)
    except (ValueError, ValidationError, Web3RPCError) as exc:  # RPC node / eth-tester
        raise InvalidInput(f"the chain refused the transaction: {exc}") from None
    except TimeExhausted:
        raise ChainUnavailable("the transaction was not mined in time") from None
    if receipt["status"] != 1:
        raise ContractRevert(f"transaction {receipt['transactionHash'].to_0x_hex()} reverted")
    return tx_out(receipt)
