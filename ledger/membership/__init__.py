"""Membership: the consortium's members, role bits, council proposals and device keys."""
