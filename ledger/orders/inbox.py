"""Hand-overs waiting for a signature: one factory has signed its side of an EIP-712
`Handover`, the other has not yet. The chain sees a hand-over only with both signatures,
so the node keeps the half-signed ones (a JSON file in its data folder) where the second
factory finds them: its inbox. Either side may sign first.

A pending hand-over leaves the inbox once the chain records it (a `CustodyHandedOver`
event with the same lot, splits and quantity, however it was submitted) or once its
signatures' deadline has passed.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from pydantic import Field

from ledger.core.errors import Forbidden, InvalidInput
from ledger.core.private import write_private
from ledger.core.types import Hex, Record
from ledger.eth import eip712
from ledger.orders.jobs import JobsClient
from ledger.orders.signing import Handover


class PendingHandover(Record):
    """One side's signature of a hand-over, waiting for the other side's."""

    id: str = Field(
        description="the hand-over's EIP-712 digest: the same whichever side signs first"
    )
    job_id: int
    from_split: int
    to_split: int
    lot: Hex = Field(description="bytes32 lot identifier")
    quantity: int
    deadline: int = Field(description="last unix time the signatures are valid")
    signed_side: str = Field(description="from | to: the side that signed")
    signer: str
    signature: str
    waiting_for: str = Field(description="the factory whose signature is missing")
    posted_at: int

    @property
    def record(self) -> Handover:
        return Handover(
            self.job_id, self.from_split, self.to_split, self.lot, self.quantity, self.deadline
        )


def _chain_time(jobs: JobsClient) -> int:
    return int(jobs.chain.w3.eth.get_block("latest")["timestamp"])


class HandoverInbox:
    def __init__(self, path: Path, jobs: JobsClient, lock: threading.Lock) -> None:
        self.path = path
        self.jobs = jobs
        self._lock = lock  # the node's: every request's inbox shares it

    def _read(self) -> list[PendingHandover]:
        if not self.path.exists():
            return []
        return [PendingHandover.model_validate(d) for d in json.loads(self.path.read_text())]

    def _write(self, items: list[PendingHandover]) -> None:
        write_private(self.path, json.dumps([i.model_dump(mode="json") for i in items], indent=1))

    def post(self, record: Handover, signature: str, poster: str) -> PendingHandover:
        """Keep `poster`'s own signature of `record` for the other factory to complete.
        Refused: two splits with no dependency between them, a poster who is neither
        factory of the hand-over, a signature by anyone but the poster, a deadline already
        passed."""
        sending, receiving = self.jobs.handover_factories(record)
        target = self.jobs.split_record(record.job_id, record.to_split)
        if not (target.depends_on >> record.from_split) & 1:
            raise InvalidInput(
                f"split {record.to_split} of job {record.job_id} does not start from split "
                f"{record.from_split}: lots pass only along a dependency",
                field="to_split",
            )
        if poster not in (sending, receiving):
            raise Forbidden(
                f"{poster} may not sign this hand-over of job {record.job_id}: only the "
                f"factory of split {record.from_split} ({sending}) or of split "
                f"{record.to_split} ({receiving}) may"
            )
        typed = self.jobs.typed_data(record)
        signer = eip712.recover(typed, eip712.signature_bytes(signature))
        if signer != poster:
            raise InvalidInput(
                f"the signature is {signer}'s, not yours ({poster}): sign the hand-over "
                "with your own key",
                field="signature",
            )
        if record.deadline <= _chain_time(self.jobs):
            raise InvalidInput(
                "the hand-over's deadline has passed: sign one with a later deadline",
                field="deadline",
            )
        side = "from" if signer == sending else "to"
        item = PendingHandover(
            id="0x" + eip712.digest(typed).hex(),
            job_id=record.job_id,
            from_split=record.from_split,
            to_split=record.to_split,
            lot=record.lot,
            quantity=record.quantity,
            deadline=record.deadline,
            signed_side=side,
            signer=signer,
            signature="0x" + eip712.signature_bytes(signature).hex(),
            waiting_for=receiving if side == "from" else sending,
            posted_at=int(time.time()),
        )
        with self._lock:
            kept = [i for i in self._read() if (i.id, i.signed_side) != (item.id, item.signed_side)]
            self._write([*kept, item])
        return item

    def pending(self, address: str) -> tuple[list[PendingHandover], list[PendingHandover]]:
        """(waiting for `address`'s signature, signed by `address` and waiting for the
        other factory), the ones the chain has recorded or whose deadline passed left out."""
        with self._lock:
            items = self._read()
            live = self._live(items)
            if len(live) != len(items):
                self._write(live)
        waiting = [i for i in live if i.waiting_for == address]
        sent = [i for i in live if i.signer == address]
        return waiting, sent

    def _live(self, items: list[PendingHandover]) -> list[PendingHandover]:
        now = _chain_time(self.jobs)
        done: dict[int, set[tuple[int, int, bytes, int]]] = {}
        for job in {i.record.job_id for i in items}:
            logs = self.jobs.contract.events.CustodyHandedOver().get_logs(
                from_block=0, argument_filters={"jobId": job}
            )
            done[job] = {
                (
                    int(e["args"]["fromSplit"]),
                    int(e["args"]["toSplit"]),
                    bytes(e["args"]["lot"]),
                    int(e["args"]["quantity"]),
                )
                for e in logs
            }
        return [
            i
            for i in items
            if i.record.deadline > now
            and (i.record.from_split, i.record.to_split, i.record.lot, i.record.quantity)
            not in done[i.record.job_id]
        ]
