"""Sign locally, send raw, wait for the receipt: the one way cofab writes to a chain.

Local signing works the same on anvil, eth-tester and a Besu consortium node (which holds
no keys). A revert is caught at gas estimation, before anything is sent, and comes back
as a ContractRevert naming the contract's custom error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction as LegacyTransaction
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from eth_utils import ValidationError
from hexbytes import HexBytes
from web3 import Web3
from web3._utils.error_formatters_utils import raise_contract_logic_error_on_revert
from web3._utils.rpc_abi import RPC
from web3.contract.contract import ContractFunction
from web3.exceptions import TimeExhausted, TransactionNotFound, Web3RPCError
from web3.types import TxParams, TxReceipt

from ledger.core.errors import ChainUnavailable, ContractRevert, Forbidden, InvalidInput
from ledger.eth.chain import Chain, quantity
from ledger.eth.contract import calldata
from ledger.eth.reverts import revert_from, reverts

# Estimates run against the latest block; history checkpoints written in a new block cost
# a fresh storage slot (~22k gas) that the estimate saw as a cheap overwrite. Unused gas is
# never charged, so the headroom is free.
GAS_MARGIN = 1.25
GAS_HEADROOM = 50_000


# What a node (web3 RPC error), eth-tester (ValidationError) or web3 (ValueError) raise
# when it will not take a transaction: bad nonce, duplicate, no funds.
REFUSED: tuple[type[Exception], ...] = (ValueError, ValidationError, Web3RPCError)


def estimate_gas(w3: Web3, tx: dict[str, Any]) -> int:
    """`eth_estimateGas` for `tx` (integers sent as quantities) without web3's per-call
    formatting; a revert raises as web3 raises it."""
    request = {k: hex(v) if isinstance(v, int) else v for k, v in tx.items()}
    result = w3.manager.request_blocking(
        RPC.eth_estimateGas, [request], error_formatters=raise_contract_logic_error_on_revert
    )
    return quantity(result)


class Sender:
    """Sends transactions for one account, keeping its nonces in order across threads."""

    def __init__(self, chain: Chain, account: LocalAccount) -> None:
        self.chain = chain
        self._account = account
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        self._last_hash: HexBytes | None = None  # the last transaction the chain took
        self._funded = False

    @property
    def account(self) -> LocalAccount:
        return self._account

    @property
    def address(self) -> str:
        return str(self.account.address)

    def _nonce(self) -> int:
        chain_nonce = int(
            self.chain.w3.eth.get_transaction_count(
                Web3.to_checksum_address(self.address), "pending"
            )
        )
        if self._next_nonce is not None and chain_nonce < self._next_nonce and self._forgotten():
            # the chain lost this account's later transactions with the blocks that held
            # them; a nonce past its own would wait in its pool for good
            self._next_nonce = None
        if self._next_nonce is None or chain_nonce > self._next_nonce:
            self._next_nonce = chain_nonce
        return self._next_nonce

    def _forgotten(self) -> bool:
        """Whether the chain no longer knows the last transaction this sender sent (a
        count behind ours may only be a node that has not seen it yet)."""
        if self._last_hash is None:
            return True
        try:
            return self.chain.w3.eth.get_transaction(self._last_hash) is None
        except TransactionNotFound:
            return True

    def _prepare(self) -> None:
        if not self._funded:
            self.chain.ensure_gas(self.address)
            self._funded = True

    def transact(
        self,
        fn: ContractFunction,
        *,
        gas: int | None = None,
        before_send: Callable[[bytes, str], None] | None = None,
    ) -> TxReceipt:
        """Estimate (reverts surface here, nothing sent), sign, send, wait.

        `before_send(raw_tx, tx_hash)` runs between signing and sending, so a caller can
        persist the signed transaction and rebroadcast it after a crash.
        """
        with self._lock:
            return self._send(self._build(fn, gas), before_send)

    def _build(self, fn: ContractFunction, gas: int | None = None) -> dict[str, Any]:
        """The transaction for `fn`, ready to sign: fees, estimated gas (a revert surfaces
        here as a ContractRevert), the next nonce. Called with the lock held."""
        self._prepare()
        tx: dict[str, Any] = {
            "from": self.address,
            "to": fn.address,
            "data": calldata(fn),
            "value": 0,
            "chainId": self.chain.chain_id,
            **self.chain.fee_fields(),
        }
        try:
            estimate = gas or estimate_gas(self.chain.w3, tx)
        except reverts() as exc:
            raise revert_from(exc) from None
        tx["gas"] = gas or int(estimate * GAS_MARGIN) + GAS_HEADROOM
        tx["nonce"] = self._nonce()
        return tx

    def deploy(self, abi: list[dict[str, Any]], bytecode: bytes, *args: Any) -> TxReceipt:
        with self._lock:
            self._prepare()
            factory = self.chain.w3.eth.contract(abi=abi, bytecode=bytecode)
            params: dict[str, Any] = {
                "from": self.address,
                "chainId": self.chain.chain_id,
                **self.chain.fee_fields(),
            }
            ctor = factory.constructor(*args)
            try:
                estimate = ctor.estimate_gas(params)
            except reverts() as exc:
                raise revert_from(exc) from None
            params["gas"] = int(estimate * GAS_MARGIN) + GAS_HEADROOM
            params["nonce"] = self._nonce()
            return self._send(ctor.build_transaction(params))

    def _send(
        self,
        tx: dict[str, Any],
        before_send: Callable[[bytes, str], None] | None = None,
        *,
        resent: bool = False,
    ) -> TxReceipt:
        signed = self.account.sign_transaction(tx)
        if before_send is not None:
            before_send(bytes(signed.raw_transaction), signed.hash.to_0x_hex())
        w3 = self.chain.w3
        try:
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        except REFUSED as exc:
            self._next_nonce = None  # resync from the chain
            if not resent and self._nonce() < int(tx["nonce"]):
                # the chain lost this account's later transactions (it lost blocks): the
                # refused one was never taken, so sending it at the chain's nonce is safe
                return self._send({**tx, "nonce": self._nonce()}, before_send, resent=True)
            raise ChainUnavailable(f"the node refused the transaction: {exc}") from None
        self._next_nonce, self._last_hash = int(tx["nonce"]) + 1, HexBytes(tx_hash)
        try:
            receipt = w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.chain.receipt_timeout
            )
        except TimeExhausted:
            raise ChainUnavailable(
                f"transaction {HexBytes(tx_hash).to_0x_hex()} was not mined within "
                f"{self.chain.receipt_timeout:.0f}s"
            ) from None
        if receipt["status"] != 1:
            raise self._explain_failure(tx, receipt)
        self.chain.wait_confirmations(int(receipt["blockNumber"]))
        return receipt

    def _explain_failure(self, tx: dict[str, Any], receipt: TxReceipt) -> ContractRevert:
        return explain_failure(self.chain, {**tx, "from": self.address}, receipt)


# --- the other side: build the transaction for the member to sign -------------------------

_BUILD_ONLY: ContextVar[bool] = ContextVar("cofab_build_only", default=False)


@contextmanager
def build_only() -> Iterator[None]:
    """Within this block `Builder` stands in for a member's sender: a write stops at the
    transaction it would send, unsigned (see `Unsigned`)."""
    token = _BUILD_ONLY.set(True)
    try:
        yield
    finally:
        _BUILD_ONLY.reset(token)


def building() -> bool:
    return _BUILD_ONLY.get()


def _plain(value: Any) -> Any:
    """An ABI argument as JSON: integers as decimal strings (exact above 2^53), bytes as hex."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return HexBytes(value).to_0x_hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def call_args(args: dict[str, Any]) -> dict[str, Any]:
    """Named ABI values as JSON (integers as decimal strings, bytes as hex)."""
    return {k: _plain(v) for k, v in args.items()}


def call_summary(fn: ContractFunction) -> dict[str, Any]:
    """The contract function and its named arguments, for a person to read before signing."""
    names = [i.get("name") or f"arg{n}" for n, i in enumerate(fn.abi.get("inputs", []))]
    return {"function": fn.fn_name, "args": dict(zip(names, _plain(list(fn.args)), strict=False))}


class Unsigned(Exception):
    """What a write built with `Builder` ends with: the transaction it would have sent,
    unsigned, and which call it is. Raised rather than returned so that the domain code
    between the checks and the send stays the one path for both sides."""

    def __init__(self, tx: dict[str, Any], call: dict[str, Any]) -> None:
        super().__init__(f"unsigned transaction to {tx.get('to')}")
        self.tx = tx
        self.call = call

    def as_json(self) -> dict[str, Any]:
        """The fields a wallet signs (quantities above 2^53 as decimal strings)."""
        tx = self.tx
        out: dict[str, Any] = {
            "from": Web3.to_checksum_address(tx["from"]),
            "to": Web3.to_checksum_address(tx["to"]),
            "data": HexBytes(tx.get("data", b"")).to_0x_hex(),
            "value": str(int(tx.get("value", 0))),
            "chainId": int(tx["chainId"]),
            "nonce": int(tx["nonce"]),
            "gas": int(tx["gas"]),
        }
        if "maxFeePerGas" in tx:
            out["type"] = 2
            out["maxFeePerGas"] = str(int(tx["maxFeePerGas"]))
            out["maxPriorityFeePerGas"] = str(int(tx["maxPriorityFeePerGas"]))
        else:
            out["type"] = 0
            out["gasPrice"] = str(int(tx.get("gasPrice", 0)))
        return out


class Builder(Sender):
    """A member's stand-in sender for a key the node may not hold: `transact` runs every
    check and the gas estimate (a revert surfaces as usual, before anything is signed),
    then raises `Unsigned` with the transaction instead of signing it."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self._address = Web3.to_checksum_address(address)
        self._lock = threading.Lock()
        self._next_nonce = None
        self._last_hash = None
        self._funded = False

    @property
    def account(self) -> LocalAccount:
        raise Forbidden(
            f"this action signs with the key of {self._address} on the node; it has no "
            "transaction to build: sign its typed data yourself"
        )

    @property
    def address(self) -> str:
        return self._address

    def transact(
        self,
        fn: ContractFunction,
        *,
        gas: int | None = None,
        before_send: Callable[[bytes, str], None] | None = None,
    ) -> TxReceipt:
        with self._lock:
            self._next_nonce = None  # always the chain's view: the member signs elsewhere
            raise Unsigned(self._build(fn, gas), call_summary(fn))

    def deploy(self, abi: list[dict[str, Any]], bytecode: bytes, *args: Any) -> TxReceipt:
        raise Forbidden("deploying contracts is the node operator's, never built for a member")


def explain_failure(chain: Chain, tx: dict[str, Any], receipt: TxReceipt) -> ContractRevert:
    """Replay a mined, reverted transaction as a call to recover its custom error."""
    call = {k: tx[k] for k in ("from", "to", "data", "value") if tx.get(k) is not None}
    try:
        chain.w3.eth.call(cast(TxParams, call), block_identifier=receipt["blockNumber"] - 1)
    except reverts() as exc:
        return revert_from(exc)
    except Exception:  # noqa: BLE001 - pruned history: no state to replay against
        pass
    return ContractRevert(f"transaction {receipt['transactionHash'].to_0x_hex()} reverted on chain")


@dataclass(frozen=True)
class RawTransaction:
    sender: str
    chain_id: int | None
    fields: dict[str, Any]


def decode_raw(raw: str | bytes) -> RawTransaction:
    """Sender, chain id and fields of a signed raw transaction (legacy or typed)."""
    data = HexBytes(raw)
    try:
        sender = Account.recover_transaction(data)
        if data[0] <= 0x7F:
            fields = TypedTransaction.from_bytes(data).as_dict()
            chain_id: int | None = int(fields["chainId"])
        else:
            legacy = LegacyTransaction.from_bytes(data)
            fields = {"to": legacy.to or None, "data": legacy.data, "value": legacy.value}
            chain_id = (legacy.v - 35) // 2 if legacy.v >= 35 else None
    except Exception:  # noqa: BLE001 - every decode failure is the caller's input
        raise InvalidInput("raw is not a signed Ethereum transaction") from None
    to = fields.get("to")
    fields["to"] = Web3.to_checksum_address(to) if to else None
    fields["from"] = sender
    return RawTransaction(sender=sender, chain_id=chain_id, fields=fields)


def relay(
    chain: Chain, raw: str, expected_sender: str, targets: Collection[str] | None = None
) -> TxReceipt:
    """Broadcast a transaction a member signed itself, after checking who, which chain and,
    given `targets`, that it calls one of those contracts (no transfers, no deployments)."""
    tx = decode_raw(raw)
    if tx.sender.lower() != expected_sender.lower():
        raise Forbidden(f"the transaction is signed by {tx.sender}, not by {expected_sender}")
    if tx.chain_id != chain.chain_id:
        raise InvalidInput(
            f"the transaction is for chain {tx.chain_id}, this node is on chain {chain.chain_id}"
            " (transactions without a chain id are replayable and refused)"
        )
    if targets is not None:
        allowed = {t.lower() for t in targets}
        to = tx.fields["to"]
        if to is None or to.lower() not in allowed:
            raise Forbidden(
                f"the transaction {'deploys a contract' if to is None else 'is sent to ' + to}"
                "; this node relays calls to the consortium's contracts only (GET /contracts)"
            )
    try:
        tx_hash = chain.w3.eth.send_raw_transaction(HexBytes(raw))
        receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=chain.receipt_timeout)
    except REFUSED as exc:
        raise InvalidInput(f"the chain refused the transaction: {exc}") from None
    except TimeExhausted:
        raise ChainUnavailable("the transaction was not mined in time") from None
    if receipt["status"] != 1:
        raise explain_failure(chain, tx.fields, receipt)
    chain.wait_confirmations(int(receipt["blockNumber"]))
    return receipt
