"""Findings: what a verification or an audit states, how serious it is, and the evidence.

One type for every checker and every entry point, so a bundle gets the same findings
whether `cofab step verify`, `POST /steps/verify`, `cofab audit` or the audit API checks it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from ledger.core.types import Record


class Severity(StrEnum):
    CRITICAL = "critical"  # forgery or tampering: the record contradicts itself or the chain
    MAJOR = "major"  # a broken obligation: missing steps, late delivery, one-sided hand-over
    MINOR = "minor"  # weaker evidence than expected: unanchored steps, absent payloads
    INFO = "info"  # facts worth knowing: disputes, rulings, refunds


ORDER = {Severity.CRITICAL: 0, Severity.MAJOR: 1, Severity.MINOR: 2, Severity.INFO: 3}


class Finding(Record):
    """One statement of a check: made only where something is wrong or worth telling, so
    a clean bundle of a million steps makes none."""

    severity: Severity
    code: str
    statement: str
    evidence: dict[str, Any] = Field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        """Critical and major findings make a verdict fail; minor and info ones do not."""
        return self.severity in (Severity.CRITICAL, Severity.MAJOR)

    def sort_key(self) -> tuple[Any, ...]:
        ev = self.evidence
        return (
            ORDER[self.severity],
            self.code,
            ev.get("split", -1),
            "omitted" in ev,  # the count of those not listed comes after them
            ev.get("seq", -1),
            self.statement,
        )


def verdict(findings: list[Finding]) -> str:
    """ "clean" unless a critical or major finding stands: the one rule for every report."""
    return "findings" if any(f.blocking for f in findings) else "clean"


def counts(findings: list[Finding]) -> dict[str, int]:
    """Findings per severity; a finding standing for others not listed one by one
    (`evidence.omitted`) counts as those."""
    tally = dict.fromkeys((s.value for s in Severity), 0)
    for f in findings:
        tally[f.severity.value] += int(f.evidence.get("omitted", 1))
    return tally
