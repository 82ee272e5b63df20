"""Anchor journaled steps on the Traceability contract, crash-safely.

The chain is the authority on what is anchored (`trace(job, split).nextSeq`); the journal
remembers an anchor transaction from before it is sent (state `submitted`, with the signed
raw transaction). After a crash the node first settles those: a mined one is recorded, a
lost one is rebroadcast unchanged (same nonce, same hash), a reverted one is dropped. Only
then is the next range planned from the chain's state, so no range is skipped and the
contract refuses any overlap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from hexbytes import HexBytes
from web3.contract import Contract
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from ledger.core.errors import (
    ChainUnavailable,
    Conflict,
    FaultLog,
    Forbidden,
    LedgerError,
)
from ledger.core.hashing import keccak
from ledger.core.merkle import StandardMerkleTree
from ledger.core.types import Record
from ledger.eth.chain import Chain, block_head
from ledger.eth.contract import View
from ledger.eth.tx import REFUSED, Sender
from ledger.steps.journal import Journal
from ledger.steps.record import ZERO

LEAF_ENCODING = ("uint64", "bytes32")
DEFAULT_MAX_STEPS = 1024
log = logging.getLogger("cofab.anchoring")


def step_leaf(seq: int, step_hash: bytes) -> bytes:
    """leaf_hash(("uint64", "bytes32"), (seq, step_hash)) without the ABI encoder: both
    are static types, so abi.encode is just the two 32-byte words. checker._block_run
    computes it inline, for speed."""
    return keccak(keccak(seq.to_bytes(32, "big") + step_hash))


def anchor_tree(seqs_and_hashes: list[tuple[int, bytes]]) -> StandardMerkleTree:
    leaves = [step_leaf(seq, h) for seq, h in seqs_and_hashes]
    return StandardMerkleTree.from_leaf_hashes(leaves, seqs_and_hashes, LEAF_ENCODING)


class AnchorOutcome(Record):
    """An anchor this node sent: the range of a split's steps and the transaction."""

    job_id: int
    split_id: int
    index: int
    from_seq: int
    to_seq: int
    root: str
    tx_hash: str
    block_number: int


class Anchorer:
    def __init__(
        self,
        chain: Chain,
        journal: Journal,
        traceability: Contract,
        sender_for: Callable[[int, int], Sender | None],
    ) -> None:
        self.chain = chain
        self.journal = journal
        self.contract = traceability
        self.sender_for = sender_for  # (job, split) -> a Sender allowed to anchor it, or None
        self._lock = threading.Lock()
        self._trace = View.named(traceability, "trace")

    def chain_trace(self, job_id: int, split_id: int) -> tuple[int, int]:
        """(next sequence number to anchor, anchors so far) of a split, from the contract."""
        next_seq, count = self._trace(job_id, split_id)
        return int(next_seq), int(count)

    def reconcile(self, job_id: int, split_id: int, next_seq: int, count: int) -> int:
        """Make the journal agree with the chain's (next_seq, count) for a split: anchors
        the chain lost (a rollback) are dropped, so their steps are anchored again."""
        lost = self.journal.forget_anchors(job_id, split_id, next_seq, count)
        if lost:
            log.warning(
                "split %s of job %s: the chain no longer has %d anchor(s) this node made "
                "(it lost blocks); anchoring again from step %d",
                split_id,
                job_id,
                lost,
                next_seq,
            )
        return lost

    def last_anchor(
        self, job_id: int, split_id: int, count: int, next_seq: int
    ) -> tuple[bytes, bytes]:
        """(root, head) of anchor `count - 1`: from the journal if this node made it and
        the chain still has it, else from its StepsAnchored event; zeros before the first
        anchor."""
        if count == 0:
            return ZERO, ZERO
        mined = self.journal.mined_anchor(job_id, split_id, count - 1, next_seq - 1)
        if (
            mined is not None
            and self.contract.functions.isAnchor(job_id, split_id, count - 1, *mined).call()
        ):
            return mined
        logs = self.contract.events.StepsAnchored().get_logs(
            from_block=0,
            argument_filters={"jobId": job_id, "splitId": split_id, "index": count - 1},
        )
        if not logs:
            raise ChainUnavailable(
                f"anchor {count - 1} of split {split_id} has no event on this node yet"
            )
        args = logs[-1]["args"]
        return bytes(args["root"]), bytes(args["head"])

    # --- crash recovery ----------------------------------------------------------------
    def settle(self) -> None:
        """Resolve anchors left `prepared` or `submitted` by an earlier run."""
        with self._lock:
            for row in self.journal.anchor_rows():
                if row["state"] == "prepared":
                    self.journal.drop_anchor(row["job_id"], row["split_id"], row["from_seq"])
                elif row["state"] == "submitted":
                    self._settle_submitted(row)

    def _settle_submitted(self, row: dict[str, Any]) -> None:
        w3 = self.chain.w3
        try:
            receipt = w3.eth.get_transaction_receipt(row["tx_hash"])
        except TransactionNotFound:
            receipt = None
        if receipt is None and row["raw_tx"]:
            try:
                w3.eth.send_raw_transaction(HexBytes(row["raw_tx"]))
            except REFUSED as exc:  # already known, or its nonce was used meanwhile
                log.info("rebroadcast of %s refused: %s", row["tx_hash"], exc)
            try:
                receipt = w3.eth.wait_for_transaction_receipt(row["tx_hash"], timeout=30)
            except Exception:  # noqa: BLE001 - lost for good: plan again from the chain
                receipt = None
        if receipt is not None and receipt["status"] == 1:
            self._record(receipt)
        else:
            self.journal.drop_anchor(row["job_id"], row["split_id"], row["from_seq"])

    def _record(self, receipt: Any) -> list[AnchorOutcome]:
        outcomes = []
        for ev in self.contract.events.StepsAnchored().process_receipt(receipt, errors=DISCARD):
            a = ev["args"]
            self.journal.mark_anchored(
                a["jobId"],
                a["splitId"],
                a["fromSeq"],
                a["toSeq"],
                a["index"],
                receipt["blockNumber"],
                receipt["transactionHash"].to_0x_hex(),
            )
            outcomes.append(
                AnchorOutcome(
                    job_id=a["jobId"],
                    split_id=a["splitId"],
                    index=a["index"],
                    from_seq=a["fromSeq"],
                    to_seq=a["toSeq"],
                    root="0x" + bytes(a["root"]).hex(),
                    tx_hash=receipt["transactionHash"].to_0x_hex(),
                    block_number=int(receipt["blockNumber"]),
                )
            )
        return outcomes

    # --- anchoring ---------------------------------------------------------------------
    def anchor(
        self,
        job_id: int,
        split_id: int,
        max_steps: int = DEFAULT_MAX_STEPS,
        *,
        sender: Sender | None = None,
    ) -> AnchorOutcome | None:
        """Anchor the next range of the split's unanchored steps (None if there is none),
        signed by `sender`, else by the key `sender_for` picks."""
        if max_steps < 1:
            raise LedgerError("max_steps must be at least 1")
        with self._lock:
            local_next, _ = self.journal.head(job_id, split_id)
            chain_next, count = self.chain_trace(job_id, split_id)
            self.reconcile(job_id, split_id, chain_next, count)
            if chain_next >= local_next:
                return None
            prev_root, chain_head = self.last_anchor(job_id, split_id, count, chain_next)
            to_seq = min(local_next - 1, chain_next + max_steps - 1)
            steps = self.journal.steps(job_id, split_id, chain_next, to_seq)
            if not steps or steps[0].step.seq != chain_next:
                raise Conflict(f"the journal lacks step {chain_next} of split {split_id}")
            if steps[0].step.prev_hash != chain_head:
                raise Conflict(
                    f"split {split_id} of job {job_id}: the chain's anchored head "
                    f"0x{chain_head.hex()} is not the predecessor of this node's step "
                    f"{chain_next}: another party anchored different steps"
                )
            sender = sender or self.sender_for(job_id, split_id)
            if sender is None:
                raise Forbidden(
                    f"this node holds no key of the factory of split {split_id} of job {job_id}"
                )
            tree = anchor_tree([(s.step.seq, s.step_hash) for s in steps])
            head = steps[-1].step_hash
            self.journal.put_anchor(
                job_id, split_id, chain_next, to_seq, tree.root, chain_head, head, "prepared"
            )

            def persist(raw: bytes, tx_hash: str) -> None:
                self.journal.put_anchor(
                    job_id,
                    split_id,
                    chain_next,
                    to_seq,
                    tree.root,
                    chain_head,
                    head,
                    "submitted",
                    tx_hash,
                    raw,
                )

            fn = self.contract.functions.anchor(
                job_id, split_id, chain_next, to_seq, prev_root, chain_head, head, tree.root
            )
            try:
                receipt = sender.transact(fn, before_send=persist)
            except LedgerError:
                self.journal.drop_anchor(job_id, split_id, chain_next)
                raise
            return self._record(receipt)[0]

    def anchor_all(
        self,
        job_id: int,
        split_id: int,
        max_steps: int = DEFAULT_MAX_STEPS,
        *,
        sender: Sender | None = None,
    ) -> list[AnchorOutcome]:
        outcomes = []
        while (outcome := self.anchor(job_id, split_id, max_steps, sender=sender)) is not None:
            outcomes.append(outcome)
        return outcomes


class AnchorService:
    """Anchors in the background when a split has `max_steps` pending or its oldest
    unanchored step is `max_age` seconds old."""

    def __init__(
        self,
        anchorer: Anchorer,
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        max_age: float = 30.0,
        interval: float = 1.0,
    ) -> None:
        self.anchorer = anchorer
        self.max_steps = max_steps
        self.max_age = max_age
        self.interval = interval
        self._anchored: dict[tuple[int, int], int] = {}  # chain's next seq, last seen
        self._seen: tuple[int, bytes] | None = None  # (number, hash) of a block seen
        self.problems: dict[tuple[int, int], str] = {}  # splits that could not anchor, why
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _watch_for_rollback(self) -> None:
        """Forget what the chain was last seen to have anchored if the block seen last is
        no longer on the chain (it lost blocks or was reset): every split is asked again
        and reconciled instead of being skipped on a stale cache."""
        w3 = self.anchorer.chain.w3
        latest = block_head(w3, "latest")
        if latest is None:
            raise ChainUnavailable("the chain has no latest block")
        seen, self._seen = self._seen, latest[:2]
        if seen is None or seen == self._seen:
            return
        if seen[0] <= self._seen[0]:
            block = block_head(w3, seen[0]) if seen[0] < self._seen[0] else latest
            if block is not None and block[1] == seen[1]:
                return
        log.warning("the chain no longer has block %d seen earlier: reconciling anchors", seen[0])
        self._anchored.clear()

    def tick(self) -> list[AnchorOutcome]:
        """Anchor the splits that are due. Whether one is due is decided from the journal
        and what the chain was last seen to have anchored; the chain is asked only about
        a split seen for the first time or due now, not about every split with pending
        steps every round."""
        done: list[AnchorOutcome] = []
        now = time.time()
        self._watch_for_rollback()
        journal = self.anchorer.journal
        for job_id, split_id, local_next, _ in journal.splits():
            key = (job_id, split_id)
            known = self._anchored.get(key)
            if known is None:
                known = self._anchored[key] = self.anchorer.chain_trace(job_id, split_id)[0]
            if known >= local_next:
                self.problems.pop(key, None)
                continue  # anchored through the journal's head when last asked: no RPC
            if not self._due(job_id, split_id, known, local_next, now):
                continue
            chain_next, _ = self.anchorer.chain_trace(job_id, split_id)
            self._anchored[key] = chain_next
            if chain_next >= local_next:
                self.problems.pop(key, None)
                continue
            if chain_next != known and not self._due(job_id, split_id, chain_next, local_next, now):
                continue  # another party anchored part of it meanwhile
            try:
                made = self.anchorer.anchor_all(job_id, split_id, self.max_steps)
                done += made
                if made:
                    self._anchored[key] = made[-1].to_seq + 1
                self.problems.pop(key, None)
            except LedgerError as exc:
                if self.problems.get(key) != str(exc):
                    log.warning("anchoring split %s of job %s: %s", split_id, job_id, exc)
                self.problems[key] = str(exc)
        return done

    def _due(self, job_id: int, split_id: int, anchored: int, local_next: int, now: float) -> bool:
        """`max_steps` steps wait from `anchored` on, or the oldest has waited `max_age`."""
        if local_next - anchored >= self.max_steps:
            return True
        oldest = self.anchorer.journal.steps(job_id, split_id, anchored, anchored)
        return bool(oldest) and now - oldest[0].received_at >= self.max_age

    def stalled(self) -> list[str]:
        """Why splits with journaled steps cannot be anchored now, one sentence each."""
        return [
            f"job {job} split {split}: {reason}"
            for (job, split), reason in sorted(self.problems.items())
        ]

    def start(self) -> None:
        self.anchorer.settle()
        self._thread = threading.Thread(target=self._run, name="cofab-anchor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        said = FaultLog(
            log,
            failed="anchoring round failed",
            waits="anchoring waits for the chain",
            resumed="anchoring resumed",
        )
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - FaultLog logs it, the loop goes on
                said.failed(exc)
                continue
            said.succeeded()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
