"""One connect function for the three chain backends.

- ``embedded``: eth-tester + py-evm in this process; ephemeral, for tests and demos.
- ``devnet``: anvil supervised by cofab, state kept under the data directory.
- ``rpc``: any EVM JSON-RPC endpoint, e.g. a Hyperledger Besu QBFT consortium chain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware
from web3.providers.base import BaseProvider
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import RPCEndpoint

from ledger.core.errors import ChainUnavailable, ConfigError, InvalidInput
from ledger.eth.devnet import Devnet
from ledger.eth.transport import http_provider

# Dev backends top up a sender that falls below this (gas is free on the devnet itself).
_DEV_MIN_BALANCE = Web3.to_wei(10, "ether")
_DEV_TOP_UP = Web3.to_wei(1000, "ether")
_RPC_TIMEOUT_SECONDS = 10


class Backend(StrEnum):
    EMBEDDED = "embedded"
    DEVNET = "devnet"
    RPC = "rpc"


@dataclass
class Chain:
    """A connected chain: web3, what kind it is, and how deep a receipt must be."""

    w3: Web3
    backend: Backend
    chain_id: int
    url: str | None = None
    confirmations: int = 0
    receipt_timeout: float = 120.0
    faucet: LocalAccount | None = field(default=None, repr=False)
    devnet: Devnet | None = field(default=None, repr=False)

    @property
    def is_dev(self) -> bool:
        return self.backend in (Backend.EMBEDDED, Backend.DEVNET)

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def ensure_gas(self, address: str) -> None:
        """On dev backends, fund `address` from the faucet when it runs low."""
        if self.faucet is None or self.gas_is_free():
            return
        if self.w3.eth.get_balance(to_checksum_address(address)) >= _DEV_MIN_BALANCE:
            return
        tx: dict[str, Any] = {
            "to": address,
            "value": _DEV_TOP_UP,
            "gas": 21_000,
            "nonce": self.w3.eth.get_transaction_count(self.faucet.address, "pending"),
            "chainId": self.chain_id,
            **self.fee_fields(),
        }
        signed = self.faucet.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)

    def gas_is_free(self) -> bool:
        return self.fee_fields().get("gasPrice") == 0

    def fee_fields(self) -> dict[str, int]:
        """Zero price where the base fee is zero (consortium chains, the devnet), the node's
        legacy price before London, EIP-1559 fields otherwise."""
        latest = raw_block(self.w3, "latest") or {}
        base_fee = quantity(latest["baseFeePerGas"]) if "baseFeePerGas" in latest else None
        if base_fee is None:
            return {"gasPrice": int(self.w3.eth.gas_price)}
        if base_fee == 0:
            return {"gasPrice": 0}
        tip = Web3.to_wei(1, "gwei")
        return {"maxFeePerGas": 2 * int(base_fee) + tip, "maxPriorityFeePerGas": tip}

    def wait_confirmations(self, block_number: int) -> None:
        if self.confirmations <= 0:
            return
        deadline = time.monotonic() + self.receipt_timeout
        while self.block_number() < block_number + self.confirmations:
            if time.monotonic() > deadline:
                raise ChainUnavailable(
                    f"block {block_number} did not reach {self.confirmations} confirmations"
                )
            time.sleep(0.5)

    def advance_time(self, seconds: int) -> None:
        """Move a dev chain's clock forward and mine a block (deadlines in demos, tests)."""
        provider = self.w3.provider
        tester = provider.ethereum_tester if isinstance(provider, EthereumTesterProvider) else None
        if self.backend is Backend.EMBEDDED and tester is not None:
            latest = int(self.w3.eth.get_block("latest")["timestamp"])
            # the block being built is stamped with the wall clock, which may already be
            # further on than the last block (a chain moved back to an old snapshot)
            pending = int(tester.get_block_by_number("pending")["timestamp"])
            tester.time_travel(max(latest + seconds, pending + 1))
        elif self.faucet is not None:  # anvil
            provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])
            provider.make_request(RPCEndpoint("evm_mine"), [])
        else:
            raise ConfigError("only a dev chain's clock can be moved")

    def close(self) -> None:
        if self.devnet is not None:
            self.devnet.stop()


class _TesterProvider(EthereumTesterProvider):
    """web3's eth-tester provider reads every revert as Error(string); for some custom-error
    arguments that read overflows (OverflowError, not DecodingError) and the revert data is
    lost. Re-raise it the way web3 reports undecodable reverts, so it names its error."""

    _fixed: dict[str, Any]

    def make_request(self, method: Any, params: Any) -> Any:
        from eth_tester.exceptions import TransactionFailed

        # fixed for the chain's life: the chain id (see http_web3) and the dev accounts,
        # which eth-tester's middleware asks for (checksumming ten keys) on every eth_call
        # and gas estimate without a `from`
        if method in ("eth_chainId", "eth_accounts"):
            fixed = self.__dict__.setdefault("_fixed", {})
            if method not in fixed:
                fixed[method] = super().make_request(method, params)
            return fixed[method]
        try:
            return super().make_request(method, params)
        except OverflowError as exc:
            failed = exc.__context__
            if not isinstance(failed, TransactionFailed):
                raise
            raw = failed.args[0]
            raw = raw.args[0] if isinstance(raw, Exception) else raw
            raise TransactionFailed(f"execution reverted: {raw}") from None


def _bloom_needles(address: Any, topics: Any) -> list[tuple[bytes, ...]]:
    """What a block's bloom must hold for a log query to match it there: one group per
    constrained field (the address, each topic position), any member of a group will do.
    Positions with a wildcard among their alternatives constrain nothing."""
    groups: list[tuple[bytes, ...]] = []
    if isinstance(address, bytes):
        groups.append((address,))
    elif isinstance(address, tuple) and address:
        groups.append(tuple(address))
    for item in topics or ():
        if isinstance(item, bytes):
            groups.append((item,))
        elif isinstance(item, tuple) and item and all(isinstance(t, bytes) for t in item):
            groups.append(tuple(item))
    return groups


def _bloom_tester(backend: Any) -> Any:
    """eth-tester whose log queries skip blocks by their header's bloom filter.

    eth-tester answers `eth_getLogs` by reading and serialising every receipt of every
    block in the range, the cost of most queries on a long test chain; a real node asks
    each header's bloom first and reads receipts only where the query can match. Same
    answer either way (tests/test_chain_backends.py compares them)."""
    from functools import partial

    from eth_bloom.bloom import BloomFilter
    from eth_tester import EthereumTester
    from eth_tester.utils.filters import Filter, check_if_log_matches

    class BloomTester(EthereumTester):  # type: ignore[misc]
        def get_logs(
            self,
            from_block: Any = None,
            to_block: Any = None,
            address: Any = None,
            topics: Any = None,
        ) -> tuple[Any, ...]:
            self.validator.validate_inbound_filter_params(
                from_block=from_block, to_block=to_block, address=address, topics=topics
            )
            raw_from, raw_to, raw_address, raw_topics = (
                self.normalizer.normalize_inbound_filter_params(
                    from_block=from_block, to_block=to_block, address=address, topics=topics
                )
            )
            params = {
                "from_block": raw_from,
                "to_block": raw_to,
                "addresses": raw_address,
                "topics": raw_topics,
            }
            found = Filter(filter_params=params, filter_fn=partial(check_if_log_matches, **params))
            if not all(
                b is None or b == "latest" or isinstance(b, int) for b in (raw_from, raw_to)
            ):
                return tuple(super().get_logs(from_block, to_block, address, topics))  # pending
            lower, upper = (
                bound if isinstance(bound, int) else self.get_block_by_number("latest")["number"]
                for bound in (raw_from, raw_to)
            )
            needles = _bloom_needles(raw_address, raw_topics)
            headers = self.backend.chain.chaindb
            for number in range(lower, upper + 1):
                bloom = BloomFilter(headers.get_canonical_block_header_by_number(number).bloom)
                if not all(any(n in bloom for n in group) for group in needles):
                    continue
                for tx_hash in self.get_block_by_number(number)["transactions"]:
                    for entry in self.get_transaction_receipt(tx_hash)["logs"]:
                        found.add(self.normalizer.normalize_inbound_log_entry(entry))
            return tuple(self.normalizer.normalize_outbound_log_entry(i) for i in found.get_all())

    return BloomTester(backend)


# web3's default middleware that a node's requests do not need, and which cost a tenth of
# a test process's CPU: `validation` asks for the chain id before every eth_call and
# estimate (the id is read once per connection) to check the chainId of transactions,
# which this node signs itself with that id; `ens_name_to_address` looks for ENS names
# among parameters that are always hex addresses here.
_UNNEEDED_MIDDLEWARE = ("validation", "ens_name_to_address")


def lean_web3(provider: BaseProvider) -> Web3:
    """A Web3 on `provider` without the middleware a node does not need."""
    w3 = Web3(provider)
    for name in _UNNEEDED_MIDDLEWARE:
        w3.middleware_onion.remove(name)
    return w3


def _embedded() -> Chain:
    from eth_tester import PyEVMBackend

    backend = PyEVMBackend()
    w3 = lean_web3(_TesterProvider(_bloom_tester(backend)))
    faucet = Account.from_key(backend.account_keys[0].to_bytes())
    return Chain(w3=w3, backend=Backend.EMBEDDED, chain_id=int(w3.eth.chain_id), faucet=faucet)


def http_web3(url: str) -> Web3:
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"RPC URL must start with http:// or https://, got {url!r}")
    # An endpoint's chain id does not change: the provider caches that one answer (web3's
    # request caching, limited to eth_chainId; nothing else is cached).
    provider = http_provider(
        url,
        _RPC_TIMEOUT_SECONDS,
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
        request_cache_validation_threshold=None,
    )
    w3 = lean_web3(provider)
    # QBFT/IBFT/Clique put more than 32 bytes in extraData; web3 refuses those blocks
    # unless this middleware is present. Harmless on other chains.
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


def _chain_id(w3: Web3, url: str) -> int:
    try:
        return int(w3.eth.chain_id)
    except Exception as exc:  # noqa: BLE001 - any transport failure means the same to the user
        raise ChainUnavailable(f"no JSON-RPC answer from {url}: {exc.__class__.__name__}") from None


def anvil_faucet() -> LocalAccount:
    """anvil's first dev account (the public "test test … junk" mnemonic)."""
    Account.enable_unaudited_hdwallet_features()
    words = "test test test test test test test test test test test junk"
    account: LocalAccount = Account.from_mnemonic(words)
    return account


def connect(
    backend: Backend | str = Backend.EMBEDDED,
    *,
    rpc_url: str | None = None,
    data_dir: Path | None = None,
    devnet_port: int = 8545,
    confirmations: int = 0,
    expected_chain_id: int | None = None,
) -> Chain:
    """Connect to a chain; for ``devnet`` also start anvil (stopped by ``Chain.close``)."""
    try:
        kind = Backend(backend)
    except ValueError:
        raise InvalidInput(f"unknown backend {backend!r}: choose embedded, devnet or rpc") from None
    if kind is Backend.EMBEDDED:
        chain = _embedded()
    elif kind is Backend.DEVNET:
        if data_dir is None:
            raise ConfigError("the devnet backend needs a data directory for its state")
        devnet = Devnet(state_dir=data_dir / "devnet", port=devnet_port)
        devnet.start()
        w3 = http_web3(devnet.url)
        chain = Chain(
            w3=w3,
            backend=kind,
            chain_id=_chain_id(w3, devnet.url),
            url=devnet.url,
            faucet=anvil_faucet(),
            devnet=devnet,
        )
    else:
        if not rpc_url:
            raise InvalidInput("the rpc backend needs --rpc-url")
        w3 = http_web3(rpc_url)
        chain = Chain(
            w3=w3,
            backend=kind,
            chain_id=_chain_id(w3, rpc_url),
            url=rpc_url,
            confirmations=confirmations,
        )
    if expected_chain_id is not None and chain.chain_id != expected_chain_id:
        chain.close()
        raise ConfigError(
            f"wrong chain: expected chain id {expected_chain_id}, the endpoint reports "
            f"{chain.chain_id}"
        )
    return chain


def attach(url: str, *, backend: Backend = Backend.RPC, confirmations: int = 0) -> Chain:
    """Connect to an already running endpoint (e.g. the devnet of a running node)."""
    w3 = http_web3(url)
    chain_id = _chain_id(w3, url)
    faucet = anvil_faucet() if backend is Backend.DEVNET else None
    return Chain(
        w3=w3,
        backend=backend,
        chain_id=chain_id,
        url=url,
        confirmations=confirmations,
        faucet=faucet,
    )


def raw_block(w3: Web3, block: int | str) -> dict[str, Any] | None:
    """A block (a number or "latest") as the node sent it, None if it has no such block:
    without formatting the whole block as `get_block` does (tens of times the CPU, which
    a loop asking every second or an audit asking per anchor pays). Quantities are hex
    strings over JSON-RPC, integers from eth-tester: read them with `quantity`."""
    at = hex(block) if isinstance(block, int) else block
    found = w3.manager.request_blocking(RPCEndpoint("eth_getBlockByNumber"), [at, False])
    return dict(found) if found else None


def quantity(value: Any) -> int:
    """A JSON-RPC quantity: a hex string from a node, an integer from eth-tester."""
    return int(value, 16) if isinstance(value, str) else int(value)


def block_head(w3: Web3, block: int | str) -> tuple[int, bytes, int] | None:
    """(number, hash, timestamp) of a block (a number or "latest"), None if the node has
    no such block (see `raw_block`)."""
    found = raw_block(w3, block)
    if found is None:
        return None
    digest = found["hash"]
    return (
        quantity(found["number"]),
        bytes.fromhex(digest[2:]) if isinstance(digest, str) else bytes(digest),
        quantity(found["timestamp"]),
    )


def block_timestamp(w3: Web3, number: int) -> int:
    """A block's timestamp (see `block_head`); a block the node lacks raises as
    `get_block` raises."""
    head = block_head(w3, number)
    return head[2] if head is not None else int(w3.eth.get_block(number)["timestamp"])
