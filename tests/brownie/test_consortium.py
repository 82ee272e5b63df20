"""Consortium: membership by council quorum, device keys, and history at past blocks.

The `consortium` fixture (conftest.py) has three founding council members (quorum 2, 7-day
proposals), an active factory (accounts[3]) and an active designer (accounts[4]); every
test starts from that state.
"""

import brownie
import pytest
from brownie import ZERO_ADDRESS, chain, web3

DAY = 86400
TTL = 7 * DAY
COUNCIL, FACTORY, DESIGNER, AUDITOR, BUYER = 1, 2, 4, 8, 16
ALL_ROLES = 31
NONE, ACTIVE, SUSPENDED = 0, 1, 2
ADMIT, SET_ROLES, SUSPEND, READMIT, SET_QUORUM = range(5)

META = b"\x11" * 32
KEY = b"\x22" * 32
ZERO32 = b"\x00" * 32

DEVICE = web3.to_checksum_address("0x" + "d1" * 20)
DEVICE_2 = web3.to_checksum_address("0x" + "d2" * 20)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _arg(value):
    address = getattr(value, "address", value)
    if isinstance(address, str) and address.startswith("0x") and len(address) == 42:
        return address.lower()  # brownie decodes error arguments to lowercase addresses
    return str(value)


def err(name, *args):
    """Expect a revert with custom error `name(args)`, as brownie decodes it."""
    return brownie.reverts(f"{name}: {', '.join(_arg(a) for a in args)}")


def pid(tx):
    return tx.events["ProposalCreated"]["id"]


def decide(consortium, function, *args):
    """Have council[0] propose `function(*args)` and council[1] approve it (quorum 2);
    returns the executing transaction."""
    tx = getattr(consortium, function)(*args, {"from": brownie.accounts[0]})
    return consortium.approve(pid(tx), {"from": brownie.accounts[1]})


def as_tuple(value):
    return tuple(value)


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
    consortium.authorizeDevice(DEVICE, 0, {"from": factory})
    o = {"from": outsider}
    c = consortium
    cases = {
        "proposeAdmit": (
            lambda: c.proposeAdmit(outsider, FACTORY, META, KEY, o),
            ("NotCouncil", outsider),
        ),
        "proposeSetRoles": (
            lambda: c.proposeSetRoles(factory, ALL_ROLES, o),
            ("NotCouncil", outsider),
        ),
        "proposeSuspend": (lambda: c.proposeSuspend(council[1], o), ("NotCouncil", outsider)),
        "proposeReadmit": (lambda: c.proposeReadmit(factory, o), ("NotCouncil", outsider)),
        "proposeQuorum": (lambda: c.proposeQuorum(1, o), ("NotCouncil", outsider)),
        "approve": (lambda: c.approve(open_id, o), ("NotCouncil", outsider)),
        "cancel": (lambda: c.cancel(open_id, o), ("NotProposer", open_id, outsider)),
        "updateProfile": (lambda: c.updateProfile(META, KEY, o), ("NotMember", outsider)),
        "authorizeDevice": (lambda: c.authorizeDevice(DEVICE_2, 0, o), ("NotMember", outsider)),
        "revokeDevice": (lambda: c.revokeDevice(DEVICE, o), ("NotDeviceOwner", DEVICE, outsider)),
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
    with err("NotCouncil", factory):
        consortium.proposeAdmit(brownie.accounts[7], BUYER, META, KEY, f)
    with err("NotCouncil", factory):
        consortium.proposeSetRoles(factory, FACTORY | COUNCIL, f)
    with err("NotCouncil", factory):
        consortium.proposeSuspend(designer, f)
    with err("NotCouncil", factory):
        consortium.proposeQuorum(1, f)
    with err("NotCouncil", factory):
        consortium.approve(open_id, f)


def test_suspended_council_member_loses_its_powers(consortium, council):
    decide(consortium, "proposeSuspend", council[2])
    s = {"from": council[2]}
    open_id = pid(consortium.proposeQuorum(1, {"from": council[0]}))
    with err("NotCouncil", council[2]):
        consortium.approve(open_id, s)
    with err("NotCouncil", council[2]):
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
    consortium.authorizeDevice(DEVICE, 0, {"from": factory})
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
    consortium.authorizeDevice(DEVICE, 0, {"from": factory})
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
    with err("NotCouncil", council[2]):
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
            consortium.authorizeDevice(DEVICE, 0, dict(by_factory)),
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
    tx = consortium.authorizeDevice(DEVICE, expires_at, {"from": factory})
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
        consortium.authorizeDevice(DEVICE, 0, {"from": designer})
    with err("MissingRole", council[0], FACTORY):
        consortium.authorizeDevice(DEVICE, 0, {"from": council[0]})
    with err("ZeroAddress"):
        consortium.authorizeDevice(ZERO_ADDRESS, 0, f)
    with err("DeviceIsMember", designer):
        consortium.authorizeDevice(designer, 0, f)
    with err("DeviceIsMember", factory):
        consortium.authorizeDevice(factory, 0, f)
    now = chain[-1].timestamp
    with err("InvalidExpiry", now):
        consortium.authorizeDevice(DEVICE, now, f)
    with err("InvalidExpiry", 1):
        consortium.authorizeDevice(DEVICE, 1, f)

    consortium.authorizeDevice(DEVICE, 0, f)
    with err("DeviceTaken", DEVICE, factory):
        consortium.authorizeDevice(DEVICE, 0, {"from": factory2})

    decide(consortium, "proposeSuspend", factory)
    with err("MemberNotActive", factory):
        consortium.authorizeDevice(DEVICE_2, 0, f)


def test_reauthorizing_renews_the_device(consortium, factory):
    first = consortium.authorizeDevice(DEVICE, chain.time() + 60, {"from": factory})
    later = chain.time() + 30 * DAY
    tx = consortium.authorizeDevice(DEVICE, later, {"from": factory})
    assert tx.events["DeviceAuthorized"]["expiresAt"] == later
    d = consortium.device(DEVICE)
    assert d["expiresAt"] == later and d["authorizedAt"] == tx.block_number > first.block_number


def test_revoke_device(consortium, council, factory, factory2):
    with err("NotDeviceOwner", DEVICE, factory):
        consortium.revokeDevice(DEVICE, {"from": factory})  # never authorised
    consortium.authorizeDevice(DEVICE, 0, {"from": factory})
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
        consortium.authorizeDevice(DEVICE, 0, {"from": factory2})
    consortium.authorizeDevice(DEVICE, 0, {"from": factory})
    assert consortium.device(DEVICE)["active"]


def test_suspended_owner_can_still_revoke(consortium, factory):
    consortium.authorizeDevice(DEVICE, 0, {"from": factory})
    decide(consortium, "proposeSuspend", factory)
    tx = consortium.revokeDevice(DEVICE, {"from": factory})
    assert "DeviceRevoked" in tx.events
    assert not consortium.device(DEVICE)["active"]


def test_revoked_device_key_can_be_admitted_and_then_is_no_device(consortium, factory):
    consortium.authorizeDevice(DEVICE, 0, {"from": factory})
    consortium.revokeDevice(DEVICE, {"from": factory})
    decide(consortium, "proposeAdmit", DEVICE, BUYER, META, KEY)
    assert consortium.hasRole(DEVICE, BUYER)
    with err("DeviceIsMember", DEVICE):
        consortium.authorizeDevice(DEVICE, 0, {"from": factory})


def test_device_expiry(consortium, council, factory):
    expires_at = chain.time() + 3600
    block = consortium.authorizeDevice(DEVICE, expires_at, {"from": factory}).block_number
    assert consortium.isAuthorizedSigner(factory, DEVICE, FACTORY, block, expires_at - 1)
    assert not consortium.isAuthorizedSigner(factory, DEVICE, FACTORY, block, expires_at)
    assert not consortium.isAuthorizedSigner(factory, DEVICE, FACTORY, block, expires_at + 1)

    chain.sleep(7200)
    chain.mine()
    with err("InvalidExpiry", expires_at):
        consortium.authorizeDevice(DEVICE, expires_at, {"from": factory})
    # expired but not revoked: still an authorised key, so not admissible
    with err("AccountIsDevice", DEVICE):
        consortium.proposeAdmit(DEVICE, BUYER, META, KEY, {"from": council[0]})
    renewed = consortium.authorizeDevice(DEVICE, 0, {"from": factory}).block_number
    assert consortium.isAuthorizedSigner(factory, DEVICE, FACTORY, renewed, 2**255)


def test_device_history_and_authorized_signers_at_past_blocks(
    consortium, factory, designer, outsider
):
    before = chain.height
    expires_at = chain.time() + DAY
    authorized = consortium.authorizeDevice(DEVICE, expires_at, {"from": factory}).block_number
    chain.mine(2)
    revoked = consortium.revokeDevice(DEVICE, {"from": factory}).block_number
    reauthorized = consortium.authorizeDevice(DEVICE, 0, {"from": factory}).block_number
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
