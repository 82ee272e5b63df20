"""The JobBoard's rules, one test per rule, on real contracts (embedded chain): order
lifecycle, splits as a DAG, delivery after dependencies, acceptance, cancellation, expiry.
Every refusal names the contract's custom error and leaves the state as it was."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kit import (
    DAY,
    FEE_PPM,
    PRICE,
    ROYALTY_PPM,
    admit,
    chain_now,
    create,
    four_splits,
    in_production,
    new_account,
    parties,
    refused,
    rewound,
    snapshot,
    split_order,
    state,
    time_travel,
)
from ledger.core.errors import ChainUnavailable, InvalidInput, NotFound, fault
from ledger.eth.chain import http_web3
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import JobsClient, JobStatus, SplitSpec, SplitStatus
from ledger.orders.signing import Handover

LOT = b"LOT-1".ljust(32, b"\x00")


def statuses(node: Node, job_id: int) -> list[str]:
    logs = node.jobs.contract.events.JobStatusChanged().get_logs(
        from_block=0, argument_filters={"jobId": job_id}
    )
    return [JobStatus(e["args"]["status"]).label for e in logs]


def test_an_order_goes_from_created_to_settled_and_pays_every_share(node: Node) -> None:
    p = parties(node)
    specs = four_splits(p)
    job_id = split_order(node, p, specs)
    view = node.jobs.view(job_id)
    assert view.status is JobStatus.SPLIT and view.shares_total == 1_000_000
    for i, spec in enumerate(specs):
        node.jobs.accept(node.sender(spec.factory), job_id, i)
    assert node.jobs.status(job_id) is JobStatus.IN_PRODUCTION

    f = p.factories
    for i in (0, 1, 2):
        node.jobs.deliver(node.sender(specs[i].factory), job_id, i)
    deadline = int(time.time()) + 3600
    handover = Handover(job_id, 0, 3, LOT, 100, deadline)
    node.jobs.handover(f[2], handover, node.jobs.sign(f[0].account, handover))
    view = node.jobs.view(job_id)
    assert view.splits[0].custody == [f[2].address]  # machining lots now at assembly
    node.jobs.deliver(f[2], job_id, 3, "0x" + "ab" * 32)
    assert node.jobs.status(job_id) is JobStatus.DELIVERED

    # release per split: the factory is credited on acceptance, royalty and fee at the end
    node.jobs.accept_delivery(p.buyer, job_id, 1)
    assert node.settlement.balance(f[1].address) == PRICE * 230_000 // 10**6
    assert node.settlement.balance(p.designer.address) == 0
    for i in (0, 2, 3):
        node.jobs.accept_delivery(p.buyer, job_id, i)
    view = node.jobs.view(job_id)
    assert view.status is JobStatus.SETTLED and view.held == 0
    assert view.splits[3].custody == [p.buyer.address]
    lifecycle = "created funded split in_production delivered accepted settled"
    assert statuses(node, job_id) == lifecycle.split()

    expected = {
        f[0].address: PRICE * 500_000 // 10**6,
        f[1].address: PRICE * 230_000 // 10**6,
        f[2].address: PRICE * 200_000 // 10**6,
        p.designer.address: PRICE * ROYALTY_PPM // 10**6,
        node.settlement.platform(): PRICE * FEE_PPM // 10**6,
    }
    assert sum(expected.values()) == PRICE
    token = node.settlement.token()
    for account, amount in expected.items():
        assert node.settlement.balance(account) == amount
        before = token.balance_of(account)
        node.settlement.withdraw(node.sender(account))
        assert token.balance_of(account) - before == amount
    totals = node.settlement.totals()
    assert totals.conserved and totals.held == 0 and totals.withdrawn == PRICE


def test_only_an_active_buyer_with_a_licence_places_orders(node: Node) -> None:
    p = parties(node)
    deadline = int(time.time()) + DAY
    before = state(node)
    refused("MissingRole", node.jobs.create, p.factories[0], p.design, 1, PRICE, deadline)
    other = admit(node, int(Role.BUYER))
    refused("DesignNotLicensed", node.jobs.create, other, p.design, 1, PRICE, deadline)
    past = chain_now(node) - 1
    refused("InvalidDeadline", node.jobs.create, p.buyer, p.design, 1, PRICE, past)
    eoa = new_account().address
    fn = node.jobs.contract.functions.createJob(p.design, eoa, 1, 5, deadline, b"\x00" * 32, 0)
    refused("InvalidToken", p.buyer.transact, fn)
    with pytest.raises(InvalidInput):
        node.jobs.create(p.buyer, p.design, 0, PRICE, deadline)
    node.consortium.propose_suspend(node.sender(), p.buyer.address)
    refused("MissingRole", node.jobs.create, p.buyer, p.design, 1, PRICE, deadline)
    assert state(node) == before


def test_royalty_and_fee_must_leave_something_for_the_factories(node: Node) -> None:
    p = parties(node, royalty_ppm=1_000_000 - FEE_PPM)
    refused("FeesTooHigh", create, node, p)


def test_funding_takes_the_price_into_escrow_once(node: Node) -> None:
    p = parties(node)
    job_id = create(node, p)
    refused("NotJobBuyer", node.jobs.fund, p.factories[0], job_id)
    before = state(node, job_id)
    # without an allowance the token refuses the transfer and nothing changes
    fn = node.jobs.contract.functions.fund(job_id)
    refused("ERC20InsufficientAllowance", p.buyer.transact, fn)
    assert state(node, job_id) == before
    node.jobs.fund(p.buyer, job_id)
    view = node.jobs.view(job_id)
    assert view.status is JobStatus.FUNDED and view.held == view.deposited == PRICE
    err = refused("JobNotInStatus", node.jobs.fund, p.buyer, job_id)
    assert "is funded" in err.message
    with pytest.raises(NotFound):
        node.jobs.view(99)


def test_shares_that_do_not_sum_to_one_million_are_refused(node: Node) -> None:
    p = parties(node)
    job_id = create(node, p)
    node.jobs.fund(p.buyer, job_id)
    before = state(node, job_id)
    specs = four_splits(p)
    short = [*specs[:3], SplitSpec(specs[3].factory, "assembly", 100, 199_999, (0,))]
    err = refused("SharesDoNotSum", node.jobs.split, p.buyer, job_id, short)
    assert "999999" in err.message
    over = [*specs[:3], SplitSpec(specs[3].factory, "assembly", 100, 200_001, (0,))]
    refused("SharesDoNotSum", node.jobs.split, p.buyer, job_id, over)
    assert state(node, job_id) == before
    node.jobs.split(p.buyer, job_id, specs)
    assert node.jobs.view(job_id).shares_total == 1_000_000


def test_a_split_for_a_non_factory_or_suspended_member_is_refused(node: Node) -> None:
    p = parties(node)
    job_id = create(node, p)
    node.jobs.fund(p.buyer, job_id)
    before = state(node, job_id)
    specs = four_splits(p)
    designer_split = [*specs[:3], SplitSpec(p.designer.address, "assembly", 1, 200_000)]
    refused("MissingRole", node.jobs.split, p.buyer, job_id, designer_split)
    node.consortium.propose_suspend(node.sender(), p.factories[1].address)
    err = refused("MissingRole", node.jobs.split, p.buyer, job_id, specs)
    assert p.factories[1].address in err.message
    refused("NotJobBuyer", node.jobs.split, p.factories[0], job_id, specs)
    assert state(node, job_id) == before


def test_splits_depend_only_on_earlier_splits(node: Node) -> None:
    p = parties(node)
    job_id = create(node, p)
    node.jobs.fund(p.buyer, job_id)
    specs = four_splits(p)
    self_loop = SplitSpec(specs[3].factory, "assembly", 1, 200_000, (3,))
    with pytest.raises(InvalidInput):
        node.jobs.split(p.buyer, job_id, [*specs[:3], self_loop])
    raw = [s.as_tuple(i) for i, s in enumerate(specs)]
    raw[1] = (*raw[1][:4], 1 << 2)  # painting "after" a later split: a cycle in the making
    fn = node.jobs.contract.functions.split(job_id, raw)
    refused("InvalidDependencies", p.buyer.transact, fn)
    assert node.jobs.status(job_id) is JobStatus.FUNDED


def test_dependencies_and_step_labels_read_back_as_split(node: Node) -> None:
    """Dependency masks are stored four to a word and step labels only in the
    SplitAssigned events: an order of 9 splits reads back exactly what the buyer split,
    and a hand-over is refused along any edge it did not ask for."""
    p = parties(node)
    f = p.factories
    rest = 1_000_000 - ROYALTY_PPM - FEE_PPM
    shares = [rest // 9] * 9
    shares[0] += rest - sum(shares)
    after = [(), (0,), (), (1, 2), (), (3,), (0, 4), (), (5, 6, 7)]
    specs = [
        SplitSpec(f[i % 3].address, f"step {i} 工序", 10 + i, shares[i], after[i]) for i in range(9)
    ]
    job_id = in_production(node, p, specs)
    raw = node.jobs.raw_splits(job_id)
    assert [s.depends_on for s in raw] == [sum(1 << d for d in a) for a in after]
    assert [(s.factory, s.quantity, s.share_ppm) for s in raw] == [
        (s.factory, s.quantity, s.share_ppm) for s in specs
    ]
    view = node.jobs.view(job_id)
    assert [s.step for s in view.splits] == [s.step for s in specs]
    assert view.shares_total == 1_000_000
    node.jobs.deliver(f[0], job_id, 0)
    before = state(node, job_id)
    stray = Handover(job_id, 0, 5, LOT, 1, int(time.time()) + 3600)  # 5 needs 3, not 0
    refused("NotADependency", node.jobs.handover, f[2], stray, node.jobs.sign(f[0].account, stray))
    assert state(node, job_id) == before
    edge = Handover(job_id, 0, 6, LOT, 4, int(time.time()) + 3600)
    node.jobs.handover(f[0], edge, node.jobs.sign(f[0].account, edge))
    assert node.jobs.raw_splits(job_id)[6].received == 1


def test_an_order_split_again_on_a_rewound_chain_shows_its_new_labels(node: Node) -> None:
    """Step labels are read from the chain on every view: a chain rewound (a reorganisation,
    a devnet snapshot) that splits the order differently in the same block shows the new
    splits, not the old ones."""
    p = parties(node)
    job_id = create(node, p)
    node.jobs.fund(p.buyer, job_id)
    snap = snapshot(node.chain)
    node.jobs.split(p.buyer, job_id, four_splits(p))
    first = node.jobs.view(job_id)
    assert [s.step for s in first.splits][:2] == ["machining", "painting"]
    block = node.jobs.raw_job(job_id).split_block
    rewound(node.chain, snap)
    rest = 1_000_000 - ROYALTY_PPM - FEE_PPM
    shares = [rest // 5] * 5
    shares[0] += rest - sum(shares)
    specs = [SplitSpec(p.factories[0].address, f"other {i}", 1, shares[i]) for i in range(5)]
    node.jobs.split(p.buyer, job_id, specs)
    assert node.jobs.raw_job(job_id).split_block == block
    assert [s.step for s in node.jobs.view(job_id).splits] == [f"other {i}" for i in range(5)]


class _RefusingLogs(BaseHTTPRequestHandler):
    """A chain endpoint that forwards everything but eth_getLogs, which it refuses as a
    node with pruned history does."""

    upstream = ""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        call = json.loads(body)
        if call.get("method") == "eth_getLogs":
            error = {"code": -32000, "message": "historical logs pruned"}
            answer = json.dumps({"jsonrpc": "2.0", "id": call.get("id"), "error": error})
        else:
            req = urllib.request.Request(self.upstream, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                answer = resp.read().decode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *args: object) -> None:
        pass


def test_a_chain_node_refusing_the_step_labels_is_a_503_naming_it(node: Node) -> None:
    """Step labels come from eth_getLogs: a node that refuses it (pruned history, a rate
    limit) makes the order's view a 503 that says what the chain's node said."""
    p = parties(node)
    job_id = split_order(node, p)
    handler = type("Refusing", (_RefusingLogs,), {"upstream": str(node.chain.url)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        w3 = http_web3(f"http://127.0.0.1:{server.server_address[1]}")
        board = w3.eth.contract(address=node.jobs.address, abi=node.jobs.contract.abi)
        client = JobsClient(board, node.settlement, node.chain)
        with pytest.raises(Exception) as raised:
            client.view(job_id)
        answer = fault(raised.value)
        assert isinstance(answer, ChainUnavailable) and answer.status == 503
        assert "historical logs pruned" in answer.message
    finally:
        server.shutdown()
        server.server_close()


def test_a_share_above_the_whole_is_refused_by_the_job_board_itself(node: Node) -> None:
    """A split stores its share in 24 bits: a share above 1e6 (which 24 bits could wrap,
    2**24 + 200,000 to 200,000) is refused before anything is stored."""
    p = parties(node)
    job_id = create(node, p)
    node.jobs.fund(p.buyer, job_id)
    before = state(node, job_id)
    raw = [s.as_tuple(i) for i, s in enumerate(four_splits(p))]
    raw[3] = (*raw[3][:3], 2**24 + 200_000, raw[3][4])
    err = refused("InvalidShare", p.buyer.transact, node.jobs.contract.functions.split(job_id, raw))
    assert "3" in err.message
    assert state(node, job_id) == before


def test_a_factory_cannot_accept_someone_elses_split(node: Node) -> None:
    p = parties(node)
    job_id = split_order(node, p)
    before = state(node, job_id)
    err = refused("NotSplitFactory", node.jobs.accept, p.factories[1], job_id, 0)
    assert p.factories[1].address in err.message
    refused("NotSplitFactory", node.jobs.accept, p.buyer, job_id, 0)
    refused("UnknownSplit", node.jobs.accept, p.factories[0], job_id, 4)
    assert state(node, job_id) == before
    node.jobs.accept(p.factories[0], job_id, 0)
    refused("SplitNotInStatus", node.jobs.accept, p.factories[0], job_id, 0)
    assert node.jobs.view(job_id).splits[0].status is SplitStatus.ACCEPTED


def test_delivery_waits_for_dependencies_and_their_lots(node: Node) -> None:
    p = parties(node)
    f = p.factories
    job_id = split_order(node, p)
    refused("JobNotInStatus", node.jobs.deliver, f[0], job_id, 0)  # not every split accepted
    for i, spec in enumerate(four_splits(p)):
        node.jobs.accept(node.sender(spec.factory), job_id, i)
    before = state(node, job_id)
    err = refused("DependencyNotDelivered", node.jobs.deliver, f[2], job_id, 3)
    assert "needs split 0 delivered first" in err.message
    refused("NotSplitFactory", node.jobs.deliver, f[1], job_id, 0)
    assert state(node, job_id) == before
    node.jobs.deliver(f[0], job_id, 0)
    refused("LotsNotReceived", node.jobs.deliver, f[2], job_id, 3)
    lots = Handover(job_id, 0, 3, LOT, 100, int(time.time()) + 600)
    node.jobs.handover(f[0], lots, b"", node.jobs.sign(f[2].account, lots))
    node.jobs.deliver(f[2], job_id, 3)
    refused("SplitNotInStatus", node.jobs.deliver, f[2], job_id, 3)


def test_no_delivery_after_the_deadline(node: Node) -> None:
    p = parties(node)
    job_id = in_production(node, p)
    time_travel(node, 31 * DAY)
    refused("JobDeadlinePassed", node.jobs.deliver, p.factories[1], job_id, 1)


def test_only_the_buyer_accepts_a_delivered_split(node: Node) -> None:
    p = parties(node)
    job_id = in_production(node, p)
    refused("SplitNotInStatus", node.jobs.accept_delivery, p.buyer, job_id, 1)
    node.jobs.deliver(p.factories[1], job_id, 1)
    before = state(node, job_id)
    refused("NotJobBuyer", node.jobs.accept_delivery, p.factories[1], job_id, 1)
    assert state(node, job_id) == before
    node.jobs.accept_delivery(p.buyer, job_id, 1)
    refused("SplitNotInStatus", node.jobs.accept_delivery, p.buyer, job_id, 1)
    assert node.jobs.view(job_id).splits[1].status is SplitStatus.PAID


def test_cancel_before_production_refunds_everything(node: Node) -> None:
    p = parties(node)
    unfunded = create(node, p)
    node.jobs.cancel(p.buyer, unfunded)
    assert node.jobs.status(unfunded) is JobStatus.CANCELLED
    job_id = split_order(node, p)
    node.jobs.accept(p.factories[0], job_id, 0)  # one factory accepted: still cancellable
    refused("NotJobBuyer", node.jobs.cancel, p.factories[0], job_id)
    node.jobs.cancel(p.buyer, job_id)
    view = node.jobs.view(job_id)
    assert view.status is JobStatus.CANCELLED and view.held == 0 and view.refunded == PRICE
    assert {s.status for s in view.splits} == {SplitStatus.REFUNDED}
    assert node.settlement.balance(p.buyer.address) == PRICE
    refused("JobNotInStatus", node.jobs.cancel, p.buyer, job_id)
    refused("JobNotInStatus", node.jobs.accept, p.factories[1], job_id, 1)

    started = in_production(node, p)
    err = refused("JobNotInStatus", node.jobs.cancel, p.buyer, started)
    assert "in_production" in err.message


def test_expiry_refunds_what_was_not_delivered(node: Node) -> None:
    p = parties(node)
    f = p.factories
    job_id = in_production(node, p)
    node.jobs.deliver(f[1], job_id, 1)
    node.jobs.accept_delivery(p.buyer, job_id, 1)  # painting paid
    node.jobs.deliver(f[0], job_id, 2)  # second machining lot delivered, not yet accepted
    refused("NotYetExpired", node.jobs.expire, p.buyer, job_id)
    time_travel(node, 31 * DAY)
    node.jobs.expire(admit(node, int(Role.AUDITOR)), job_id)  # anyone may
    view = node.jobs.view(job_id)
    assert view.status is JobStatus.EXPIRED
    assert [s.status.label for s in view.splits] == ["refunded", "paid", "delivered", "refunded"]
    # refunded: splits 0 and 3, the royalty and the fee; split 2 stays held for its factory
    lot2 = PRICE * 200_000 // 10**6
    assert view.held == lot2
    assert node.settlement.balance(p.buyer.address) == PRICE - lot2 - PRICE * 230_000 // 10**6
    node.jobs.accept_delivery(p.buyer, job_id, 2)
    assert node.settlement.balance(f[0].address) == lot2
    assert node.settlement.balance(p.designer.address) == 0
    view = node.jobs.view(job_id)
    assert view.status is JobStatus.EXPIRED and view.held == 0
    assert node.settlement.totals().conserved
    refused("JobNotInStatus", node.jobs.expire, p.buyer, job_id)


def test_the_splits_lookup_for_traceability_and_disputes(node: Node) -> None:
    p = parties(node)
    job_id = split_order(node, p)
    fns = node.jobs.contract.functions
    assert fns.splitFactory(job_id, 3).call() == p.factories[2].address
    assert fns.jobBuyer(job_id).call() == p.buyer.address
    assert int(fns.splitFactory(job_id, 9).call(), 16) == 0
    assert int(fns.jobBuyer(99).call(), 16) == 0
    consortium, licences, settlement = fns.links().call()
    assert (consortium, licences, settlement) == (
        node.consortium.address,
        node.designs.address,
        node.settlement.address,
    )


def test_a_refusal_is_named_whatever_its_arguments_look_like(node: Node) -> None:
    """NotSplitFactory(40, 1, caller) reads, as an Error(string), like a 2**64-byte string:
    the embedded chain's provider must still hand over the revert data."""
    p = parties(node)
    deadline = int(time.time()) + DAY
    create_job = node.jobs.contract.functions.createJob
    token = node.settlement.token().address
    for _ in range(39):  # fixed gas: no estimate, quicker
        p.buyer.transact(
            create_job(p.design, token, 1, PRICE, deadline, b"\x00" * 32, 0), gas=400_000
        )
    job_id = split_order(node, p)
    assert job_id == 40
    err = refused("NotSplitFactory", node.jobs.accept, p.factories[0], job_id, 1)
    assert err.message == f"{p.factories[0].address} is not the factory of split 1 of job 40"
