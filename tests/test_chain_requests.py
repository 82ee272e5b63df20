"""JSON-RPC requests a connection costs, counted on the wire against a real anvil."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from ledger.eth.chain import http_web3
from ledger.eth.devnet import Devnet
from ledger.eth.rpc_counter import CountingProxy
from ledger.eth.toolchain import free_port


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CountingProxy]:
    state: Path = tmp_path_factory.mktemp("anvil")
    with Devnet(state_dir=state, port=free_port()) as chain, CountingProxy(chain.url) as p:
        yield p


CALL = {"to": "0x" + "11" * 20, "data": "0x"}


def test_an_eth_call_costs_one_request(proxy: CountingProxy) -> None:
    w3 = http_web3(proxy.url)
    assert w3.eth.chain_id > 0  # asked once per connection (and thread)
    proxy.reset()
    for _ in range(5):
        w3.eth.call(CALL)
        w3.eth.estimate_gas(CALL)
    assert dict(proxy.methods) == {"eth_call": 5, "eth_estimateGas": 5}


def test_without_the_cache_web3_asks_the_chain_id_twice_per_call(proxy: CountingProxy) -> None:
    """What the connection's set-up saves: web3's validation middleware, as shipped."""
    w3 = Web3(Web3.HTTPProvider(proxy.url))
    assert w3.eth.chain_id > 0
    proxy.reset()
    w3.eth.call(CALL)
    assert dict(proxy.methods) == {"eth_call": 1, "eth_chainId": 2}
