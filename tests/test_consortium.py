"""Membership through the Python client on a real EVM: quorum, history, devices, refusals."""

from __future__ import annotations

import pytest
from web3.logs import DISCARD

from kit import admit, new_account
from ledger.core.errors import ContractRevert, InvalidInput, NotFound
from ledger.eth.tx import Sender
from ledger.membership.consortium import MemberStatus, ProposalKind
from ledger.membership.roles import Role, parse_roles, role_names
from ledger.node import Node

ZERO_ADDRESS = "0x" + "00" * 20


def snapshot(node: Node) -> tuple[object, ...]:
    c = node.consortium
    return (c.members(), c.proposals(), c.governance())


def test_operator_is_the_founding_council(node: Node, operator: Sender) -> None:
    member = node.consortium.member(operator.address)
    assert member.roles == Role.COUNCIL and member.status is MemberStatus.ACTIVE
    assert node.consortium.governance()["effective_quorum"] == 1


def test_admit_with_quorum_one_executes_at_once(node: Node, operator: Sender) -> None:
    acct = new_account()
    pid, _ = node.consortium.propose_admit(operator, acct.address, parse_roles("factory,buyer"))
    assert node.consortium.proposal(pid).state == "executed"
    member = node.consortium.member(acct.address)
    assert role_names(member.roles) == ["factory", "buyer"]


def test_two_of_three_quorum(node: Node, operator: Sender) -> None:
    c = node.consortium
    second, third = admit(node, Role.COUNCIL), admit(node, Role.COUNCIL)
    c.propose_quorum(operator, 2)
    assert c.governance()["quorum"] == 2
    target = new_account()
    pid, _ = c.propose_admit(second, target.address, int(Role.FACTORY))
    assert c.proposal(pid).state == "open"
    with pytest.raises(NotFound):
        c.member(target.address)
    with pytest.raises(ContractRevert) as refused:
        c.approve(second, pid)
    assert refused.value.error == "AlreadyApproved"
    c.approve(third, pid)
    assert c.proposal(pid).state == "executed"
    assert c.member(target.address).status is MemberStatus.ACTIVE


def test_roles_at_a_past_block(node: Node, operator: Sender) -> None:
    c = node.consortium
    acct = new_account()
    before = node.chain.block_number()
    c.propose_admit(operator, acct.address, int(Role.FACTORY))
    admitted = node.chain.block_number()
    c.propose_suspend(operator, acct.address)
    suspended = node.chain.block_number()
    assert c.roles_at(acct.address, before) == (0, MemberStatus.NONE)
    assert c.roles_at(acct.address, admitted) == (int(Role.FACTORY), MemberStatus.ACTIVE)
    assert c.roles_at(acct.address, suspended)[1] is MemberStatus.SUSPENDED
    with pytest.raises(ContractRevert) as future:
        c.roles_at(acct.address, suspended + 100)
    assert future.value.error == "FutureBlock"


def test_device_key_history(node: Node, factory: Sender) -> None:
    c = node.consortium
    device = new_account()
    c.authorize_device(factory, device, 0)
    authorized = node.chain.block_number()
    c.revoke_device(factory, device.address)
    revoked = node.chain.block_number()
    role = int(Role.FACTORY)
    assert c.is_authorized_signer(factory.address, device.address, role, authorized, 0)
    assert not c.is_authorized_signer(factory.address, device.address, role, revoked, 0)
    assert not c.is_authorized_signer(
        factory.address, device.address, int(Role.DESIGNER), authorized, 0
    )
    assert not c.device(device.address).active


def test_device_expiry(node: Node, factory: Sender) -> None:
    c = node.consortium
    device = new_account()
    now = node.chain.w3.eth.get_block("latest")["timestamp"]
    c.authorize_device(factory, device, now + 3600)
    block = node.chain.block_number()
    role = int(Role.FACTORY)
    assert c.is_authorized_signer(factory.address, device.address, role, block, now + 10)
    assert not c.is_authorized_signer(factory.address, device.address, role, block, now + 3600)


def test_suspended_factory_devices_stop_signing(
    node: Node, operator: Sender, factory: Sender
) -> None:
    c = node.consortium
    device = new_account()
    c.authorize_device(factory, device, 0)
    c.propose_suspend(operator, factory.address)
    block = node.chain.block_number()
    assert not c.is_authorized_signer(factory.address, device.address, int(Role.FACTORY), block, 0)


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (lambda c, s, t: c.propose_admit(s, t, int(Role.FACTORY)), "MissingRole"),
        (lambda c, s, t: c.propose_set_roles(s, t, int(Role.BUYER)), "MissingRole"),
        (lambda c, s, t: c.propose_suspend(s, t), "MissingRole"),
        (lambda c, s, t: c.propose_readmit(s, t), "MissingRole"),
        (lambda c, s, t: c.propose_quorum(s, 1), "MissingRole"),
        (lambda c, s, t: c.approve(s, 1), "MissingRole"),
        (lambda c, s, t: c.cancel(s, 1), "NotProposer"),
        (lambda c, s, t: c.update_profile(s, "11" * 32, None), "NotMember"),
        (lambda c, s, t: c.authorize_device(s, t, 0, "0x" + "00" * 65), "NotMember"),
        (lambda c, s, t: c.revoke_device(s, t), "NotDeviceOwner"),
        (lambda c, s, t: c.propose_unbind_device(s, t), "MissingRole"),
    ],
)
def test_outsider_is_refused_and_nothing_changes(
    node: Node, operator: Sender, factory: Sender, action, error: str
) -> None:
    c = node.consortium
    device = new_account()
    c.authorize_device(factory, device, 0)
    open_pid, _ = c.propose_quorum(operator, 1)  # executes; gives proposal 1..n to aim at
    outsider = node.add_signer(new_account())
    target = device.address if "device" in error.lower() else factory.address
    before = snapshot(node)
    with pytest.raises(ContractRevert) as refused:
        action(c, outsider, target)
    assert refused.value.error == error
    assert str(refused.value)  # a sentence, not a selector
    assert snapshot(node) == before
    assert c.proposal(open_pid).state == "executed"  # the target proposal is closed


def test_refusal_messages_are_readable(node: Node, operator: Sender, factory: Sender) -> None:
    c = node.consortium
    with pytest.raises(ContractRevert, match="is already a member"):
        c.propose_admit(operator, factory.address, int(Role.FACTORY))
    with pytest.raises(ContractRevert, match="not an active member with the factory role"):
        c.authorize_device(operator, new_account(), 0)
    with pytest.raises(ContractRevert, match="last active council member"):
        c.propose_suspend(operator, operator.address)


def test_bad_input_is_refused_before_the_chain(node: Node, operator: Sender) -> None:
    c = node.consortium
    with pytest.raises(InvalidInput, match="not an Ethereum address"):
        c.propose_admit(operator, "0x1234", int(Role.FACTORY))
    with pytest.raises(InvalidInput, match="unknown role"):
        parse_roles("factory,wizard")
    with pytest.raises(InvalidInput, match="32 bytes"):
        c.propose_admit(operator, new_account().address, 2, metadata_hash="0xabcd")


# --- device binding: proof of possession, unbinding ------------------------------------
def device_state(node: Node, device: str) -> tuple[object, ...]:
    raw = node.consortium.contract.functions.device(device).call()
    at = node.consortium.contract.functions.deviceAt(device, node.chain.block_number()).call()
    return (*snapshot(node), tuple(raw), tuple(at))


def test_a_factory_cannot_bind_a_key_it_does_not_hold(
    node: Node, operator: Sender, factory: Sender
) -> None:
    c = node.consortium
    victim = new_account()
    before = device_state(node, victim.address)
    own = c.sign_binding(factory.account, factory.address)  # the squatter signs for it
    for signature in (own, c.sign_binding(new_account(), factory.address)):
        with pytest.raises(ContractRevert) as refused:
            c.authorize_device(factory, victim.address, 0, signature)
        assert refused.value.error == "InvalidDeviceSignature" and refused.value.status == 403
        assert "only the device key itself can consent" in str(refused.value)
    with pytest.raises(InvalidInput, match="must sign its binding"):
        c.authorize_device(factory, victim.address, 0)
    assert device_state(node, victim.address) == before
    with pytest.raises(NotFound):
        c.device(victim.address)
    c.propose_admit(operator, victim.address, int(Role.BUYER))  # the address stays admissible
    assert c.has_role(victim.address, int(Role.BUYER))


def test_a_copied_binding_is_worthless_to_another_factory(node: Node, factory: Sender) -> None:
    c = node.consortium
    rival = admit(node, int(Role.FACTORY))
    device = new_account()
    signature = c.sign_binding(device, factory.address, 0)
    before = device_state(node, device.address)
    with pytest.raises(ContractRevert) as refused:
        c.authorize_device(rival, device.address, 0, signature)
    assert refused.value.error == "InvalidDeviceSignature"
    assert device_state(node, device.address) == before
    c.authorize_device(factory, device.address, 0, signature)
    assert c.device(device.address).owner == factory.address


def test_binding_typed_data_is_what_the_contract_checks(node: Node, factory: Sender) -> None:
    from ledger.eth import eip712

    c = node.consortium
    device = new_account()
    binding = c.device_binding(factory.address, device.address, 0)
    data = c.binding_typed_data(binding)
    assert data["domain"]["verifyingContract"] == c.address
    assert data["domain"]["chainId"] == node.chain.chain_id
    on_chain = c.contract.functions.deviceBindingDigest(factory.address, device.address, 0, 0)
    assert on_chain.call() == eip712.digest(data)
    c.authorize_device(factory, device.address, 0, eip712.sign(device, data))
    assert c.device(device.address).nonce == 1


def test_council_unbinds_a_device_then_it_can_be_admitted(
    node: Node, operator: Sender, factory: Sender
) -> None:
    c = node.consortium
    device = new_account()
    c.authorize_device(factory, device, 0)
    with pytest.raises(ContractRevert) as refused:
        c.propose_admit(operator, device.address, int(Role.BUYER))
    assert refused.value.error == "AccountIsDevice"
    pid, receipt = c.propose_unbind_device(operator, device.address)
    proposal = c.proposal(pid)
    assert proposal.kind is ProposalKind.UNBIND_DEVICE and proposal.state == "executed"
    assert proposal.model_dump(mode="json")["kind"] == "unbind_device"
    [event] = c.contract.events.DeviceUnbound().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["owner"] == factory.address
    assert event["args"]["proposalId"] == pid
    unbound = c.device(device.address)
    assert (unbound.owner, unbound.active, unbound.nonce) == (ZERO_ADDRESS, False, 2)
    block = node.chain.block_number()
    assert not c.is_authorized_signer(factory.address, device.address, int(Role.FACTORY), block, 0)
    with pytest.raises(ContractRevert) as refused:
        c.propose_unbind_device(operator, device.address)
    assert refused.value.error == "DeviceNotBound"
    c.propose_admit(operator, device.address, int(Role.BUYER))
    assert c.has_role(device.address, int(Role.BUYER))


@pytest.mark.parametrize(
    ("kind", "fields", "field"),
    [
        ("admit", {"roles": int(Role.FACTORY)}, "target"),
        ("set-roles", {"target": "0x" + "11" * 20}, "roles"),
        ("suspend", {}, "target"),
        ("set_quorum", {}, "quorum"),
        ("promote", {"target": "0x" + "11" * 20}, "kind"),
    ],
)
def test_a_proposal_missing_what_its_kind_needs_is_refused_before_sending(
    node: Node, operator: Sender, kind: str, fields: dict[str, object], field: str
) -> None:
    before = snapshot(node)
    with pytest.raises(InvalidInput) as exc:
        node.consortium.propose(operator, kind, **fields)  # type: ignore[arg-type]
    assert exc.value.field == field
    assert snapshot(node) == before


def test_every_kind_spelling_proposes_the_same_kind(node: Node, operator: Sender) -> None:
    c = node.consortium
    acct = new_account()
    pid = c.propose(operator, "admit", target=acct.address, roles=int(Role.BUYER))
    assert c.proposal(pid).kind is ProposalKind.ADMIT
    for spelling in ("set_roles", "set-roles"):
        pid = c.propose(operator, spelling, target=acct.address, roles=int(Role.FACTORY))
        assert c.proposal(pid).model_dump(mode="json")["kind"] == "set_roles"
    pid = c.propose(operator, "quorum", quorum=1)
    assert c.proposal(pid).model_dump(mode="json")["kind"] == "set_quorum"
