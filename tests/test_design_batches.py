"""Design certificates and batch manifests checked with @openzeppelin/merkle-tree from node,
as a third party would: certificates verify as served (a zero parent, not null), and
`GET /designs/batches/{root}` gives another member what it needs to prove any design of the
batch, once the batch's designs are revealed."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from fastapi.testclient import TestClient
from test_api import assert_problem, sign_in

from api.app import create_app
from kit import admit, run_node
from ledger.core import canonical_json
from ledger.designs.certificates import Certificate, verify_certificate
from ledger.membership.roles import Role
from ledger.node import Node

ZERO = "0x" + "00" * 32


def openzeppelin(request: dict[str, Any]) -> dict[str, Any]:
    """Run tests/js/merkle_proofs.mjs (@openzeppelin/merkle-tree) with the `node` on PATH."""
    return dict(run_node("merkle_proofs.mjs", request))


def b32(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def test_a_third_party_proves_another_member_of_a_batch(node: Node) -> None:
    client = TestClient(create_app(node))
    designer = admit(node, int(Role.DESIGNER))
    member = admit(node, int(Role.FACTORY))
    as_designer = sign_in(client, node, designer.account)
    as_member = sign_in(client, node, member.account)
    ids = ["0x" + hashlib.sha256(os.urandom(16)).hexdigest() for _ in range(3)]
    body = {"designs": [{"design_id": d, "title": f"part {i}"} for i, d in enumerate(ids)]}
    resp = client.post("/designs/by-hash", json=body, headers=as_designer)
    assert resp.status_code == 201, resp.text
    certs = resp.json()
    assert [c["parent_id"] for c in certs] == [ZERO] * 3  # the leaf's value, not null
    root = certs[0]["batch"]["root"]

    # OpenZeppelin's own verify takes each certificate's fields as they are
    assert openzeppelin({"certificates": certs})["verified"] == [True, True, True]
    for cert in certs:  # and cofab's verifier still reads them
        verdict = verify_certificate(
            node.chain.w3, b32(cert["design_id"]), Certificate.from_json(cert)
        )
        assert verdict.designer == designer.address

    # the manifest names every design: while they are unrevealed, the designer's only
    url = f"/designs/batches/{root}"
    assert "not revealed" in assert_problem(client.get(url, headers=as_member), 403)["detail"]
    assert client.get(url).status_code == 401
    assert client.get(url, headers=as_designer).status_code == 200
    for did in ids:
        assert client.post(f"/designs/{did}/reveal", headers=as_designer).status_code == 200

    resp = client.get(url, headers=as_member)
    assert resp.status_code == 200, resp.text
    batch = resp.json()
    assert (batch["root"], batch["designer"], batch["count"]) == (root, designer.address, 3)
    assert batch["manifest_hash"] == certs[0]["batch"]["manifest_hash"]
    manifest_bytes = canonical_json.dumps(batch["manifest"])
    assert "0x" + hashlib.sha256(manifest_bytes).hexdigest() == batch["manifest_hash"]

    # the member holds only design 0's certificate; it proves design 2 from the manifest
    proved = openzeppelin({"certificates": certs[:1], "batch": batch, "prove": [ids[2]]})
    assert proved["root"] == root
    [proof] = proved["proofs"]
    assert proof["ok"] and proof["value"][0] == ids[2] and proof["value"][3] == designer.address
    did, meta, parent, who = proof["value"]
    assert node.designs.verify_member(  # and the registry agrees, on chain
        b32(root), who, b32(did), b32(meta), b32(parent), [b32(p) for p in proof["proof"]]
    )
    assert proof["proof"] == certs[2]["batch"]["proof"]  # the proof its certificate carries


def test_unknown_batches_and_other_nodes_batches_are_404(node: Node) -> None:
    client = TestClient(create_app(node))
    designer = admit(node, int(Role.DESIGNER))
    as_designer = sign_in(client, node, designer.account)
    resp = client.get("/designs/batches/0x" + "ab" * 32, headers=as_designer)
    assert "no batch" in assert_problem(resp, 404)["detail"]
    assert client.get("/designs/batches/0x1234", headers=as_designer).status_code == 422

    # a batch registered on chain without this node's manifest (as if by another node)
    root = hashlib.sha256(b"elsewhere").digest()
    node.designs.register_batch(designer, root, 2, hashlib.sha256(b"manifest").digest())
    resp = client.get("/designs/batches/0x" + root.hex(), headers=as_designer)
    assert "does not hold the manifest" in assert_problem(resp, 404)["detail"]
