"""A job as the chain records it: every event about it, in order, with block times.

Only the chain is read: the JobBoard's address leads to every other contract
(`links()`, `Settlement.disputes()`, `Traceability`), so an auditor needs no cofab node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils import event_abi_to_log_topic
from pydantic import Field, field_serializer
from web3 import Web3
from web3.contract import Contract

from ledger.core.errors import NotFound, jsonable
from ledger.core.types import Record
from ledger.eth.chain import block_timestamp
from ledger.eth.contract import contract_at

ZERO_ADDRESS = "0x" + "00" * 20


class Event(Record):
    """A chain event about a job, with its block's time."""

    contract: str = Field(description="JobBoard | Settlement | DesignRegistry | Traceability | ...")
    name: str = Field(serialization_alias="event")
    args: dict[str, Any]
    block: int
    log_index: int = Field(exclude=True)
    tx_hash: str = Field(serialization_alias="tx")
    timestamp: int = Field(serialization_alias="time", description="the block's time, unix seconds")

    @field_serializer("args")
    def _args(self, args: dict[str, Any]) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in sorted(args.items())}


@dataclass
class Contracts:
    w3: Web3
    job_board: Contract
    consortium: Contract
    designs: Contract
    settlement: Contract
    traceability: Contract | None
    disputes: Contract | None

    @classmethod
    def discover(
        cls, w3: Web3, job_board: str, traceability: str | None = None, disputes: str | None = None
    ) -> Contracts:
        board = contract_at(w3, "JobBoard", job_board)
        if not w3.eth.get_code(board.address):
            raise NotFound(f"no JobBoard contract at {job_board} on this chain")
        consortium, licences, settlement = board.functions.links().call()
        settle = contract_at(w3, "Settlement", settlement)
        if disputes is None:
            found = settle.functions.disputes().call()
            disputes = None if int(found, 16) == 0 else found
        return cls(
            w3=w3,
            job_board=board,
            consortium=contract_at(w3, "Consortium", consortium),
            designs=contract_at(w3, "DesignRegistry", licences),
            settlement=settle,
            traceability=contract_at(w3, "Traceability", traceability) if traceability else None,
            disputes=(
                contract_at(w3, "Disputes", disputes) if disputes and _has(w3, disputes) else None
            ),
        )


def _has(w3: Web3, address: str) -> bool:
    try:
        return bool(w3.eth.get_code(Web3.to_checksum_address(address)))
    except Exception:  # noqa: BLE001 - no code, no contract
        return False


@dataclass
class JobRecord:
    job_id: int
    job: dict[str, Any]
    splits: list[dict[str, Any]]
    escrow: dict[str, Any]
    events: list[Event] = field(default_factory=list)

    def of(self, contract: str, name: str) -> list[Event]:
        return [e for e in self.events if e.contract == contract and e.name == name]


class _Blocks:
    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self._time: dict[int, int] = {}

    def time(self, number: int) -> int:
        if number not in self._time:
            self._time[number] = block_timestamp(self.w3, number)
        return self._time[number]


def _struct(raw: Any, abi_outputs: list[dict[str, Any]]) -> dict[str, Any]:
    comps = abi_outputs[0]["components"]
    return {c["name"]: jsonable(v) for c, v in zip(comps, raw, strict=True)}


def _fn_outputs(contract: Contract, name: str) -> list[dict[str, Any]]:
    for item in contract.abi:
        if item["type"] == "function" and item.get("name") == name:
            return [dict(o) for o in item.get("outputs", [])]
    raise KeyError(f"{contract.address} has no function {name}")


def _logs(
    w3: Web3,
    sources: list[tuple[str, Contract, tuple[str, ...]]],
    arg: str,
    value: int | bytes,
    blocks: _Blocks,
) -> list[Event]:
    """Every event named in `sources` whose indexed argument `arg` is `value`.

    One `eth_getLogs` per position of `arg` among the events' indexed inputs (the topic
    filter lists every event's signature and the contracts' addresses), not one per event:
    a node scans its log index once for all of them. Logs are told apart by their
    contract's address and signature, as a node with the ABIs would.
    """
    groups: dict[int, dict[tuple[ChecksumAddress, bytes], tuple[str, Contract, str]]] = {}
    for label, contract, names in sources:
        for item in contract.abi:
            if item["type"] != "event" or item.get("name") not in names:
                continue
            indexed = [i["name"] for i in item["inputs"] if i.get("indexed")]
            members = groups.setdefault(indexed.index(arg) + 1, {})
            members[(contract.address, bytes(event_abi_to_log_topic(item)))] = (
                label,
                contract,
                str(item["name"]),
            )
    topic = value.to_bytes(32, "big") if isinstance(value, int) else value
    out = []
    for position, members in sorted(groups.items()):
        topics: list[Any] = [sorted({"0x" + t.hex() for _, t in members})]
        topics += [None] * (position - 1) + ["0x" + topic.hex()]
        addresses = sorted({a for a, _ in members})
        for log in w3.eth.get_logs({"fromBlock": 0, "address": addresses, "topics": topics}):
            address = Web3.to_checksum_address(log["address"])
            source = members.get((address, bytes(log["topics"][0])))
            if source is None:  # another contract's event with the same signature
                continue
            label, contract, name = source
            decoded = getattr(contract.events, name)().process_log(log)
            block = int(log["blockNumber"])
            out.append(
                Event(
                    contract=label,
                    name=name,
                    args=dict(decoded["args"]),
                    block=block,
                    log_index=int(log["logIndex"]),
                    tx_hash=log["transactionHash"].to_0x_hex(),
                    timestamp=blocks.time(block),
                )
            )
    return out


JOB_EVENTS = (
    "JobCreated",
    "JobStatusChanged",
    "SplitAssigned",
    "SplitAccepted",
    "CustodyHandedOver",
    "SplitDelivered",
    "DeliveryAccepted",
    "SplitRuled",
)
SETTLEMENT_EVENTS = (
    "Deposited",
    "ShareAllocated",
    "FeesAllocated",
    "SplitReleased",
    "FeesReleased",
    "Refunded",
    "RulingApplied",
)
DISPUTE_EVENTS = ("DisputeOpened", "EvidenceSubmitted", "VoteCast", "DisputeRuled", "DisputeLapsed")
DESIGN_EVENTS = (
    "DesignRegistered",
    "DesignClaimed",
    "DesignRevoked",
    "DesignSuperseded",
    "DesignPreempted",
    "LicenceGranted",
    "LicenceRevoked",
)


def load(contracts: Contracts, job_id: int) -> JobRecord:
    """Read job `job_id` and every event about it."""
    board = contracts.job_board
    if job_id < 1 or job_id > board.functions.jobCount().call():
        raise NotFound(f"there is no job {job_id} on this chain")
    job = _struct(board.functions.job(job_id).call(), _fn_outputs(board, "job"))
    split_abi = _fn_outputs(board, "splitOf")
    splits = [
        _struct(board.functions.splitOf(job_id, i).call(), split_abi)
        for i in range(int(job["splitCount"]))
    ]
    escrow = _struct(
        contracts.settlement.functions.escrow(job_id).call(),
        _fn_outputs(contracts.settlement, "escrow"),
    )
    blocks = _Blocks(contracts.w3)
    by_job: list[tuple[str, Contract, tuple[str, ...]]] = [
        ("JobBoard", board, JOB_EVENTS),
        ("Settlement", contracts.settlement, SETTLEMENT_EVENTS),
    ]
    if contracts.traceability is not None:
        by_job.append(("Traceability", contracts.traceability, ("StepsAnchored",)))
    if contracts.disputes is not None:
        by_job.append(("Disputes", contracts.disputes, DISPUTE_EVENTS))
    design = bytes.fromhex(str(job["designId"])[2:])
    events = _logs(contracts.w3, by_job, "jobId", job_id, blocks)
    registry: list[tuple[str, Contract, tuple[str, ...]]] = [
        ("DesignRegistry", contracts.designs, DESIGN_EVENTS)
    ]
    events += _logs(contracts.w3, registry, "designId", design, blocks)
    events.sort(key=lambda e: (e.block, e.log_index))
    for e in events:  # a split's step label is only in its SplitAssigned event
        if e.contract == "JobBoard" and e.name == "SplitAssigned":
            i = int(e.args["splitId"])
            if 0 <= i < len(splits):
                splits[i]["step"] = e.args["step"]
    return JobRecord(job_id, job, splits, escrow, events)
