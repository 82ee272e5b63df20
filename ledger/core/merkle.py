"""Merkle trees in the format of OpenZeppelin's StandardMerkleTree ("standard-v1").

Leaves are keccak256(keccak256(abi.encode(values))) (double-hashed, so a leaf can never be
mistaken for an inner node); pairs are hashed sorted; leaves are sorted by hash and laid
out as in @openzeppelin/merkle-tree. A proof made here verifies with OpenZeppelin's
MerkleProof.sol, with that npm library, and with `verify` below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode

from ledger.core.abi import hex32
from ledger.core.errors import InvalidInput
from ledger.core.hashing import keccak

FORMAT = "standard-v1"


def leaf_hash(leaf_encoding: Sequence[str], value: Sequence[Any]) -> bytes:
    return keccak(keccak(encode(list(leaf_encoding), list(value))))


def node_hash(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    node = leaf
    for sibling in proof:
        node = node_hash(node, sibling)
    return node


def root_of(leaves: Sequence[bytes]) -> bytes:
    """`StandardMerkleTree.from_leaf_hashes(leaves, ...).root` without the ranking, the
    index bookkeeping and the tree object: a checker rebuilds a root per anchor and keeps
    nothing else (tests/test_merkle.py holds the two equal)."""
    if not leaves:
        raise InvalidInput("a Merkle tree needs at least one leaf")
    n = len(leaves)
    tree = [b""] * (n - 1) + sorted(leaves, reverse=True)  # the leaves' layout in the tree
    for i in range(n - 2, -1, -1):
        a, b = tree[2 * i + 1], tree[2 * i + 2]
        tree[i] = keccak(a + b) if a < b else keccak(b + a)
    return tree[0]


def verify(
    root: bytes, leaf_encoding: Sequence[str], value: Sequence[Any], proof: Sequence[bytes]
) -> bool:
    return process_proof(leaf_hash(leaf_encoding, value), proof) == root


def _bytes(h: str) -> bytes:
    try:
        raw = bytes.fromhex(h.removeprefix("0x"))
    except (AttributeError, ValueError):
        raise InvalidInput(f"{h!r} is not a 32-byte hex node") from None
    if len(raw) != 32:
        raise InvalidInput(f"{h!r} is not a 32-byte hex node")
    return raw


@dataclass
class StandardMerkleTree:
    """`tree` is the flat array of nodes (root at 0); `order[i]` is the tree index of value i."""

    tree: list[bytes]
    values: list[Sequence[Any]]
    leaf_encoding: tuple[str, ...]
    order: list[int]

    @classmethod
    def of(
        cls, values: Sequence[Sequence[Any]], leaf_encoding: Sequence[str]
    ) -> StandardMerkleTree:
        encoding = tuple(leaf_encoding)
        return cls.from_leaf_hashes([leaf_hash(encoding, v) for v in values], values, encoding)

    @classmethod
    def from_leaf_hashes(
        cls, leaves: Sequence[bytes], values: Sequence[Sequence[Any]], leaf_encoding: Sequence[str]
    ) -> StandardMerkleTree:
        """Build from leaf hashes already computed (the fast path for large batches)."""
        if not leaves:
            raise InvalidInput("a Merkle tree needs at least one leaf")
        ranked = sorted(range(len(leaves)), key=lambda i: leaves[i])
        size = 2 * len(leaves) - 1
        tree: list[bytes] = [b""] * size
        order = [0] * len(leaves)
        for position, value_index in enumerate(ranked):
            tree[size - 1 - position] = leaves[value_index]
            order[value_index] = size - 1 - position
        for i in range(size - 1 - len(leaves), -1, -1):
            tree[i] = node_hash(tree[2 * i + 1], tree[2 * i + 2])
        return cls(tree, list(values), tuple(leaf_encoding), order)

    @property
    def root(self) -> bytes:
        return self.tree[0]

    def leaf(self, value_index: int) -> bytes:
        return self.tree[self.order[value_index]]

    def proof(self, value_index: int) -> list[bytes]:
        if not 0 <= value_index < len(self.order):
            raise InvalidInput(f"no value {value_index} in this tree")
        index = self.order[value_index]
        proof = []
        while index > 0:
            sibling = index - 1 if index % 2 == 0 else index + 1
            proof.append(self.tree[sibling])
            index = (index - 1) // 2
        return proof

    def dump(self) -> dict[str, Any]:
        """The JSON document @openzeppelin/merkle-tree's StandardMerkleTree.load() reads."""
        return {
            "format": FORMAT,
            "leafEncoding": list(self.leaf_encoding),
            "tree": [hex32(n) for n in self.tree],
            "values": [
                {"value": [_jsonable(x) for x in v], "treeIndex": self.order[i]}
                for i, v in enumerate(self.values)
            ],
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> StandardMerkleTree:
        if data.get("format") != FORMAT:
            raise InvalidInput(f"unknown Merkle tree format {data.get('format')!r}")
        encoding = tuple(data["leafEncoding"])
        tree = [_bytes(n) for n in data["tree"]]
        values = [v["value"] for v in data["values"]]
        order = [int(v["treeIndex"]) for v in data["values"]]
        loaded = cls(tree, values, encoding, order)
        for i, value in enumerate(values):
            if tree[order[i]] != leaf_hash(encoding, _from_json(encoding, value)):
                raise InvalidInput(f"Merkle tree value {i} does not match its leaf")
        for i in range(len(tree) - 1 - len(values), -1, -1):
            if tree[i] != node_hash(tree[2 * i + 1], tree[2 * i + 2]):
                raise InvalidInput("Merkle tree nodes are inconsistent")
        return loaded


def _jsonable(x: Any) -> Any:
    if isinstance(x, bytes):
        return hex32(x)
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x) if abs(x) >= 2**53 else x
    return x


def _from_json(encoding: Sequence[str], value: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for t, x in zip(encoding, value, strict=True):
        if t.startswith("bytes") and isinstance(x, str):
            out.append(bytes.fromhex(x.removeprefix("0x")))
        elif t.startswith(("uint", "int")):
            out.append(int(x))
        else:
            out.append(x)
    return out
