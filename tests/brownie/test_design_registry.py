"""DesignRegistry: priority, versions, batches and claims, licences with history, shares.

Uses the `consortium` fixture (conftest.py): an active designer (accounts[4]) and an active
factory (accounts[3]); every test starts from that state.
"""

import hashlib

import brownie
import pytest
from brownie import chain, web3
from eth_abi import encode

ZERO32 = b"\x00" * 32
META = hashlib.sha256(b"metadata").digest()


def did(label):
    return hashlib.sha256(label.encode()).digest()


def err(name):
    """Expect a revert with custom error `name` (whatever its arguments)."""
    return brownie.reverts(revert_pattern=f"{name}(: .*)?")


def leaf(design_id, metadata, parent):
    inner = web3.keccak(encode(["bytes32", "bytes32", "bytes32"], [design_id, metadata, parent]))
    return web3.keccak(inner)


def licence(value):
    active, designer, royalty = value
    return bool(active), str(designer), int(royalty)


def pair(a, b):
    return web3.keccak(a + b) if a < b else web3.keccak(b + a)


@pytest.fixture(scope="module")
def registry(DesignRegistry, consortium, council):
    return DesignRegistry.deploy(consortium, {"from": council[0]})


def test_register_records_one_slot_and_refuses_duplicates(registry, designer, council, consortium):
    tx = registry.register(did("a"), ZERO32, META, {"from": designer})
    assert tx.gas_used <= 55_000
    record = registry.design(did("a"))
    assert record[0] == designer and record[2] == tx.block_number and record[3] == 0
    event = tx.events["DesignRegistered"]
    assert event["designer"] == designer and event["metadataHash"] == "0x" + META.hex()
    with err("DesignExists"):
        registry.register(did("a"), ZERO32, META, {"from": designer})
    with err("NotDesigner"):
        registry.register(did("b"), ZERO32, META, {"from": council[0]})
    with err("ZeroHash"):
        registry.register(ZERO32, ZERO32, META, {"from": designer})


def test_parents_must_exist_and_be_unrevoked(registry, designer):
    with err("UnknownParent"):
        registry.register(did("v2"), did("v1"), META, {"from": designer})
    registry.register(did("v1"), ZERO32, META, {"from": designer})
    registry.register(did("v2"), did("v1"), META, {"from": designer})
    registry.revoke(did("v1"), {"from": designer})
    with err("ParentRevoked"):
        registry.register(did("v3"), did("v1"), META, {"from": designer})


def test_batch_claim_and_preemption(registry, designer, consortium, council, factory):
    a, b = leaf(did("x"), META, ZERO32), leaf(did("y"), META, ZERO32)
    root = pair(a, b)
    tx = registry.registerBatch(root, 2, ZERO32, {"from": designer})
    batch_block = tx.block_number
    assert registry.verifyMember(root, did("x"), META, ZERO32, [b])
    assert not registry.verifyMember(root, did("x"), META, ZERO32, [a])
    with err("InvalidProof"):
        registry.claim(root, did("x"), META, ZERO32, [a], {"from": factory})
    registry.claim(root, did("x"), META, ZERO32, [b], {"from": factory})  # anyone claims
    assert registry.design(did("x"))[0] == designer
    assert registry.design(did("x"))[2] == batch_block
    with err("DesignExists"):
        registry.register(did("x"), ZERO32, META, {"from": designer})

    # a later single registration of an unclaimed member is displaced by the claim
    rival = brownie.accounts[7]
    tx = consortium.proposeAdmit(rival, 4, ZERO32, ZERO32, {"from": council[0]})
    consortium.approve(tx.events["ProposalCreated"]["id"], {"from": council[1]})
    registry.register(did("y"), ZERO32, META, {"from": rival})
    registry.grantLicence(did("y"), factory, 1000, {"from": rival})
    tx = registry.claim(root, did("y"), META, ZERO32, [a], {"from": designer})
    assert tx.events["DesignPreempted"]["displacedDesigner"] == rival
    assert registry.design(did("y"))[0] == designer
    assert registry.licenceOf(did("y"), factory)[0] is False


def test_licence_history_and_revocation(registry, designer, factory, outsider):
    registry.register(did("p"), ZERO32, META, {"from": designer})
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
