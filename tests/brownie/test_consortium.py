"""Consortium: membership by council quorum, device keys, and history at past blocks.

The `consortium` fixture (conftest.py) has three founding council members (quorum 2, 7-day
proposals), an active factory (accounts[3]) and an active designer (accounts[4]); every
test starts from that state.
"""

import brownie
import pytest
from brownie import ZERO_ADDRESS, chain, web3
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from conftest import AUDITOR, BUYER, COUNCIL, DAY, DESIGNER, FACTORY, TTL, err

ALL_ROLES = 31
NONE, ACTIVE, SUSPENDED = 0, 1, 2
ADMIT, SET_ROLES, SUSPEND, READMIT, SET_QUORUM, UNBIND_DEVICE = range(6)

META = b"\x11" * 32
KEY = b"\x22" * 32
ZERO32 = b"\x00" * 32

DEVICE_KEY = Account.from_key(b"\xd1" * 32)
DEVICE_2_KEY = Account.from_key(b"\xd2" * 32)
DEVICE, DEVICE_2 = DEVICE_KEY.address, DEVICE_2_KEY.address
DEVICE_KEYS = {DEVICE: DEVICE_KEY, DEVICE_2: DEVICE_2_KEY}
NO_SIGNATURE = b"\x00" * 65


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def pid(tx):
    return tx.events["ProposalCreated"]["id"]


def decide(consortium, function, *args):
    """Have council[0] propose `function(*args)` and council[1] approve it (quorum 2);
    returns the executing transaction."""
    tx = getattr(consortium, function)(*args, {"from": brownie.accounts[0]})
    return consortium.approve(pid(tx), {"from": brownie.accounts[1]})


def as_tuple(value):
    return tuple(value)


def binding(consortium, factory, device, expires_at, nonce=None, chain_id=None):
    """The EIP-712 DeviceBinding typed data of `device` consenting to sign for `factory`."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "DeviceBinding": [
                {"name": "factory", "type": "address"},
                {"name": "device", "type": "address"},
                {"name": "expiresAt", "type": "uint48"},
                {"name": "nonce", "type": "uint256"},
            ],
        },
        "primaryType": "DeviceBinding",
        "domain": {
            "name": "cofab",
            "version": "1",
            "chainId": chain.id if chain_id is None else chain_id,
            "verifyingContract": consortium.address,
        },
        "message": {
            "factory": str(factory),
            "device": str(device),
            "expiresAt": expires_at,
            "nonce": consortium.device(device)["nonce"] if nonce is None else nonce,
        },
    }


def sign_binding(key, data):
    return key.sign_message(encode_typed_data(full_message=data)).signature


def consent(consortium, factory, device, expires_at, **kw):
    """The device key's signature binding it to `factory` (a dummy for keyless addresses,
    for checks that refuse before the signature is looked at)."""
    key = DEVICE_KEYS.get(str(device))
    if key is None:
        return NO_SIGNATURE
    return sign_binding(key, binding(consortium, factory, device, expires_at, **kw))


def authorize(consortium, device, expires_at, params):
    """`params["from"]` binds `device` with the device key's own consent."""
    signature = consent(consortium, params["from"], device, expires_at)
    return consortium.authorizeDevice(device, expires_at, signature, params)


@pytest.fixture
def newcomer(accounts):
    return accounts[5]


@pytest.fixture
def factory2(consortium, accounts):
    decide(consortium, "proposeAdmit", accounts[6], FACTORY, META, KEY)
    return accounts[6]


# ---------------------------------------------------------------------------------------
# deployment
# ---------------------------------------------------------------------------------------


def test_role_constants(consortium):
    assert consortium.COUNCIL() == COUNCIL
    assert consortium.FACTORY() == FACTORY
    assert consortium.DESIGNER() == DESIGNER
    assert consortium.AUDITOR() == AUDITOR
    assert consortium.BUYER() == BUYER
    assert consortium.ALL_ROLES() == ALL_ROLES


def test_founding_council(consortium, council, factory, designer):
    deployed = chain[consortium.tx.block_number]
    assert consortium.memberCount() == 5
    assert [consortium.memberAt(i) for i in range(5)] == [*council, factory, designer]
    assert consortium.councilSize() == 3
    assert consortium.quorum() == 2
    assert consortium.effectiveQuorum() == 2
    assert consortium.proposalTtl() == TTL
    for account in council:
        m = consortium.member(account)
        assert (m["roles"], m["status"], m["since"]) == (COUNCIL, ACTIVE, deployed.timestamp)
        assert m["metadataHash"] == "0x" + ZERO32.hex()
        assert m["encryptionKey"] == "0x" + ZERO32.hex()
        assert consortium.isMember(account)
        assert consortium.hasRole(account, COUNCIL)
        assert not consortium.hasRole(account, FACTORY)


def test_constructor_admits_each_founder_with_proposal_id_zero(Consortium, accounts):
    c = Consortium.deploy([accounts[5], accounts[6]], 1, DAY, {"from": accounts[0]})
    events = c.tx.events["MemberAdmitted"]
    assert [e["member"] for e in events] == [accounts[5], accounts[6]]
    for e in events:
        assert e["roles"] == COUNCIL
        assert e["proposalId"] == 0
    assert c.proposalCount() == 0
    assert c.councilSize() == 2


def test_constructor_rejects_bad_arguments(Consortium, accounts):
    a, b = accounts[5], accounts[6]
    with err("InvalidQuorum", 1, 0):
        Consortium.deploy([], 1, DAY, {"from": a})
    with err("ZeroAddress"):
        Consortium.deploy([a, ZERO_ADDRESS], 1, DAY, {"from": a})
    with err("DuplicateMember", a):
        Consortium.deploy([a, b, a], 1, DAY, {"from": a})
    with err("InvalidQuorum", 0, 2):
        Consortium.deploy([a, b], 0, DAY, {"from": a})
    with err("InvalidQuorum", 3, 2):
        Consortium.deploy([a, b], 3, DAY, {"from": a})
    with err("InvalidTtl"):
        Consortium.deploy([a, b], 2, 0, {"from": a})


# ---------------------------------------------------------------------------------------
# access control
# ---------------------------------------------------------------------------------------


def test_outsider_is_refused_by_every_state_changing_function(
    consortium, council, factory, outsider
):
    open_id = pid(consortium.proposeSuspend(factory, {"from": council[0]}))
    authorize(consortium, DEVICE, 0, {"from": factory})
    o = {"from": outsider}
    c = consortium
    not_council = ("MissingRole", outsider, COUNCIL)
    cases = {
        "proposeAdmit": (
            lambda: c.proposeAdmit(outsider, FACTORY, META, KEY, o),
            not_council,
        ),
        "proposeSetRoles": (
            lambda: c.proposeSetRoles(factory, ALL_ROLES, o),
            not_council,
        ),
        "proposeSuspend": (lambda: c.proposeSuspend(council[1], o), not_council),
        "proposeReadmit": (lambda: c.proposeReadmit(factory, o), not_council),
        "proposeQuorum": (lambda: c.proposeQuorum(1, o), not_council),
        "approve": (lambda: c.approve(open_id, o), not_council),
        "cancel": (lambda: c.cancel(open_id, o), ("NotProposer", open_id, outsider)),
        "updateProfile": (lambda: c.updateProfile(META, KEY, o), ("NotMember", outsider)),
        "authorizeDevice": (lambda: authorize(c, DEVICE_2, 0, o), ("NotMember", outsider)),
        "revokeDevice": (lambda: c.revokeDevice(DEVICE, o), ("NotDeviceOwner", DEVICE, outsider)),
        "proposeUnbindDevice": (
            lambda: c.proposeUnbindDevice(DEVICE, o),
            not_council,
        ),
    }
    state_changing = {
        item["name"]
        for item in consortium.abi
        if item["type"] == "function" and item["stateMutability"] not in ("view", "pure")
    }
    assert set(cases) == state_changing, "every state-changing function must be covered"

    for call, (error, *args) in cases.values():
        with err(error, *args):
            call()

    assert consortium.proposalCount() == open_id
    assert consortium.proposal(open_id)["approvals"] == 1
    assert not consortium.isMember(outsider)
    assert consortium.device(DEVICE)["active"]


def test_council_functions_refuse_members_without_council_role(consortium, factory, designer):
    open_id = pid(consortium.proposeSuspend(designer, {"from": brownie.accounts[0]}))
    f = {"from": factory}
    with err("MissingRole", factory, COUNCIL):
        consortium.proposeAdmit(brownie.accounts[7], BUYER, META, KEY, f)
    with err("MissingRole", factory, COUNCIL):
        consortium.proposeSetRoles(factory, FACTORY | COUNCIL, f)
    with err("MissingRole", factory, COUNCIL):
        consortium.proposeSuspend(designer, f)
    with err("MissingRole", factory, COUNCIL):
        consortium.proposeQuorum(1, f)
    with err("MissingRole", factory, COUNCIL):
        consortium.approve(open_id, f)


def test_suspended_council_member_loses_its_powers(consortium, council):
    decide(consortium, "proposeSuspend", council[2])
    s = {"from": council[2]}
    open_id = pid(consortium.proposeQuorum(1, {"from": council[0]}))
    with err("MissingRole", council[2], COUNCIL):
        consortium.approve(open_id, s)
    with err("MissingRole", council[2], COUNCIL):
        consortium.proposeReadmit(council[2], s)
    with err("MemberNotActive", council[2]):
        consortium.updateProfile(META, KEY, s)


# ---------------------------------------------------------------------------------------
# proposals
# ---------------------------------------------------------------------------------------


def test_admit_needs_two_of_three(consortium, council, newcomer):
    roles = DESIGNER | BUYER
    tx = consortium.proposeAdmit(newcomer, roles, META, KEY, {"from": council[0]})
    id_ = pid(tx)
    created = tx.events["ProposalCreated"]
    assert created["kind"] == ADMIT
    assert created["target"] == newcomer
    assert created["roles"] == roles
    assert created["quorumValue"] == 0
    assert created["proposer"] == council[0]
    assert created["expiresAt"] == tx.timestamp + TTL
    approved = tx.events["ProposalApproved"]
    assert (approved["id"], approved["approver"]) == (id_, council[0])
    assert (approved["approvals"], approved["required"]) == (1, 2)
    assert "MemberAdmitted" not in tx.events and "ProposalExecuted" not in tx.events

    p = consortium.proposal(id_)
    assert p["kind"] == ADMIT and p["target"] == newcomer and p["roles"] == roles
    assert p["proposer"] == council[0] and p["expiresAt"] == tx.timestamp + TTL
    assert p["approvals"] == 1 and not p["executed"] and not p["cancelled"]
    assert p["metadataHash"] == "0x" + META.hex() and p["encryptionKey"] == "0x" + KEY.hex()
    assert consortium.hasApproved(id_, council[0])
    assert not consortium.hasApproved(id_, council[1])
    assert not consortium.isMember(newcomer)

    with err("AlreadyApproved", id_, council[0]):
        consortium.approve(id_, {"from": council[0]})

    tx = consortium.approve(id_, {"from": council[1]})
    assert list(tx.events.keys()) == ["ProposalApproved", "MemberAdmitted", "ProposalExecuted"]
    assert tx.events["ProposalApproved"]["approvals"] == 2
    admitted = tx.events["MemberAdmitted"]
    assert admitted["member"] == newcomer and admitted["roles"] == roles
    assert admitted["metadataHash"] == "0x" + META.hex()
    assert admitted["encryptionKey"] == "0x" + KEY.hex()
    assert admitted["proposalId"] == id_
    assert tx.events["ProposalExecuted"]["id"] == id_

    m = consortium.member(newcomer)
    assert (m["roles"], m["status"], m["since"]) == (roles, ACTIVE, tx.timestamp)
    assert consortium.hasRole(newcomer, DESIGNER | BUYER)
    assert not consortium.hasRole(newcomer, FACTORY)
    assert consortium.memberCount() == 6 and consortium.memberAt(5) == newcomer
    assert consortium.proposal(id_)["executed"]
    assert consortium.proposal(id_)["approvals"] == 2

    with err("ProposalClosed", id_):
        consortium.approve(id_, {"from": council[2]})


def test_proposal_ids_start_at_one(Consortium, accounts):
    c = Consortium.deploy([accounts[0]], 1, DAY, {"from": accounts[0]})
    assert c.proposalCount() == 0
    with err("UnknownProposal", 0):
        c.proposal(0)
    with err("UnknownProposal", 1):
        c.proposal(1)
    tx = c.proposeAdmit(accounts[5], BUYER, META, KEY, {"from": accounts[0]})
    assert pid(tx) == 1 and c.proposalCount() == 1


def test_quorum_of_one_executes_in_the_proposing_transaction(consortium, council, newcomer):
    tx = decide(consortium, "proposeQuorum", 1)
    changed = tx.events["QuorumChanged"]
    assert (changed["previousQuorum"], changed["newQuorum"]) == (2, 1)
    assert changed["proposalId"] == tx.events["ProposalExecuted"]["id"]
    assert consortium.quorum() == 1 and consortium.effectiveQuorum() == 1

    tx = consortium.proposeAdmit(newcomer, BUYER, META, KEY, {"from": council[2]})
    assert list(tx.events.keys()) == [
        "ProposalCreated",
        "ProposalApproved",
        "MemberAdmitted",
        "ProposalExecuted",
    ]
    assert tx.events["ProposalApproved"]["required"] == 1
    assert consortium.hasRole(newcomer, BUYER)


def test_proposals_validate_their_target(consortium, council, factory, outsider):
    authorize(consortium, DEVICE, 0, {"from": factory})
    c0 = {"from": council[0]}
    c = consortium
    cases = [
        (lambda: c.proposeAdmit(ZERO_ADDRESS, BUYER, META, KEY, c0), ("ZeroAddress",)),
        (lambda: c.proposeAdmit(outsider, 0, META, KEY, c0), ("InvalidRoles", 0)),
        (lambda: c.proposeAdmit(outsider, 32, META, KEY, c0), ("InvalidRoles", 32)),
        (lambda: c.proposeAdmit(outsider, 33, META, KEY, c0), ("InvalidRoles", 33)),
        (lambda: c.proposeAdmit(factory, BUYER, META, KEY, c0), ("AlreadyMember", factory)),
        (lambda: c.proposeAdmit(DEVICE, BUYER, META, KEY, c0), ("AccountIsDevice", DEVICE)),
        (lambda: c.proposeSetRoles(outsider, BUYER, c0), ("NotMember", outsider)),
        (lambda: c.proposeSetRoles(factory, 0, c0), ("InvalidRoles", 0)),
        (lambda: c.proposeSetRoles(factory, 64, c0), ("InvalidRoles", 64)),
        (lambda: c.proposeSuspend(outsider, c0), ("NotMember", outsider)),
        (lambda: c.proposeReadmit(outsider, c0), ("NotMember", outsider)),
        (lambda: c.proposeReadmit(factory, c0), ("MemberNotSuspended", factory)),
        (lambda: c.proposeQuorum(0, c0), ("InvalidQuorum", 0, 3)),
        (lambda: c.proposeQuorum(4, c0), ("InvalidQuorum", 4, 3)),
        (lambda: c.proposeUnbindDevice(DEVICE_2, c0), ("DeviceNotBound", DEVICE_2)),
    ]
    for call, (error, *args) in cases:
        with err(error, *args):
            call()
    assert consortium.proposalCount() == 2  # only the fixture's two admissions


def test_execution_revalidates_and_applies_nothing_on_failure(
    consortium, council, factory, newcomer
):
    first = pid(consortium.proposeAdmit(newcomer, BUYER, META, KEY, {"from": council[0]}))
    second = pid(consortium.proposeAdmit(newcomer, AUDITOR, KEY, META, {"from": council[1]}))
    consortium.approve(first, {"from": council[2]})
    count = consortium.memberCount()

    with err("AlreadyMember", newcomer):
        consortium.approve(second, {"from": council[2]})
    p = consortium.proposal(second)
    assert p["approvals"] == 1 and not p["executed"]
    assert not consortium.hasApproved(second, council[2])
    assert consortium.member(newcomer)["roles"] == BUYER
    assert consortium.memberCount() == count

    # the target became a device key while the proposal was open
    device_id = pid(consortium.proposeAdmit(DEVICE, BUYER, META, KEY, {"from": council[0]}))
    authorize(consortium, DEVICE, 0, {"from": factory})
    with err("AccountIsDevice", DEVICE):
        consortium.approve(device_id, {"from": council[1]})
    assert not consortium.isMember(DEVICE)


def test_suspend_validation_at_execution(consortium, council, designer):
    first = pid(consortium.proposeSuspend(designer, {"from": council[0]}))
    second = pid(consortium.proposeSuspend(designer, {"from": council[1]}))
    consortium.approve(first, {"from": council[2]})
    with err("MemberNotActive", designer):
        consortium.approve(second, {"from": council[2]})
    with err("MemberNotActive", designer):
        consortium.proposeSuspend(designer, {"from": council[0]})


def test_proposals_expire_after_the_ttl(consortium, council, newcomer, accounts):
    early = pid(consortium.proposeAdmit(newcomer, BUYER, META, KEY, {"from": council[0]}))
    late = pid(consortium.proposeAdmit(accounts[6], BUYER, META, KEY, {"from": council[0]}))
    expires_at = consortium.proposal(late)["expiresAt"]

    chain.sleep(TTL - 3600)
    consortium.approve(early, {"from": council[1]})  # still open
    assert consortium.isMember(newcomer)

    chain.sleep(3600 + 60)
    chain.mine()
    assert chain[-1].timestamp > expires_at
    with err("ProposalExpired", late, expires_at):
        consortium.approve(late, {"from": council[1]})
    with err("ProposalExpired", late, expires_at):
        consortium.cancel(late, {"from": council[0]})
    assert not consortium.isMember(accounts[6])


def test_cancel(consortium, council, newcomer):
    id_ = pid(consortium.proposeAdmit(newcomer, BUYER, META, KEY, {"from": council[0]}))
    with err("NotProposer", id_, council[1]):
        consortium.cancel(id_, {"from": council[1]})

    tx = consortium.cancel(id_, {"from": council[0]})
    assert tx.events["ProposalCancelled"]["id"] == id_
    assert consortium.proposal(id_)["cancelled"]
    with err("ProposalClosed", id_):
        consortium.approve(id_, {"from": council[1]})
    with err("ProposalClosed", id_):
        consortium.cancel(id_, {"from": council[0]})
    assert not consortium.isMember(newcomer)

    executed = consortium.proposal(1)
    assert executed["executed"]
    with err("ProposalClosed", 1):
        consortium.cancel(1, {"from": council[0]})
    with err("UnknownProposal", 99):
        consortium.cancel(99, {"from": council[0]})
    with err("UnknownProposal", 99):
        consortium.approve(99, {"from": council[0]})


# ---------------------------------------------------------------------------------------
# membership changes
# ---------------------------------------------------------------------------------------


def test_set_roles(consortium, council, factory):
    tx = decide(consortium, "proposeSetRoles", factory, FACTORY | AUDITOR)
    changed = tx.events["MemberRolesChanged"]
    assert changed["member"] == factory
    assert (changed["previousRoles"], changed["roles"]) == (FACTORY, FACTORY | AUDITOR)
    assert changed["proposalId"] == tx.events["ProposalExecuted"]["id"]
    assert consortium.hasRole(factory, AUDITOR) and consortium.hasRole(factory, FACTORY)
    assert consortium.councilSize() == 3

    decide(consortium, "proposeSetRoles", factory, FACTORY | COUNCIL)
    assert consortium.councilSize() == 4
    assert not consortium.hasRole(factory, AUDITOR)
    decide(consortium, "proposeSetRoles", council[2], BUYER)
    assert consortium.councilSize() == 3
    assert not consortium.hasRole(council[2], COUNCIL)
    with err("MissingRole", council[2], COUNCIL):
        consortium.proposeQuorum(1, {"from": council[2]})


def test_suspend_and_readmit(consortium, council, factory):
    since = consortium.member(factory)["since"]
    tx = decide(consortium, "proposeSuspend", factory)
    assert tx.events["MemberSuspended"]["member"] == factory
    assert tx.events["MemberSuspended"]["proposalId"] == tx.events["ProposalExecuted"]["id"]
    m = consortium.member(factory)
    assert (m["roles"], m["status"]) == (FACTORY, SUSPENDED)
    assert consortium.isMember(factory) and not consortium.hasRole(factory, FACTORY)
    with err("AlreadyMember", factory):
        consortium.proposeAdmit(factory, FACTORY, META, KEY, {"from": council[0]})

    tx = decide(consortium, "proposeReadmit", factory)
    assert tx.events["MemberReadmitted"]["member"] == factory
    m = consortium.member(factory)
    assert (m["roles"], m["status"], m["since"]) == (FACTORY, ACTIVE, since)
    assert consortium.hasRole(factory, FACTORY)

    decide(consortium, "proposeSuspend", council[2])
    assert consortium.councilSize() == 2
    decide(consortium, "proposeReadmit", council[2])
    assert consortium.councilSize() == 3


def test_roles_of_a_suspended_member_can_change(consortium, council, factory):
    decide(consortium, "proposeSuspend", factory)
    decide(consortium, "proposeSetRoles", factory, FACTORY | COUNCIL)
    assert consortium.councilSize() == 3  # suspended: not counted
    decide(consortium, "proposeReadmit", factory)
    assert consortium.councilSize() == 4


def test_effective_quorum_is_capped_by_council_size(consortium, council):
    decide(consortium, "proposeQuorum", 3)
    assert consortium.quorum() == 3 and consortium.effectiveQuorum() == 3

    id_ = pid(consortium.proposeSuspend(council[2], {"from": council[0]}))
    tx = consortium.approve(id_, {"from": council[1]})
    assert tx.events["ProposalApproved"]["required"] == 3
    assert "ProposalExecuted" not in tx.events
    consortium.approve(id_, {"from": council[2]})
    assert consortium.councilSize() == 2
    assert consortium.quorum() == 3 and consortium.effectiveQuorum() == 2
    with err("InvalidQuorum", 3, 2):
        consortium.proposeQuorum(3, {"from": council[0]})

    tx = consortium.proposeReadmit(council[2], {"from": council[0]})
    assert tx.events["ProposalApproved"]["required"] == 2
    consortium.approve(pid(tx), {"from": council[1]})
    assert consortium.effectiveQuorum() == 3


def test_last_council_member_cannot_be_removed(Consortium, accounts):
    solo = accounts[0]
    c = Consortium.deploy([solo], 1, DAY, {"from": solo})
    with err("LastCouncilMember", solo):
        c.proposeSuspend(solo, {"from": solo})
    with err("LastCouncilMember", solo):
        c.proposeSetRoles(solo, FACTORY, {"from": solo})
    c.proposeSetRoles(solo, COUNCIL | FACTORY, {"from": solo})  # keeps COUNCIL: fine
    assert c.hasRole(solo, COUNCIL | FACTORY)


def test_last_council_member_is_rechecked_at_execution(Consortium, accounts):
    a, b = accounts[0], accounts[1]
    c = Consortium.deploy([a, b], 2, DAY, {"from": a})
    suspend_b = pid(c.proposeSuspend(b, {"from": a}))
    suspend_a = pid(c.proposeSuspend(a, {"from": b}))
    c.approve(suspend_b, {"from": b})
    assert c.councilSize() == 1
    with err("LastCouncilMember", a):
        c.approve(suspend_a, {"from": a})
    assert c.hasRole(a, COUNCIL)


def test_update_profile(consortium, designer):
    tx = consortium.updateProfile(KEY, META, {"from": designer})
    event = tx.events["MemberProfileUpdated"]
    assert event["member"] == designer
    assert event["metadataHash"] == "0x" + KEY.hex()
    assert event["encryptionKey"] == "0x" + META.hex()
    m = consortium.member(designer)
    assert m["metadataHash"] == "0x" + KEY.hex() and m["encryptionKey"] == "0x" + META.hex()
    assert m["roles"] == DESIGNER and m["status"] == ACTIVE


# ---------------------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------------------


def test_roles_at_past_blocks(consortium, council, newcomer):
    deployed = consortium.tx.block_number
    assert as_tuple(consortium.rolesAt(council[0], deployed - 1)) == (0, NONE)
    assert as_tuple(consortium.rolesAt(council[0], deployed)) == (COUNCIL, ACTIVE)

    admitted = decide(consortium, "proposeAdmit", newcomer, BUYER, META, KEY).block_number
    chain.mine(3)
    changed = decide(consortium, "proposeSetRoles", newcomer, BUYER | AUDITOR).block_number
    suspended = decide(consortium, "proposeSuspend", newcomer).block_number
    readmitted = decide(consortium, "proposeReadmit", newcomer).block_number

    expected = {
        0: (0, NONE),
        admitted - 1: (0, NONE),
        admitted: (BUYER, ACTIVE),
        admitted + 2: (BUYER, ACTIVE),
        changed - 1: (BUYER, ACTIVE),
        changed: (BUYER | AUDITOR, ACTIVE),
        suspended - 1: (BUYER | AUDITOR, ACTIVE),
        suspended: (BUYER | AUDITOR, SUSPENDED),
        readmitted - 1: (BUYER | AUDITOR, SUSPENDED),
        readmitted: (BUYER | AUDITOR, ACTIVE),
        chain.height: (BUYER | AUDITOR, ACTIVE),
    }
    for block, state in expected.items():
        assert as_tuple(consortium.rolesAt(newcomer, block)) == state, block


def test_history_keeps_the_state_at_the_end_of_a_block(consortium, council, factory):
    first = pid(consortium.proposeSetRoles(factory, FACTORY | AUDITOR, {"from": council[0]}))
    second = pid(consortium.proposeSetRoles(factory, FACTORY | BUYER, {"from": council[0]}))
    block = chain.height + 1
    # four transactions in one block: automine off, sent without waiting, then one evm_mine
    # (raw RPC: brownie's chain.mine waits on the pending transactions' confirmation threads)
    web3.provider.make_request("evm_setAutomine", [False])
    try:
        by_council = {"from": council[1], "gas_limit": 500_000, "required_confs": 0}
        by_factory = {"from": factory, "gas_limit": 500_000, "required_confs": 0}
        sent = [
            consortium.approve(first, dict(by_council)),
            consortium.approve(second, dict(by_council)),
            authorize(consortium, DEVICE, 0, dict(by_factory)),
            consortium.revokeDevice(DEVICE, dict(by_factory)),
        ]
        web3.provider.make_request("evm_mine", [])
    finally:
        web3.provider.make_request("evm_setAutomine", [True])
    for tx in sent:
        receipt = web3.eth.wait_for_transaction_receipt(tx.txid, timeout=30)
        assert (receipt["status"], receipt["blockNumber"]) == (1, block)

    assert as_tuple(consortium.rolesAt(factory, block - 1)) == (FACTORY, ACTIVE)
    assert as_tuple(consortium.rolesAt(factory, block)) == (FACTORY | BUYER, ACTIVE)
    assert as_tuple(consortium.deviceAt(DEVICE, block - 1)) == (ZERO_ADDRESS, False, 0)
    assert as_tuple(consortium.deviceAt(DEVICE, block)) == (factory, False, 0)


def test_future_blocks_are_refused(consortium, council):
    future = chain.height + 100
    with err("FutureBlock", future):
        consortium.rolesAt(council[0], future)
    with err("FutureBlock", future):
        consortium.deviceAt(DEVICE, future)
    with err("FutureBlock", future):
        consortium.isAuthorizedSigner(council[0], council[0], COUNCIL, future, 0)
    assert as_tuple(consortium.rolesAt(council[0], chain.height)) == (COUNCIL, ACTIVE)


# ---------------------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------------------


def test_authorize_device(consortium, factory):
    expires_at = chain.time() + DAY
    tx = authorize(consortium, DEVICE, expires_at, {"from": factory})
    event = tx.events["DeviceAuthorized"]
    assert (event["owner"], event["device"], event["expiresAt"]) == (factory, DEVICE, expires_at)
    d = consortium.device(DEVICE)
    assert (d["owner"], d["expiresAt"], d["active"], d["authorizedAt"]) == (
        factory,
        expires_at,
        True,
        tx.block_number,
    )
    assert consortium.isAuthorizedSigner(factory, DEVICE, FACTORY, tx.block_number, chain.time())


def test_authorize_device_checks(consortium, council, factory, designer, factory2):
    f = {"from": factory}
    with err("MissingRole", designer, FACTORY):
        authorize(consortium, DEVICE, 0, {"from": designer})
    with err("MissingRole", council[0], FACTORY):
        authorize(consortium, DEVICE, 0, {"from": council[0]})
    with err("ZeroAddress"):
        authorize(consortium, ZERO_ADDRESS, 0, f)
    with err("DeviceIsMember", designer):
        authorize(consortium, designer, 0, f)
    with err("DeviceIsMember", factory):
        authorize(consortium, factory, 0, f)
    now = chain[-1].timestamp
    with err("InvalidExpiry", now):
        authorize(consortium, DEVICE, now, f)
    with err("InvalidExpiry", 1):
        authorize(consortium, DEVICE, 1, f)

    authorize(consortium, DEVICE, 0, f)
    with err("DeviceTaken", DEVICE, factory):
        authorize(consortium, DEVICE, 0, {"from": factory2})

    decide(consortium, "proposeSuspend", factory)
    with err("MemberNotActive", factory):
        authorize(consortium, DEVICE_2, 0, f)


def test_reauthorizing_renews_the_device(consortium, factory):
    first = authorize(consortium, DEVICE, chain.time() + 60, {"from": factory})
    later = chain.time() + 30 * DAY
    tx = authorize(consortium, DEVICE, later, {"from": factory})
    assert tx.events["DeviceAuthorized"]["expiresAt"] == later
    d = consortium.device(DEVICE)
    assert d["expiresAt"] == later and d["authorizedAt"] == tx.block_number > first.block_number


def test_revoke_device(consortium, council, factory, factory2):
    with err("NotDeviceOwner", DEVICE, factory):
        consortium.revokeDevice(DEVICE, {"from": factory})  # never authorised
    authorize(consortium, DEVICE, 0, {"from": factory})
    with err("NotDeviceOwner", DEVICE, council[0]):
        consortium.revokeDevice(DEVICE, {"from": council[0]})
    with err("NotDeviceOwner", DEVICE, factory2):
        consortium.revokeDevice(DEVICE, {"from": factory2})

    tx = consortium.revokeDevice(DEVICE, {"from": factory})
    assert (tx.events["DeviceRevoked"]["owner"], tx.events["DeviceRevoked"]["device"]) == (
        factory,
        DEVICE,
    )
    d = consortium.device(DEVICE)
    assert (d["owner"], d["active"]) == (factory, False)
    with err("DeviceNotAuthorized", DEVICE):
        consortium.revokeDevice(DEVICE, {"from": factory})

    # the key stays bound to its first owner
    with err("DeviceTaken", DEVICE, factory):
        authorize(consortium, DEVICE, 0, {"from": factory2})
    authorize(consortium, DEVICE, 0, {"from": factory})
    assert consortium.device(DEVICE)["active"]


def test_suspended_owner_can_still_revoke(consortium, factory):
    authorize(consortium, DEVICE, 0, {"from": factory})
    decide(consortium, "proposeSuspend", factory)
    tx = consortium.revokeDevice(DEVICE, {"from": factory})
    assert "DeviceRevoked" in tx.events
    assert not consortium.device(DEVICE)["active"]


def test_revoked_device_key_can_be_admitted_and_then_is_no_device(consortium, factory):
    authorize(consortium, DEVICE, 0, {"from": factory})
    consortium.revokeDevice(DEVICE, {"from": factory})
    tx = decide(consortium, "proposeAdmit", DEVICE, BUYER, META, KEY)
    unbound = tx.events["DeviceUnbound"]
    assert (unbound["owner"], unbound["device"], unbound["proposalId"]) == (
        factory,
        DEVICE,
        tx.events["ProposalExecuted"]["id"],
    )
    assert consortium.hasRole(DEVICE, BUYER)
    assert consortium.device(DEVICE)["owner"] == ZERO_ADDRESS
    with err("DeviceIsMember", DEVICE):
        authorize(consortium, DEVICE, 0, {"from": factory})


def test_device_expiry(consortium, council, factory):
    expires_at = chain.time() + 3600
    block = authorize(consortium, DEVICE, expires_at, {"from": factory}).block_number
    assert consortium.isAuthorizedSigner(factory, DEVICE, FACTORY, block, expires_at - 1)
    assert not consortium.isAuthorizedSigner(factory, DEVICE, FACTORY, block, expires_at)
    assert not consortium.isAuthorizedSigner(factory, DEVICE, FACTORY, block, expires_at + 1)

    chain.sleep(7200)
    chain.mine()
    with err("InvalidExpiry", expires_at):
        authorize(consortium, DEVICE, expires_at, {"from": factory})
    # expired but not revoked: still an authorised key, so not admissible
    with err("AccountIsDevice", DEVICE):
        consortium.proposeAdmit(DEVICE, BUYER, META, KEY, {"from": council[0]})
    renewed = authorize(consortium, DEVICE, 0, {"from": factory}).block_number
    assert consortium.isAuthorizedSigner(factory, DEVICE, FACTORY, renewed, 2**255)


def test_device_history_and_authorized_signers_at_past_blocks(
    consortium, factory, designer, outsider
):
    before = chain.height
    expires_at = chain.time() + DAY
    authorized = authorize(consortium, DEVICE, expires_at, {"from": factory}).block_number
    chain.mine(2)
    revoked = consortium.revokeDevice(DEVICE, {"from": factory}).block_number
    reauthorized = authorize(consortium, DEVICE, 0, {"from": factory}).block_number
    suspended = decide(consortium, "proposeSuspend", factory).block_number

    assert as_tuple(consortium.deviceAt(DEVICE, before)) == (ZERO_ADDRESS, False, 0)
    assert as_tuple(consortium.deviceAt(DEVICE, authorized)) == (factory, True, expires_at)
    assert as_tuple(consortium.deviceAt(DEVICE, revoked - 1)) == (factory, True, expires_at)
    assert as_tuple(consortium.deviceAt(DEVICE, revoked)) == (factory, False, expires_at)
    assert as_tuple(consortium.deviceAt(DEVICE, reauthorized)) == (factory, True, 0)
    assert as_tuple(consortium.deviceAt(DEVICE_2, chain.height)) == (ZERO_ADDRESS, False, 0)

    t = expires_at - 60

    def signs(member, signer, role, block, timestamp=t):
        return consortium.isAuthorizedSigner(member, signer, role, block, timestamp)

    # the device, for its owner, with the owner's role, while authorised
    assert not signs(factory, DEVICE, FACTORY, before)
    assert signs(factory, DEVICE, FACTORY, authorized)
    assert signs(factory, DEVICE, FACTORY, revoked - 1)
    assert not signs(factory, DEVICE, FACTORY, revoked)
    assert not signs(factory, DEVICE, FACTORY, revoked - 1, expires_at)
    assert signs(factory, DEVICE, FACTORY, reauthorized, 2**200)
    assert signs(factory, DEVICE, 0, authorized)
    assert not signs(factory, DEVICE, DESIGNER, authorized)
    assert not signs(factory, DEVICE, FACTORY | AUDITOR, authorized)
    assert not signs(designer, DEVICE, DESIGNER, authorized)
    # the member itself
    assert signs(factory, factory, FACTORY, authorized)
    assert signs(designer, designer, DESIGNER, authorized)
    assert not signs(designer, designer, FACTORY, authorized)
    assert not signs(outsider, outsider, 0, authorized)
    # nothing signs for a suspended member, neither itself nor its devices
    assert signs(factory, DEVICE, FACTORY, suspended - 1)
    assert not signs(factory, DEVICE, FACTORY, suspended)
    assert not signs(factory, factory, FACTORY, suspended)
    assert consortium.device(DEVICE)["active"]


# ---------------------------------------------------------------------------------------
# device binding: proof of possession, council unbinding, lapsed owners
# ---------------------------------------------------------------------------------------


def assert_unbound(consortium, device):
    """`device` was never bound: no record, no history, admissible."""
    d = consortium.device(device)
    assert (d["owner"], d["active"], d["expiresAt"], d["nonce"]) == (ZERO_ADDRESS, False, 0, 0)
    assert as_tuple(consortium.deviceAt(device, chain.height)) == (ZERO_ADDRESS, False, 0)


def test_a_factory_cannot_squat_a_key_it_does_not_hold(consortium, council, factory, accounts):
    """Binding an address needs that address's signature: the squatter's own signature, a
    signature of another key, or none at all is refused, and the address stays free."""
    squatter = {"from": factory}
    data = binding(consortium, factory, DEVICE, 0)
    for key, recovered in (
        (Account.from_key(b"\x33" * 32), Account.from_key(b"\x33" * 32).address),
        (DEVICE_2_KEY, DEVICE_2),
    ):
        with err("InvalidDeviceSignature", DEVICE, recovered):
            consortium.authorizeDevice(DEVICE, 0, sign_binding(key, data), squatter)
    for junk in (NO_SIGNATURE, b"", b"\x01" * 64):
        with err("InvalidDeviceSignature", DEVICE, ZERO_ADDRESS):
            consortium.authorizeDevice(DEVICE, 0, junk, squatter)
    assert_unbound(consortium, DEVICE)
    # the address can still be admitted
    decide(consortium, "proposeAdmit", DEVICE, BUYER, META, KEY)
    assert consortium.hasRole(DEVICE, BUYER)


def test_the_signature_covers_factory_expiry_nonce_chain_and_contract(
    Consortium, consortium, council, factory
):
    f = {"from": factory}
    expires_at = chain.time() + DAY
    other = Consortium.deploy(list(council), 2, TTL, {"from": council[0]})
    wrong = {
        "expiry": binding(consortium, factory, DEVICE, expires_at + 1),
        "nonce": binding(consortium, factory, DEVICE, expires_at, nonce=1),
        "chain": binding(consortium, factory, DEVICE, expires_at, chain_id=chain.id + 1),
        "contract": binding(other, factory, DEVICE, expires_at),
    }
    for data in wrong.values():
        signature = sign_binding(DEVICE_KEY, data)
        seen = recovered(consortium, factory, DEVICE, expires_at, signature)
        with err("InvalidDeviceSignature", DEVICE, seen):
            consortium.authorizeDevice(DEVICE, expires_at, signature, f)
    assert_unbound(consortium, DEVICE)

    typehash = web3.keccak(
        text="DeviceBinding(address factory,address device,uint48 expiresAt,uint256 nonce)"
    )
    assert consortium.DEVICE_BINDING_TYPEHASH() == "0x" + bytes(typehash).hex()
    data = binding(consortium, factory, DEVICE, expires_at)
    expected = _hash_eip191_message(encode_typed_data(full_message=data))
    assert (
        consortium.deviceBindingDigest(factory, DEVICE, expires_at, 0)
        == "0x" + bytes(expected).hex()
    )
    tx = consortium.authorizeDevice(DEVICE, expires_at, sign_binding(DEVICE_KEY, data), f)
    assert tx.events["DeviceAuthorized"]["device"] == DEVICE
    assert consortium.device(DEVICE)["nonce"] == 1


def recovered(consortium, factory, device, expires_at, signature):
    """Who `signature` recovers to when read as `factory`'s binding of `device` now."""
    data = binding(consortium, factory, device, expires_at)
    return Account.recover_message(encode_typed_data(full_message=data), signature=signature)


def test_a_front_run_copy_of_the_binding_gains_nothing(consortium, factory, factory2):
    """Another factory sending the victim's binding transaction first is refused; the
    victim's own transaction then binds the key to the victim."""
    signature = consent(consortium, factory, DEVICE, 0)
    seen = recovered(consortium, factory2, DEVICE, 0, signature)
    with err("InvalidDeviceSignature", DEVICE, seen):
        consortium.authorizeDevice(DEVICE, 0, signature, {"from": factory2})
    assert_unbound(consortium, DEVICE)
    consortium.authorizeDevice(DEVICE, 0, signature, {"from": factory})
    assert consortium.device(DEVICE)["owner"] == factory


def test_a_binding_signature_is_single_use(consortium, factory):
    f = {"from": factory}
    signature = consent(consortium, factory, DEVICE, 0)
    consortium.authorizeDevice(DEVICE, 0, signature, f)
    consortium.revokeDevice(DEVICE, f)
    seen = recovered(consortium, factory, DEVICE, 0, signature)
    with err("InvalidDeviceSignature", DEVICE, seen):
        consortium.authorizeDevice(DEVICE, 0, signature, f)
    d = consortium.device(DEVICE)
    assert (d["owner"], d["active"], d["nonce"]) == (factory, False, 1)
    authorize(consortium, DEVICE, 0, f)  # a fresh consent carries nonce 1
    assert consortium.device(DEVICE)["active"] and consortium.device(DEVICE)["nonce"] == 2


def test_council_unbinds_a_device(consortium, council, factory, factory2, outsider):
    f = {"from": factory}
    expires_at = chain.time() + DAY
    bound = authorize(consortium, DEVICE, expires_at, f).block_number
    stale = consent(consortium, factory, DEVICE, 0)  # given before the unbinding
    with err("MissingRole", factory, COUNCIL):
        consortium.proposeUnbindDevice(DEVICE, f)

    tx = consortium.proposeUnbindDevice(DEVICE, {"from": council[0]})
    id_ = pid(tx)
    created = tx.events["ProposalCreated"]
    assert (created["kind"], created["target"]) == (UNBIND_DEVICE, DEVICE)
    assert "DeviceUnbound" not in tx.events and consortium.device(DEVICE)["active"]
    tx = consortium.approve(id_, {"from": council[1]})
    assert list(tx.events.keys()) == ["ProposalApproved", "DeviceUnbound", "ProposalExecuted"]
    unbound = tx.events["DeviceUnbound"]
    assert (unbound["owner"], unbound["device"], unbound["proposalId"]) == (factory, DEVICE, id_)

    d = consortium.device(DEVICE)
    assert (d["owner"], d["active"], d["expiresAt"], d["authorizedAt"], d["nonce"]) == (
        ZERO_ADDRESS,
        False,
        0,
        0,
        2,
    )
    assert as_tuple(consortium.deviceAt(DEVICE, bound)) == (factory, True, expires_at)
    assert as_tuple(consortium.deviceAt(DEVICE, tx.block_number)) == (ZERO_ADDRESS, False, 0)
    assert consortium.isAuthorizedSigner(factory, DEVICE, FACTORY, bound, expires_at - 1)
    assert not consortium.isAuthorizedSigner(
        factory, DEVICE, FACTORY, tx.block_number, expires_at - 1
    )
    # the former owner can neither revoke it nor re-bind it with a consent given earlier
    with err("NotDeviceOwner", DEVICE, factory):
        consortium.revokeDevice(DEVICE, f)
    with err("InvalidDeviceSignature", DEVICE, recovered(consortium, factory, DEVICE, 0, stale)):
        consortium.authorizeDevice(DEVICE, 0, stale, f)
    assert consortium.device(DEVICE)["owner"] == ZERO_ADDRESS
    # unbinding an unbound key is refused, at proposal and at execution
    with err("DeviceNotBound", DEVICE):
        consortium.proposeUnbindDevice(DEVICE, {"from": council[0]})
    # the address is free: another factory may bind it with its consent, or it is admitted
    authorize(consortium, DEVICE, 0, {"from": factory2})
    assert consortium.device(DEVICE)["owner"] == factory2
    decide(consortium, "proposeUnbindDevice", DEVICE)
    decide(consortium, "proposeAdmit", DEVICE, BUYER, META, KEY)
    assert consortium.hasRole(DEVICE, BUYER)


def test_unbinding_is_revalidated_at_execution(consortium, council, factory):
    authorize(consortium, DEVICE, 0, {"from": factory})
    first = pid(consortium.proposeUnbindDevice(DEVICE, {"from": council[0]}))
    second = pid(consortium.proposeUnbindDevice(DEVICE, {"from": council[1]}))
    consortium.approve(first, {"from": council[2]})
    with err("DeviceNotBound", DEVICE):
        consortium.approve(second, {"from": council[2]})
    assert not consortium.proposal(second)["executed"]


def test_an_active_factory_key_blocks_admission_until_unbound(consortium, council, factory):
    authorize(consortium, DEVICE, 0, {"from": factory})
    with err("AccountIsDevice", DEVICE):
        consortium.proposeAdmit(DEVICE, BUYER, META, KEY, {"from": council[0]})
    decide(consortium, "proposeUnbindDevice", DEVICE)
    decide(consortium, "proposeAdmit", DEVICE, BUYER, META, KEY)
    assert consortium.hasRole(DEVICE, BUYER)


def test_bindings_of_a_suspended_factory_block_nothing(consortium, council, factory, factory2):
    """Once its owner is no longer an active factory, a binding neither keeps the key from
    being admitted nor from being bound (with its consent) to another factory; readmitting
    the owner does not bring a released binding back."""
    authorize(consortium, DEVICE, 0, {"from": factory})
    authorize(consortium, DEVICE_2, 0, {"from": factory})
    decide(consortium, "proposeSuspend", factory)

    tx = authorize(consortium, DEVICE, 0, {"from": factory2})
    unbound = tx.events["DeviceUnbound"]
    assert (unbound["owner"], unbound["device"], unbound["proposalId"]) == (factory, DEVICE, 0)
    assert consortium.device(DEVICE)["owner"] == factory2
    assert consortium.isAuthorizedSigner(factory2, DEVICE, FACTORY, tx.block_number, 0)

    tx = decide(consortium, "proposeAdmit", DEVICE_2, BUYER, META, KEY)
    assert tx.events["DeviceUnbound"]["owner"] == factory
    assert consortium.hasRole(DEVICE_2, BUYER)

    readmitted = decide(consortium, "proposeReadmit", factory).block_number
    assert consortium.device(DEVICE)["owner"] == factory2
    assert not consortium.isAuthorizedSigner(factory, DEVICE, FACTORY, readmitted, 0)
    assert not consortium.isAuthorizedSigner(factory, DEVICE_2, FACTORY, readmitted, 0)
    with err("DeviceTaken", DEVICE, factory2):
        authorize(consortium, DEVICE, 0, {"from": factory})


def test_a_factory_that_lost_its_role_does_not_hold_its_keys(consortium, factory, factory2):
    authorize(consortium, DEVICE, 0, {"from": factory})
    decide(consortium, "proposeSetRoles", factory, BUYER)
    authorize(consortium, DEVICE, 0, {"from": factory2})
    assert consortium.device(DEVICE)["owner"] == factory2
