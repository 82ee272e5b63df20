"""Audit one job: rebuild it from the chain and the evidence bundles, check every rule.

The same chain state and the same inputs always give the same report: nothing depends
on the wall clock, on this node's journal or on the order the bundles are given in.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3

from ledger.audit import chain_record
from ledger.audit.chain_record import Contracts, JobRecord
from ledger.core import canonical_json
from ledger.core.abi import SolidityEnum
from ledger.core.errors import InvalidInput
from ledger.eth.chain import block_timestamp
from ledger.membership.roles import Role, role_names
from ledger.orders.jobs import JobStatus, SplitStatus
from ledger.steps.bundle import Anchor, Bundle
from ledger.steps.record import Domain
from ledger.verify.authority import Authority
from ledger.verify.chain import ChainFacts
from ledger.verify.checker import StepsCheck, start_steps
from ledger.verify.findings import Finding, Severity, counts, verdict

PPM = 1_000_000


def _status_label(enum: type[SolidityEnum], value: Any) -> str:
    """How the report shows an enum value read from the chain (the raw value if unknown)."""
    try:
        return enum(int(value)).label
    except ValueError:
        return str(value)


@dataclass
class AuditInputs:
    bundles: Sequence[Bundle | dict[str, Any]] = field(default_factory=list)
    design_files: list[bytes] = field(default_factory=list)

    _loaded: list[Bundle] | None = field(default=None, init=False, repr=False, compare=False)

    def loaded(self) -> list[Bundle]:
        """The bundles, each read once whether given as text, a JSON object or a Bundle."""
        if self._loaded is None:
            self._loaded = [Bundle.load(b) for b in self.bundles]
        return self._loaded

    def digests(self) -> dict[str, list[str]]:
        return {
            "bundles": sorted(b.digest() for b in self.loaded()),
            "design_files": sorted(hashlib.sha256(f).hexdigest() for f in self.design_files),
        }


def _label(step: Any) -> str:
    raw = bytes.fromhex(str(step)[2:]) if isinstance(step, str) else bytes(step)
    return raw.rstrip(b"\x00").decode("utf-8", "replace")


class JobAudit:
    def __init__(self, contracts: Contracts, job_id: int, inputs: AuditInputs) -> None:
        self.c = contracts
        self.w3: Web3 = contracts.w3
        self.job_id = job_id
        self.inputs = inputs
        self.findings: list[Finding] = []
        self.record: JobRecord = chain_record.load(contracts, job_id)
        self._times: dict[int, int] = {e.block: e.timestamp for e in self.record.events}
        self.authority = Authority(contracts.consortium, self.block_time)
        self.split_results: dict[int, dict[str, Any]] = {}

    def block_time(self, number: int) -> int:
        if number not in self._times:
            self._times[number] = block_timestamp(self.w3, number)
        return self._times[number]

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def flag(self, sev: Severity, code: str, text: str, **evidence: Any) -> None:
        self.add(
            Finding(
                severity=sev, code=code, statement=text, evidence={"job": self.job_id, **evidence}
            )
        )

    # --- the checks ------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        created = self._one("JobBoard", "JobCreated")
        steps = self._start_steps()  # the workers examine the steps during the chain reads
        self._check_design(created)
        self._check_members(created)
        self._check_money()
        self._check_deliveries()
        self._check_custody()
        self._check_steps(steps)
        self._check_disputes()
        return self._report()

    def _one(self, contract: str, name: str) -> Any:
        found = self.record.of(contract, name)
        if not found:
            raise InvalidInput(f"job {self.job_id} has no {name} event on this chain")
        return found[0]

    def _check_design(self, created: Any) -> None:
        job = self.record.job
        design = bytes.fromhex(str(job["designId"])[2:])
        registered = [
            e
            for e in self.record.events
            if e.contract == "DesignRegistry" and e.name in ("DesignRegistered", "DesignClaimed")
        ]
        if not registered or registered[0].block > created.block:
            self.flag(
                Severity.MAJOR,
                "design-unregistered",
                f"design 0x{design.hex()} was not registered before the order",
                tx=created.tx_hash,
                block=created.block,
            )
        active, designer, royalty = self.c.designs.functions.licenceAt(
            design, job["buyer"], created.block
        ).call()
        if not active:
            self.flag(
                Severity.MAJOR,
                "design-unlicensed",
                f"the design was not licensed to the buyer {job['buyer']} when ordered",
                tx=created.tx_hash,
                block=created.block,
            )
        elif int(royalty) != int(job["royaltyPpm"]) or designer != job["designer"]:
            self.flag(
                Severity.CRITICAL,
                "licence-mismatch",
                "the order's designer or royalty differs from the licence",
                tx=created.tx_hash,
                block=created.block,
            )
        for e in self.record.of("DesignRegistry", "DesignRevoked"):
            self.flag(
                Severity.INFO,
                "design-revoked",
                f"the designer revoked the design at block {e.block}",
                tx=e.tx_hash,
                block=e.block,
            )
        for data in self.inputs.design_files:
            digest = hashlib.sha256(data).digest()
            if digest != design:
                self.flag(
                    Severity.CRITICAL,
                    "design-file-mismatch",
                    f"a design file given to the audit (sha256 0x{digest.hex()}) is not "
                    f"the ordered design 0x{design.hex()}: it was replaced",
                    file_sha256="0x" + digest.hex(),
                )

    def _role_at(self, who: str, role: Role, block: int) -> bool:
        roles, status = self.c.consortium.functions.rolesAt(who, block).call()
        return int(status) == 1 and bool(int(roles) & int(role))

    def _check_members(self, created: Any) -> None:
        buyer = self.record.job["buyer"]
        if not self._role_at(buyer, Role.BUYER, created.block):
            self.flag(
                Severity.CRITICAL,
                "buyer-not-member",
                f"{buyer} was not an active buyer when it ordered",
                block=created.block,
            )
        for e in self.record.of("JobBoard", "SplitAssigned"):
            factory = e.args["factory"]
            if not self._role_at(factory, Role.FACTORY, e.block):
                self.flag(
                    Severity.CRITICAL,
                    "factory-not-member",
                    f"split {e.args['splitId']} went to {factory}, not an active factory",
                    split=int(e.args["splitId"]),
                    tx=e.tx_hash,
                    block=e.block,
                )

    def _check_money(self) -> None:
        job, escrow = self.record.job, self.record.escrow
        price = int(job["price"])
        shares = sum(int(s["sharePpm"]) for s in self.record.splits)
        fee_ppm = int(escrow.get("feePpm", 0))
        total = shares + int(job["royaltyPpm"]) + fee_ppm
        if self.record.splits and total != PPM:
            self.flag(
                Severity.CRITICAL,
                "shares-do-not-sum",
                f"split shares {shares} + royalty {job['royaltyPpm']} + fee {fee_ppm} "
                f"= {total}, not {PPM}",
            )
        deposited = sum(int(e.args["amount"]) for e in self.record.of("Settlement", "Deposited"))
        if deposited and deposited != price:
            self.flag(
                Severity.CRITICAL,
                "deposit-mismatch",
                f"escrow received {deposited}, the price is {price}",
            )
        for e in self.record.of("Settlement", "ShareAllocated"):
            expected = price * int(e.args["sharePpm"]) // PPM
            if int(e.args["amount"]) != expected:
                self.flag(
                    Severity.CRITICAL,
                    "allocation-mismatch",
                    f"split {e.args['splitId']} was allocated {e.args['amount']}, its "
                    f"share is worth {expected}",
                    split=int(e.args["splitId"]),
                    tx=e.tx_hash,
                    block=e.block,
                )
        released = sum(int(e.args["amount"]) for e in self.record.of("Settlement", "SplitReleased"))
        released += sum(
            int(e.args["payout"]) for e in self.record.of("Settlement", "RulingApplied")
        )
        released += sum(
            int(e.args["royaltyAmount"]) + int(e.args["feeAmount"])
            for e in self.record.of("Settlement", "FeesReleased")
        )
        refunded = sum(int(e.args["amount"]) for e in self.record.of("Settlement", "Refunded"))
        held = int(escrow.get("held", 0))
        if deposited != released + refunded + held:
            self.flag(
                Severity.CRITICAL,
                "escrow-imbalance",
                f"deposited {deposited} != released {released} + refunded {refunded} + held {held}",
            )
        self.money = {
            "price": price,
            "deposited": deposited,
            "released": released,
            "refunded": refunded,
            "held": held,
            "shares_ppm": shares,
            "royalty_ppm": int(job["royaltyPpm"]),
            "fee_ppm": fee_ppm,
        }

    def _check_deliveries(self) -> None:
        deadline = int(self.record.job["deadline"])
        now = int(self.w3.eth.get_block("latest")["timestamp"])
        if now > deadline:
            for i, s in enumerate(self.record.splits):
                if int(s["status"]) in (SplitStatus.ASSIGNED, SplitStatus.ACCEPTED):
                    self.flag(
                        Severity.MAJOR,
                        "missed-deadline",
                        f"split {i} ({_label(s.get('step', b''))}) was not delivered by "
                        "the deadline",
                        split=i,
                        factory=s["factory"],
                    )
        for e in self.record.of("JobBoard", "SplitDelivered"):
            if e.timestamp > deadline:
                late = e.timestamp - deadline
                self.flag(
                    Severity.MAJOR,
                    "late-delivery",
                    f"split {e.args['splitId']} was delivered {late // 3600} h "
                    f"{late % 3600 // 60} min after the deadline",
                    split=int(e.args["splitId"]),
                    tx=e.tx_hash,
                    block=e.block,
                    seconds_late=late,
                )

    def _factory(self, split_id: int) -> str:
        if 0 <= split_id < len(self.record.splits):
            return str(self.record.splits[split_id]["factory"])
        return chain_record.ZERO_ADDRESS

    def _check_custody(self) -> None:
        self.handovers = []
        for e in self.record.of("JobBoard", "CustodyHandedOver"):
            a = e.args
            self.handovers.append(
                (int(a["fromSplit"]), int(a["toSplit"]), "0x" + bytes(a["lot"]).hex())
            )
            for side, split_key, signer_key in (
                ("sender", "fromSplit", "fromSigner"),
                ("receiver", "toSplit", "toSigner"),
            ):
                factory = self._factory(int(a[split_key]))
                if not self.authority.window(factory, a[signer_key], e.block).authorized:
                    self.flag(
                        Severity.CRITICAL,
                        "handover-signer",
                        f"the {side} of the hand-over of lot 0x{bytes(a['lot']).hex()} "
                        f"was signed by {a[signer_key]}, who could not sign for {factory}",
                        split=int(a[split_key]),
                        tx=e.tx_hash,
                        block=e.block,
                    )

    def _bundles(self) -> list[Bundle]:
        """The evidence bundles, each for this job on this chain."""
        out = []
        for b in self.inputs.loaded():
            if b.job_id != self.job_id:
                raise InvalidInput(f"a bundle is for job {b.job_id}, not {self.job_id}")
            if b.chain_id != int(self.w3.eth.chain_id):
                raise InvalidInput(f"a bundle is for chain {b.chain_id}")
            out.append(b)
        return out

    def _start_steps(self) -> tuple[ChainFacts, StepsCheck] | None:
        """The steps handed to the workers, with the chain's facts about them (the
        hand-overs are added once read); None without a Traceability contract."""
        bundles = self._bundles()
        if self.c.traceability is None:
            return None
        trace = self.c.traceability
        anchors: dict[int, list[Anchor]] = defaultdict(list)
        for e in self.record.of("Traceability", "StepsAnchored"):
            anchors[int(e.args["splitId"])].append(
                Anchor.of_event(e.args, e.tx_hash, e.block, e.timestamp)
            )
        facts = ChainFacts(
            job_id=self.job_id,
            domain=Domain(int(self.w3.eth.chain_id), trace.address),
            anchors={s: sorted(a, key=lambda a: a.index) for s, a in anchors.items()},
            factory=self._factory,
            authority=self.authority,
            latest_block=int(self.w3.eth.block_number),
        )
        bundled = {s.split_id for b in bundles for s in b.splits}
        sids = sorted(set(anchors) | bundled | set(range(len(self.record.splits))))
        return facts, start_steps(facts, bundles, sids)

    def _check_steps(self, started: tuple[ChainFacts, StepsCheck] | None) -> None:
        if started is None:
            return
        facts, steps = started
        facts.handovers = set(self.handovers)
        checked = steps.finish()
        self.findings += checked.findings
        for sid, result in checked.splits.items():
            items = result.items
            self.split_results[sid] = {
                "steps_in_bundles": result.steps,
                "steps_anchored_on_chain": max(
                    (a.to_seq for a in facts.anchors.get(sid, [])), default=-1
                )
                + 1,
                "steps_proven": result.anchored,
                "signatures_verified": result.verified_signatures,
                "anchors": [
                    {
                        "index": a.index,
                        "from_seq": a.from_seq,
                        "to_seq": a.to_seq,
                        "root": "0x" + a.root.hex(),
                        "tx": a.tx_hash,
                        "block": a.block,
                        "time": a.timestamp,
                    }
                    for a in facts.anchors.get(sid, [])
                ],
                "first_step": _summary(result.first) if items else None,
                "last_step": _summary(result.last) if items else None,
            }

    def _check_disputes(self) -> None:
        self.disputes = []
        for e in self.record.events:
            if e.contract != "Disputes":
                continue
            self.disputes.append(e.model_dump(mode="json"))
            if e.name == "DisputeOpened":
                self.flag(
                    Severity.INFO,
                    "dispute-opened",
                    f"a dispute was opened on split {e.args.get('splitId')} by "
                    f"{e.args.get('claimant', e.args.get('party'))}",
                    split=int(e.args.get("splitId", -1)),
                    tx=e.tx_hash,
                    block=e.block,
                )
            elif e.name == "DisputeRuled":
                self.flag(
                    Severity.INFO,
                    "dispute-ruled",
                    f"the auditors ruled on split {e.args.get('splitId')}",
                    split=int(e.args.get("splitId", -1)),
                    tx=e.tx_hash,
                    block=e.block,
                )

    # --- the report ------------------------------------------------------------------
    def _report(self) -> dict[str, Any]:
        job = self.record.job
        findings = sorted(self.findings, key=lambda f: f.sort_key())
        splits = []
        for i, s in enumerate(self.record.splits):
            splits.append(
                {
                    "split": i,
                    "factory": s["factory"],
                    "step": _label(s.get("step", b"")),
                    "status": _status_label(SplitStatus, s["status"]),
                    "quantity": int(s["quantity"]),
                    "share_ppm": int(s["sharePpm"]),
                    "depends_on": [d for d in range(64) if int(s["dependsOn"]) >> d & 1],
                    **self.split_results.get(i, {}),
                }
            )
        return {
            "format": "cofab-audit/1",
            "chain_id": int(self.w3.eth.chain_id),
            "contracts": {
                "JobBoard": self.c.job_board.address,
                "Consortium": self.c.consortium.address,
                "DesignRegistry": self.c.designs.address,
                "Settlement": self.c.settlement.address,
                "Traceability": self.c.traceability.address if self.c.traceability else None,
                "Disputes": self.c.disputes.address if self.c.disputes else None,
            },
            "inputs": self.inputs.digests(),
            "job": {
                "id": self.job_id,
                "buyer": job["buyer"],
                "design": job["designId"],
                "designer": job["designer"],
                "status": _status_label(JobStatus, job["status"]),
                "quantity": int(job["quantity"]),
                "price": int(job["price"]),
                "token": job["token"],
                "deadline": int(job["deadline"]),
                "buyer_roles": role_names(
                    int(self.c.consortium.functions.member(job["buyer"]).call()[0])
                ),
            },
            "summary": {"verdict": verdict(findings), **counts(findings)},
            "findings": [f.model_dump(mode="json") for f in findings],
            "splits": splits,
            "money": self.money,
            "custody": [
                {
                    "from_split": int(e.args["fromSplit"]),
                    "to_split": int(e.args["toSplit"]),
                    "lot": "0x" + bytes(e.args["lot"]).hex(),
                    "quantity": int(e.args["quantity"]),
                    "from_signer": e.args["fromSigner"],
                    "to_signer": e.args["toSigner"],
                    "tx": e.tx_hash,
                    "block": e.block,
                    "time": e.timestamp,
                }
                for e in self.record.of("JobBoard", "CustodyHandedOver")
            ],
            "disputes": self.disputes,
            "timeline": [e.model_dump(mode="json") for e in self.record.events],
        }


def _summary(record: Any) -> dict[str, Any]:
    rec = record if isinstance(record, dict) else {}
    return {"seq": rec.get("seq"), "bizStep": rec.get("bizStep"), "time": rec.get("time")}


def audit(contracts: Contracts, job_id: int, inputs: AuditInputs | None = None) -> dict[str, Any]:
    return JobAudit(contracts, job_id, inputs or AuditInputs()).run()


def report_hash(report: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a report (without its own hash field)."""
    body = {k: v for k, v in report.items() if k != "report_hash"}
    return hashlib.sha256(canonical_json.dumps(body)).hexdigest()


def seal(report: dict[str, Any]) -> dict[str, Any]:
    return {**report, "report_hash": report_hash(report)}


def contracts_of(node: Any) -> Contracts:
    """The audited contracts of a node's deployment (all other inputs come from the chain)."""
    dep = node.deployment
    trace = dep.contracts.get("Traceability")
    return Contracts.discover(
        node.chain.w3, dep.address("JobBoard"), traceability=trace.address if trace else None
    )
