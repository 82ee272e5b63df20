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
