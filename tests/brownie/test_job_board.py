"""JobBoard escrow rules on anvil: a hand-over needs both factories' typed signatures and
stays within the giving split's quantity; a silent buyer's delivery is finalised after the
order's review period unless a dispute is open; a split delivered and then ruled on still
feeds its dependents; acceptance nonces are unordered and revocable.

Builds on the `consortium` fixture (conftest.py); the factories here are local keys, so
they sign EIP-712 digests. The order: machining (10 units) feeding coating A and coating B.
"""

import pytest
from brownie import chain
from eth_account import Account

from conftest import AUDITOR, BUYER, DAY, FACTORY, err

ROYALTY, FEE = 50_000, 20_000
PRICE = 10_000 * 10**6
SHARES = (400_000, 265_000, 265_000)
REVIEW = 3 * DAY
DESIGN = b"\xd6" * 32
LOT = b"LOT-1".ljust(32, b"\x00")
EVIDENCE = b"\xe1" * 32


def sign(account, digest):
    return Account.unsafe_sign_hash(bytes(digest), account.private_key).signature


def admit(consortium, council, account, roles):
    tx = consortium.proposeAdmit(account, roles, b"\x11" * 32, b"\x22" * 32, {"from": council[0]})
    consortium.approve(tx.events["ProposalCreated"]["id"], {"from": council[1]})


@pytest.fixture(scope="module")
def stack(
    accounts, consortium, council, designer, DesignRegistry, DemoStable, Settlement, JobBoard,
    Disputes,
):  # fmt: skip
    """The order contracts linked as cofab deploys them, and an order split three ways."""
    owner = {"from": council[0]}
    plants = [accounts.add() for _ in range(3)]
    buyer, auditors = accounts[5], (accounts[6], accounts[7])
    for plant in plants:
        accounts[0].transfer(plant, "10 ether")
        admit(consortium, council, plant, FACTORY)
    admit(consortium, council, buyer, BUYER)
    for auditor in auditors:
        admit(consortium, council, auditor, AUDITOR)
    registry = DesignRegistry.deploy(consortium, owner)
    token = DemoStable.deploy(owner)
    settlement = Settlement.deploy(token, council[0], FEE, owner)
    board = JobBoard.deploy(consortium, registry, settlement, owner)
    settlement.setJobBoard(board, owner)
    disputes = Disputes.deploy(consortium, board, settlement, 3 * DAY, 7 * DAY, 2, owner)
    settlement.setDisputes(disputes, owner)

    commitment = registry.commitmentOf(DESIGN, b"\x00" * 32, b"\x00" * 32, designer, DESIGN)
    registry.commit(commitment, {"from": designer})
    registry.reveal(DESIGN, b"\x00" * 32, b"\x00" * 32, designer, DESIGN, {"from": designer})
    registry.grantLicence(DESIGN, buyer, ROYALTY, {"from": designer})
    token.mint(buyer, PRICE, owner)
    token.approve(settlement, PRICE, {"from": buyer})
    deadline = chain.time() + 30 * DAY
    tx = board.createJob(DESIGN, token, 10, PRICE, deadline, b"\x00" * 32, REVIEW, {"from": buyer})
    job = tx.events["JobCreated"]["jobId"]
    assert tx.events["ReviewPeriodSet"]["reviewPeriod"] == REVIEW
    board.fund(job, {"from": buyer})
    specs = [
        (plants[0], b"machining".ljust(32, b"\x00"), 10, SHARES[0], 0),
        (plants[1], b"coating A".ljust(32, b"\x00"), 6, SHARES[1], 1),
        (plants[2], b"coating B".ljust(32, b"\x00"), 4, SHARES[2], 1),
    ]
    board.split(job, specs, {"from": buyer})
    return {
        "board": board,
        "settlement": settlement,
        "disputes": disputes,
        "token": token,
        "job": job,
        "plants": plants,
        "buyer": buyer,
        "auditors": auditors,
    }


def in_production(s):
    board, job = s["board"], s["job"]
    for i, plant in enumerate(s["plants"]):
        board.acceptSplit(job, i, {"from": plant})
    board.deliver(job, 0, b"\x00" * 32, {"from": s["plants"][0]})


def handover(s, to_split, quantity, sender, signers=None):
    board, plants = s["board"], s["plants"]
    h = (s["job"], 0, to_split, LOT, quantity, chain.time() + DAY)
    digest = board.hashHandover(h)
    giver, taker = signers or (plants[0], plants[to_split])
    sigs = [sign(giver, digest) if giver else b"", sign(taker, digest) if taker else b""]
    return board.handover(h, sigs[0], sigs[1], {"from": sender})


def test_a_handover_needs_both_signatures_and_stays_within_the_quantity(stack, outsider):
    board, job, plants = stack["board"], stack["job"], stack["plants"]
    in_production(stack)
    before = [board.splitOf(job, i) for i in range(3)]
    with err("HandoverExceedsQuantity"):
        handover(stack, 1, 999_999, outsider)
    # the giving factory sends it itself, its own signature empty: no consent
    with err("HandoverNotSigned"):
        handover(stack, 1, 6, plants[0], (None, plants[1]))
    with err("HandoverNotSigned"):
        handover(stack, 1, 6, plants[1], (plants[0], None))
    assert [board.splitOf(job, i) for i in range(3)] == before

    tx = handover(stack, 1, 6, outsider)
    event = tx.events["CustodyHandedOver"]
    assert (event["fromSigner"], event["toSigner"]) == (plants[0], plants[1])
    with err("HandoverExceedsQuantity"):
        handover(stack, 2, 5, outsider)
    handover(stack, 2, 4, outsider)
    split = board.splitOf(job, 0)
    assert split["handedQuantity"] == 10 and split["handedTo"] == 0b110


def test_a_silent_buyer_is_finalised_after_the_review_period(stack, outsider):
    board, settlement, job = stack["board"], stack["settlement"], stack["job"]
    token, machinist = stack["token"], stack["plants"][0]
    in_production(stack)
    ends = board.reviewEnds(job, 0)
    assert ends == board.splitOf(job, 0)["deliveredAt"] + REVIEW
    with err("ReviewPeriodNotOver"):
        board.finalizeDelivery(job, 0, {"from": outsider})
    chain.sleep(REVIEW + 1)
    tx = board.finalizeDelivery(job, 0, {"from": outsider})
    assert tx.events["DeliveryFinalized"]["caller"] == outsider
    assert settlement.balanceOf(token, machinist) == PRICE * SHARES[0] // 10**6
    with err("SplitNotInStatus"):
        board.finalizeDelivery(job, 0, {"from": outsider})


def test_an_open_dispute_holds_finalisation(stack, outsider):
    board, disputes, job = stack["board"], stack["disputes"], stack["job"]
    in_production(stack)
    disputes.openDispute(job, 0, "burrs", EVIDENCE, {"from": stack["buyer"]})
    chain.sleep(REVIEW + 1)
    with err("SplitFrozen"):
        board.finalizeDelivery(job, 0, {"from": outsider})
    chain.sleep(10 * DAY)
    disputes.lapse(1, {"from": outsider})
    board.finalizeDelivery(job, 0, {"from": outsider})


def test_a_split_delivered_then_ruled_on_still_feeds_its_dependents(stack, outsider):
    board, disputes, job, plants = stack["board"], stack["disputes"], stack["job"], stack["plants"]
    in_production(stack)
    disputes.openDispute(job, 0, "late", EVIDENCE, {"from": stack["buyer"]})
    disputes.submitEvidence(1, EVIDENCE, "", {"from": plants[0]})
    for auditor in stack["auditors"]:
        disputes.vote(1, 1_000_000, 0, {"from": auditor})
    assert board.splitOf(job, 0)["status"] == 5  # Ruled
    handover(stack, 1, 6, outsider)
    board.deliver(job, 1, b"\x00" * 32, {"from": plants[1]})
    assert board.splitOf(job, 1)["status"] == 3  # Delivered


def test_acceptance_nonces_are_unordered_and_revocable(stack, outsider):
    board, job, plants = stack["board"], stack["job"], stack["plants"]
    deadline = chain.time() + DAY

    def signed(split, nonce):
        digest = board.hashAcceptance(job, split, plants[split], SHARES[split], nonce, deadline)
        return (job, split, nonce, deadline, sign(plants[split], digest))

    later, earlier = signed(1, 7), signed(2, 3)
    board.acceptSplitWithSig(*later, {"from": outsider})
    board.acceptSplitWithSig(*earlier, {"from": outsider})  # a lower nonce after a higher one
    assert board.isNonceUsed(plants[1], 7) and not board.isNonceUsed(plants[1], 3)
    revoked = signed(0, 300)
    board.invalidateNonces(1, 1 << 44, {"from": plants[0]})
    assert board.isNonceUsed(plants[0], 300)
    with err("NonceAlreadyUsed"):
        board.acceptSplitWithSig(*revoked, {"from": outsider})
    assert board.splitOf(job, 0)["status"] == 1  # still Assigned
    board.acceptSplitWithSig(*signed(0, 301), {"from": outsider})
    assert board.job(job)["status"] == 4  # InProduction
