"""Payments over HTTP: what the Settlement credited to an account, withdrawals, escrow
totals and the payment configuration. Amounts are integers in token units."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import MemberDep, NodeDep, signer_for
from api.params import Uint256
from ledger.core.abi import checksum
from ledger.orders.settlement import Token, Totals

router = APIRouter(prefix="/pay", tags=["payments"])

AddressPattern = r"^0x[0-9a-fA-F]{40}$"


class ConfigOut(BaseModel):
    settlement: str
    default_token: Token | None
    platform: str
    platform_fee_ppm: int


class BalanceOut(BaseModel):
    account: str
    token: str
    withdrawable: int
    credited: int = Field(description="everything ever credited")
    withdrawn: int = Field(description="everything ever withdrawn")
    wallet: int = Field(description="the account's own token balance")


class WithdrawIn(BaseModel):
    amount: Uint256 | None = Field(default=None, gt=0, description="default: everything credited")
    token: str | None = Field(default=None, pattern=AddressPattern)


class WithdrawOut(BaseModel):
    account: str
    token: str
    amount: int
    tx_hash: str


TokenQuery = Query(default=None, pattern=AddressPattern, description="default: dUSD")


@router.get("/config", response_model=ConfigOut, summary="Payment token, platform and fee")
def config(node: NodeDep) -> ConfigOut:
    s = node.settlement
    default = s.default_token()
    return ConfigOut(
        settlement=s.address,
        default_token=s.token(default).info if default else None,
        platform=s.platform(),
        platform_fee_ppm=s.platform_fee_ppm(),
    )


@router.get("/balances/{address}", response_model=BalanceOut, summary="What an account is owed")
def balance(address: str, node: NodeDep, token: str | None = TokenQuery) -> BalanceOut:
    account = checksum(address)
    erc20 = node.settlement.token(token)
    credited, withdrawn = node.settlement.account(account, erc20.address)
    return BalanceOut(
        account=account,
        token=erc20.address,
        withdrawable=credited - withdrawn,
        credited=credited,
        withdrawn=withdrawn,
        wallet=erc20.balance_of(account),
    )


@router.post("/withdraw", response_model=WithdrawOut, summary="Withdraw what you are owed")
def withdraw(body: WithdrawIn, node: NodeDep, member: MemberDep) -> WithdrawOut:
    sender = signer_for(node, member)
    erc20 = node.settlement.token(body.token)
    amount, receipt = node.settlement.withdraw(sender, erc20.address, body.amount)
    return WithdrawOut(
        account=sender.address,
        token=erc20.address,
        amount=amount,
        tx_hash=receipt["transactionHash"].to_0x_hex(),
    )


@router.get("/totals", response_model=Totals, summary="Escrow totals and conservation")
def totals(node: NodeDep, token: str | None = TokenQuery) -> Totals:
    return node.settlement.totals(token)
