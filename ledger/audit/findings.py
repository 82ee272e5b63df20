"""Findings: what the audit states, how serious it is, and the evidence for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    CRITICAL = "critical"  # forgery or tampering: the record contradicts itself or the chain
    MAJOR = "major"  # a broken obligation: missing steps, late delivery, one-sided hand-over
    MINOR = "minor"  # weaker evidence than expected: unanchored steps, absent payloads
    INFO = "info"  # facts worth knowing: disputes, rulings, refunds


ORDER = {Severity.CRITICAL: 0, Severity.MAJOR: 1, Severity.MINOR: 2, Severity.INFO: 3}


@dataclass(frozen=True)
class Finding:
    severity: Severity
    code: str
    statement: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "statement": self.statement,
            "evidence": self.evidence,
        }

    def sort_key(self) -> tuple[Any, ...]:
        ev = self.evidence
        return (
            ORDER[self.severity],
            self.code,
            ev.get("split", -1),
            ev.get("seq", -1),
            self.statement,
        )
