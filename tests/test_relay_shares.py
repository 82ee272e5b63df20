"""A licensed factory imports the designer's encrypted share into its OWN node and decrypts
it there; a member without a licence (or a tampered package) gets nothing, and its node
keeps nothing. Two nodes: two data directories, one chain."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from eth_account import Account
from fastapi.testclient import TestClient
from test_api import assert_problem, sign_in

from api.app import create_app
from conftest import admit
from ledger.core.keys import Keyring
from ledger.core.private import private_dir
from ledger.designs.files import NewDesign
from ledger.membership.roles import Role
from ledger.node import Node


def test_a_licensed_factory_imports_and_decrypts_on_its_own_node(
    node: Node, tmp_path: Path
) -> None:
    designer_node = node
    data_dir = private_dir(tmp_path / "factory-node")
    factory_node = Node(node.chain, node.deployment, Keyring(data_dir / "keystore"), data_dir)
    designer = admit(designer_node, int(Role.DESIGNER))
    plant = factory_node.add_signer(Account.create(os.urandom(32).hex()))
    stranger = factory_node.add_signer(Account.create(os.urandom(32).hex()))
    for member in (plant, stranger):
        node.consortium.propose_admit(node.sender(), member.address, int(Role.FACTORY))
        factory_node.design_service().publish_key(member)

    drawing = b"flange, rev C: " + os.urandom(64)
    svc = designer_node.design_service()
    [cert] = svc.register(designer, [NewDesign.from_bytes(drawing, file_name="f.step", title="f")])
    svc.grant_licence(designer, cert.design_id, plant.address, 30_000)
    svc.share(designer, cert.design_id, [plant.address])
    package = svc.package(cert.design_id, plant.address)  # served by the designer's node
    did = "0x" + cert.design_id.hex()

    client = TestClient(create_app(factory_node))
    as_plant = sign_in(client, factory_node, plant.account)
    as_stranger = sign_in(client, factory_node, stranger.account)
    assert_problem(client.get(f"/designs/{did}/file", headers=as_plant), 404)  # not here yet
    blobs = factory_node.design_service().blobs

    # a tampered package: refused, nothing kept
    tampered = dict(package)
    raw = bytearray(base64.b64decode(package["ciphertext"]))
    raw[-1] ^= 1
    tampered["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    refused = client.post("/designs/shares/import", json=tampered, headers=as_plant)
    assert_problem(refused, 409)
    assert "tampered" in refused.json()["detail"]
    assert not blobs.has(bytes.fromhex(package["ciphertext_hash"][2:]))

    # the unlicensed member: no share is recorded to it, its node keeps nothing
    refused = client.post("/designs/shares/import", json=package, headers=as_stranger)
    assert_problem(refused, 404)
    assert not blobs.has(bytes.fromhex(package["ciphertext_hash"][2:]))

    imported = client.post("/designs/shares/import", json=package, headers=as_plant)
    assert imported.status_code == 200, imported.text
    assert imported.json()["recipient"] == plant.address
    plain = client.get(f"/designs/{did}/file", headers=as_plant)
    assert plain.status_code == 200 and plain.content == drawing

    # the stranger's node now holds the ciphertext, and still cannot decrypt it
    assert_problem(client.get(f"/designs/{did}/file", headers=as_stranger), 404)
