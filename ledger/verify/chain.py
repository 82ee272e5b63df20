"""What the chain says about a job's steps: the facts every verdict rests on.

Anchors come from the Traceability contract's StepsAnchored events (one query per job),
split factories from the split registry, hand-overs from the JobBoard's events. A bundle's
own copy of its anchors is never trusted; the checker compares it with these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from web3 import Web3
from web3.contract import Contract

from ledger.eth.contract import contract_at
from ledger.steps.bundle import Anchor, BlockTimes, anchors_of
from ledger.steps.record import Domain
from ledger.verify.authority import Authority

ZERO_ADDRESS = "0x" + "00" * 20


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
    trace = contract_at(w3, "Traceability", traceability)
    consortium = contract_at(w3, "Consortium", trace.functions.consortium().call())
    # the split registry is the JobBoard in a deployment (test registries share its
    # splitFactory; they emit no hand-over events, so none are found)
    registry = contract_at(w3, "JobBoard", trace.functions.splits().call())
    times = BlockTimes(w3)
    factories: dict[int, str] = {}

    def factory(split_id: int) -> str:
        if split_id not in factories:
            factories[split_id] = str(registry.functions.splitFactory(job_id, split_id).call())
        return factories[split_id]

    return ChainFacts(
        job_id=job_id,
        domain=Domain(chain_id, trace.address),
        anchors=anchors_of(trace, job_id, times),
        factory=factory,
        authority=Authority(consortium, times),
        latest_block=int(w3.eth.block_number),
        handovers=handovers_of(registry, job_id),
    )
