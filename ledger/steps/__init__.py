"""Production steps: EIP-712 records, fast signatures, EPCIS payloads, journal, anchoring."""
