"""Disputes: the auditors' court over a split, and the reputation it feeds."""
