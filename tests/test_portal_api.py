"""What the API offers the portal: the council's governance read (GET /council), and the
portal's page and files served at / and /assets/ without shadowing any API route."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.portal import PORTAL_DIR_ENV
from kit import admit
from ledger.membership.roles import Role
from ledger.node import Node


def test_council_shows_its_members_and_quorum_to_anyone(node: Node) -> None:
    operator = node.sender().address
    with TestClient(create_app(node)) as client:
        first = client.get("/council")
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["members"] == [operator]
        assert (body["council_size"], body["quorum"], body["effective_quorum"]) == (1, 1, 1)
        assert body["proposal_ttl"] > 0
        count = body["proposal_count"]

        second = admit(node, int(Role.COUNCIL | Role.AUDITOR))
        admit(node, int(Role.FACTORY))  # not on the council
        body = client.get("/council").json()
        assert body["members"] == [operator, second.address]
        assert body["council_size"] == 2 and body["effective_quorum"] == 1
        assert body["proposal_count"] == count + 2

        node.consortium.propose_suspend(node.sender(), second.address)
        assert client.get("/council").json()["members"] == [operator]
        assert client.post("/council").status_code == 405  # a read, nothing to write


def test_portal_page_and_files_never_shadow_the_api(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = tmp_path / "portal"
    (built / "assets").mkdir(parents=True)
    (built / "index.html").write_text("<!doctype html><title>cofab</title>")
    (built / "assets" / "main.js").write_text("console.log('portal')")
    monkeypatch.setenv(PORTAL_DIR_ENV, str(built))
    with TestClient(create_app(node)) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.text.startswith("<!doctype html>")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/assets/main.js").text == "console.log('portal')"
        assert client.get("/assets/../index.html").status_code == 404
        missing = client.get("/assets/nothing.js")
        assert missing.status_code == 404
        assert client.get("/health").json() == {"status": "ok"}
        unknown = client.get("/no-such-route")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"].startswith("application/problem+json")
        assert "/" not in client.get("/openapi.json").json()["paths"]


def test_an_unbuilt_portal_says_how_to_build_it(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PORTAL_DIR_ENV, str(tmp_path / "nothing-here"))
    with TestClient(create_app(node)) as client:
        page = client.get("/")
        assert page.status_code == 503 and "make portal" in page.text
        assert client.get("/assets/main.js").status_code == 404
        assert client.get("/health").status_code == 200


# --- reads and the inbox the portal's pages need ----------------------------------------------
def _client(node: Node) -> TestClient:
    return TestClient(create_app(node))


def test_a_factorys_device_keys_listed_with_their_status(node: Node) -> None:
    from test_api import assert_problem

    from kit import new_account

    plant = admit(node, int(Role.FACTORY))
    other = admit(node, int(Role.FACTORY))
    keys = [new_account() for _ in range(3)]
    now = node.chain.w3.eth.get_block("latest")["timestamp"]
    c = node.consortium
    c.authorize_device(plant, keys[0])
    c.authorize_device(plant, keys[1], now + 100)
    c.authorize_device(plant, keys[2])
    c.revoke_device(plant, keys[2].address)
    c.authorize_device(other, new_account())  # another factory's: not listed
    with _client(node) as client:
        listed = client.get("/devices", params={"factory": plant.address}).json()
        assert [(d["address"], d["status"]) for d in listed] == [
            (keys[0].address, "active"),
            (keys[1].address, "active"),
            (keys[2].address, "revoked"),
        ]
        assert listed[1]["expires_at"] == now + 100
        node.chain.advance_time(200)
        later = client.get("/devices", params={"factory": plant.address}).json()
        assert later[1]["status"] == "expired"
        assert client.get("/devices", params={"factory": new_account().address}).json() == []
        assert_problem(client.get("/devices", params={"factory": "0x12"}), 422)


def test_a_designs_licences_and_shares_listed(node: Node) -> None:
    from kit import parties

    p = parties(node, factories=2)
    with _client(node) as client:
        node.designs.grant_licence(p.designer, p.design, p.factories[0].address, 10_000)
        node.designs.revoke_licence(p.designer, p.design, p.factories[0].address)
        listed = client.get(f"/designs/0x{p.design.hex()}/licences").json()
        assert [(x["licensee"], x["active"]) for x in listed] == [
            (p.buyer.address, True),
            (p.factories[0].address, False),
        ]
        assert listed[0]["royalty_ppm"] == 50_000
        assert client.get(f"/designs/0x{p.design.hex()}/shares").json() == []
        assert client.get(f"/designs/0x{'ab' * 32}/licences").json() == []


def test_an_orders_chain_events_in_order(node: Node) -> None:
    from kit import in_production, parties
    from ledger.orders.jobs import SplitSpec

    p = parties(node, factories=1)
    job = in_production(node, p, [SplitSpec(p.factories[0].address, "cut", 10, 930_000)])
    with _client(node) as client:
        events = client.get(f"/jobs/{job}/events").json()
        names = [e["event"] for e in events]
        assert names.index("JobCreated") < names.index("Deposited") < names.index("SplitAccepted")
        assert [e["block"] for e in events] == sorted(e["block"] for e in events)
        assert all(e["time"] > 0 and e["tx"].startswith("0x") for e in events)
        assert client.get("/jobs/999/events").status_code == 404


def test_a_hand_over_waits_in_the_other_factorys_inbox_until_both_signed(node: Node) -> None:
    from test_api import assert_problem, sign_in

    from kit import four_splits, in_production, parties
    from ledger.eth import eip712
    from ledger.orders.jobs import label32
    from ledger.orders.signing import Handover

    p = parties(node)
    job = in_production(node, p, four_splits(p))  # split 3 (factory 2) after split 0 (factory 0)
    giver, taker, outsider = p.factories[0], p.factories[2], p.factories[1]
    node.jobs.deliver(giver, job, 0, None)
    deadline = node.chain.w3.eth.get_block("latest")["timestamp"] + 3600
    record = Handover(job, 0, 3, label32("LOT-7", "lot"), 40, deadline)
    typed = node.jobs.typed_data(record)
    body = {"from_split": 0, "to_split": 3, "lot": "LOT-7", "quantity": 40, "deadline": deadline}
    taker_sig = eip712.sign(taker.account, typed).hex()
    giver_sig = eip712.sign(giver.account, typed).hex()
    with _client(node) as client:
        as_giver = sign_in(client, node, giver.account)
        as_taker = sign_in(client, node, taker.account)
        as_outsider = sign_in(client, node, outsider.account)
        url = f"/jobs/{job}/handover/pending"
        # refused: no signature, two, someone else's signature, an outsider, anonymous
        assert_problem(client.post(url, json=body, headers=as_taker), 422)
        both = {**body, "from_signature": giver_sig, "to_signature": taker_sig}
        assert_problem(client.post(url, json=both, headers=as_taker), 422)
        forged = {**body, "to_signature": giver_sig}
        assert_problem(client.post(url, json=forged, headers=as_taker), 422)
        outsider_sig = eip712.sign(outsider.account, typed).hex()
        stranger = {**body, "to_signature": outsider_sig}
        assert_problem(client.post(url, json=stranger, headers=as_outsider), 403)
        assert client.post(url, json={**body, "to_signature": taker_sig}).status_code == 401
        unrelated = {**body, "from_split": 1, "to_signature": taker_sig}  # 3 does not follow 1
        assert_problem(client.post(url, json=unrelated, headers=as_taker), 422)
        expired = {**body, "deadline": 1, "to_signature": taker_sig}
        assert_problem(client.post(url, json=expired, headers=as_taker), 422)
        assert client.get("/handovers/inbox", headers=as_giver).json()["waiting"] == []

        # the receiving factory signs first; it waits in the giving factory's inbox
        posted = client.post(url, json={**body, "to_signature": taker_sig}, headers=as_taker)
        assert posted.status_code == 201, posted.text
        item = posted.json()
        assert (item["signed_side"], item["signer"], item["waiting_for"]) == (
            "to",
            taker.address,
            giver.address,
        )
        assert item["id"] == "0x" + eip712.digest(typed).hex()
        assert client.get("/handovers/inbox", headers=as_giver).json()["waiting"] == [item]
        assert client.get("/handovers/inbox", headers=as_taker).json()["sent"] == [item]
        assert client.get("/handovers/inbox", headers=as_outsider).json() == {
            "waiting": [],
            "sent": [],
        }
        assert node.jobs.view(job).splits[0].handed_to == []  # one signature: nothing on chain

        done = client.post(
            f"/jobs/{job}/handover",
            json={**body, "from_signature": giver_sig, "to_signature": item["signature"]},
            headers=as_giver,
        )
        assert done.status_code == 200, done.text
        assert node.jobs.view(job).splits[0].handed_to == [3]
        assert client.get("/handovers/inbox", headers=as_giver).json()["waiting"] == []
        assert client.get("/handovers/inbox", headers=as_taker).json()["sent"] == []
