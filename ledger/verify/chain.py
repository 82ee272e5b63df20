"""What the chain says about a job's steps: the facts every verdict rests on.

Anchors come from the Traceability contract's StepsAnchored events (one query per job),
split factories from the split registry, hand-overs from the JobBoard's events. A bundle's
own copy of its anchors is never trusted; the checker compares it with these.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.contract import Contract

from ledger.eth.compiler import artifact
from ledger.steps.record import Domain
from ledger.verify.authority import Authority

ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class Anchor:
    split_id: int
    index: int
    from_seq: int
    to_seq: int
    root: bytes
    previous_head: bytes
    head: bytes
    anchored_by: str
    tx_hash: str
    block: int
    timestamp: int

    @classmethod
    def of_event(cls, args: Any, tx_hash: str, block: int, timestamp: int) -> Anchor:
        return cls(
            int(args["splitId"]),
            int(args["index"]),
            int(args["fromSeq"]),
            int(args["toSeq"]),
            bytes(args["root"]),
            bytes(args["previousHead"]),
            bytes(args["head"]),
            str(args["anchoredBy"]),
            tx_hash,
            block,
            timestamp,
        )

    def as_dict(self) -> dict[str, Any]:
        """The bundle's form of an anchor."""
        return {
            "split_id": self.split_id,
            "index": self.index,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "root": "0x" + self.root.hex(),
            "previous_head": "0x" + self.previous_head.hex(),
            "head": "0x" + self.head.hex(),
            "anchored_by": self.anchored_by,
            "tx_hash": self.tx_hash,
            "block_number": self.block,
            "timestamp": self.timestamp,
        }


class BlockTimes:
    """Block timestamps, each asked of the chain once."""

    def __init__(self, w3: Web3, known: dict[int, int] | None = None) -> None:
        self.w3 = w3
        self._time: dict[int, int] = dict(known or {})

    def __call__(self, number: int) -> int:
        if number not in self._time:
            self._time[number] = int(self.w3.eth.get_block(number)["timestamp"])
        return self._time[number]


def anchors_of(
    trace: Contract, job_id: int, block_time: Callable[[int], int], split_id: int | None = None
) -> dict[int, list[Anchor]]:
    """A job's (or one split's) anchors by split, in index order, from the chain's events."""
    filters: dict[str, Any] = {"jobId": job_id}
    if split_id is not None:
        filters["splitId"] = split_id
    out: dict[int, list[Anchor]] = defaultdict(list)
    for log in trace.events.StepsAnchored().get_logs(from_block=0, argument_filters=filters):
        block = int(log["blockNumber"])
        a = Anchor.of_event(
            log["args"], log["transactionHash"].to_0x_hex(), block, block_time(block)
        )
        out[a.split_id].append(a)
    return {s: sorted(v, key=lambda a: a.index) for s, v in out.items()}


@dataclass
class ChainFacts:
    """Everything the checker asks of the chain about one job's steps."""

    job_id: int
    domain: Domain
    anchors: dict[int, list[Anchor]]
    factory: Callable[[int], str]  # split id -> its factory (the zero address if none)
    authority: Authority
    latest_block: int
    handovers: set[tuple[int, int, str]] | None = None  # (from split, to split, lot)


def handovers_of(board: Contract, job_id: int) -> set[tuple[int, int, str]]:
    """(from split, to split, lot) of every hand-over both sides signed on chain."""
    logs = board.events.CustodyHandedOver().get_logs(
        from_block=0, argument_filters={"jobId": job_id}
    )
    return {
        (
            int(e["args"]["fromSplit"]),
            int(e["args"]["toSplit"]),
            "0x" + bytes(e["args"]["lot"]).hex(),
        )
        for e in logs
    }


def facts_for(w3: Web3, traceability: str, chain_id: int, job_id: int) -> ChainFacts:
    """The facts about a job's steps, read from the Traceability contract at `traceability`
    and the contracts it names (its Consortium and its split registry)."""
    address = Web3.to_checksum_address(traceability)
    trace = w3.eth.contract(address=address, abi=artifact("Traceability").abi)
    consortium = w3.eth.contract(
        address=trace.functions.consortium().call(), abi=artifact("Consortium").abi
    )
    # the split registry is the JobBoard in a deployment (test registries share its
    # splitFactory; they emit no hand-over events, so none are found)
    registry = w3.eth.contract(
        address=trace.functions.splits().call(), abi=artifact("JobBoard").abi
    )
    times = BlockTimes(w3)
    factories: dict[int, str] = {}

    def factory(split_id: int) -> str:
        if split_id not in factories:
            factories[split_id] = str(registry.functions.splitFactory(job_id, split_id).call())
        return factories[split_id]

    return ChainFacts(
        job_id=job_id,
        domain=Domain(chain_id, address),
        anchors=anchors_of(trace, job_id, times),
        factory=factory,
        authority=Authority(consortium, times),
        latest_block=int(w3.eth.block_number),
        handovers=handovers_of(registry, job_id),
    )
