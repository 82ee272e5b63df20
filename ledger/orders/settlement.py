"""Typed access to the Settlement escrow and to payment tokens: balances, withdrawals, totals.

Amounts are integers in the token's smallest unit (1e-6 for the 6-decimal demo dollar);
`Token.parse` and `Token.format` convert to and from what people type and read.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property

from pydantic import computed_field
from web3.contract import Contract
from web3.types import TxReceipt

from ledger.core.abi import PPM_SCALE, SolidityEnum, checksum, solidity_enum
from ledger.core.errors import Conflict, InvalidInput
from ledger.core.types import Record
from ledger.eth.chain import Chain
from ledger.eth.compiler import artifact
from ledger.eth.contract import call
from ledger.eth.tx import Sender

SCALE = PPM_SCALE  # shares are parts per million of a price


@solidity_enum
class EscrowStatus(SolidityEnum):
    NONE = 0
    HELD = 1
    ALLOCATED = 2
    CLOSED = 3

    @property
    def label(self) -> str:
        return "unfunded" if self is EscrowStatus.NONE else self.name.lower()


class Token(Record):
    """An ERC-20 with what it takes to show and parse amounts."""

    address: str
    symbol: str
    decimals: int

    def format(self, amount: int) -> str:
        whole = Decimal(amount).scaleb(-self.decimals)
        return f"{whole:,.{self.decimals}f} {self.symbol}"

    def parse(self, text: str | int) -> int:
        """'1250.5' → 1250500000 for 6 decimals; refuses negatives and excess precision."""
        try:
            value = Decimal(str(text).replace(",", "").replace("_", "").strip())
        except InvalidOperation:
            raise InvalidInput(f"amount {text!r} is not a number") from None
        units = value.scaleb(self.decimals)
        if not value.is_finite() or value < 0 or units != units.to_integral_value():
            raise InvalidInput(
                f"amount {text!r} must be a positive number with at most {self.decimals} decimals"
            )
        return int(units)


class Erc20:
    """A payment token: any ERC-20 (balances, allowance) or the demo token (mint)."""

    def __init__(self, chain: Chain, address: str) -> None:
        addr = checksum(address, "token")
        if not bytes(chain.w3.eth.get_code(addr)):
            raise InvalidInput(
                f"token {addr} is not a contract on chain {chain.chain_id}", field="token"
            )
        self.contract = chain.w3.eth.contract(address=addr, abi=artifact("DemoStable").abi)

    @property
    def address(self) -> str:
        return str(self.contract.address)

    @cached_property
    def info(self) -> Token:
        fns = self.contract.functions
        try:
            symbol, decimals = str(call(fns.symbol())), int(call(fns.decimals()))
        except Exception:  # noqa: BLE001 - ERC-20 metadata is optional
            symbol, decimals = "units", 0
        return Token(address=self.address, symbol=symbol, decimals=decimals)

    def balance_of(self, account: str) -> int:
        return int(call(self.contract.functions.balanceOf(checksum(account))))

    def allowance(self, owner: str, spender: str) -> int:
        return int(call(self.contract.functions.allowance(checksum(owner), checksum(spender))))

    def approve(self, sender: Sender, spender: str, amount: int) -> TxReceipt:
        return sender.transact(self.contract.functions.approve(checksum(spender), amount))

    def mint(self, sender: Sender, to: str, amount: int) -> TxReceipt:
        """Demo token only: the minter (the node operator that deployed it) mints."""
        if amount <= 0:
            raise InvalidInput("the amount to mint must be positive")
        return sender.transact(self.contract.functions.mint(checksum(to), amount))


class Totals(Record):
    """Escrow figures of one token; `conserved` is the rule the contract keeps."""

    token: str
    deposited: int
    released: int
    refunded: int
    held: int
    withdrawn: int
    balance: int

    @computed_field(description="deposited = released + refunded + held")
    @property
    def conserved(self) -> bool:
        return self.deposited == self.released + self.refunded + self.held and (
            self.balance >= self.held + self.released + self.refunded - self.withdrawn
        )


@dataclass(frozen=True)
class Escrow:
    token: str
    status: EscrowStatus
    split_count: int
    open_splits: int
    royalty_ppm: int
    fee_ppm: int
    buyer: str
    closed_splits: int
    designer: str
    deposited: int
    held: int
    royalty_amount: int
    fee_amount: int


class SettlementClient:
    def __init__(self, contract: Contract, chain: Chain, from_block: int = 0) -> None:
        self.contract = contract
        self.chain = chain
        self.from_block = from_block  # where to start looking for its events
        self._tokens: dict[str, Erc20] = {}

    @property
    def address(self) -> str:
        return str(self.contract.address)

    # --- configuration ---------------------------------------------------------------
    def default_token(self) -> str | None:
        addr = str(call(self.contract.functions.defaultToken()))
        return None if int(addr, 16) == 0 else addr

    def platform(self) -> str:
        return str(call(self.contract.functions.platform()))

    def platform_fee_ppm(self) -> int:
        return int(call(self.contract.functions.platformFeePpm()))

    def links(self) -> dict[str, str | None]:
        fns = self.contract.functions
        board, disputes = str(call(fns.jobBoard())), str(call(fns.disputes()))
        return {
            "job_board": None if int(board, 16) == 0 else board,
            "disputes": None if int(disputes, 16) == 0 else disputes,
        }

    def token(self, address: str | None = None) -> Erc20:
        """The ERC-20 at `address`, or the default payment token when None."""
        addr = address or self.default_token()
        if addr is None:
            raise InvalidInput(
                "no default payment token is configured on this chain: name the ERC-20 "
                "with --token (see docs/orders.md)",
                field="token",
            )
        key = checksum(addr, "token")
        if key not in self._tokens:
            self._tokens[key] = Erc20(self.chain, key)
        return self._tokens[key]

    # --- reads -----------------------------------------------------------------------
    def balance(self, account: str, token: str | None = None) -> int:
        """What `account` may withdraw now."""
        erc20 = self.token(token)
        return int(call(self.contract.functions.balanceOf(erc20.address, checksum(account))))

    def account(self, account: str, token: str | None = None) -> tuple[int, int]:
        """(credited ever, withdrawn ever) of `account`."""
        erc20 = self.token(token)
        credited, withdrawn = call(
            self.contract.functions.accountOf(erc20.address, checksum(account))
        )
        return int(credited), int(withdrawn)

    def totals(self, token: str | None = None) -> Totals:
        erc20 = self.token(token)
        deposited, released, refunded, held, withdrawn = (
            int(v) for v in call(self.contract.functions.totals(erc20.address))
        )
        balance = erc20.balance_of(self.address)
        return Totals(
            token=erc20.address,
            deposited=deposited,
            released=released,
            refunded=refunded,
            held=held,
            withdrawn=withdrawn,
            balance=balance,
        )

    def escrow(self, job_id: int) -> Escrow:
        raw = call(self.contract.functions.escrow(job_id))
        return Escrow(raw[0], EscrowStatus(raw[1]), *raw[2:])

    def payee(self, job_id: int, split_id: int) -> tuple[str, int, bool, int]:
        """(factory, share ppm, closed, amount) of a split."""
        (factory, share, closed), amount = call(self.contract.functions.payee(job_id, split_id))
        return str(factory), int(share), bool(closed), int(amount)

    def rulings(self, job_id: int) -> dict[int, int]:
        """Split id → payout of every dispute ruling applied to job `job_id`."""
        logs = self.contract.events.RulingApplied().get_logs(
            from_block=self.from_block, argument_filters={"jobId": job_id}
        )
        return {int(e["args"]["splitId"]): int(e["args"]["payout"]) for e in logs}

    # --- writes ----------------------------------------------------------------------
    def withdraw(
        self, sender: Sender, token: str | None = None, amount: int | None = None
    ) -> tuple[int, TxReceipt]:
        """Withdraw `amount` (everything credited when None) to the sender's account."""
        erc20 = self.token(token)
        available = self.balance(sender.address, erc20.address)
        if amount is None:
            if available == 0:
                raise Conflict(
                    f"nothing to withdraw: {sender.address} has no {erc20.info.symbol} "
                    "credited in the Settlement"
                )
            amount = available
        if amount <= 0:
            raise InvalidInput("the amount to withdraw must be positive", field="amount")
        receipt = sender.transact(self.contract.functions.withdraw(erc20.address, amount))
        return amount, receipt

    def set_disputes(self, sender: Sender, disputes: str) -> TxReceipt:
        """Name the contract that applies dispute rulings (deployer only, once)."""
        return sender.transact(self.contract.functions.setDisputes(checksum(disputes, "disputes")))


# --- deployment hooks (see ledger.eth.deployment.AFTER_DEPLOY) ------------------------------
