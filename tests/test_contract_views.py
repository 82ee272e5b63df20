"""Contract reads and transactions as web3's own `ContractFunction` makes them.

`call` sends every contract read through a `View` (the ABI worked out once), and a
sender encodes and estimates its transactions the same way; web3's path is the
reference. Every view function of every deployed contract is called both ways, on
an order in production, with arguments drawn from what the chain holds (its parties, the
order, its splits, a licensed design) and values that make the contract revert: the same
value, or the same decoded error."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from eth_utils import abi_to_signature
from web3 import Web3

from kit import Parties, four_splits, in_production, parties
from ledger.core.errors import ContractRevert
from ledger.eth import contract as contract_module
from ledger.eth.compiler import artifact
from ledger.eth.contract import call, contract_at
from ledger.eth.deployment import bind
from ledger.eth.reverts import revert_from, reverts
from ledger.eth.tx import GAS_HEADROOM, GAS_MARGIN, Builder, Sender
from ledger.node import Node

ZERO_ADDRESS = "0x" + "00" * 20


def candidates(kind: dict[str, Any], cast: Parties, job: int) -> list[Any]:
    """Values for one input of type `kind`: some the chain knows, some it does not."""
    t = kind["type"]
    if t.endswith("[]"):
        return [[v] for v in candidates({**kind, "type": t[:-2]}, cast, job)[:2]] + [[]]
    if t == "tuple":
        parts = [candidates(c, cast, job)[0] for c in kind["components"]]
        return [tuple(parts)]
    if t.startswith("uint"):
        return [0, 1, job, 2 ** int(t[4:] or 256) - 1]
    if t.startswith("int"):
        return [0, 1, -1]
    if t == "address":
        return [cast.buyer.address, cast.factories[0].address, ZERO_ADDRESS]
    if t == "bytes32":
        return [cast.design, b"\x00" * 32]
    if t.startswith("bytes") and t != "bytes":
        return [b"\x01" * int(t[5:])]
    if t == "bytes":
        return [b"", b"\x01\x02"]
    if t == "bool":
        return [True, False]
    if t == "string":
        return ["milling"]
    raise AssertionError(f"no candidates for {t}")


def web3_answer(fn: Any) -> Any:
    try:
        return fn.call()
    except reverts() as exc:
        return revert_from(exc)


def ours(fn: Any) -> Any:
    try:
        return call(fn)
    except ContractRevert as exc:
        return exc


def same(a: Any, b: Any) -> bool:
    if isinstance(a, ContractRevert) or isinstance(b, ContractRevert):
        return type(a) is type(b) and str(a) == str(b)
    return bool(a == b and type(a) is type(b))


@pytest.mark.slow
def test_every_view_answers_as_web3_answers(node: Node) -> None:
    cast = parties(node)
    job = in_production(node, cast, four_splits(cast))
    checked = reverted = 0
    for name in node.deployment.contracts:
        contract = bind(node.chain, node.deployment, name)
        for abi in contract.abi:
            if abi.get("type") != "function" or abi["stateMutability"] not in ("view", "pure"):
                continue
            pools = [candidates(i, cast, job) for i in abi["inputs"]]
            for args in itertools.islice(itertools.product(*pools), 12):
                signature = abi_to_signature(abi)
                fn = contract.get_function_by_signature(signature)(*args)
                expected, got = web3_answer(fn), ours(fn)
                assert same(expected, got), f"{name}.{signature}{args}: {expected!r} != {got!r}"
                checked += 1
                reverted += isinstance(expected, ContractRevert)
    assert checked > 200 and reverted > 10, (checked, reverted)


FEES = ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas")


def test_transactions_are_built_as_web3_builds_them(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every transaction of an order from creation to production, and a refused one: the
    same fields, call data and gas as web3's `estimate_gas` and `build_transaction` give
    at the same block, and the same decoded error."""
    built: list[str] = []
    own_build = Sender._build

    def compared(self: Sender, fn: Any, gas: int | None = None) -> dict[str, Any]:
        tx = own_build(self, fn, gas)
        params = {"from": self.address, "chainId": node.chain.chain_id}
        params |= {k: tx[k] for k in FEES if k in tx}
        web3_gas = gas or int(fn.estimate_gas(params) * GAS_MARGIN) + GAS_HEADROOM
        assert tx == dict(fn.build_transaction({**params, "gas": web3_gas, "nonce": tx["nonce"]}))
        built.append(fn.fn_name)
        return tx

    monkeypatch.setattr(Sender, "_build", compared)
    cast = parties(node)
    job = in_production(node, cast, four_splits(cast))
    assert {"proposeAdmit", "approve", "createJob", "fund", "split", "acceptSplit"} <= set(built)

    refused = node.jobs.contract.functions.fund(job)  # funded already
    with pytest.raises(ContractRevert) as ours_refusal:
        Builder(node.chain, cast.buyer.address).transact(refused)
    assert str(ours_refusal.value) == str(web3_answer_estimate(refused, cast.buyer.address))


def web3_answer_estimate(fn: Any, sender: str) -> ContractRevert:
    try:
        fn.estimate_gas({"from": sender})
    except reverts() as exc:
        return revert_from(exc)
    raise AssertionError("web3's estimate did not revert")


def test_a_contract_is_bound_once_per_connection_and_answers_as_a_fresh_one(node: Node) -> None:
    w3 = node.chain.w3
    address = node.deployment.address("Consortium")
    shared = contract_at(w3, "Consortium", address.lower())
    assert contract_at(w3, "Consortium", address) is shared  # any spelling of the address
    assert shared.address == address and shared.abi == artifact("Consortium").abi
    fresh = w3.eth.contract(address=address, abi=artifact("Consortium").abi)
    member = node.sender().address
    assert call(shared.functions.member(member)) == call(fresh.functions.member(member))
    other = Web3(w3.provider)  # another connection binds its own
    assert contract_at(other, "Consortium", address) is not shared
    # a connection keeps the contracts bound last, not every address it was ever given
    many = [f"0x{i:040x}" for i in range(1, 100)]
    oldest = contract_at(other, "Traceability", many[0])
    latest = [contract_at(other, "Traceability", each) for each in many[1:]]
    assert len(contract_module._BOUND[other]) <= 64
    assert contract_at(other, "Traceability", many[-1]) is latest[-1]  # kept
    assert contract_at(other, "Traceability", many[0]) is not oldest  # let go, bound anew
