"""EIP-712 records of orders on real contracts: a factory's signed acceptance relayed by
anyone (and every way to replay it refused), and custody hand-overs that need both
factories' signatures (or a device key's)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import NamedTuple

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from kit import (
    Parties,
    chain_now,
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
from ledger.eth import eip712
from ledger.eth.tx import Sender
from ledger.node import Node
from ledger.orders import signing as job_signing
from ledger.orders.jobs import JobStatus, SplitStatus
from ledger.orders.signing import Acceptance, Handover

LOT = b"SSCC-0001".ljust(32, b"\x00")


def stranger(node: Node):  # type: ignore[no-untyped-def]
    """An account that is not a member: it only pays the gas of a relay."""
    return node.add_signer(new_account())


def test_typed_data_hashes_like_the_contract(node: Node) -> None:
    p = parties(node)
    job_id = split_order(node, p)
    acceptance = node.jobs.acceptance(job_id, 2, deadline=1_900_000_000)
    assert acceptance.factory == p.factories[0].address and acceptance.share_ppm == 200_000
    typed = node.jobs.typed_data(acceptance)
    fns = node.jobs.contract.functions
    assert acceptance.nonce == job_id * 256 + 2  # the split's own unordered nonce
    on_chain = fns.hashAcceptance(
        job_id, 2, acceptance.factory, 200_000, acceptance.nonce, 1_900_000_000
    ).call()
    assert eip712.digest(typed) == bytes(on_chain)
    handover = Handover(job_id, 0, 3, LOT, 40, 1_900_000_000)
    on_chain = fns.hashHandover(handover.as_tuple()).call()
    assert eip712.digest(node.jobs.typed_data(handover)) == bytes(on_chain)
    assert bytes(fns.ACCEPT_SPLIT_TYPEHASH().call()) == keccak(
        text=job_signing.ACCEPT_SPLIT_TYPE_STRING
    )
    assert bytes(fns.HANDOVER_TYPEHASH().call()) == keccak(text=job_signing.HANDOVER_TYPE_STRING)
    domain = fns.eip712Domain().call()
    assert tuple(domain[1:5]) == ("cofab", "1", node.chain.chain_id, node.jobs.address)


def test_a_signed_acceptance_is_relayed_by_anyone_once(node: Node) -> None:
    p = parties(node)
    job_id = split_order(node, p)
    factory = p.factories[2]
    acceptance = node.jobs.acceptance(job_id, 3)
    signature = node.jobs.sign(factory.account, acceptance)
    relayer = stranger(node)
    node.jobs.accept_with_signature(relayer, acceptance, signature)
    view = node.jobs.view(job_id)
    assert view.splits[3].status is SplitStatus.ACCEPTED
    assert node.jobs.nonce_used(factory.address, acceptance.nonce)
    event = node.jobs.contract.events.SplitAccepted().get_logs(from_block=0)[-1]["args"]
    assert (event["factory"], event["relayer"]) == (factory.address, relayer.address)

    # the same signature again: its nonce is used
    before = state(node, job_id)
    refused("NonceAlreadyUsed", node.jobs.accept_with_signature, relayer, acceptance, signature)
    assert state(node, job_id) == before


def test_replays_and_forgeries_of_an_acceptance_are_refused(node: Node) -> None:
    p = parties(node)
    job_id = split_order(node, p)
    factory = p.factories[1]
    good = node.jobs.acceptance(job_id, 1)
    relayer = stranger(node)
    before = state(node, job_id)

    def relay(record: Acceptance, signature: bytes) -> None:
        node.jobs.accept_with_signature(relayer, record, signature)

    # signed by someone else (the buyer, another factory)
    for signer in (p.buyer, p.factories[0]):
        refused("InvalidAcceptanceSignature", relay, good, node.jobs.sign(signer.account, good))
    # for another chain, or another contract: the domain differs, the signer recovers wrong
    other_chain = eip712.sign(factory.account, good.typed_data(1, node.jobs.address))
    refused("InvalidAcceptanceSignature", relay, good, other_chain)
    elsewhere = good.typed_data(node.chain.chain_id, node.settlement.address)
    other_board = eip712.sign(factory.account, elsewhere)
    refused("InvalidAcceptanceSignature", relay, good, other_board)
    # a different share than the split's (the factory agreed to other terms)
    cheaper = replace(good, share_ppm=1)
    refused("InvalidAcceptanceSignature", relay, good, node.jobs.sign(factory.account, cheaper))
    # a nonce the factory revoked: its signature is void
    revoked = replace(good, nonce=7)
    revoked_sig = node.jobs.sign(factory.account, revoked)
    node.jobs.revoke_nonce(factory, 7)
    refused("NonceAlreadyUsed", relay, revoked, revoked_sig)
    # past its deadline
    stale = replace(good, deadline=chain_now(node) - 10)
    refused("SignatureExpired", relay, stale, node.jobs.sign(factory.account, stale))
    # malformed
    with pytest.raises(InvalidInput):
        relay(good, b"\x01" * 64)
    assert state(node, job_id) == before

    relay(good, node.jobs.sign(factory.account, good))
    assert node.jobs.view(job_id).splits[1].status is SplitStatus.ACCEPTED


def test_a_signed_acceptance_is_refused_after_the_order_deadline(node: Node) -> None:
    p = parties(node)
    job_id = split_order(node, p)
    acceptance = node.jobs.acceptance(job_id, 0, deadline=int(time.time()) + 60 * 86_400)
    signature = node.jobs.sign(p.factories[0].account, acceptance)
    time_travel(node, 31 * 86_400)
    relay = node.jobs.accept_with_signature
    refused("JobDeadlinePassed", relay, stranger(node), acceptance, signature)


def test_handover_needs_the_signatures_of_both_factories(node: Node) -> None:
    p = parties(node)
    sender, receiver = p.factories[0], p.factories[2]
    job_id = in_production(node, p)
    node.jobs.deliver(sender, job_id, 0)
    record = Handover(job_id, 0, 3, LOT, 100, int(time.time()) + 3600)
    sender_sig = node.jobs.sign(sender.account, record)
    receiver_sig = node.jobs.sign(receiver.account, record)
    before = state(node, job_id)

    # the sender alone, without the receiver's signature
    err = refused("HandoverNotSigned", node.jobs.handover, sender, record)
    assert "split 3" in err.message
    # the receiver alone, without the sender's
    refused("HandoverNotSigned", node.jobs.handover, receiver, record, b"", b"")
    # a third party relaying only one signature
    relayer = stranger(node)
    refused("HandoverNotSigned", node.jobs.handover, relayer, record, sender_sig, b"")
    # signatures swapped, or by the buyer: not the factories'
    handover = node.jobs.handover
    refused("InvalidHandoverSignature", handover, relayer, record, receiver_sig, sender_sig)
    buyer_sig = node.jobs.sign(p.buyer.account, record)
    refused("InvalidHandoverSignature", node.jobs.handover, relayer, record, sender_sig, buyer_sig)
    # signed for other units than submitted
    fewer = replace(record, quantity=99)
    refused("InvalidHandoverSignature", handover, relayer, fewer, sender_sig, receiver_sig)
    stale = replace(record, deadline=chain_now(node) - 1)
    refused("SignatureExpired", node.jobs.handover, relayer, stale, sender_sig, receiver_sig)
    assert state(node, job_id) == before

    # anyone relays both signatures
    node.jobs.handover(relayer, record, sender_sig, receiver_sig)
    view = node.jobs.view(job_id)
    assert view.splits[3].received_from == [0] and view.splits[0].custody == [receiver.address]
    event = node.jobs.contract.events.CustodyHandedOver().get_logs(from_block=0)[-1]["args"]
    assert (event["fromSigner"], event["toSigner"]) == (sender.address, receiver.address)
    assert event["lot"] == LOT and event["quantity"] == 100
    refused("AlreadyHandedOver", node.jobs.handover, relayer, record, sender_sig, receiver_sig)


def test_handover_follows_the_dag_and_delivery(node: Node) -> None:
    p = parties(node)
    f = p.factories
    job_id = in_production(node, p)
    deadline = int(time.time()) + 3600
    early = Handover(job_id, 0, 3, LOT, 100, deadline)
    early_sig = node.jobs.sign(f[0].account, early)
    refused("SplitNotInStatus", node.jobs.handover, f[2], early, early_sig)
    node.jobs.deliver(f[1], job_id, 1)
    sideways = Handover(job_id, 1, 3, LOT, 100, deadline)  # assembly does not need painting
    sideways_sig = node.jobs.sign(f[1].account, sideways)
    refused("NotADependency", node.jobs.handover, f[2], sideways, sideways_sig)


class DeliveredSplit(NamedTuple):
    p: Parties
    sender: Sender
    receiver: Sender
    job_id: int
    device: LocalAccount  # a device key of the sender's factory
    record: Handover  # split 0's lot passing to split 3


def delivered_split(node: Node) -> DeliveredSplit:
    """An order in production whose split 0 is delivered, its factory with a device key,
    and the hand-over of its lot to split 3."""
    p = parties(node)
    sender, receiver = p.factories[0], p.factories[2]
    job_id = in_production(node, p)
    node.jobs.deliver(sender, job_id, 0)
    device = new_account()
    node.consortium.authorize_device(sender, device)
    record = Handover(job_id, 0, 3, LOT, 100, int(time.time()) + 3600)
    return DeliveredSplit(p, sender, receiver, job_id, device, record)


def test_a_device_key_signs_a_handover_for_its_factory(node: Node) -> None:
    p, _, receiver, _, device, record = delivered_split(node)
    # a device of another factory may not sign for this one
    rogue = new_account()
    node.consortium.authorize_device(p.factories[1], rogue)
    rogue_sig = node.jobs.sign(rogue, record)
    refused("InvalidHandoverSignature", node.jobs.handover, receiver, record, rogue_sig)
    node.jobs.handover(receiver, record, node.jobs.sign(device, record))
    event = node.jobs.contract.events.CustodyHandedOver().get_logs(from_block=0)[-1]["args"]
    assert event["fromSigner"] == device.address and event["toSigner"] == receiver.address


def test_the_whole_order_can_run_on_relayed_signatures(node: Node) -> None:
    """Factories that never send a transaction: acceptances and hand-over relayed."""
    p = parties(node)
    specs = four_splits(p)
    job_id = split_order(node, p, specs)
    relayer = stranger(node)
    for i, spec in enumerate(specs):
        record = node.jobs.acceptance(job_id, i)
        node.jobs.accept_with_signature(
            relayer, record, node.jobs.sign(node.sender(spec.factory).account, record)
        )
    assert node.jobs.status(job_id) is JobStatus.IN_PRODUCTION
    # factory 0 accepted two splits: one nonce of its own each
    used = [node.jobs.nonce_used(p.factories[0].address, job_id * 256 + i) for i in range(4)]
    assert used == [True, False, True, False]


def test_handover_signatures_are_put_on_their_sides_whatever_their_order(node: Node) -> None:
    _, sender, receiver, job_id, device, record = delivered_split(node)
    jobs = node.jobs
    sender_sig = jobs.sign(sender.account, record)
    receiver_sig = jobs.sign(receiver.account, record)
    device_sig = jobs.sign(device, record)

    # a factory's signature goes to its own side, whatever its record claims
    signed = [(receiver_sig, None), (sender_sig, "to")]
    assert jobs.sort_handover_signatures(record, signed) == (sender_sig, receiver_sig)
    # a device key's goes to the side it says it signs for; a missing side stays empty
    assert jobs.sort_handover_signatures(record, [(device_sig, "from")]) == (device_sig, b"")
    assert jobs.handover_side(record, sender.address) == "from"
    assert jobs.handover_side(record, receiver.address, "from") == "to"
    assert jobs.handover_side(record, device.address, "from") == "from"
    with pytest.raises(InvalidInput, match="neither factory"):
        jobs.handover_side(record, device.address)

    before = state(node, job_id)
    refused("HandoverNotSigned", jobs.handover, stranger(node), record, device_sig, b"")
    assert state(node, job_id) == before
    jobs.handover(stranger(node), record, *jobs.sort_handover_signatures(record, signed))
    assert node.jobs.view(job_id).splits[3].received_from == [0]
