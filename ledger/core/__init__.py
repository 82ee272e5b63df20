"""Core: errors, settings, hashing, canonical JSON, Merkle trees, blobs and keys. Knows no chain."""
