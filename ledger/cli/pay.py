"""`cofab pay`: what the Settlement owes you, withdrawals, escrow totals, demo money."""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.cli.common import (
    App,
    JsonOpt,
    handled,
    out,
    print_json,
    shared,
)
from ledger.cli.jobs import resolve_account
from ledger.core.errors import InvalidInput
from ledger.node import OPERATOR_KEY

app = App(help="Payments: balances credited by the Settlement, withdrawals, escrow totals.")

TokenOpt = Annotated[
    str | None, typer.Option(help="Payment ERC-20 \\[default: the chain's payment token]")
]


@app.command("balance")
def balance(
    ctx: typer.Context,
    account: Annotated[
        str, typer.Argument(help="Address, or the name of a key of this node")
    ] = OPERATOR_KEY,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What an account may withdraw from the Settlement, and its wallet balance."""
    with handled():
        node = shared(ctx).attach()
        address = resolve_account(node, account)
        erc20 = node.settlement.token(token)
        credited, withdrawn = node.settlement.account(address, erc20.address)
        data = {
            "account": address,
            "token": erc20.info,
            "withdrawable": credited - withdrawn,
            "credited": credited,
            "withdrawn": withdrawn,
            "wallet": erc20.balance_of(address),
        }
        if as_json:
            print_json(data)
            return
        fmt = erc20.info.format
        out.print(f"{address}")
        out.print(f"  withdrawable  {fmt(credited - withdrawn)}")
        out.print(f"  credited      {fmt(credited)} (ever)")
        out.print(f"  withdrawn     {fmt(withdrawn)} (ever)")
        out.print(f"  wallet        {fmt(erc20.balance_of(address))}")


@app.command("withdraw")
def withdraw(
    ctx: typer.Context,
    amount: Annotated[
        str | None, typer.Option(help="Amount in token units \\[default: everything credited]")
    ] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw what the Settlement credited to you to your wallet."""
    with handled():
        node = shared(ctx).signing()
        erc20 = node.settlement.token(token)
        units = erc20.info.parse(amount) if amount is not None else None
        paid, receipt = node.settlement.withdraw(node.sender(), erc20.address, units)
        if as_json:
            print_json(
                {
                    "account": node.sender().address,
                    "amount": paid,
                    "token": erc20.address,
                    "tx_hash": receipt["transactionHash"].to_0x_hex(),
                }
            )
        else:
            out.print(f"withdrew {erc20.info.format(paid)} to {node.sender().address}")


@app.command("totals")
def totals(
    ctx: typer.Context,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Escrow totals of a token and whether deposited = released + refunded + held."""
    with handled():
        node = shared(ctx).attach()
        t = node.settlement.totals(token)
        if as_json:
            print_json(t)
            return
        fmt = node.settlement.token(token).info.format
        for name in ("deposited", "released", "refunded", "held", "withdrawn", "balance"):
            out.print(f"{name:10} {fmt(getattr(t, name))}")
        out.print("conserved  " + ("yes" if t.conserved else "[bold red]NO[/]"))


@app.command("mint")
def mint(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="Address, or the name of a key of this node")],
    amount: Annotated[str, typer.Argument(help="Amount of demo dollars, e.g. 5000")],
) -> None:
    """Mint demo dollars (dUSD) on a dev chain; the operator that deployed them signs."""
    with handled():
        node = shared(ctx).signing()
        if "DemoStable" not in node.deployment.contracts:
            raise InvalidInput(
                "this chain has no demo token: orders are paid in an existing ERC-20"
            )
        erc20 = node.settlement.token(node.deployment.address("DemoStable"))
        address = resolve_account(node, account)
        erc20.mint(node.sender(), address, erc20.info.parse(amount))
        out.print(f"{address} now holds {erc20.info.format(erc20.balance_of(address))}")
