"""The one verifier of production steps: bundles, chain facts, findings and the checker.

Every entry point (`cofab step verify`, `POST /steps/verify`, `cofab audit`, the audit
API) checks steps with `ledger.verify.checker`, so they agree on every bundle.
"""
