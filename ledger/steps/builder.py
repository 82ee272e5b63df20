"""Make signed steps: what a shop-floor device (or a node signing for its member) does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ledger.steps import epcis
from ledger.steps.ingest import Submission
from ledger.steps.record import Domain, Step
from ledger.steps.signatures import Signer


def object_event(
    biz_step: str,
    time: int,
    *,
    epcs: list[str] | None = None,
    quantities: list[tuple[str, float, str]] | None = None,
    read_point: str | None = None,
    sensors: list[dict[str, Any]] | None = None,
    action: str = "OBSERVE",
    **extra: Any,
) -> dict[str, Any]:
    """A minimal EPCIS 2.0 ObjectEvent for one production step."""
    doc: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": datetime.fromtimestamp(time, UTC).isoformat().replace("+00:00", "Z"),
        "eventTimeZoneOffset": "+00:00",
        "action": action,
        "bizStep": biz_step,
    }
    if epcs:
        doc["epcList"] = epcs
    if quantities:
        doc["quantityList"] = [{"epcClass": c, "quantity": q, "uom": u} for c, q, u in quantities]
    if not epcs and not quantities:
        doc["quantityList"] = [{"epcClass": "urn:cofab:lot:unspecified", "quantity": 1}]
    if read_point:
        doc["readPoint"] = {"id": read_point}
    if sensors:
        doc["sensorElementList"] = [{"sensorReport": sensors}]
    doc.update(extra)
    return doc


class StepWriter:
    """Keeps one split's chain position and signs its next steps."""

    def __init__(
        self,
        signer: Signer,
        domain: Domain,
        job_id: int,
        split_id: int,
        member: str,
        next_seq: int = 0,
        head: bytes = bytes(32),
    ) -> None:
        self.signer = signer
        self.domain = domain
        self.job_id = job_id
        self.split_id = split_id
        self.member = member
        self.next_seq = next_seq
        self.head = head

    def step(self, payload: dict[str, Any], evidence_hashes: list[str] | None = None) -> Submission:
        document = epcis.parse(payload)
        return self.signed(document, epcis.canonical(document), evidence_hashes)

    def signed(
        self, document: dict[str, Any], canonical: bytes, evidence_hashes: list[str] | None = None
    ) -> Submission:
        """The next step of an event already checked (`epcis.parse`) and canonicalised."""
        step, digest = self.next(document, canonical, evidence_hashes)
        signature = self.signer.sign(digest)
        return Submission(step.message(), "0x" + signature.hex(), document, canonical)

    def next(
        self, document: dict[str, Any], canonical: bytes, evidence_hashes: list[str] | None = None
    ) -> tuple[Step, bytes]:
        """The next step of a checked, canonicalised event and its digest, unsigned (to be
        signed by the caller, e.g. many at once); the split's position moves on."""
        biz_step = str(document.get("bizStep") or "other")
        step = Step(
            job_id=self.job_id,
            split_id=self.split_id,
            seq=self.next_seq,
            prev_hash=self.head,
            biz_step=biz_step.removeprefix("urn:epcglobal:cbv:bizstep:"),
            payload_hash=epcis.payload_hash(canonical),
            evidence_hash=epcis.evidence_hash(evidence_hashes or []),
            time=epcis.event_time(document),
            member=self.member,
        )
        digest = step.digest(self.domain)
        self.next_seq += 1
        self.head = digest
        return step, digest
