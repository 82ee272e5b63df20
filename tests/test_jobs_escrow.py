"""Escrow that cannot be forged or stuck, on real contracts (embedded chain): a hand-over
needs both factories' typed signatures and never passes on more than the giving split
made; a silent buyer's delivery is finalised after the order's review period; a split
delivered and then ruled on still counts as delivered; signed acceptances for different
orders are independent (unordered nonces). Each attack is refused by name, nothing changed."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from kit import (
    DAY,
    FEE_PPM,
    PRICE,
    ROYALTY_PPM,
    Parties,
    admit,
    four_splits,
    in_production,
    new_account,
    parties,
    refused,
    split_order,
    state,
    time_travel,
)
from ledger.core.errors import InvalidInput
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import DEFAULT_REVIEW_PERIOD, JobStatus, SplitSpec, SplitStatus
from ledger.orders.signing import Handover

LOT = b"LOT-7".ljust(32, b"\x00")
EVIDENCE = "0x" + "e1" * 32
MACHINING = PRICE * 300_000 // 10**6  # split 0 of four_splits()
PAINTING = PRICE * 230_000 // 10**6  # split 1


def handovers(node: Node) -> int:
    return len(node.jobs.contract.events.CustodyHandedOver().get_logs(from_block=0))


def soon() -> int:
    return int(time.time()) + 3600


# --- hand-over -----------------------------------------------------------------------------
def test_a_handover_never_passes_on_more_than_the_giving_split_made(node: Node) -> None:
    p = parties(node)
    f = p.factories
    specs = [
        SplitSpec(f[0].address, "machining", 10, 400_000),
        SplitSpec(f[1].address, "coating A", 6, 265_000, (0,)),
        SplitSpec(f[2].address, "coating B", 4, 265_000, (0,)),
    ]
    job_id = in_production(node, p, specs)
    node.jobs.deliver(f[0], job_id, 0)
    before = state(node, job_id), handovers(node)

    # 999,999 units out of a split of 10, both factories signing: refused all the same
    huge = Handover(job_id, 0, 1, LOT, 999_999, soon())
    err = refused(
        "HandoverExceedsQuantity",
        node.jobs.handover,
        f[1],
        huge,
        node.jobs.sign(f[0].account, huge),
    )
    assert "10 units left to hand over, not 999999" in err.message
    assert (state(node, job_id), handovers(node)) == before

    # the bound is over all its dependents: 6 to coating A leaves 4 for coating B
    node.jobs.handover(
        f[1], (a := Handover(job_id, 0, 1, LOT, 6, soon())), node.jobs.sign(f[0].account, a)
    )
    five = Handover(job_id, 0, 2, LOT, 5, soon())
    refused(
        "HandoverExceedsQuantity",
        node.jobs.handover,
        f[2],
        five,
        node.jobs.sign(f[0].account, five),
    )
    four = Handover(job_id, 0, 2, LOT, 4, soon())
    node.jobs.handover(f[2], four, node.jobs.sign(f[0].account, four))
    view = node.jobs.view(job_id)
    assert view.splits[0].handed_quantity == 10 and view.splits[0].handed_to == [1, 2]


def test_an_empty_signature_is_never_consent(node: Node) -> None:
    """Sent by the giving factory itself, an empty signature of its own side is refused: the
    sender of a transaction never stands in for a factory's typed consent."""
    p = parties(node)
    giver, taker = p.factories[0], p.factories[2]
    job_id = in_production(node, p)
    node.jobs.deliver(giver, job_id, 0)
    record = Handover(job_id, 0, 3, LOT, 100, soon())
    taker_sig = node.jobs.sign(taker.account, record)
    raw = node.jobs.contract.functions.handover
    before = state(node, job_id), handovers(node)
    err = refused("HandoverNotSigned", giver.transact, raw(record.as_tuple(), b"", taker_sig))
    assert "split 0 of job" in err.message
    refused("HandoverNotSigned", taker.transact, raw(record.as_tuple(), b"", taker_sig))
    refused("HandoverNotSigned", giver.transact, raw(record.as_tuple(), b"", b""))
    # a member that is neither factory relaying one signature, or none
    operator = node.sender()
    refused("HandoverNotSigned", operator.transact, raw(record.as_tuple(), b"", taker_sig))
    assert (state(node, job_id), handovers(node)) == before

    # the client signs the sender's own side with the sender's own key, and only that side
    refused("HandoverNotSigned", node.jobs.handover, operator, record, b"", taker_sig)
    node.jobs.handover(giver, record, b"", taker_sig)
    event = node.jobs.contract.events.CustodyHandedOver().get_logs(from_block=0)[-1]["args"]
    assert (event["fromSigner"], event["toSigner"]) == (giver.address, taker.address)


# --- the silent buyer ---------------------------------------------------------------------
def test_a_silent_buyers_delivery_is_finalised_after_the_review_period(node: Node) -> None:
    p = parties(node)
    f = p.factories
    job_id = in_production(node, p)
    assert node.jobs.view(job_id).review_period == DEFAULT_REVIEW_PERIOD == 14 * DAY
    node.jobs.deliver(f[1], job_id, 1)
    ends = node.jobs.review_ends(job_id, 1)
    assert ends is not None and node.jobs.view(job_id).splits[1].review_ends == ends
    anyone = admit(node, int(Role.AUDITOR))

    before = state(node, job_id)
    err = refused("ReviewPeriodNotOver", node.jobs.finalize, anyone, job_id, 1)
    assert str(ends) in err.message
    refused("SplitNotInStatus", node.jobs.finalize, anyone, job_id, 0)  # never delivered
    time_travel(node, 14 * DAY - 120)
    refused("ReviewPeriodNotOver", node.jobs.finalize, anyone, job_id, 1)
    assert state(node, job_id) == before

    time_travel(node, 240)
    node.jobs.finalize(anyone, job_id, 1)
    view = node.jobs.view(job_id)
    assert view.splits[1].status is SplitStatus.PAID and view.splits[1].review_ends is None
    assert node.settlement.balance(f[1].address) == PAINTING
    event = node.jobs.contract.events.DeliveryFinalized().get_logs(from_block=0)[-1]["args"]
    assert (event["jobId"], event["splitId"], event["caller"]) == (job_id, 1, anyone.address)
    refused("SplitNotInStatus", node.jobs.finalize, anyone, job_id, 1)  # paid once
    refused("SplitNotInStatus", node.jobs.accept_delivery, p.buyer, job_id, 1)


def test_an_open_dispute_holds_finalisation_until_it_closes(node: Node) -> None:
    p = parties(node)
    painter = p.factories[1]
    job_id = in_production(node, p)
    node.jobs.deliver(painter, job_id, 1)
    dispute = node.disputes.open(p.buyer, job_id, 1, "paint flaking", EVIDENCE)
    time_travel(node, 15 * DAY)
    before = state(node, job_id)
    refused("SplitFrozen", node.jobs.finalize, painter, job_id, 1)
    assert state(node, job_id) == before
    node.disputes.lapse(painter, dispute)  # evidence 3 d + ruling 7 d, no quorum
    node.jobs.finalize(painter, job_id, 1)
    assert node.settlement.balance(painter.address) == PAINTING


def test_finalising_the_last_split_settles_the_order_and_pays_every_share(node: Node) -> None:
    """A per-order review period; each split finalised by its own factory."""
    p = parties(node)
    f = p.factories
    specs = four_splits(p)
    job_id, _ = node.jobs.create(
        p.buyer, p.design, 100, PRICE, int(time.time()) + 30 * DAY, review_period=2 * DAY
    )
    node.jobs.fund(p.buyer, job_id)
    node.jobs.split(p.buyer, job_id, specs)
    for i, spec in enumerate(specs):
        node.jobs.accept(node.sender(spec.factory), job_id, i)
    for i in (0, 1, 2):
        node.jobs.deliver(node.sender(specs[i].factory), job_id, i)
    node.jobs.handover(
        f[2], (h := Handover(job_id, 0, 3, LOT, 100, soon())), node.jobs.sign(f[0].account, h)
    )
    node.jobs.deliver(f[2], job_id, 3)
    time_travel(node, 2 * DAY + 60)
    for i, spec in enumerate(specs):
        node.jobs.finalize(node.sender(spec.factory), job_id, i)
    view = node.jobs.view(job_id)
    assert view.status is JobStatus.SETTLED and view.held == 0
    assert node.settlement.balance(p.designer.address) == PRICE * ROYALTY_PPM // 10**6
    assert node.settlement.balance(node.settlement.platform()) == PRICE * FEE_PPM // 10**6
    assert node.settlement.totals().conserved


def test_after_expiry_a_delivered_split_is_still_finalised(node: Node) -> None:
    p = parties(node)
    job_id = in_production(node, p)
    node.jobs.deliver(p.factories[1], job_id, 1)
    time_travel(node, 31 * DAY)
    node.jobs.expire(p.factories[1], job_id)
    assert node.jobs.view(job_id).held == PAINTING
    node.jobs.finalize(p.factories[1], job_id, 1)
    view = node.jobs.view(job_id)
    assert view.status is JobStatus.EXPIRED and view.held == 0
    assert node.settlement.balance(p.factories[1].address) == PAINTING


def test_a_review_period_is_bounded(node: Node) -> None:
    p = parties(node)
    deadline = int(time.time()) + DAY
    before = state(node)
    fn = node.jobs.contract.functions.createJob
    token = node.settlement.token().address
    too_long = fn(p.design, token, 1, PRICE, deadline, b"\x00" * 32, 365 * DAY + 1)
    refused("InvalidReviewPeriod", p.buyer.transact, too_long)
    with pytest.raises(InvalidInput, match="review period"):
        node.jobs.create(p.buyer, p.design, 1, PRICE, deadline, review_period=366 * DAY)
    assert state(node) == before


# --- a ruling keeps "was delivered" -------------------------------------------------------
def rule_on(node: Node, p: Parties, job_id: int, split_id: int, payout_ppm: int) -> None:
    auditors = [admit(node, int(Role.AUDITOR)) for _ in range(2)]
    dispute = node.disputes.open(p.buyer, job_id, split_id, "late and scratched", EVIDENCE)
    node.disputes.add_evidence(
        node.sender(node.jobs.split_record(job_id, split_id).factory), dispute, EVIDENCE
    )
    for auditor in auditors:
        node.disputes.vote(auditor, dispute, payout_ppm, "none")


def test_a_split_delivered_then_ruled_on_still_feeds_its_dependents(node: Node) -> None:
    p = parties(node)
    f = p.factories
    job_id = in_production(node, p)
    node.jobs.deliver(f[0], job_id, 0)
    rule_on(node, p, job_id, 0, 1_000_000)  # the machining factory is paid in full
    view = node.jobs.view(job_id)
    assert view.splits[0].status is SplitStatus.RULED and view.splits[0].delivered_at
    assert node.settlement.balance(f[0].address) == MACHINING

    # its lots still pass to assembly, which delivers and is paid
    record = Handover(job_id, 0, 3, LOT, 100, soon())
    node.jobs.handover(f[2], record, node.jobs.sign(f[0].account, record))
    node.jobs.deliver(f[2], job_id, 3)
    node.jobs.accept_delivery(p.buyer, job_id, 3)
    assert node.settlement.balance(f[2].address) == PRICE * 200_000 // 10**6


def test_a_split_ruled_on_before_delivery_blocks_its_dependents(node: Node) -> None:
    p = parties(node)
    f = p.factories
    job_id = in_production(node, p)
    rule_on(node, p, job_id, 0, 0)  # machining never delivered: the buyer refunded
    before = state(node, job_id)
    refused("DependencyNotDelivered", node.jobs.deliver, f[2], job_id, 3)
    record = Handover(job_id, 0, 3, LOT, 100, soon())
    refused(
        "SplitNotInStatus", node.jobs.handover, f[2], record, node.jobs.sign(f[0].account, record)
    )
    assert state(node, job_id) == before


# --- one nonce stream per factory no more -------------------------------------------------
def test_cancelling_one_order_leaves_acceptances_for_another_valid(node: Node) -> None:
    p = parties(node)
    factory = p.factories[2]
    first, second = split_order(node, p), split_order(node, p)
    for_first = node.jobs.acceptance(first, 3)
    for_second = node.jobs.acceptance(second, 3)
    sig_first = node.jobs.sign(factory.account, for_first)
    sig_second = node.jobs.sign(factory.account, for_second)
    node.jobs.cancel(p.buyer, first)
    relayer = node.add_signer(new_account())
    node.jobs.accept_with_signature(relayer, for_second, sig_second)
    assert node.jobs.view(second).splits[3].status is SplitStatus.ACCEPTED
    refused("JobNotInStatus", node.jobs.accept_with_signature, relayer, for_first, sig_first)

    # any unused nonce, in any order: the one a sequential counter would have skipped too
    third = split_order(node, p)
    skipped = replace(node.jobs.acceptance(third, 3), nonce=1)
    node.jobs.accept_with_signature(relayer, skipped, node.jobs.sign(factory.account, skipped))
    again = replace(node.jobs.acceptance(third, 1), nonce=1)
    painter = p.factories[1]
    node.jobs.accept_with_signature(relayer, again, node.jobs.sign(painter.account, again))
    assert [s.status for s in node.jobs.view(third).splits][1::2] == [SplitStatus.ACCEPTED] * 2
