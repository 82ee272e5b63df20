"""`cofab demo`: a whole shared-manufacturing story on a chain, told as it happens.

A consortium (a council, three factories, a designer, a buyer, two auditors) registers a
drawing and shares it encrypted, places an order split in four with a dependency, records
and anchors signed production steps, hands a lot over, delivers — one factory late and
with an edited evidence bundle — disputes, audits, rules and pays everyone by share.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from eth_account import Account

from ledger.audit.engine import AuditInputs, audit, contracts_of, seal
from ledger.audit.html import render
from ledger.designs.files import NewDesign
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import SplitSpec
from ledger.orders.signing import Handover
from ledger.scenario import member
from ledger.steps.builder import object_event

DAY = 86_400
DUSD = 10**6
PRICE = 50_000 * DUSD
ROYALTY_PPM = 50_000
LOT = bytes.fromhex("11" * 32)
DRAWING = b"""ISO-10303-21;
HEADER; FILE_DESCRIPTION(('cofab demo bracket, rev C'),'2;1');
FILE_NAME('bracket-revC.step','2026-11-01T09:00:00',('Design studio'),(''),'','','');
FILE_SCHEMA(('AUTOMOTIVE_DESIGN')); ENDSEC;
DATA; #1=CARTESIAN_POINT('',(0.,0.,0.)); #2=CARTESIAN_POINT('',(120.,40.,8.)); ENDSEC;
END-ISO-10303-21;
"""


@dataclass
class Cast:
    council: Sender
    factories: list[Sender]
    designer: Sender
    buyer: Sender
    auditors: list[Sender]

    def name(self, address: str) -> str:
        names = {
            self.council.address: "council",
            self.designer.address: "designer",
            self.buyer.address: "buyer",
        }
        names.update({f.address: f"factory {i + 1}" for i, f in enumerate(self.factories)})
        names.update({a.address: f"auditor {i + 1}" for i, a in enumerate(self.auditors)})
        return names.get(address, address)


@dataclass
class Story:
    node: Node
    say: Callable[[str], None]
    out_dir: Path
    facts: dict[str, Any] = field(default_factory=dict)

    def chain_time(self) -> int:
        return int(self.node.chain.w3.eth.get_block("latest")["timestamp"])


def _fresh(node: Node, roles: Role) -> Sender:
    return member(node, int(roles), Account.create(os.urandom(32).hex()))


def cast(story: Story) -> Cast:
    node, say = story.node, story.say
    say("1. The consortium admits its members (council quorum reached by the operator)")
    c = Cast(
        council=node.sender(),
        factories=[_fresh(node, Role.FACTORY) for _ in range(3)],
        designer=_fresh(node, Role.DESIGNER),
        buyer=_fresh(node, Role.BUYER),
        auditors=[_fresh(node, Role.AUDITOR) for _ in range(2)],
    )
    for s in [*c.factories, c.designer, c.buyer, *c.auditors]:
        roles = ",".join(
            r for r in ("factory", "designer", "buyer", "auditor") if r in c.name(s.address)
        )
        say(f"   {c.name(s.address):10} {s.address}  ({roles or 'member'})")
    return c


def design(story: Story, c: Cast) -> bytes:
    node, say = story.node, story.say
    svc = node.design_service()
    say("2. The designer timestamps its drawing and licenses it")
    [cert] = svc.register(
        c.designer,
        [NewDesign.from_bytes(DRAWING, file_name="bracket-revC.step", title="Bracket rev C")],
    )
    design_id = cert.design_id
    say(
        f"   bracket-revC.step sha256 0x{design_id.hex()} registered at block "
        f"{cert.block_number} by the designer"
    )
    svc.grant_licence(c.designer, design_id, c.buyer.address, ROYALTY_PPM)
    svc.grant_licence(c.designer, design_id, c.factories[0].address, 0)
    say(f"   licensed to the buyer ({ROYALTY_PPM / 10_000:.0f} % royalty) and to factory 1")
    svc.publish_key(c.factories[0])
    svc.share(c.designer, design_id, [c.factories[0].address], DRAWING)
    plain = svc.fetch(c.factories[0].account, design_id)
    say(
        f"   shared encrypted (AES-256-GCM, key wrapped to factory 1's X25519 key); factory 1 "
        f"decrypted {len(plain)} bytes, hash {'matches' if plain == DRAWING else 'DIFFERS'}"
    )
    story.facts["design"] = "0x" + design_id.hex()
    return design_id


def order(story: Story, c: Cast, design_id: bytes) -> tuple[int, list[SplitSpec]]:
    node, say = story.node, story.say
    f = c.factories
    specs = [
        SplitSpec(f[0].address, "machining", 100, 300_000),
        SplitSpec(f[1].address, "painting", 100, 230_000),
        SplitSpec(f[0].address, "machining lot 2", 50, 200_000),
        SplitSpec(f[2].address, "assembly", 100, 200_000, (0,)),
    ]
    say("3. The buyer orders 100 brackets and splits the order in four")
    node.settlement.token().mint(node.sender(), c.buyer.address, PRICE)
    deadline = story.chain_time() + 3 * DAY
    job_id, _ = node.jobs.create(c.buyer, design_id, 100, PRICE, deadline)
    node.jobs.fund(c.buyer, job_id)
    node.jobs.split(c.buyer, job_id, specs)
    for i, s in enumerate(specs):
        node.jobs.accept(node.sender(s.factory), job_id, i)
        deps = f", after split {s.depends_on[0]}" if s.depends_on else ""
        say(
            f"   split {i}: {s.step:16} {c.name(s.factory):9} {s.share_ppm / 10_000:>4.0f} %"
            f"{deps} — accepted"
        )
    say(
        f"   job {job_id}: {PRICE // DUSD:,} dUSD in escrow; designer 5 %, platform 2 %; "
        f"deadline in 3 days"
    )
    story.facts["job"] = job_id
    return job_id, specs


def _record(
    story: Story, job_id: int, split: int, factory: Sender, steps: list[str], **extra: Any
) -> None:
    for biz in steps:
        t = story.chain_time()
        story.node.steps.ingestor.clock = partial(float, t + 60)
        payload = object_event(
            biz,
            t,
            quantities=[("urn:cofab:class:bracket", 100, "EA")],
            read_point=f"urn:cofab:plant:{factory.address[2:10]}",
            sensors=[{"type": "Temperature", "value": 21.5, "uom": "CEL"}]
            if biz == "inspecting"
            else None,
            **(extra if biz == "shipping" else {}),
        )
        story.node.steps.record(factory.address, job_id, split, payload)


def produce(story: Story, c: Cast, job_id: int) -> None:
    say = story.say
    say("4. Factories record signed production steps; the node anchors them on chain")
    f1, f2, _ = c.factories
    _record(
        story,
        job_id,
        0,
        f1,
        ["commissioning", "assembling", "inspecting", "packing", "shipping"],
        **{"cofab:handover": {"toSplit": 3, "lot": "0x" + LOT.hex()}},
    )
    _record(story, job_id, 1, f2, ["receiving", "assembling", "inspecting", "packing"])
    _record(story, job_id, 2, f1, ["commissioning", "assembling", "inspecting", "packing"])
    for i in range(3):
        _anchor(story, job_id, i)


def _anchor(story: Story, job_id: int, split: int) -> None:
    for a in story.node.steps.anchor(job_id, split):
        story.say(
            f"   split {split}: steps {a.from_seq}-{a.to_seq} anchored (root "
            f"{a.root[:12]}…, block {a.block_number})"
        )


def deliver(story: Story, c: Cast, job_id: int) -> None:
    node, say = story.node, story.say
    f1, f2, f3 = c.factories
    say("5. Deliveries, a hand-over, and the assembly")
    for split in (0, 2):
        node.jobs.deliver(f1, job_id, split)
        node.jobs.accept_delivery(c.buyer, job_id, split)
        say(f"   split {split} delivered by factory 1 and accepted: its share is paid")
    h = Handover(job_id, 0, 3, LOT, 100, story.chain_time() + DAY)
    node.jobs.handover(f1, h, to_signature=node.jobs.sign(f3.account, h))
    say("   factory 1 hands lot 0x1111…1111 (100 units) to factory 3: both signed the hand-over")
    _record(story, job_id, 3, f3, ["receiving", "assembling", "inspecting", "packing"])
    _anchor(story, job_id, 3)
    node.jobs.deliver(f3, job_id, 3)
    node.jobs.accept_delivery(c.buyer, job_id, 3)
    say("   split 3 (assembly) delivered by factory 3 and accepted: its share is paid")
    node.jobs.deliver(f2, job_id, 1)
    say(
        "   split 1 (painting) delivered by factory 2; the buyer withholds acceptance: the "
        "paint shows runs the inspection record does not mention"
    )


def bundles(story: Story, job_id: int) -> list[dict[str, Any]]:
    """Each factory brings its own bundle; factory 2's has an edited inspection record."""
    node, say = story.node, story.say
    by_split = [node.steps.export(job_id, i) for i in range(4)]
    edited = copy.deepcopy(by_split[1])
    step = next(s for s in edited["splits"][0]["steps"] if s["record"]["bizStep"] == "inspecting")
    doc = json.loads(step["payload"])
    doc["disposition"] = "conformant"
    doc["sensorElementList"][0]["sensorReport"][0]["value"] = 20.0
    step["payload"] = json.dumps(doc)
    say("6. Factory 2's evidence bundle arrives with its inspection record edited after signing")
    return [by_split[0], edited, by_split[2], by_split[3]]


def write_report(
    story: Story, job_id: int, evidence: list[dict[str, Any]], name: str
) -> tuple[dict[str, Any], Path]:
    report = seal(
        audit(
            contracts_of(story.node), job_id, AuditInputs(bundles=evidence, design_files=[DRAWING])
        )
    )
    story.out_dir.mkdir(parents=True, exist_ok=True)
    html_path = story.out_dir / f"{name}.html"
    html_path.write_text(render(report))
    (story.out_dir / f"{name}.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    return report, html_path


def payouts(story: Story, c: Cast) -> None:
    node, say = story.node, story.say
    say("9. Payouts by share (withdrawable balances in the Settlement contract)")
    for s in [*c.factories, c.designer, c.council, c.buyer]:
        bal = node.settlement.balance(s.address)
        say(f"   {c.name(s.address):10} {bal / DUSD:>12,.2f} dUSD")
    t = node.settlement.totals()
    say(
        f"   escrow: deposited {t.deposited / DUSD:,.2f} = released "
        f"{t.released / DUSD:,.2f} + refunded {t.refunded / DUSD:,.2f} + held "
        f"{t.held / DUSD:,.2f}"
    )


def run(
    node: Node,
    out_dir: Path,
    say: Callable[[str], None] = print,
    dispute: Callable[[Story, Cast, int, dict[str, Any]], None] | None = None,
) -> Path:
    """Play the story on `node`; return the path of the final HTML audit report."""
    story = Story(node, say, out_dir)
    started = time.monotonic()
    c = cast(story)
    design_id = design(story, c)
    job_id, _ = order(story, c, design_id)
    produce(story, c, job_id)
    deliver(story, c, job_id)
    evidence = bundles(story, job_id)
    report, path = write_report(story, job_id, evidence, f"job-{job_id}-audit")
    say(f"7. The audit (report hash {report['report_hash'][:16]}…): {report['summary']['verdict']}")
    for f in report["findings"]:
        if f["severity"] in ("critical", "major"):
            say(f"   [{f['severity']}] {f['statement']}")
    if dispute is not None:
        dispute(story, c, job_id, report)
        report, path = write_report(story, job_id, evidence, f"job-{job_id}-audit-final")
    payouts(story, c)
    say(f"Done in {time.monotonic() - started:.0f} s. The audit report: {path}")
    return path


def settle_dispute(story: Story, c: Cast, job_id: int, report: dict[str, Any]) -> None:
    """The buyer disputes the tampered split; the auditors rule; Settlement applies it."""
    node, say = story.node, story.say
    disputes = getattr(node, "disputes", None)
    if disputes is None or "Disputes" not in node.deployment.contracts:
        say("8. (this deployment has no Disputes contract: no dispute is played)")
        return
    evidence = bytes.fromhex(report["report_hash"])
    say("8. The buyer opens a dispute on split 1, citing the audit report's hash as evidence")
    dispute_id = disputes.open(
        c.buyer, job_id, 1, "inspection record edited after signing", evidence
    )
    answer = hashlib.sha256(b"factory 2: paint runs are cosmetic, parts are in tolerance").digest()
    disputes.add_evidence(c.factories[1], dispute_id, answer, "urn:cofab:note:factory2-reply")
    say("   factory 2 answers with its own evidence: voting opens")
    for auditor, share in zip(c.auditors, (600_000, 700_000), strict=True):
        disputes.vote(auditor, dispute_id, share, "factory")
        say(
            f"   {c.name(auditor.address)} votes: pay {share / 10_000:.0f} % of the split, "
            "fault with the factory"
        )
    ruling = disputes.show(dispute_id).model_dump(mode="json")["ruling"] or {}
    say(
        f"   ruling: factory 2 is paid {int(ruling.get('payout_ppm', 0)) / 10_000:.0f} % of its "
        f"split ({int(ruling.get('payout', 0)) / DUSD:,.2f} dUSD), the buyer is refunded "
        f"{int(ruling.get('refund', 0)) / DUSD:,.2f} dUSD; fault: {ruling.get('fault')}"
    )
