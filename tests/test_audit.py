"""The chain audit on a real job: clean when untampered, and a tamper corpus it catches."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass

import pytest

from kit import Parties, admit, chain_now, new_account, parties
from ledger.audit.engine import AuditInputs, audit, contracts_of, report_hash, seal
from ledger.audit.html import render
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import SplitSpec
from ledger.orders.signing import Handover
from ledger.scenario import factory_shares, order_in_production
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.signatures import Signer


@dataclass
class Story:
    node: Node
    job: int
    bundle: dict
    design: bytes


def record(
    node: Node, factory, job: int, split: int, n: int, signer: Signer | None = None, **extra
) -> None:
    next_seq, head = node.steps.journal.head(job, split)
    w = StepWriter(
        signer or Signer(factory.account.key),
        node.steps.domain,
        job,
        split,
        factory.address,
        next_seq,
        head,
    )
    node.chain.advance_time(n)  # the steps' dates, a second apart, all after the order
    t = chain_now(node)
    node.steps.ingestor.clock = lambda: t + 60
    node.steps.ingest([w.step(object_event("assembling", t - n + i, **extra)) for i in range(n)])


def two_split_job(node: Node, wait: int = 0) -> tuple[int, Parties]:
    """Two factories' job (`wait` seconds after it was placed, its steps): split 0 with
    steps 0-5 anchored as 0-3 and 4-5, split 1 with steps 0-2 anchored at once."""
    p = parties(node, factories=2)
    shares = factory_shares(2)
    specs = [
        SplitSpec(p.factories[0].address, "machining", 10, shares[0]),
        SplitSpec(p.factories[1].address, "assembly", 10, shares[1], (0,)),
    ]
    job = order_in_production(node, p.buyer, p.design, specs, 10_000 * 10**6)
    if wait:
        node.chain.advance_time(wait)
    record(node, p.factories[0], job, 0, 6)
    node.steps.anchor(job, 0, max_steps=4)
    record(node, p.factories[1], job, 1, 3)
    node.steps.anchor(job, 1)
    return job, p


def step_before_admission(node: Node, buyer: Sender, design: bytes) -> int:
    """A job whose factory was admitted an hour after the order was placed, with one
    anchored step dated before the admission (after the order)."""
    job, _ = node.jobs.create(buyer, design, 1, 10**6, chain_now(node) + 30 * 86_400)
    node.chain.advance_time(3600)
    late = admit(node, int(Role.FACTORY))  # admitted now; its step claims an earlier time
    node.jobs.fund(buyer, job)
    node.jobs.split(buyer, job, [SplitSpec(late.address, "polishing", 1, factory_shares(1)[0])])
    node.jobs.accept(late, job, 0)
    w = StepWriter(Signer(late.account.key), node.steps.domain, job, 0, late.address)
    since = int(node.consortium.member(late.address).since)
    node.steps.ingestor.clock = lambda: since + 60
    node.steps.ingest([w.step(object_event("assembling", since - 1800))])
    node.steps.anchor(job, 0)
    return job


@pytest.fixture
def story(node: Node) -> Story:
    job, p = two_split_job(node)
    return Story(node, job, node.steps.export(job), p.design)


def run(story: Story, bundles: list[dict] | None = None, files: list[bytes] | None = None):
    inputs = AuditInputs(
        bundles=story.bundle and (bundles or [story.bundle]), design_files=files or []
    )
    return audit(contracts_of(story.node), story.job, inputs)


def codes(report: dict) -> set[str]:
    return {f["code"] for f in report["findings"] if f["severity"] in ("critical", "major")}


def test_untampered_job_audits_clean_and_reproducibly(story: Story) -> None:
    first = seal(run(story))
    assert first["summary"]["verdict"] == "clean", first["findings"]
    assert [s["steps_proven"] for s in first["splits"]] == [6, 3]
    again = seal(run(story, [json.loads(json.dumps(story.bundle))]))
    assert again["report_hash"] == first["report_hash"] == report_hash(first)
    page = render(first)
    assert "Verdict: clean" in page and f"Audit of job {story.job}" in page


def _tamper(story: Story, fn) -> dict:
    bundle = copy.deepcopy(story.bundle)
    fn(bundle["splits"][0]["steps"])
    return run(story, [bundle])


def test_edited_payload(story: Story) -> None:
    def edit(steps):
        doc = json.loads(steps[2]["payload"])
        doc["quantityList"][0]["quantity"] = 2
        steps[2]["payload"] = json.dumps(doc)

    assert "payload-mismatch" in codes(_tamper(story, edit))


def test_reordered_steps(node: Node, story: Story) -> None:
    """The factory re-signs its history in another order: every signature and link is
    valid, but it is not what was anchored."""
    items = story.bundle["splits"][0]["steps"]
    plant = node.sender(items[0]["record"]["member"])
    w = StepWriter(Signer(plant.account.key), node.steps.domain, story.job, 0, plant.address)
    resigned = []
    for item in [items[i] for i in (0, 3, 2, 1, 4, 5)]:
        sub = w.step(json.loads(item["payload"]))
        resigned.append(
            {"record": sub.record, "signature": sub.signature, "payload": item["payload"]}
        )
    bundle = copy.deepcopy(story.bundle)
    bundle["splits"][0]["steps"] = resigned
    found = codes(run(story, [bundle]))
    assert "not-included" in found
    assert not {"chain-break", "sequence-gap", "unauthorized-signer"} & found
    naive = copy.deepcopy(story.bundle)  # swap the seq fields without re-signing
    s = naive["splits"][0]["steps"]
    s[1]["record"]["seq"], s[3]["record"]["seq"] = 3, 1
    assert {"chain-break", "not-included"} <= codes(run(story, [naive]))


def test_dropped_step(story: Story) -> None:
    found = codes(_tamper(story, lambda steps: steps.pop(4)))
    assert {"missing-steps", "chain-break"} <= found


def test_forged_signature(story: Story) -> None:
    def forge(steps):
        steps[0]["signature"] = (
            "0x" + Signer(os.urandom(32)).sign(bytes.fromhex(steps[0]["step_hash"][2:])).hex()
        )

    assert "unauthorized-signer" in codes(_tamper(story, forge))


def test_replaced_design_file(story: Story) -> None:
    report = run(story, files=[b"not the drawing that was ordered"])
    assert "design-file-mismatch" in codes(report)
    assert codes(run(story, files=[])) == set()


def test_revoked_device_key(node: Node, story: Story) -> None:
    plant = node.sender(node.jobs.view(story.job).model_dump(mode="json")["splits"][0]["factory"])
    device = new_account()
    node.consortium.authorize_device(plant, device, 0)
    record(node, plant, story.job, 0, 2, signer=Signer(device.key))
    node.consortium.revoke_device(plant, device.address)
    node.steps.anchor(story.job, 0)  # anchored after the key was revoked
    report = run(story, [node.steps.export(story.job)])
    bad = [f for f in report["findings"] if f["code"] == "unauthorized-signer"]
    assert {f["evidence"]["seq"] for f in bad} == {6, 7}


def device_steps(node: Node, plant, job: int, device, times: list[int], received: int) -> None:
    """Steps of split 0 signed by `device`, dated `times`, reaching the node at `received`."""
    next_seq, head = node.steps.journal.head(job, 0)
    w = StepWriter(Signer(device.key), node.steps.domain, job, 0, plant.address, next_seq, head)
    node.steps.ingestor.clock = lambda: received
    node.steps.ingest([w.step(object_event("assembling", t)) for t in times])


def findings_of(report: dict, code: str) -> list[dict]:
    return [f for f in report["findings"] if f["code"] == code]


def test_device_step_backdated_before_its_binding(node: Node, story: Story) -> None:
    """A device key dates steps before it was bound to the factory: the audit names them."""
    plant = node.sender(node.jobs.view(story.job).model_dump(mode="json")["splits"][0]["factory"])
    device = new_account()
    node.chain.advance_time(3600)  # the factory was admitted an hour before the binding
    receipt = node.consortium.authorize_device(plant, device, 0)
    bound = int(node.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    device_steps(node, plant, story.job, device, [bound - 1800, bound], received=bound + 1)
    node.steps.anchor(story.job, 0)
    report = run(story, [node.steps.export(story.job)])
    [backdated] = findings_of(report, "backdated-before-binding")
    assert backdated["severity"] == "critical" and backdated["evidence"]["seq"] == 6
    assert backdated["evidence"]["bound_since"] == bound
    assert str(bound - 1800) in backdated["statement"]
    assert codes(report) == {"backdated-before-binding"}  # step 7, dated at the binding, is fine


def test_device_step_anchored_after_the_key_expired(node: Node, story: Story) -> None:
    """A step dated before its device key's expiry but anchored only after it: authority is
    judged at the anchor's block time too, and the possible back-dating is reported."""
    plant = node.sender(node.jobs.view(story.job).model_dump(mode="json")["splits"][0]["factory"])
    device = new_account()
    expiry = chain_now(node) + 600
    node.consortium.authorize_device(plant, device, expiry)
    now = chain_now(node)  # the binding's block
    device_steps(node, plant, story.job, device, [now], received=now + 20)
    node.steps.anchor(story.job, 0)  # anchored before the expiry: clean
    assert codes(run(story, [node.steps.export(story.job)])) == set()

    device_steps(node, plant, story.job, device, [now + 10], received=now + 20)
    node.chain.advance_time(700)  # the key expires before this step is anchored
    node.steps.anchor(story.job, 0)
    report = run(story, [node.steps.export(story.job)])
    [late] = findings_of(report, "backdated-past-expiry")
    assert late["severity"] == "major" and late["evidence"]["seq"] == 7
    assert late["evidence"]["expired"] == expiry and late["evidence"]["block"] > 0
    assert codes(report) == {"backdated-past-expiry"}


def test_handover_signed_by_a_device_key_audits_clean(node: Node, story: Story) -> None:
    splits = node.jobs.view(story.job).model_dump(mode="json")["splits"]
    sender, receiver = (node.sender(splits[i]["factory"]) for i in (0, 1))
    device = new_account()
    node.consortium.authorize_device(sender, device, 0)
    node.jobs.deliver(sender, story.job, 0)
    lot = b"SSCC-0001".ljust(32, b"\x00")
    handover = Handover(story.job, 0, 1, lot, 10, chain_now(node) + 3600)
    node.jobs.handover(receiver, handover, node.jobs.sign(device, handover))
    report = run(story)
    assert not findings_of(report, "handover-signer"), report["findings"]
    assert codes(report) == set()


def test_signer_not_yet_a_member(node: Node, story: Story) -> None:
    """A step dated after its order was placed but before its factory was admitted."""
    p_buyer = node.sender(node.jobs.view(story.job).model_dump(mode="json")["buyer"])
    node.settlement.token().mint(node.sender(), p_buyer.address, 10**6)
    job = step_before_admission(node, p_buyer, story.design)
    report = audit(contracts_of(node), job, AuditInputs([node.steps.export(job)]))
    assert "signer-not-yet-valid" in codes(report)


def test_step_dated_after_its_anchor(node: Node, story: Story) -> None:
    plant = node.sender(node.jobs.view(story.job).model_dump(mode="json")["splits"][1]["factory"])
    next_seq, head = node.steps.journal.head(story.job, 1)
    w = StepWriter(
        Signer(plant.account.key), node.steps.domain, story.job, 1, plant.address, next_seq, head
    )
    t = chain_now(node) + 250  # within the ingest's clock skew, after the coming anchor
    node.steps.ingestor.clock = lambda: t
    node.steps.ingest([w.step(object_event("packing", t))])
    node.steps.anchor(story.job, 1)
    report = run(story, [node.steps.export(story.job)])
    assert "after-anchor" in codes(report)


def test_one_sided_handover(node: Node, story: Story) -> None:
    plant = node.sender(node.jobs.view(story.job).model_dump(mode="json")["splits"][0]["factory"])
    lot = "0x" + "ab" * 32
    record(node, plant, story.job, 0, 1, **{"cofab:handover": {"toSplit": 1, "lot": lot}})
    node.steps.anchor(story.job, 0)
    report = run(story, [node.steps.export(story.job)])
    assert "one-sided-handover" in codes(report)


def test_audit_over_the_api(story: Story) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    client = TestClient(create_app(story.node))
    report = client.get(f"/jobs/{story.job}/audit").json()
    assert report["summary"]["verdict"] == "clean" and len(report["report_hash"]) == 64
    page = client.get(f"/jobs/{story.job}/audit", params={"format": "html"})
    assert page.headers["content-type"].startswith("text/html") and "Findings" in page.text
    tampered = copy.deepcopy(story.bundle)
    tampered["splits"][0]["steps"][1]["signature"] = tampered["splits"][0]["steps"][0]["signature"]
    body = {"bundles": [tampered], "include_node_steps": False}
    found = client.post(f"/jobs/{story.job}/audit", json=body).json()
    assert found["summary"]["verdict"] == "findings"
    assert client.get("/jobs/999/audit").status_code == 404
