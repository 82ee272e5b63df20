"""A job as the chain records it: every event about it, in order, with block times.

Only the chain is read: the JobBoard's address leads to every other contract
(`links()`, `Settlement.disputes()`, `Traceability`), so an auditor needs no cofab node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from web3 import Web3
from web3.contract import Contract

from ledger.core.errors import NotFound, jsonable
from ledger.eth.chain import block_timestamp
from ledger.eth.compiler import artifact

ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class Event:
    contract: str
    name: str
    args: dict[str, Any]
    block: int
    log_index: int
    tx_hash: str
    timestamp: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "event": self.name,
            "args": {k: jsonable(v) for k, v in sorted(self.args.items())},
            "block": self.block,
            "tx": self.tx_hash,
            "time": self.timestamp,
        }


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
        def bind(address: str, name: str) -> Contract:
            return w3.eth.contract(
                address=Web3.to_checksum_address(address), abi=artifact(name).abi
            )

        board = bind(job_board, "JobBoard")
        if not w3.eth.get_code(board.address):
            raise NotFound(f"no JobBoard contract at {job_board} on this chain")
        consortium, licences, settlement = board.functions.links().call()
        settle = bind(settlement, "Settlement")
        if disputes is None:
            found = settle.functions.disputes().call()
            disputes = None if int(found, 16) == 0 else found
        return cls(
            w3=w3,
            job_board=board,
            consortium=bind(consortium, "Consortium"),
            designs=bind(licences, "DesignRegistry"),
            settlement=settle,
            traceability=bind(traceability, "Traceability") if traceability else None,
            disputes=bind(disputes, "Disputes") if disputes and _has(w3, disputes) else None,
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
    contract: Contract, label: str, name: str, filters: dict[str, Any], blocks: _Blocks
) -> list[Event]:
    event = getattr(contract.events, name)()
    out = []
    for log in event.get_logs(from_block=0, argument_filters=filters):
        block = int(log["blockNumber"])
        out.append(
            Event(
                label,
                name,
                dict(log["args"]),
                block,
                int(log["logIndex"]),
                log["transactionHash"].to_0x_hex(),
                blocks.time(block),
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
    events: list[Event] = []
    for name in JOB_EVENTS:
        events += _logs(board, "JobBoard", name, {"jobId": job_id}, blocks)
    for name in SETTLEMENT_EVENTS:
        events += _logs(contracts.settlement, "Settlement", name, {"jobId": job_id}, blocks)
    design = bytes.fromhex(str(job["designId"])[2:])
    for name in (
        "DesignRegistered",
        "DesignClaimed",
        "DesignRevoked",
        "DesignSuperseded",
        "DesignPreempted",
        "LicenceGranted",
        "LicenceRevoked",
    ):
        events += _logs(contracts.designs, "DesignRegistry", name, {"designId": design}, blocks)
    if contracts.traceability is not None:
        events += _logs(
            contracts.traceability, "Traceability", "StepsAnchored", {"jobId": job_id}, blocks
        )
    if contracts.disputes is not None:
        for name in DISPUTE_EVENTS:
            if any(i.get("name") == name for i in contracts.disputes.abi):
                events += _logs(contracts.disputes, "Disputes", name, {"jobId": job_id}, blocks)
    events.sort(key=lambda e: (e.block, e.log_index))
    return JobRecord(job_id, job, splits, escrow, events)
