"""cofab's JSON-LD context for EPCIS: the names of the fields cofab adds to events.

`cofab:proof` carries a queried event's proof (its signed step and, once anchored, the
anchor and Merkle proof); `cofab:job` and `cofab:split` let an event name its split itself.
The node serves this context at `GET /epcis/context/cofab.jsonld`; query answers reference
it in `@context`.
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "urn:cofab:epcis:"
PREFIX = "cofab"
GS1_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
CONTEXT_PATH = "/epcis/context/cofab.jsonld"
JOB = f"{PREFIX}:job"
SPLIT = f"{PREFIX}:split"
PROOF = f"{PREFIX}:proof"


def document() -> dict[str, Any]:
    """The context document (JSON-LD 1.1)."""
    return {
        "@context": {
            "@version": 1.1,
            PREFIX: NAMESPACE,
            JOB: {"@id": NAMESPACE + "job"},
            SPLIT: {"@id": NAMESPACE + "split"},
            PROOF: {"@id": NAMESPACE + "proof", "@type": "@json"},
        }
    }
