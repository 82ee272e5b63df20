"""Turn a contract's custom-error revert data into a sentence a user can act on."""

from __future__ import annotations

from functools import cache
from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from ledger.core.errors import ContractRevert
from ledger.eth.compiler import artifacts

# One sentence per custom error; positional fields are the error's arguments.
MESSAGES: dict[str, str] = {
    # Traceability
    "SequenceGap": "the next step to anchor is {0}; a range from {1} would leave a gap",
    "RangeOverlap": "steps from {0} on are unanchored; a range from {1} overlaps anchored ones",
    "EmptyRange": "range {0}..{1} is empty",
    "HeadMismatch": "root {0} and head {1} are not the split's last anchor: the range does "
    "not continue the anchored chain",
    "UnknownAnchor": "split {1} of job {0} has no anchor {2}",
    "NotCouncil": "{0} is not an active council member",
    "NotMember": "{0} is not a member of the consortium",
    "MemberNotActive": "member {0} is suspended",
    "MissingRole": "member {0} does not hold the {1} role",
    "AlreadyMember": "{0} is already a member",
    "MemberNotSuspended": "member {0} is not suspended",
    "InvalidRoles": "roles bitmask {0} is invalid (use council, factory, designer, auditor, buyer)",
    "ZeroAddress": "the zero address cannot be used here",
    "DuplicateMember": "{0} is listed twice",
    "UnknownProposal": "there is no proposal {0}",
    "ProposalClosed": "proposal {0} is already executed or cancelled",
    "ProposalExpired": "proposal {0} expired at {1}",
    "AlreadyApproved": "proposal {0} was already approved by {1}",
    "NotProposer": "only the proposer may cancel proposal {0} ({1} is not)",
    "InvalidQuorum": "quorum {0} is invalid for a council of {1}",
    "InvalidTtl": "proposal lifetime must be positive",
    "LastCouncilMember": "{0} is the last active council member",
    "DeviceIsMember": "{0} is a member and cannot be a device key",
    "AccountIsDevice": "{0} is a device key and cannot become a member",
    "DeviceTaken": "device key {0} belongs to {1}",
    "InvalidDeviceSignature": "the binding is not signed by device key {0} (the signature "
    "recovers to {1}): only the device key itself can consent to its binding",
    "DeviceNotBound": "device key {0} is not bound to any factory",
    "DeviceNotAuthorized": "device key {0} is not authorised",
    "NotDeviceOwner": "device key {0} does not belong to {1}",
    "InvalidExpiry": "expiry {0} is not in the future",
    "FutureBlock": "block {0} is in the future",
    # DesignRegistry
    "NotDesigner": "{0} is not an active member with the designer role",
    "NotRegistrant": "{1} is not the registrant of design {0}",
    "DesignExists": "design {0} is already registered by {1} at block {2}",
    "UnknownDesign": "design {0} is not recorded on chain: it is not registered, or not revealed "
    "yet (`cofab design reveal`)",
    "UnknownParent": "parent design {0} is not registered",
    "ParentRevoked": "parent design {0} is revoked",
    "DesignIsRevoked": "design {0} is revoked",
    "DesignIsSuperseded": "design {0} is superseded: license its newer version",
    "ZeroHash": "a zero hash cannot be used here",
    "CommitmentExists": "commitment {0} is already recorded for {1} at block {2}",
    "UnknownCommitment": "{1} never committed {0}: the design, metadata, parent or salt differ "
    "from the commitment",
    "EmptyBatch": "a batch needs at least one design",
    "BatchExists": "batch {0} is already registered by {1} at block {2}",
    "UnknownBatch": "{1} registered no batch with root {0}",
    "InvalidProof": "the Merkle proof does not place design {1} in batch {0}",
    "LicenseeNotMember": "{0} is not an active member of the consortium",
    "InvalidRoyalty": "royalty {0} ppm exceeds 1000000 (100%)",
    "NoLicence": "{1} holds no active licence of design {0}",
    "InvalidSuccessor": "design {1} cannot supersede design {0}: it must be another unrevoked "
    "design of the same designer",
    # JobBoard
    "NotActiveBuyer": "{0} is not an active member with the buyer role",
    "NotActiveFactory": "{0} is not an active member with the factory role",
    "DesignNotLicensed": "design {0} is not licensed to {1}",
    "FeesTooHigh": "the royalty ({0} ppm) and the platform fee ({1} ppm) leave nothing for "
    "the factories",
    "InvalidToken": "token {0} is not a contract (name an ERC-20 with --token)",
    "ZeroQuantityOrPrice": "quantity and price must be positive",
    "InvalidDeadline": "deadline {0} is not in the future",
    "UnknownJob": "there is no job {0}",
    "UnknownSplit": "job {0} has no split {1}",
    "NotJobBuyer": "{1} is not the buyer of job {0}",
    "NotSplitFactory": "{2} is not the factory of split {1} of job {0}",
    "JobNotInStatus": "job {0} is {1}, which does not allow this",
    "SplitNotInStatus": "split {1} of job {0} is {2}, which does not allow this",
    "JobDeadlinePassed": "the deadline of job {0} ({1}) has passed",
    "NotYetExpired": "job {0} cannot expire before its deadline ({1})",
    "InvalidSplitCount": "{0} splits: an order needs 1 to 64",
    "ZeroSplitQuantity": "split {0} has a zero quantity",
    "InvalidDependencies": "split {0} may depend only on earlier splits (mask {1})",
    "DependencyNotDelivered": "split {1} of job {0} needs split {2} delivered first",
    "LotsNotReceived": "split {1} of job {0} has not received the lots of split {2}: hand them "
    "over first",
    "NotADependency": "split {2} of job {0} does not depend on split {1}",
    "AlreadyHandedOver": "the lots of split {1} of job {0} were already handed over to split {2}",
    "SignatureExpired": "the signature expired at {0}",
    "InvalidAcceptanceSignature": "the acceptance of split {1} of job {0} is signed by {2}, not "
    "by its factory",
    "HandoverNotSigned": "the hand-over lacks the signature of the factory of split {1} of job {0}",
    "InvalidHandoverSignature": "{2} may not sign hand-overs for the factory of split {1} of "
    "job {0}",
    "NotSettlement": "{0} is not the Settlement",
    "NonceAlreadyUsed": "nonce {1} of {0} is already used or revoked: sign the acceptance again",
    "HandoverExceedsQuantity": "split {1} of job {0} has {3} units left to hand over, not {2}",
    "InvalidReviewPeriod": "review period {0} s exceeds 365 days",
    "ReviewPeriodNotOver": "the buyer may review the delivery of split {1} of job {0} until {2}",
    # Settlement
    "NotDeployer": "{0} is not the deployer of the Settlement",
    "AlreadyLinked": "already linked to {0}",
    "NotJobBoard": "{0} is not the JobBoard",
    "NotDisputes": "{0} may not apply dispute rulings",
    "InvalidFee": "platform fee {0} ppm must be below 1000000",
    "EscrowExists": "job {0} is already funded",
    "EscrowNotInStatus": "the escrow of job {0} is {1}, which does not allow this",
    "DepositShortfall": "the deposit of job {0} brought {2} instead of {1} (fee-on-transfer "
    "tokens are not supported)",
    "InvalidShare": "split {0} needs a factory and a positive share",
    "SharesDoNotSum": "the shares sum to {0} ppm: the splits, the designer royalty and the "
    "platform fee must sum to exactly 1000000",
    "SplitClosed": "split {1} of job {0} is already paid, refunded or ruled on",
    "NoSuchPayee": "job {0} has no split {1}",
    "PayoutTooHigh": "payout {0} exceeds the split's amount {1}",
    "ZeroAmount": "the amount must be positive",
    "InsufficientCredit": "{0} has {1} to withdraw, less than the {2} asked for",
    "SafeERC20FailedOperation": "token {0} refused the transfer (it returned false or reverted)",
    "NotMinter": "{0} may not mint the demo token",
    "ERC20InsufficientBalance": "{0} holds {1} of the token, {2} is needed",
    "ERC20InsufficientAllowance": "{0} may spend {1} of the token, {2} is needed: approve it first",
    "SplitFrozen": "split {1} of job {0} is under an open dispute: its payout is frozen until "
    "the dispute is ruled on or lapses",
    # Disputes
    "InvalidPeriods": "the evidence period ({0} s) and the ruling period ({1} s) must be positive",
    "InvalidDisputeQuorum": "dispute quorum {0} must be 1 to 64 votes",
    "BoardMismatch": "the Settlement moves escrow for {1}, not for the JobBoard {0}",
    "UnknownDispute": "there is no dispute {0}",
    "NotJobParty": "{2} is neither the buyer of job {0} nor the factory of its split {1}",
    "DisputeAlreadyOpen": "split {1} of job {0} is already under open dispute {2}",
    "AlreadyDisputed": "{2} already opened a dispute on split {1} of job {0} (one per party "
    "and split)",
    "EmptyReason": "a dispute needs a reason",
    "TextTooLong": "the text is {0} bytes; at most {1} are allowed",
    "DisputeNotOpen": "dispute {0} is {1}, no longer open",
    "NotDisputeParty": "{1} is neither the claimant nor the respondent of dispute {0}",
    "EvidencePeriodOver": "the evidence period of dispute {0} ended at {1}",
    "VotingNotOpen": "voting on dispute {0} opens when the respondent has submitted evidence "
    "or after the evidence deadline ({1})",
    "RulingPeriodOver": "the ruling deadline of dispute {0} ({1}) has passed: it can only lapse",
    "RulingPeriodNotOver": "dispute {0} can lapse only after its ruling deadline ({1})",
    "NotActiveAuditor": "{0} is not an active member with the auditor role",
    "AuditorIsParty": "auditor {1} is a party to the job of dispute {0} (its buyer, designer "
    "or a factory) and may not vote",
    "AlreadyVoted": "auditor {1} already voted in dispute {0}",
    "InvalidPayoutShare": "payout share {0} ppm exceeds 1000000 (100%)",
}

ROLE_NAMES = {1: "council", 2: "factory", 4: "designer", 8: "auditor", 16: "buyer"}
_JOB_STATUSES = ("none", "created", "funded", "split", "in_production", "delivered")
JOB_STATUS_NAMES = dict(enumerate([*_JOB_STATUSES, "accepted", "settled", "cancelled", "expired"]))
SPLIT_STATUS_NAMES = dict(
    enumerate(["none", "assigned", "accepted", "delivered", "paid", "ruled", "refunded"])
)
ESCROW_STATUS_NAMES = dict(enumerate(["unfunded", "held", "allocated", "closed"]))
DISPUTE_STATUS_NAMES = dict(enumerate(["none", "open", "ruled", "lapsed"]))

# Arguments shown by name instead of number: error -> {argument index: names}.
ARG_NAMES: dict[str, dict[int, dict[int, str]]] = {
    "MissingRole": {1: ROLE_NAMES},
    "JobNotInStatus": {1: JOB_STATUS_NAMES},
    "SplitNotInStatus": {2: SPLIT_STATUS_NAMES},
    "EscrowNotInStatus": {1: ESCROW_STATUS_NAMES},
    "DisputeNotOpen": {1: DISPUTE_STATUS_NAMES},
}


@cache
def _registry() -> dict[bytes, tuple[str, list[str]]]:
    found: dict[bytes, tuple[str, list[str]]] = {}
    for art in artifacts().values():
        for item in art.abi:
            if item.get("type") != "error":
                continue
            types = [_abi_type(i) for i in item["inputs"]]
            signature = f"{item['name']}({','.join(types)})"
            found[function_signature_to_4byte_selector(signature)] = (item["name"], types)
    return found


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


# Refusals that are really "no such thing" or "bad argument" rather than a rule conflict.
STATUS: dict[str, int] = {"UnknownProposal": 404, "FutureBlock": 422, "InvalidRoles": 422}
STATUS.update({"UnknownDesign": 404, "UnknownBatch": 404, "InvalidRoyalty": 422})
STATUS.update({"UnknownCommitment": 404})
STATUS.update({"UnknownJob": 404, "UnknownSplit": 404, "NoSuchPayee": 404})
STATUS.update({"SharesDoNotSum": 422, "InvalidDependencies": 422, "ZeroSplitQuantity": 422})
STATUS.update({"InvalidDeadline": 422, "ZeroQuantityOrPrice": 422, "InvalidSplitCount": 422})
STATUS.update({"InvalidReviewPeriod": 422})
STATUS.update({"UnknownDispute": 404, "InvalidPayoutShare": 422, "EmptyReason": 422})
STATUS.update({"TextTooLong": 422})
STATUS.update({"InvalidDeviceSignature": 403})


def _format(value: Any, abi_type: str) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def decode_revert(data: str | bytes | None, fallback: str = "") -> ContractRevert:
    """Build the ContractRevert for raw revert data (custom error, Error(string) or Panic)."""
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else (data or b"")
    )
    selector, body = raw[:4], raw[4:]
    if selector == bytes.fromhex("08c379a0"):
        (reason,) = decode(["string"], body)
        return ContractRevert(reason, error="Error", args=(reason,))
    if selector == bytes.fromhex("4e487b71"):
        (code,) = decode(["uint256"], body)
        return ContractRevert(f"the contract panicked (code {hex(code)})", "Panic", (code,))
    known = _registry().get(selector)
    if known is None:
        text = fallback or (f"reverted with unknown data 0x{raw.hex()}" if raw else "reverted")
        return ContractRevert(text)
    name, types = known
    values = tuple(_format(v, t) for v, t in zip(decode(types, body), types, strict=True))
    names = ARG_NAMES.get(name, {})
    shown = [names[i].get(v, str(v)) if i in names else str(v) for i, v in enumerate(values)]
    template = MESSAGES.get(name)
    text = template.format(*shown) if template else f"{name}({', '.join(shown)})"
    revert = ContractRevert(text, error=name, args=values)
    revert.status = STATUS.get(name, ContractRevert.status)
    return revert
