"""The Settlement's rules on real contracts: escrow conservation, pull withdrawals (never
twice), a token that returns false, the dispute-ruling hook, the one-time links, and the
deployment of the payment token (demo dollars on dev chains only)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from kit import (
    DAY,
    DUSD,
    FEE_PPM,
    PRICE,
    ROYALTY_PPM,
    Parties,
    admit,
    create,
    four_splits,
    in_production,
    new_account,
    parties,
    refused,
    state,
    time_travel,
)
from ledger.core.errors import Conflict, ContractRevert, InvalidInput
from ledger.eth import deployment as deploy_mod
from ledger.eth.chain import Backend, Chain, connect
from ledger.eth.compiler import artifact
from ledger.eth.deployment import DEMO_MINT
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node, NodeOptions
from ledger.orders.jobs import JobStatus, SplitSpec, SplitStatus
from ledger.orders.settlement import Erc20, SettlementClient


def one_split(p: Parties, share: int = 1_000_000 - ROYALTY_PPM - FEE_PPM) -> list[SplitSpec]:
    return [SplitSpec(p.factories[0].address, "machining", 10, share)]


def test_withdrawing_twice_is_refused(node: Node) -> None:
    p = parties(node, factories=1)
    job_id = in_production(node, p, one_split(p))
    factory = p.factories[0]
    node.jobs.deliver(factory, job_id, 0)
    node.jobs.accept_delivery(p.buyer, job_id, 0)
    owed = PRICE * (1_000_000 - ROYALTY_PPM - FEE_PPM) // 10**6
    assert node.settlement.balance(factory.address) == owed
    with pytest.raises(ContractRevert) as info:
        node.settlement.withdraw(factory, amount=owed + 1)
    assert info.value.error == "InsufficientCredit" and str(owed) in info.value.message
    paid, _ = node.settlement.withdraw(factory, amount=DUSD)
    assert paid == DUSD
    node.settlement.withdraw(factory)
    before = state(node, job_id)
    with pytest.raises(Conflict, match="nothing to withdraw"):
        node.settlement.withdraw(factory)
    refused("InsufficientCredit", node.settlement.withdraw, factory, amount=1)
    with pytest.raises(InvalidInput):
        node.settlement.withdraw(factory, amount=0)
    zero = node.settlement.contract.functions.withdraw(node.settlement.token().address, 0)
    refused("ZeroAmount", factory.transact, zero)
    assert state(node, job_id) == before
    credited, withdrawn = node.settlement.account(factory.address)
    assert credited == withdrawn == owed
    assert node.settlement.token().balance_of(factory.address) == owed


def test_a_token_that_returns_false_is_refused_and_nothing_changes(node: Node) -> None:
    p = parties(node, factories=1)
    art = artifact("FalseToken")
    address = node.sender().deploy(art.abi, art.bytecode)["contractAddress"]
    token = Erc20(node.chain, address)
    false_token = node.chain.w3.eth.contract(address=address, abi=art.abi).functions
    node.sender().transact(false_token.mint(p.buyer.address, PRICE))
    job_id, _ = node.jobs.create(p.buyer, p.design, 10, PRICE, int(time.time()) + 86_400, address)
    node.sender().transact(false_token.setFailing(True))
    before = state(node, job_id)
    err = refused("SafeERC20FailedOperation", node.jobs.fund, p.buyer, job_id)
    assert address in err.message
    assert state(node, job_id) == before
    assert node.jobs.status(job_id) is JobStatus.CREATED
    assert node.settlement.totals(address).deposited == 0 and token.balance_of(p.buyer.address)

    node.sender().transact(false_token.setFailing(False))
    node.jobs.fund(p.buyer, job_id)
    node.jobs.split(p.buyer, job_id, one_split(p))
    node.jobs.accept(p.factories[0], job_id, 0)
    node.jobs.deliver(p.factories[0], job_id, 0)
    node.jobs.accept_delivery(p.buyer, job_id, 0)
    owed = node.settlement.balance(p.factories[0].address, address)
    assert owed > 0
    node.sender().transact(false_token.setFailing(True))
    refused("SafeERC20FailedOperation", node.settlement.withdraw, p.factories[0], address)
    assert node.settlement.balance(p.factories[0].address, address) == owed
    assert token.balance_of(p.factories[0].address) == 0
    totals = node.settlement.totals(address)
    assert totals.withdrawn == 0 and totals.conserved


def test_the_settlement_moves_escrow_only_for_its_job_board(node: Node) -> None:
    s = node.settlement
    assert s.links()["job_board"] == node.jobs.address
    outsider = admit(node, int(Role.BUYER))
    token = s.token().address
    refused("AlreadyLinked", node.sender().transact, s.contract.functions.setJobBoard(token))
    refused("NotDeployer", outsider.transact, s.contract.functions.setJobBoard(token))
    fns = s.contract.functions
    refused("NotJobBoard", outsider.transact, fns.deposit(1, token, outsider.address, 5))
    refused("NotJobBoard", outsider.transact, s.contract.functions.release(1, 0))
    refused("NotJobBoard", outsider.transact, s.contract.functions.refund(1, 0))
    refused("NotDisputes", outsider.transact, s.contract.functions.applyRuling(1, 0, 0))
    ruled = node.jobs.contract.functions.onSplitRuled(1, 0, 0)
    refused("NotSettlement", outsider.transact, ruled)


@pytest.fixture
def bare_node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Node]:
    """A node whose deployment has no Disputes contract, so that an account may stand in for
    it (the real dispute process is tested in test_disputes.py)."""
    monkeypatch.setitem(deploy_mod.CONDITIONS, "Disputes", lambda _chain, _params: False)
    monkeypatch.setenv("COFAB_PASSPHRASE", "bare node")
    opts = NodeOptions(backend=Backend.EMBEDDED, data_dir=tmp_path / "bare", kdf_iterations=2**10)
    bare = Node.start(opts)
    assert "Disputes" not in bare.deployment.contracts
    yield bare
    bare.close()


def test_a_dispute_ruling_adjusts_a_split_payout(bare_node: Node) -> None:
    node = bare_node
    p = parties(node)
    f = p.factories
    s = node.settlement
    arbiter = admit(node, int(Role.AUDITOR))  # stands in for the Disputes contract
    refused("NotDeployer", s.set_disputes, arbiter, arbiter.address)
    s.set_disputes(node.sender(), arbiter.address)
    refused("AlreadyLinked", s.set_disputes, node.sender(), new_account().address)
    assert s.links()["disputes"] == arbiter.address

    def rule(job_id: int, split_id: int, payout: int) -> None:
        arbiter.transact(s.contract.functions.applyRuling(job_id, split_id, payout))

    split_only = create(node, p)
    node.jobs.fund(p.buyer, split_only)
    node.jobs.split(p.buyer, split_only, four_splits(p))
    refused("JobNotInStatus", rule, split_only, 1, 0)  # production has not started

    job_id = in_production(node, p)
    node.jobs.deliver(f[1], job_id, 1)
    painting = PRICE * 230_000 // 10**6
    refused("PayoutTooHigh", rule, job_id, 1, painting + 1)
    before = state(node, job_id)
    refused("NotDisputes", p.buyer.transact, s.contract.functions.applyRuling(job_id, 1, 0))
    assert state(node, job_id) == before

    buyer_before = s.balance(p.buyer.address)
    rule(job_id, 1, painting * 3 // 4)  # late delivery: a quarter off
    assert s.balance(f[1].address) == painting * 3 // 4
    assert s.balance(p.buyer.address) - buyer_before == painting - painting * 3 // 4
    view = node.jobs.view(job_id)
    assert view.splits[1].status is SplitStatus.RULED and view.splits[1].payout == painting * 3 // 4
    refused("SplitClosed", rule, job_id, 1, 0)
    refused("SplitNotInStatus", node.jobs.accept_delivery, p.buyer, job_id, 1)

    # the others: two rulings (nothing paid; full pay) and one acceptance settle the order
    rule(job_id, 0, 0)  # machining never delivered: refunded
    node.jobs.deliver(f[0], job_id, 2)
    node.jobs.accept_delivery(p.buyer, job_id, 2)
    assert node.jobs.status(job_id) is JobStatus.IN_PRODUCTION
    rule(job_id, 3, PRICE * 200_000 // 10**6)  # assembly paid in full despite no lots
    view = node.jobs.view(job_id)
    assert view.status is JobStatus.SETTLED and view.held == 0
    assert s.balance(p.designer.address) == PRICE * ROYALTY_PPM // 10**6
    assert s.totals().conserved


def test_each_payee_is_the_job_boards_split_and_closes_once(node: Node) -> None:
    """The Settlement stores no payee of its own: it reads each split's factory and share
    from the JobBoard and keeps one closed bit per split. A released split is closed; an
    expiry refunds exactly the splits still open, and a split the order lacks has none."""
    p = parties(node)
    f = p.factories
    s = node.settlement
    specs = four_splits(p)
    job_id = in_production(node, p, specs)
    amounts = [PRICE * spec.share_ppm // 10**6 for spec in specs]
    assert [s.payee(job_id, i) for i in range(4)] == [
        (spec.factory, spec.share_ppm, False, amounts[i]) for i, spec in enumerate(specs)
    ]
    assert s.payee(job_id, 4) == ("0x" + "00" * 20, 0, False, 0)
    node.jobs.deliver(f[1], job_id, 1)
    node.jobs.accept_delivery(p.buyer, job_id, 1)
    node.jobs.deliver(f[0], job_id, 2)
    assert s.payee(job_id, 1)[2] and s.escrow(job_id).closed_splits == 0b0010
    buyer_before = s.balance(p.buyer.address)
    time_travel(node, 31 * DAY)
    node.jobs.expire(p.buyer, job_id)
    refunded = amounts[0] + amounts[3] + PRICE - sum(amounts)  # with the royalty and fee
    assert s.balance(p.buyer.address) - buyer_before == refunded
    assert s.escrow(job_id).closed_splits == 0b1011  # split 2, delivered, stays open
    assert [s.payee(job_id, i)[2] for i in range(4)] == [True, True, False, True]
    node.jobs.accept_delivery(p.buyer, job_id, 2)
    assert s.balance(f[0].address) == amounts[2]
    assert s.escrow(job_id).closed_splits == 0b1111 and s.totals().conserved


def test_dev_chains_get_demo_dollars_and_accounts_are_funded(node: Node) -> None:
    s = node.settlement
    assert s.default_token() == node.deployment.address("DemoStable")
    info = s.token().info
    assert (info.symbol, info.decimals) == ("dUSD", 6)
    assert s.token().balance_of(node.sender().address) == DEMO_MINT
    assert s.token().balance_of(node.chain.faucet.address) == DEMO_MINT  # type: ignore[union-attr]
    assert s.platform() == node.sender().address and s.platform_fee_ppm() == FEE_PPM
    outsider = admit(node, int(Role.BUYER))
    refused("NotMinter", s.token().mint, outsider, outsider.address, 1)


def _consortium_chain() -> tuple[Chain, Sender]:
    """The embedded EVM dressed as an RPC consortium chain: not a dev chain, no faucet."""
    dev = connect(Backend.EMBEDDED)
    key = dev.w3.provider.ethereum_tester.backend.account_keys[0]  # type: ignore[attr-defined]
    chain = Chain(w3=dev.w3, backend=Backend.RPC, chain_id=dev.chain_id)
    return chain, Sender(chain, Account.from_key(key.to_bytes()))


def test_a_consortium_chain_uses_an_existing_erc20_and_no_demo_token() -> None:
    chain, operator = _consortium_chain()
    art = artifact("FalseToken")  # any ERC-20 already on the chain
    existing = str(operator.deploy(art.abi, art.bytecode)["contractAddress"])
    params = deploy_mod.GovernanceParams(council=(operator.address,), payment_token=existing)
    record = deploy_mod.deploy(chain, operator, params)
    assert "DemoStable" not in record.contracts
    settlement = SettlementClient(deploy_mod.bind(chain, record, "Settlement"), chain)
    assert settlement.default_token() == existing
    assert settlement.links()["job_board"] == record.address("JobBoard")

    chain, operator = _consortium_chain()
    params = deploy_mod.GovernanceParams(council=(operator.address,))
    record = deploy_mod.deploy(chain, operator, params)
    assert "DemoStable" not in record.contracts
    settlement = SettlementClient(deploy_mod.bind(chain, record, "Settlement"), chain)
    assert settlement.default_token() is None
    with pytest.raises(InvalidInput, match="no default payment token"):
        settlement.token()
