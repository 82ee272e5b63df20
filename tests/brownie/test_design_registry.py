"""DesignRegistry: commit-reveal priority and the front-running it defeats (copies of
pending transactions ordered ahead by a higher gas price), versions, batches and claims,
licences with history, shares.

Uses the `consortium` fixture (conftest.py): an active designer (accounts[4]) and an active
factory (accounts[3]); here also a rival designer (accounts[7]). Every test starts from
that state.
"""

import hashlib
import os
from contextlib import contextmanager

import pytest
from brownie import chain, web3
from eth_abi import encode

from conftest import err

ZERO32 = b"\x00" * 32
META = hashlib.sha256(b"metadata").digest()
GWEI = 10**9


def did(label):
    return hashlib.sha256(label.encode()).digest()


def commitment(design_id, designer, salt, metadata=META, parent=ZERO32):
    fields = ["bytes32", "bytes32", "bytes32", "address", "bytes32"]
    return web3.keccak(encode(fields, [design_id, metadata, parent, str(designer), salt]))


def leaf(design_id, metadata, parent, designer):
    fields = ["bytes32", "bytes32", "bytes32", "address"]
    inner = web3.keccak(encode(fields, [design_id, metadata, parent, str(designer)]))
    return web3.keccak(inner)


def licence(value):
    active, designer, royalty = value
    return bool(active), str(designer), int(royalty)


def pair(a, b):
    return web3.keccak(a + b) if a < b else web3.keccak(b + a)


@contextmanager
def one_block():
    """Transactions sent inside stay in the pool and are mined together, ordered by gas
    price, as a block producer orders them; their receipts are final on leaving."""
    sent = []
    web3.provider.make_request("evm_setAutomine", [False])
    try:
        yield sent
        web3.provider.make_request("evm_mine", [])
    finally:
        web3.provider.make_request("evm_setAutomine", [True])
    for tx in sent:
        tx.wait(1)


def pending(account, price):
    return {"from": account, "required_confs": 0, "gas_limit": 300_000, "gas_price": price}


# a copy of a pending transaction, paying twice its gas price to be mined first
COPY = {"gas_limit": 300_000, "gas_price": 2 * GWEI, "required_confs": 0}


@pytest.fixture(scope="module")
def registry(DesignRegistry, consortium, council):
    return DesignRegistry.deploy(consortium, {"from": council[0]})


@pytest.fixture(scope="module")
def rival(consortium, council, accounts):
    tx = consortium.proposeAdmit(accounts[7], 4, ZERO32, ZERO32, {"from": council[0]})
    consortium.approve(tx.events["ProposalCreated"]["id"], {"from": council[1]})
    return accounts[7]


def register(registry, design_id, designer, parent=ZERO32, metadata=META):
    """Commit, then reveal in a later block; returns the commit's block."""
    salt = os.urandom(32)
    c = commitment(design_id, designer, salt, metadata, parent)
    block = registry.commit(c, {"from": designer}).block_number
    registry.reveal(design_id, metadata, parent, designer, salt, {"from": designer})
    return block


def test_commit_is_one_slot_and_the_reveal_dates_the_design_at_it(
    registry, designer, council, factory
):
    salt = os.urandom(32)
    c = commitment(did("a"), designer, salt)
    assert registry.commitmentOf(did("a"), META, ZERO32, designer, salt) == "0x" + bytes(c).hex()
    tx = registry.commit(c, {"from": designer})
    assert tx.gas_used <= 55_000
    assert tx.events["DesignCommitted"]["designer"] == designer
    assert did("a").hex() not in tx.input  # the content hash is not sent
    assert registry.commitmentStamp(c, designer)[1] == tx.block_number
    assert registry.design(did("a"))[0] == "0x" + "00" * 20
    with err("CommitmentExists"):
        registry.commit(c, {"from": designer})
    with err("MissingRole"):
        registry.commit(c, {"from": council[0]})
    with err("ZeroHash"):
        registry.commit(ZERO32, {"from": designer})
    with err("UnknownCommitment"):
        registry.reveal(did("a"), META, ZERO32, designer, os.urandom(32), {"from": designer})

    chain.mine(3)
    revealed = registry.reveal(did("a"), META, ZERO32, designer, salt, {"from": factory})
    record = registry.design(did("a"))
    assert record[0] == designer and record[2] == tx.block_number and record[3] == 0
    event = revealed.events["DesignRegistered"]
    assert event["designer"] == designer and event["commitBlock"] == tx.block_number
    with err("DesignExists"):
        registry.reveal(did("a"), META, ZERO32, designer, salt, {"from": designer})


def test_a_copied_commit_ordered_first_is_worthless(registry, designer, rival):
    salt = os.urandom(32)
    c = commitment(did("c"), designer, salt)
    with one_block() as sent:
        own = registry.commit(c, pending(designer, GWEI))
        copy = rival.transfer(registry, 0, data=own.input, **COPY)
        sent += [own, copy]
    assert copy.status == own.status == 1
    assert copy.block_number == own.block_number and copy.txindex < own.txindex
    assert registry.commitmentStamp(c, rival)[1] == own.block_number  # its own, useless
    with err("UnknownCommitment"):
        registry.reveal(did("c"), META, ZERO32, rival, salt, {"from": rival})
    registry.reveal(did("c"), META, ZERO32, designer, salt, {"from": rival})  # for the author
    assert registry.design(did("c"))[0] == designer


def test_a_copied_batch_root_and_rebuilt_claims_are_worthless(registry, designer, rival):
    a, b = leaf(did("x"), META, ZERO32, designer), leaf(did("y"), META, ZERO32, designer)
    root = pair(a, b)
    with one_block() as sent:
        own = registry.registerBatch(root, 2, ZERO32, pending(designer, GWEI))
        copy = rival.transfer(registry, 0, data=own.input, **COPY)
        sent += [own, copy]
    assert copy.status == own.status == 1 and copy.txindex < own.txindex
    chain.mine()
    # the author's claim of x shows its proof; the copier replays it under its own record
    registry.claim(root, designer, did("x"), META, ZERO32, [b], {"from": designer})
    for member, proof in ((did("x"), [b]), (did("y"), [a])):
        assert not registry.verifyMember(root, rival, member, META, ZERO32, proof)
        with err("InvalidProof"):
            registry.claim(root, rival, member, META, ZERO32, proof, {"from": rival})
    assert registry.design(did("y"))[0] == "0x" + "00" * 20
    registry.claim(root, designer, did("y"), META, ZERO32, [a], {"from": rival})
    assert registry.design(did("y"))[0] == designer
    assert registry.design(did("y"))[2] == own.block_number
    with err("BatchExists"):
        registry.registerBatch(root, 2, ZERO32, {"from": designer})
    with err("UnknownBatch"):
        registry.claim(root, registry, did("y"), META, ZERO32, [a], {"from": rival})


def test_front_running_a_reveal_gains_nothing(registry, designer, rival, factory):
    salt = os.urandom(32)
    committed = registry.commit(commitment(did("r"), designer, salt), {"from": designer})
    theirs = os.urandom(32)
    with one_block() as sent:
        own = registry.reveal(did("r"), META, ZERO32, designer, salt, pending(designer, GWEI))
        # having read the hash from the pending reveal, the rival commits and reveals it
        rival_commit = registry.commit(
            commitment(did("r"), rival, theirs), pending(rival, 3 * GWEI)
        )
        early = registry.reveal(did("r"), META, ZERO32, rival, theirs, pending(rival, 3 * GWEI))
        sent += [own, rival_commit, early]
    assert own.status == rival_commit.status == early.status == 1
    assert rival_commit.txindex < early.txindex < own.txindex
    assert early.events["DesignRegistered"]["designer"] == rival  # for a moment
    assert own.events["DesignPreempted"]["displacedDesigner"] == rival
    record = registry.design(did("r"))
    assert record[0] == designer and record[2] == committed.block_number
    with err("DesignExists"):
        registry.reveal(did("r"), META, ZERO32, rival, theirs, {"from": rival})

    # a later commitment revealed (and licensed) before the author's is displaced by it
    salt = os.urandom(32)
    early_block = registry.commit(commitment(did("s"), designer, salt), {"from": designer})
    register(registry, did("s"), rival)
    registry.grantLicence(did("s"), factory, 1000, {"from": rival})
    tx = registry.reveal(did("s"), META, ZERO32, designer, salt, {"from": designer})
    assert tx.events["DesignPreempted"]["displacedDesigner"] == rival
    assert registry.design(did("s"))[2] == early_block.block_number
    assert registry.licenceOf(did("s"), factory)[0] is False


def test_parents_must_exist_and_be_unrevoked(registry, designer):
    salt = os.urandom(32)
    registry.commit(commitment(did("v2"), designer, salt, META, did("v1")), {"from": designer})
    with err("UnknownParent"):
        registry.reveal(did("v2"), META, did("v1"), designer, salt, {"from": designer})
    register(registry, did("v1"), designer)
    with err("UnknownParent"):  # the parent was not recorded at the version's commitment
        registry.reveal(did("v2"), META, did("v1"), designer, salt, {"from": designer})
    register(registry, did("v3"), designer, did("v1"))
    registry.revoke(did("v1"), {"from": designer})
    with err("ParentRevoked"):
        register(registry, did("v4"), designer, did("v1"))


def test_batch_claim_and_preemption(registry, designer, rival, factory):
    a, b = leaf(did("x"), META, ZERO32, designer), leaf(did("y"), META, ZERO32, designer)
    root = pair(a, b)
    tx = registry.registerBatch(root, 2, ZERO32, {"from": designer})
    batch_block = tx.block_number
    assert registry.verifyMember(root, designer, did("x"), META, ZERO32, [b])
    assert not registry.verifyMember(root, designer, did("x"), META, ZERO32, [a])
    with err("InvalidProof"):
        registry.claim(root, designer, did("x"), META, ZERO32, [a], {"from": factory})
    registry.claim(root, designer, did("x"), META, ZERO32, [b], {"from": factory})  # anyone
    assert registry.design(did("x"))[0] == designer
    assert registry.design(did("x"))[2] == batch_block
    with err("DesignExists"):
        register(registry, did("x"), designer)

    # a later registration of an unclaimed member is displaced by the claim
    register(registry, did("y"), rival)
    registry.grantLicence(did("y"), factory, 1000, {"from": rival})
    tx = registry.claim(root, designer, did("y"), META, ZERO32, [a], {"from": designer})
    assert tx.events["DesignPreempted"]["displacedDesigner"] == rival
    assert registry.design(did("y"))[0] == designer
    assert registry.licenceOf(did("y"), factory)[0] is False


def test_licence_history_and_revocation(registry, designer, factory, outsider):
    with err("UnknownDesign"):  # an unrevealed design is licensed only once revealed
        registry.grantLicence(did("p"), factory, 1, {"from": designer})
    register(registry, did("p"), designer)
    with err("LicenseeNotMember"):
        registry.grantLicence(did("p"), outsider, 1, {"from": designer})
    with err("InvalidRoyalty"):
        registry.grantLicence(did("p"), factory, 1_000_001, {"from": designer})
    granted = registry.grantLicence(did("p"), factory, 25_000, {"from": designer}).block_number
    assert licence(registry.licenceOf(did("p"), factory)) == (True, designer, 25_000)
    chain.mine()
    registry.revokeLicence(did("p"), factory, {"from": designer})
    assert registry.licenceOf(did("p"), factory)[0] is False
    assert licence(registry.licenceAt(did("p"), factory, granted)) == (True, designer, 25_000)
    with err("NoLicence"):
        registry.recordShare(did("p"), factory, META, META, {"from": designer})
    registry.grantLicence(did("p"), factory, 10_000, {"from": designer})
    tx = registry.recordShare(did("p"), factory, META, META, {"from": designer})
    assert tx.events["DesignShared"]["recipient"] == factory
    registry.revoke(did("p"), {"from": designer})
    assert registry.licenceOf(did("p"), factory)[0] is False
    with err("DesignIsRevoked"):
        registry.grantLicence(did("p"), factory, 1, {"from": designer})
