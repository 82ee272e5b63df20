"""Disputes: who opens, the frozen payout, who votes, the median ruling the Settlement
applies, deadlines and the lapse.

Builds on the `consortium` fixture (conftest.py): an active factory (accounts[3]) and an
active designer (accounts[4]); here also a buyer (accounts[5]), two auditors (accounts[6],
accounts[7]) and a second factory that is an auditor too (accounts[8]). Every test starts
from an order in production whose split 0 (the first factory's) is delivered.
"""

import pytest
from brownie import chain

from conftest import AUDITOR, BUYER, DAY, FACTORY, err

EVIDENCE_PERIOD, RULING_PERIOD = 3 * DAY, 7 * DAY
ROYALTY, FEE = 50_000, 20_000
PRICE = 10_000 * 10**6
SHARES = (500_000, 1_000_000 - ROYALTY - FEE - 500_000)
DESIGN = b"\xd5" * 32
EVIDENCE, ANSWER = b"\xe1" * 32, b"\xa2" * 32
NO_FAULT, BUYER_FAULT, FACTORY_FAULT = 0, 1, 2
OPEN, RULED, LAPSED = 1, 2, 3


@pytest.fixture(scope="module")
def people(accounts):
    return {
        "buyer": accounts[5],
        "auditors": (accounts[6], accounts[7]),
        "factory2": accounts[8],
        "outsider": accounts[9],
    }


@pytest.fixture(scope="module")
def stack(
    consortium, council, factory, designer, people, DesignRegistry, DemoStable, Settlement,
    JobBoard, Disputes,
):  # fmt: skip
    """The order contracts linked as cofab deploys them, and an order in production."""
    owner = {"from": council[0]}
    for account, roles in (
        (people["buyer"], BUYER),
        (people["auditors"][0], AUDITOR),
        (people["auditors"][1], AUDITOR),
        (people["factory2"], FACTORY | AUDITOR),
    ):
        tx = consortium.proposeAdmit(account, roles, b"\x11" * 32, b"\x22" * 32, owner)
        consortium.approve(tx.events["ProposalCreated"]["id"], {"from": council[1]})
    registry = DesignRegistry.deploy(consortium, owner)
    token = DemoStable.deploy(owner)
    settlement = Settlement.deploy(token, council[0], FEE, owner)
    board = JobBoard.deploy(consortium, registry, settlement, owner)
    settlement.setJobBoard(board, owner)
    disputes = Disputes.deploy(
        consortium, board, settlement, EVIDENCE_PERIOD, RULING_PERIOD, 2, owner
    )
    settlement.setDisputes(disputes, owner)

    buyer = people["buyer"]
    commitment = registry.commitmentOf(DESIGN, b"\x00" * 32, b"\x00" * 32, designer, DESIGN)
    registry.commit(commitment, {"from": designer})
    registry.reveal(DESIGN, b"\x00" * 32, b"\x00" * 32, designer, DESIGN, {"from": designer})
    registry.grantLicence(DESIGN, buyer, ROYALTY, {"from": designer})
    token.mint(buyer, PRICE, owner)
    token.approve(settlement, PRICE, {"from": buyer})
    tx = board.createJob(
        DESIGN, token, 10, PRICE, chain.time() + 30 * DAY, b"\x00" * 32, 0, {"from": buyer}
    )
    job = tx.events["JobCreated"]["jobId"]
    board.fund(job, {"from": buyer})
    specs = [
        (factory, b"machining".ljust(32, b"\x00"), 10, SHARES[0], 0),
        (people["factory2"], b"painting".ljust(32, b"\x00"), 10, SHARES[1], 0),
    ]
    board.split(job, specs, {"from": buyer})
    board.acceptSplit(job, 0, {"from": factory})
    board.acceptSplit(job, 1, {"from": people["factory2"]})
    board.deliver(job, 0, b"\x00" * 32, {"from": factory})
    return {
        "board": board,
        "settlement": settlement,
        "disputes": disputes,
        "token": token,
        "job": job,
    }


def test_the_constructor_checks_its_links_and_parameters(
    Disputes, Settlement, stack, consortium, council
):
    board, settlement = stack["board"], stack["settlement"]
    owner = {"from": council[0]}
    with err("InvalidDisputeQuorum"):
        Disputes.deploy(consortium, board, settlement, DAY, DAY, 0, owner)
    with err("InvalidDisputeQuorum"):
        Disputes.deploy(consortium, board, settlement, DAY, DAY, 65, owner)
    with err("InvalidPeriods"):
        Disputes.deploy(consortium, board, settlement, 0, DAY, 1, owner)
    unlinked = Settlement.deploy(stack["token"], council[0], FEE, owner)
    with err("BoardMismatch"):
        Disputes.deploy(consortium, board, unlinked, DAY, DAY, 1, owner)
    with err("AlreadyLinked"):
        settlement.setDisputes(council[1], owner)


def test_a_ruling_by_quorum_pays_the_median_share_and_refunds_the_rest(stack, people, factory):
    board, settlement, disputes, job = (
        stack["board"],
        stack["settlement"],
        stack["disputes"],
        stack["job"],
    )
    buyer, (first, second) = people["buyer"], people["auditors"]
    with err("NotJobParty"):
        disputes.openDispute(job, 0, "not mine", EVIDENCE, {"from": people["outsider"]})
    with err("NotJobParty"):
        disputes.openDispute(job, 0, "not my split", EVIDENCE, {"from": people["factory2"]})
    tx = disputes.openDispute(job, 0, "burrs on every part", EVIDENCE, {"from": buyer})
    opened = tx.events["DisputeOpened"]
    assert (opened["disputeId"], opened["jobId"], opened["splitId"]) == (1, job, 0)
    assert opened["claimant"] == buyer and opened["respondent"] == factory
    assert opened["rulingDeadline"] == opened["evidenceDeadline"] + RULING_PERIOD
    with err("DisputeAlreadyOpen"):
        disputes.openDispute(job, 0, "again", EVIDENCE, {"from": factory})
    assert disputes.isFrozen(job, 0) and disputes.frozenSplits(job) == 1
    with err("SplitFrozen"):
        board.acceptDelivery(job, 0, {"from": buyer})

    with err("VotingNotOpen"):
        disputes.vote(1, 500_000, FACTORY_FAULT, {"from": first})
    disputes.submitEvidence(1, ANSWER, "ipfs://answer", {"from": factory})
    with err("AuditorIsParty"):  # an auditor that is a factory of the same order
        disputes.vote(1, 500_000, FACTORY_FAULT, {"from": people["factory2"]})
    with err("MissingRole"):
        disputes.vote(1, 500_000, FACTORY_FAULT, {"from": people["outsider"]})
    disputes.vote(1, 300_000, FACTORY_FAULT, {"from": first})
    with err("AlreadyVoted"):
        disputes.vote(1, 300_000, FACTORY_FAULT, {"from": first})
    held = settlement.totals(stack["token"])[3]
    tx = disputes.vote(1, 400_000, BUYER_FAULT, {"from": second})

    amount = PRICE * SHARES[0] // 10**6
    payout = amount * 350_000 // 10**6
    ruled = tx.events["DisputeRuled"]
    assert (ruled["payoutPpm"], ruled["payout"], ruled["refund"]) == (
        350_000,
        payout,
        amount - payout,
    )
    assert ruled["fault"] == NO_FAULT and ruled["votes"] == 2
    applied = tx.events["RulingApplied"]
    assert (applied["payout"], applied["refund"]) == (payout, amount - payout)
    assert tx.events["SplitRuled"]["splitId"] == 0
    deposited, released, refunded, now_held, _ = settlement.totals(stack["token"])
    assert deposited == released + refunded + now_held and held - now_held == amount
    assert settlement.balanceOf(stack["token"], factory) == payout
    assert disputes.dispute(1)[2] == RULED and not disputes.isFrozen(job, 0)
    with err("DisputeNotOpen"):
        disputes.vote(1, 0, BUYER_FAULT, {"from": people["auditors"][1]})


def test_deadlines_refuse_late_evidence_and_votes_then_the_dispute_lapses(stack, people, factory):
    board, disputes, job = stack["board"], stack["disputes"], stack["job"]
    buyer = people["buyer"]
    disputes.openDispute(job, 0, "late", EVIDENCE, {"from": buyer})
    with err("RulingPeriodNotOver"):
        disputes.lapse(1, {"from": people["outsider"]})
    chain.sleep(EVIDENCE_PERIOD + 60)
    chain.mine()
    with err("EvidencePeriodOver"):
        disputes.submitEvidence(1, ANSWER, "", {"from": factory})
    disputes.vote(1, 0, FACTORY_FAULT, {"from": people["auditors"][0]})  # voting is open now
    chain.sleep(RULING_PERIOD)
    chain.mine()
    with err("RulingPeriodOver"):
        disputes.vote(1, 0, FACTORY_FAULT, {"from": people["auditors"][1]})
    tx = disputes.lapse(1, {"from": people["outsider"]})
    assert tx.events["DisputeLapsed"]["jobId"] == job
    assert disputes.dispute(1)[2] == LAPSED and disputes.frozenSplits(job) == 0
    with err("AlreadyDisputed"):
        disputes.openDispute(job, 0, "late again", EVIDENCE, {"from": buyer})
    board.acceptDelivery(job, 0, {"from": buyer})  # unfrozen: paid in full
    assert stack["settlement"].balanceOf(stack["token"], factory) == PRICE * SHARES[0] // 10**6
