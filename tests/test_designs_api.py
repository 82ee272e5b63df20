"""The /designs endpoints over a real node: upload and by-hash registration, verification,
licences, encrypted shares, who may see what, and problem+json refusals that change
nothing."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from test_api import Headers, assert_problem, sign_in
from test_relay import outsider_member, relay

from api.app import create_app
from kit import admit, new_account
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node


@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node)) as c:
        yield c


@pytest.fixture
def designer(node: Node) -> Sender:
    return admit(node, int(Role.DESIGNER))


@pytest.fixture
def as_designer(client: TestClient, node: Node, designer: Sender) -> Headers:
    return sign_in(client, node, designer.account)


def upload(client: TestClient, headers: Headers, *contents: bytes, **form: str) -> object:
    files = [
        ("files", (f"part{i}.step", c, "application/octet-stream")) for i, c in enumerate(contents)
    ]
    return client.post("/designs", files=files, data=form, headers=headers)


def state(client: TestClient, node: Node, headers: Headers) -> tuple[object, ...]:
    """What a refused request must leave untouched: designs, chain height, stored blobs."""
    blobs = sorted(str(p) for p in (node.data_dir / "blobs").rglob("*"))
    return client.get("/designs", headers=headers).json(), node.chain.block_number(), blobs


def test_register_by_upload_and_by_hash_then_show_list_verify(
    client: TestClient, node: Node, designer: Sender, as_designer: Headers
) -> None:
    one, two, three = os.urandom(300), os.urandom(300), os.urandom(300)
    resp = upload(client, as_designer, one, title="bracket")
    assert resp.status_code == 201, resp.text
    [cert] = resp.json()
    did = "0x" + hashlib.sha256(one).hexdigest()
    assert cert["design_id"] == did and cert["designer"] == designer.address
    assert cert["metadata"]["title"] == "bracket" and cert["batch"] is None

    resp = upload(client, as_designer, two, three, parent_id=did)
    assert resp.status_code == 201, resp.text
    batch = resp.json()
    assert len(batch) == 2 and batch[0]["batch"]["root"] == batch[1]["batch"]["root"]
    assert batch[0]["parent_id"] == did

    by_hash = hashlib.sha256(b"a file the node never sees").hexdigest()
    resp = client.post(
        "/designs/by-hash",
        json={"designs": [{"design_id": by_hash, "title": "secret"}]},
        headers=as_designer,
    )
    assert resp.status_code == 201, resp.text

    shown = client.get(f"/designs/{did}", headers=as_designer).json()
    assert shown["designer"] == designer.address and shown["status"] == "unrevealed"
    assert shown["block_number"] == cert["block_number"]
    listed = client.get(
        "/designs", params={"designer": designer.address}, headers=as_designer
    ).json()
    assert {d["design_id"] for d in listed} == {did, "0x" + by_hash} | {
        c["design_id"] for c in batch
    }
    assert {d["status"] for d in listed} == {"unrevealed"}
    assert client.get(f"/designs/{did}/certificate", headers=as_designer).json() == cert

    resp = client.post(
        "/designs/verify",
        files={"file": ("x", two), "bundle": ("b.json", json.dumps(batch[0]))},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["priority"] == "unrevealed" and resp.json()["kind"] == "batch"
    resp = client.post(
        "/designs/verify", files={"file": ("x", one), "bundle": ("b.json", json.dumps(cert))}
    )
    assert resp.status_code == 200 and resp.json()["priority"] == "unrevealed"
    # the chain alone knows nothing of an unrevealed design
    assert_problem(client.post("/designs/verify", data={"design": did}), 404)
    revealed = client.post(f"/designs/{did}/reveal", headers=as_designer)
    assert revealed.status_code == 200 and revealed.json()["status"] == "active"
    assert revealed.json()["block_number"] == cert["block_number"]
    resp = client.post("/designs/verify", data={"design": did})
    assert resp.status_code == 200 and resp.json()["designer"] == designer.address
    problem = assert_problem(client.post("/designs/verify", files={"file": ("x", b"nope")}), 404)
    assert "not registered" in problem["detail"]
    bad = assert_problem(
        client.post(
            "/designs/verify", files={"file": ("x", one), "bundle": ("b.json", b'{"format": 1')}
        ),
        422,
    )
    assert "corrupt bundle" in bad["detail"]
    resp = client.post(
        "/designs/verify", files={"file": ("x", one), "bundle": ("b.json", json.dumps(batch[0]))}
    )
    assert "does not match the bundle" in assert_problem(resp, 422)["detail"]

    claimed = client.post(f"/designs/{batch[0]['design_id']}/reveal", headers=as_designer)
    assert claimed.status_code == 200 and claimed.json()["status"] == "active"
    assert (
        claimed.json()["from_batch"] and claimed.json()["block_number"] == batch[0]["block_number"]
    )


def test_refusals_are_problems_and_change_nothing(
    client: TestClient, node: Node, designer: Sender, as_designer: Headers
) -> None:
    content = os.urandom(200)
    assert upload(client, as_designer, content).status_code == 201
    rival = admit(node, int(Role.DESIGNER))
    factory = admit(node, int(Role.FACTORY))
    before = state(client, node, as_designer)
    problem = assert_problem(upload(client, sign_in(client, node, rival.account), content), 409)
    assert designer.address.lower() in problem["detail"].lower()
    assert "already registered" in problem["detail"]
    unknown = hashlib.sha256(b"nothing").hexdigest()
    assert_problem(upload(client, as_designer, os.urandom(9), parent_id=unknown), 404)
    problem = assert_problem(upload(client, sign_in(client, node, factory.account), b"x"), 403)
    assert "designer role" in problem["detail"]
    assert_problem(upload(client, {}, b"x"), 401)
    did = "0x" + hashlib.sha256(content).hexdigest()
    stranger = new_account().address
    resp = client.put(
        f"/designs/{did}/licences/{stranger}", json={"royalty_ppm": 1}, headers=as_designer
    )
    assert "not a member" in assert_problem(resp, 404)["detail"]
    resp = client.put(
        f"/designs/{did}/licences/{factory.address}",
        json={"royalty_ppm": 2_000_000},
        headers=as_designer,
    )
    assert_problem(resp, 422)
    assert_problem(client.get("/designs/0x1234", headers=as_designer), 422)
    assert state(client, node, as_designer) == before


def test_licence_share_and_fetch_over_http(
    client: TestClient, node: Node, designer: Sender, as_designer: Headers
) -> None:
    content = os.urandom(4096)
    did = upload(client, as_designer, content).json()[0]["design_id"]
    factory = admit(node, int(Role.FACTORY))
    as_factory = sign_in(client, node, factory.account)
    key = client.put("/designs/encryption-key", headers=as_factory)
    assert key.status_code == 200, key.text
    assert (
        client.get(f"/members/{factory.address}").json()["encryption_key"]
        == key.json()["encryption_key"]
    )

    shared = client.post(
        f"/designs/{did}/shares", json={"recipients": [factory.address]}, headers=as_designer
    )
    assert_problem(shared, 409)  # not licensed yet
    granted = client.put(
        f"/designs/{did}/licences/{factory.address}",
        json={"royalty_ppm": 20_000},
        headers=as_designer,
    )
    assert granted.status_code == 200 and granted.json()["active"]
    granted_at = node.chain.block_number()
    shared = client.post(
        f"/designs/{did}/shares", json={"recipients": [factory.address]}, headers=as_designer
    )
    assert shared.status_code == 201, shared.text
    package = client.get(f"/designs/{did}/share", headers=as_factory)
    assert (
        package.status_code == 200
        and package.json()["ciphertext_hash"] == shared.json()[0]["ciphertext_hash"]
    )
    file = client.get(f"/designs/{did}/file", headers=as_factory)
    assert file.status_code == 200 and file.content == content
    assert_problem(client.get(f"/designs/{did}/share", headers=as_designer), 404)

    revoked = client.delete(f"/designs/{did}/licences/{factory.address}", headers=as_designer)
    assert revoked.status_code == 200 and not revoked.json()["active"]
    past = client.get(f"/designs/{did}/licences/{factory.address}", params={"block": granted_at})
    assert past.json()["active"] and past.json()["royalty_ppm"] == 20_000
    assert_problem(client.get(f"/designs/{did}/file", headers=as_factory), 403)
    assert_problem(
        client.post(
            f"/designs/{did}/shares", json={"recipients": [factory.address]}, headers=as_designer
        ),
        409,
    )
    gone = client.post(f"/designs/{did}/revoke", headers=as_designer)
    assert gone.status_code == 200 and gone.json()["status"] == "revoked"


def test_strangers_see_public_chain_facts_only_and_members_only_their_own_unrevealed(
    client: TestClient, node: Node, designer: Sender, as_designer: Headers
) -> None:
    secret = os.urandom(500)
    [cert] = upload(client, as_designer, secret).json()
    did = cert["design_id"]
    pair = upload(client, as_designer, os.urandom(50), os.urandom(50)).json()
    factory = admit(node, int(Role.FACTORY))
    # strangers: no listing, no design, no certificate, nothing signed
    for path in ("/designs", f"/designs/{did}", f"/designs/{did}/certificate"):
        problem = assert_problem(client.get(path), 401)
        assert "sign in" in problem["detail"]
    assert_problem(client.post(f"/designs/{did}/reveal"), 401)
    assert client.get("/health").status_code == 200
    # public chain facts stay public: verification and licences
    resp = client.post(
        "/designs/verify", files={"file": ("x", secret), "bundle": ("b.json", json.dumps(cert))}
    )
    assert resp.status_code == 200 and resp.json()["priority"] == "unrevealed"
    licence = client.get(f"/designs/{did}/licences/{factory.address}")
    assert licence.status_code == 200 and not licence.json()["active"]

    # another member sees neither the unrevealed designs nor their file names
    rival = admit(node, int(Role.DESIGNER))
    as_rival = sign_in(client, node, rival.account)
    height = node.chain.block_number()
    listed = client.get("/designs", headers=as_rival)
    assert listed.status_code == 200 and listed.json() == []
    assert "part0.step" not in listed.text and pair[0]["design_id"] not in listed.text
    for design in (did, pair[0]["design_id"]):
        assert_problem(client.get(f"/designs/{design}", headers=as_rival), 404)
        assert_problem(client.get(f"/designs/{design}/certificate", headers=as_rival), 404)
        assert_problem(client.post(f"/designs/{design}/reveal", headers=as_rival), 404)
        resp = client.put(
            f"/designs/{design}/licences/{factory.address}",
            json={"royalty_ppm": 1},
            headers=as_rival,
        )
        assert_problem(resp, 404)
    assert node.chain.block_number() == height and node.designs.find(bytes.fromhex(did[2:])) is None

    # its designer sees them; once revealed (here by licensing) they are chain facts
    mine = client.get("/designs", headers=as_designer).json()
    assert {d["design_id"] for d in mine} == {did} | {c["design_id"] for c in pair}
    granted = client.put(
        f"/designs/{did}/licences/{factory.address}",
        json={"royalty_ppm": 1_000},
        headers=as_designer,
    )
    assert granted.status_code == 200 and granted.json()["active"]
    seen = client.get(f"/designs/{did}", headers=as_rival).json()
    assert seen["status"] == "active" and seen["block_number"] == cert["block_number"]
    assert client.get(f"/designs/{did}/certificate", headers=as_rival).json() == cert
    assert [d["design_id"] for d in client.get("/designs", headers=as_rival).json()] == [did]


def test_a_designer_whose_key_is_elsewhere_registers_a_version_supersedes_and_revokes(
    client: TestClient, node: Node
) -> None:
    """Each transaction is served unsigned, signed by the designer and relayed: one file is
    registered as a batch of one (a single commitment's salt needs the designer's key), the
    second call certifies it, superseding claims the new version first."""
    account = outsider_member(node, int(Role.DESIGNER))
    headers = sign_in(client, node, account)
    first = bytes.fromhex(hashlib.sha256(b"flange rev A").hexdigest())
    node.designs.register(Sender(node.chain, account), first, bytes(32), bytes(32))
    old, new = "0x" + first.hex(), "0x" + hashlib.sha256(os.urandom(64)).hexdigest()
    body = {"designs": [{"design_id": new, "title": "flange rev B"}], "parent_id": old}
    assert (
        "unsigned=1"
        in assert_problem(client.post("/designs/by-hash", json=body, headers=headers), 403)[
            "detail"
        ]
    )

    assert relay(client, account, headers, "/designs/by-hash", body)["summary"]["function"] == (
        "registerBatch"
    )
    again = client.post("/designs/by-hash", params={"unsigned": 1}, json=body, headers=headers)
    assert again.status_code == 201, again.text  # nothing left to sign: the certificate
    [cert] = again.json()
    assert cert["design_id"] == new and cert["parent_id"] == old and cert["batch"]["count"] == 1
    assert client.get(f"/designs/{new}", headers=headers).json()["status"] == "unrevealed"

    path, successor = f"/designs/{old}/supersede", {"successor_id": new}
    assert relay(client, account, headers, path, successor)["summary"]["function"] == "claim"
    assert relay(client, account, headers, path, successor)["summary"]["function"] == "supersede"
    shown = {
        d["design_id"]: d
        for d in client.get(
            "/designs", params={"designer": account.address}, headers=headers
        ).json()
    }
    assert shown[old]["status"] == "superseded" and shown[old]["successor_id"] == new
    assert shown[new]["status"] == "active" and shown[new]["parent_id"] == old
    assert shown[new]["successor_id"] is None and shown[old]["parent_id"] is None
    alone = client.get(f"/designs/{old}", headers=headers).json()
    assert alone["successor_id"] == new

    # a revoked design cannot be superseded: refused before anything is signed
    relay(client, account, headers, f"/designs/{new}/revoke")
    assert client.get(f"/designs/{new}", headers=headers).json()["status"] == "revoked"
    height = node.chain.block_number()
    refused = client.post(
        f"/designs/{new}/supersede", params={"unsigned": 1}, json={"successor_id": old},
        headers=headers,
    )  # fmt: skip
    assert refused.status_code in (409, 422), refused.text
    assert node.chain.block_number() == height
    assert client.get(f"/designs/{new}", headers=headers).json()["status"] == "revoked"
