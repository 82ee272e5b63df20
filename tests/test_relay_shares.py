"""A licensed factory imports the designer's encrypted share into its OWN node and decrypts
it there; a member without a licence (or a tampered package) gets nothing, and its node
keeps nothing. Two nodes: two data directories, one chain."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

from eth_account import Account
from fastapi.testclient import TestClient
from test_api import assert_problem, sign_in
from typer.testing import CliRunner

from api.app import create_app
from kit import FAST_KDF, admit
from ledger.cli import app as cofab
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
    package = svc.package(cert.design_id, plant.address).model_dump(
        mode="json"
    )  # served by the designer's node
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


def test_the_cli_imports_a_share_into_the_factorys_own_data_dir(
    served: Any, tmp_path: Path
) -> None:
    """`cofab design import-share` on the factory's data directory (its own keystore and
    deployment record, the same chain), then `cofab design fetch` decrypts there."""
    node = served.node
    designer = admit(node, int(Role.DESIGNER))
    factory_dir = private_dir(tmp_path / "plant-node")
    shutil.copytree(node.data_dir / "deployments", factory_dir / "deployments")
    keyring = Keyring(factory_dir / "keystore")
    plant_key = keyring.new("plant", "plant-pass", kdf_iterations=FAST_KDF)
    (factory_dir / "plant.pass").write_text("plant-pass\n")
    plant = node.add_signer(keyring.unlock("plant", "plant-pass"))
    node.consortium.propose_admit(node.sender(), plant_key.address, int(Role.FACTORY))
    node.design_service().publish_key(plant)

    drawing = b"gear, rev D: " + os.urandom(64)
    svc = node.design_service()
    [cert] = svc.register(designer, [NewDesign.from_bytes(drawing, file_name="g.step", title="g")])
    svc.grant_licence(designer, cert.design_id, plant.address, 10_000)
    svc.share(designer, cert.design_id, [plant.address])
    package = tmp_path / "share.json"
    package.write_text(svc.package(cert.design_id, plant.address).model_dump_json())
    did = "0x" + cert.design_id.hex()

    where = ["--data-dir", str(factory_dir), "--rpc-url", str(node.chain.url)]
    runner = CliRunner()
    done = runner.invoke(cofab, ["design", "import-share", str(package), "--from", "plant", *where])
    assert done.exit_code == 0, done.output
    assert "imported the share" in done.output
    out = tmp_path / "gear.step"
    secret = ["--passphrase-file", str(factory_dir / "plant.pass")]
    args = ["design", "fetch", did, "--from", "plant", "--out", str(out), *secret, *where]
    done = runner.invoke(cofab, args)
    assert done.exit_code == 0, done.output
    assert out.read_bytes() == drawing

    # a package altered on the way is refused
    bad = json.loads(package.read_text())
    bad["envelope"] = bad["envelope"].replace('"', "'", 1)
    package.write_text(json.dumps(bad))
    done = runner.invoke(cofab, ["design", "import-share", str(package), "--from", "plant", *where])
    assert done.exit_code != 0 and "tampered" in done.output
