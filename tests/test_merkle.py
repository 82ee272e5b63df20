"""Merkle trees agree with @openzeppelin/merkle-tree (run with node) byte for byte."""

from __future__ import annotations

import json
import os
import random
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.errors import InvalidInput
from ledger.core.merkle import StandardMerkleTree, leaf_hash, process_proof, root_of, verify
from ledger.core.settings import NODE_MODULES

ENCODING = ("bytes32", "uint256", "address")

JS = """
const { StandardMerkleTree } = require(process.argv[1]);
const dumped = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const loaded = StandardMerkleTree.load(dumped);          // validates every node
const rebuilt = StandardMerkleTree.of(dumped.values.map(v => v.value), dumped.leafEncoding);
const proofs = dumped.values.map((_, i) => rebuilt.getProof(i));
console.log(JSON.stringify({ loaded: loaded.root, rebuilt: rebuilt.root, proofs }));
"""


def _values(n: int, seed: int) -> list[tuple[bytes, int, str]]:
    rng = random.Random(seed)
    return [
        (rng.randbytes(32), rng.randrange(2**256), "0x" + rng.randbytes(20).hex()) for _ in range(n)
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 257])
def test_same_root_and_proofs_as_openzeppelin(n: int) -> None:
    values = _values(n, n)
    tree = StandardMerkleTree.of(values, ENCODING)
    dumped = tree.dump()
    lib = str(NODE_MODULES / "@openzeppelin" / "merkle-tree")
    out = subprocess.run(
        ["node", "-e", JS, lib],
        input=json.dumps(dumped),
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(out.stdout)
    assert theirs["loaded"] == theirs["rebuilt"] == "0x" + tree.root.hex()
    for i in range(n):
        assert theirs["proofs"][i] == ["0x" + p.hex() for p in tree.proof(i)]
        assert verify(tree.root, ENCODING, values[i], tree.proof(i))


def test_load_round_trip_and_tamper_detection() -> None:
    tree = StandardMerkleTree.of(_values(9, 1), ENCODING)
    again = StandardMerkleTree.load(json.loads(json.dumps(tree.dump())))
    assert again.root == tree.root
    dumped = tree.dump()
    dumped["values"][3]["value"][1] = "12345"
    with pytest.raises(InvalidInput, match="does not match"):
        StandardMerkleTree.load(dumped)
    dumped = tree.dump()
    dumped["tree"][0] = "0x" + "00" * 32
    with pytest.raises(InvalidInput, match="inconsistent"):
        StandardMerkleTree.load(dumped)


def test_wrong_value_or_proof_does_not_verify() -> None:
    values = _values(16, 2)
    tree = StandardMerkleTree.of(values, ENCODING)
    proof = tree.proof(5)
    assert not verify(tree.root, ENCODING, values[6], proof)
    assert process_proof(leaf_hash(ENCODING, values[5]), proof[:-1]) != tree.root
    with pytest.raises(InvalidInput):
        StandardMerkleTree.of([], ENCODING)


def test_leaf_is_double_hashed() -> None:
    value = (os.urandom(32), 1, "0x" + "11" * 20)
    single = StandardMerkleTree.of([value], ENCODING)
    assert single.root == leaf_hash(ENCODING, value)
    assert single.proof(0) == []


def test_step_leaf_equals_the_generic_leaf() -> None:
    from ledger.steps.anchoring import LEAF_ENCODING, step_leaf

    for seq in (0, 1, 2**63 - 1, 2**64 - 1):
        h = os.urandom(32)
        assert step_leaf(seq, h) == leaf_hash(LEAF_ENCODING, (seq, h))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70),
    st.integers(0, 3),
)
def test_root_of_equals_the_tree_root(leaves: list[bytes], repeats: int) -> None:
    """Leaves given twice (a tie in the sort) included."""
    leaves = leaves + leaves[:repeats]
    assert root_of(leaves) == StandardMerkleTree.from_leaf_hashes(leaves, (), ("bytes32",)).root


def test_root_of_no_leaves_is_refused() -> None:
    with pytest.raises(InvalidInput):
        root_of([])
