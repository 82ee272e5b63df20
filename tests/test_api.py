"""The HTTP API over a real node: SIWE sign-in, council proposals, relayed transactions,
device keys and problem+json refusals, on an embedded chain with the real contracts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account.datastructures import SignedTransaction
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from httpx import Response
from siwe import SiweMessage, generate_nonce

from api.app import create_app
from api.eip4361 import MAX_MESSAGE_BYTES
from kit import admit, new_account
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node

DOMAIN = "testserver"  # the node's public origin in tests ($COFAB_PUBLIC_URL, conftest.py)
ORIGIN = f"http://{DOMAIN}"
Headers = dict[str, str]
STRANGER = "0x" + "12" * 20  # a well-formed address nobody uses


# --- helpers --------------------------------------------------------------------------
@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node)) as c:
        yield c


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def siwe_text(
    address: str,
    nonce: str,
    chain_id: int,
    *,
    domain: str = DOMAIN,
    uri: str | None = None,
    expires_in: timedelta | None = None,
) -> str:
    now = datetime.now(UTC)
    message = SiweMessage(
        domain=domain,
        address=address,
        statement="Sign in to the cofab node.",
        uri=uri or f"http://{domain}/auth/login",
        version="1",
        chain_id=chain_id,
        nonce=nonce,
        issued_at=_iso(now),
        expiration_time=_iso(now + expires_in) if expires_in is not None else None,
    )
    return message.prepare_message()


def sign_text(account: LocalAccount, text: str) -> str:
    return account.sign_message(encode_defunct(text=text)).signature.to_0x_hex()


def fresh_nonce(client: TestClient) -> str:
    resp = client.get("/auth/nonce")
    assert resp.status_code == 200, resp.text
    return str(resp.json()["nonce"])


def login(client: TestClient, message: str, signature: str) -> Response:
    return client.post("/auth/login", json={"message": message, "signature": signature})


def sign_in(client: TestClient, node: Node, account: LocalAccount) -> Headers:
    """The full SIWE round trip; returns the Authorization header of the session."""
    text = siwe_text(account.address, fresh_nonce(client), node.chain.chain_id)
    resp = login(client, text, sign_text(account, text))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["address"] == account.address
    return {"Authorization": f"Bearer {body['token']}"}


def assert_problem(resp: Response, status: int, error: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem with `status` (and the contract's custom `error` if given)."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["title"]
    assert isinstance(body["detail"], str) and body["detail"].strip()
    if error is not None:
        assert body.get("error") == error, body
    return body


def said(problem: dict[str, Any], text: str) -> bool:
    """Whether a refusal's detail says `text`; contract errors spell addresses in lower case."""
    return text.lower() in problem["detail"].lower()


def ledger_state(client: TestClient, node: Node) -> tuple[Any, ...]:
    """What a refused request must leave untouched."""
    members = client.get("/members").json()
    proposals = client.get("/proposals").json()
    return members, proposals, node.consortium.governance()


def propose(client: TestClient, headers: Headers, **body: Any) -> Response:
    return client.post("/proposals", json=body, headers=headers)


def member(client: TestClient, address: str) -> dict[str, Any]:
    resp = client.get(f"/members/{address}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def roles_at(client: TestClient, address: str, block: int) -> dict[str, Any]:
    resp = client.get(f"/members/{address}/at", params={"block": block})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def signed_update_profile(
    node: Node, account: LocalAccount, metadata: bytes, key: bytes, *, gas: int | None = None
) -> SignedTransaction:
    """`updateProfile` built and signed by `account` itself, as a wallet would."""
    node.chain.ensure_gas(account.address)
    params: dict[str, Any] = {
        "from": account.address,
        "chainId": node.chain.chain_id,
        "nonce": node.chain.w3.eth.get_transaction_count(account.address, "pending"),
        **node.chain.fee_fields(),
    }
    if gas is not None:
        params["gas"] = gas  # skips estimation, which would refuse a reverting call
    fn = node.consortium.contract.functions.updateProfile(metadata, key)
    return account.sign_transaction(fn.build_transaction(params))


def outside_member(node: Node, roles: Role) -> LocalAccount:
    """A member admitted on chain whose key this node does not hold."""
    account = new_account()
    node.consortium.propose_admit(node.sender(), account.address, int(roles))
    return account


def chain_time(node: Node) -> int:
    return int(node.chain.w3.eth.get_block("latest")["timestamp"])


# --- health and docs ------------------------------------------------------------------
def test_health(client: TestClient) -> None:
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


def test_ready_names_the_consortium(client: TestClient, node: Node) -> None:
    resp = client.get("/ready")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["ready"] is True
    assert body["chain_id"] == node.chain.chain_id
    assert body["contracts"]["Consortium"] == node.consortium.address
    assert body["block_number"] == node.chain.block_number()


def test_status(client: TestClient, node: Node, operator: Sender) -> None:
    contracts = {n: r.address for n, r in node.deployment.contracts.items()}
    # strangers see public chain facts only: no data directory, RPC URL or held keys
    public = client.get("/status").json()
    assert public == {
        "chain_id": node.chain.chain_id,
        "block_number": node.chain.block_number(),
        "contracts": contracts,
    }
    body = client.get("/status", headers=sign_in(client, node, operator.account)).json()
    assert body["backend"] == "devnet"  # the tests' chain: anvil
    assert body["chain_id"] == node.chain.chain_id
    assert body["contracts"] == contracts
    assert body["signers"] == [operator.address]
    assert body["data_dir"] == str(node.data_dir) and body["rpc_url"] == node.chain.url
    # a bad token is refused rather than treated as anonymous
    assert_problem(client.get("/status", headers={"Authorization": "Bearer nope"}), 401)


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in ("/auth/nonce", "/auth/login", "/members", "/proposals", "/devices", "/tx"):
        assert path in paths
    assert "post" in paths["/proposals"] and "delete" in paths["/devices/{address}"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    assert "swagger" in docs.text.lower()


# --- sign-in with Ethereum ------------------------------------------------------------
def test_sign_in_round_trip(client: TestClient, node: Node) -> None:
    account = outside_member(node, Role.BUYER)
    nonce_body = client.get("/auth/nonce").json()
    assert nonce_body["domain"] == DOMAIN and nonce_body["uri"] == ORIGIN
    assert nonce_body["chain_id"] == node.chain.chain_id
    text = siwe_text(
        account.address, nonce_body["nonce"], nonce_body["chain_id"], uri=nonce_body["uri"]
    )
    resp = login(client, text, sign_text(account, text))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "bearer" and body["address"] == account.address
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json() == {
        "address": account.address,
        "expires_at": body["expires_at"],
        "roles": ["buyer"],
    }


def test_nonces_are_distinct(client: TestClient) -> None:
    assert len({fresh_nonce(client) for _ in range(5)}) == 5


def _wrong_domain(c: TestClient, node: Node, a: LocalAccount) -> str:
    return siwe_text(a.address, fresh_nonce(c), node.chain.chain_id, domain="evil.example")


def _uri_elsewhere(c: TestClient, node: Node, a: LocalAccount) -> str:
    return siwe_text(
        a.address, fresh_nonce(c), node.chain.chain_id, uri="http://evil.example/auth/login"
    )


def _uri_other_port(c: TestClient, node: Node, a: LocalAccount) -> str:
    return siwe_text(a.address, fresh_nonce(c), node.chain.chain_id, uri=f"{ORIGIN}:8080/")


def _uri_other_scheme(c: TestClient, node: Node, a: LocalAccount) -> str:
    return siwe_text(a.address, fresh_nonce(c), node.chain.chain_id, uri=f"https://{DOMAIN}/")


def _domain_other_port(c: TestClient, node: Node, a: LocalAccount) -> str:
    return siwe_text(a.address, fresh_nonce(c), node.chain.chain_id, domain=f"{DOMAIN}:8080")


def _wrong_chain(c: TestClient, node: Node, a: LocalAccount) -> str:
    return siwe_text(a.address, fresh_nonce(c), node.chain.chain_id + 1)


def _unknown_nonce(c: TestClient, node: Node, a: LocalAccount) -> str:
    return siwe_text(a.address, generate_nonce(), node.chain.chain_id)


def _expired(c: TestClient, node: Node, a: LocalAccount) -> str:
    return siwe_text(
        a.address, fresh_nonce(c), node.chain.chain_id, expires_in=timedelta(minutes=-1)
    )


@pytest.mark.parametrize(
    ("make_message", "reason"),
    [
        (_wrong_domain, "DomainMismatch"),
        (_domain_other_port, "DomainMismatch"),
        (_uri_elsewhere, "URI"),
        (_uri_other_port, "URI"),
        (_uri_other_scheme, "URI"),
        (_wrong_chain, "is for chain"),
        (_unknown_nonce, "nonce"),
        (_expired, "ExpiredMessage"),
    ],
    ids=[
        "wrong-domain",
        "domain-other-port",
        "uri-elsewhere",
        "uri-other-port",
        "uri-other-scheme",
        "wrong-chain-id",
        "unknown-nonce",
        "expired",
    ],
)
def test_sign_in_refused(client: TestClient, node: Node, make_message: Any, reason: str) -> None:
    account = outside_member(node, Role.COUNCIL)  # a member: only the message is wrong
    text = make_message(client, node, account)
    body = assert_problem(login(client, text, sign_text(account, text)), 401)
    assert reason in body["detail"]
    assert body["instance"] == "/auth/login"
    assert "token" not in body


def test_phished_sign_in_is_refused_whatever_the_host_header(
    client: TestClient, node: Node, operator: Sender
) -> None:
    """The operator signs in on evil.example; the phisher replays the message to the node
    with `Host: evil.example`. The domain is configuration, so no token, no admission."""
    before = ledger_state(client, node)
    for domain, uri, reason in [
        ("evil.example", "https://evil.example/login", "DomainMismatch"),
        (DOMAIN, "https://evil.example/login", "URI"),  # right domain, the phisher's URI
    ]:
        text = siwe_text(
            operator.address, fresh_nonce(client), node.chain.chain_id, domain=domain, uri=uri
        )
        resp = client.post(
            "/auth/login",
            json={"message": text, "signature": sign_text(operator.account, text)},
            headers={"Host": "evil.example"},
        )
        body = assert_problem(resp, 401)
        assert reason in body["detail"] and "token" not in body
    nonce = client.get("/auth/nonce", headers={"Host": "evil.example"}).json()
    assert nonce["domain"] == DOMAIN and nonce["uri"] == ORIGIN  # never the Host header
    assert ledger_state(client, node) == before


def test_non_members_get_no_token(client: TestClient, node: Node) -> None:
    before = ledger_state(client, node)
    stranger = node.add_signer(new_account())  # even with its key held by the node
    text = siwe_text(stranger.address, fresh_nonce(client), node.chain.chain_id)
    body = assert_problem(login(client, text, sign_text(stranger.account, text)), 403)
    assert "not an active member of this consortium" in body["detail"]
    assert "token" not in body
    assert ledger_state(client, node) == before


def test_a_suspended_members_session_stops_working(
    client: TestClient, node: Node, operator: Sender
) -> None:
    factory = admit(node, int(Role.FACTORY))
    headers = sign_in(client, node, factory.account)
    assert client.get("/auth/me", headers=headers).status_code == 200
    node.consortium.propose_suspend(operator, factory.address)
    before = ledger_state(client, node)
    body = assert_problem(client.get("/auth/me", headers=headers), 403)
    assert "not an active member" in body["detail"]
    resp = client.put(
        "/members/me/profile", json={"metadata_hash": "0x" + "ab" * 32}, headers=headers
    )
    assert_problem(resp, 403)
    assert client.get("/status", headers=headers).status_code == 403
    text = siwe_text(factory.address, fresh_nonce(client), node.chain.chain_id)
    assert_problem(login(client, text, sign_text(factory.account, text)), 403)
    assert ledger_state(client, node) == before


def _bloated(address: str, nonce: str, chain_id: int, size: int, where: str) -> str:
    """A sign-in message padded to `size` bytes in one of its free-form fields."""
    text = siwe_text(address, nonce, chain_id)
    pad = "a" * max(0, size - len(text))
    if where == "domain":
        return text.replace(DOMAIN, DOMAIN + pad, 1)
    if where == "statement":
        return text.replace("Sign in to the cofab node.", "Sign in" + pad, 1)
    if where == "resources":
        return text + "\nResources:" + "\n- x:a" * (len(pad) // 6)
    return pad + text  # junk before the header


@pytest.mark.parametrize("size", [6 * 1024, 32 * 1024, 1024 * 1024])
def test_oversized_sign_in_messages_are_refused_at_once(
    client: TestClient, node: Node, size: int
) -> None:
    account = outside_member(node, Role.BUYER)
    nonce = fresh_nonce(client)
    for where in ("domain", "statement", "resources", "prefix"):
        text = _bloated(account.address, nonce, node.chain.chain_id, size, where)
        resp = login(client, text, sign_text(account, "x"))  # refused before any parser runs
        body = assert_problem(resp, 422)
        assert body["errors"][0]["field"] == "message"
    # the nonce is still unused: the right message signs in with it
    text = siwe_text(account.address, nonce, node.chain.chain_id)
    assert login(client, text, sign_text(account, text)).status_code == 200


@pytest.mark.parametrize(
    ("where", "status"),
    [("domain", 401), ("prefix", 401), ("statement", 200), ("resources", 200)],
)
def test_sign_in_messages_up_to_the_limit_are_read(
    client: TestClient, node: Node, where: str, status: int
) -> None:
    """4 KiB is the most accepted; the parser that took seconds on 2 KiB is not used.
    A long statement or list of resources is valid; a padded domain or junk is not."""
    account = outside_member(node, Role.BUYER)
    text = _bloated(account.address, fresh_nonce(client), node.chain.chain_id, 4000, where)
    assert 3900 < len(text.encode()) <= MAX_MESSAGE_BYTES
    resp = login(client, text, sign_text(account, text))
    if status == 200:
        assert resp.status_code == 200, resp.text
    else:
        assert_problem(resp, status)


def test_sign_in_refuses_a_signature_by_another_key(client: TestClient, node: Node) -> None:
    claimed, impostor = outside_member(node, Role.BUYER), new_account()
    text = siwe_text(claimed.address, fresh_nonce(client), node.chain.chain_id)
    body = assert_problem(login(client, text, sign_text(impostor, text)), 401)
    assert "InvalidSignature" in body["detail"]
    # a forged attempt does not burn the nonce: its real owner can still sign in with it
    assert login(client, text, sign_text(claimed, text)).status_code == 200


def test_sign_in_refuses_a_reused_nonce(client: TestClient, node: Node) -> None:
    account = outside_member(node, Role.BUYER)
    text = siwe_text(account.address, fresh_nonce(client), node.chain.chain_id)
    signature = sign_text(account, text)
    assert login(client, text, signature).status_code == 200
    body = assert_problem(login(client, text, signature), 401)
    assert "nonce" in body["detail"]


@pytest.mark.parametrize(
    "message",
    ["hello", "", "testserver wants you to sign in with your Ethereum account:\n0x1234\n"],
    ids=["prose", "empty", "truncated"],
)
def test_sign_in_refuses_a_malformed_message(client: TestClient, message: str) -> None:
    signature = sign_text(new_account(), message or "x")
    body = assert_problem(login(client, message, signature), 401)
    assert "EIP-4361" in body["detail"]


@pytest.mark.parametrize(
    "signature",
    ["0x" + "ff" * 65, "0x" + "00" * 65, "0x" + "11" * 64 + "1b"],
    ids=["r-s-out-of-range", "all-zero", "no-recoverable-key"],
)
def test_sign_in_refuses_an_unrecoverable_signature(
    client: TestClient, node: Node, signature: str
) -> None:
    account = outside_member(node, Role.COUNCIL)
    text = siwe_text(account.address, fresh_nonce(client), node.chain.chain_id)
    assert_problem(login(client, text, signature), 401)


@pytest.mark.parametrize("signature", ["0x1234", "0x", ""], ids=["short", "empty", "none"])
def test_sign_in_validates_the_signature_shape(
    client: TestClient, node: Node, signature: str
) -> None:
    """An empty signature never means consent (no EIP-1271 "0x" shortcut)."""
    account = outside_member(node, Role.COUNCIL)
    text = siwe_text(account.address, fresh_nonce(client), node.chain.chain_id)
    body = assert_problem(login(client, text, signature), 422)
    assert body["errors"][0]["field"] == "signature"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Bearer ", "Basic dXNlcjpwYXNz", "garbage"],
    ids=["missing", "unknown-token", "empty-token", "basic-scheme", "no-scheme"],
)
def test_me_needs_a_valid_bearer_token(client: TestClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    body = assert_problem(client.get("/auth/me", headers=headers), 401)
    assert "sign in" in body["detail"]


def test_write_endpoints_need_a_token(client: TestClient, node: Node) -> None:
    before = ledger_state(client, node)
    device, target = new_account().address, new_account().address
    attempts = [
        ("POST", "/proposals", {"kind": "admit", "target": target, "roles": ["factory"]}),
        ("POST", "/proposals/1/approve", None),
        ("POST", "/proposals/1/cancel", None),
        ("PUT", "/members/me/profile", {"metadata_hash": "0x" + "ab" * 32}),
        ("POST", "/devices", {"device": device, "signature": "0x" + "00" * 65}),
        ("DELETE", f"/devices/{device}", None),
        ("POST", "/tx", {"raw": "0x02"}),
    ]
    for method, path, body in attempts:
        resp = client.request(method, path, json=body)
        assert_problem(resp, 401)
    assert ledger_state(client, node) == before


# --- council proposals by the operator (key held by the node) -------------------------
def test_operator_admits_a_factory(client: TestClient, node: Node, operator: Sender) -> None:
    headers = sign_in(client, node, operator.account)
    target = new_account().address
    before_block = node.chain.block_number()

    resp = propose(client, headers, kind="admit", target=target, roles=["factory"])
    assert resp.status_code == 201, resp.text
    proposal = resp.json()
    assert proposal["kind"] == "admit" and proposal["state"] == "executed"
    assert proposal["approvals"] == 1 and proposal["proposer"] == operator.address
    assert proposal["target"] == target and proposal["roles"] == ["factory"]
    assert client.get(f"/proposals/{proposal['id']}").json() == proposal
    assert [p["id"] for p in client.get("/proposals").json()] == [proposal["id"]]

    listed = {m["address"]: m for m in client.get("/members").json()}
    assert list(listed) == [operator.address, target]  # admission order
    assert listed[target]["roles"] == ["factory"] and listed[target]["status"] == "active"
    assert listed[operator.address]["roles"] == ["council"]

    before = roles_at(client, target, before_block)
    assert before == {
        "address": target,
        "block_number": before_block,
        "roles": [],
        "status": "none",
    }
    after = roles_at(client, target, node.chain.block_number())
    assert after["status"] == "active" and after["roles"] == ["factory"]


def test_admit_with_profile_hashes(client: TestClient, node: Node, operator: Sender) -> None:
    headers = sign_in(client, node, operator.account)
    target = new_account().address
    meta, key = "0x" + "ab" * 32, "cd" * 32  # with or without 0x
    resp = propose(
        client,
        headers,
        kind="admit",
        target=target,
        roles=["designer", "buyer"],
        metadata_hash=meta,
        encryption_key=key,
    )
    assert resp.status_code == 201, resp.text
    got = member(client, target)
    assert got["roles"] == ["designer", "buyer"] and got["roles_mask"] == 4 | 16
    assert got["metadata_hash"] == meta and got["encryption_key"] == "0x" + key


def test_set_roles_suspend_and_readmit(client: TestClient, node: Node, operator: Sender) -> None:
    headers = sign_in(client, node, operator.account)
    target = new_account().address
    assert propose(client, headers, kind="admit", target=target, roles=["factory"]).is_success
    admitted_at = node.chain.block_number()

    resp = propose(client, headers, kind="set_roles", target=target, roles=["factory", "auditor"])
    assert resp.status_code == 201, resp.text
    assert resp.json()["kind"] == "set_roles" and resp.json()["state"] == "executed"
    assert member(client, target)["roles"] == ["factory", "auditor"]

    resp = propose(client, headers, kind="suspend", target=target)
    assert resp.status_code == 201, resp.text
    suspended_at = node.chain.block_number()
    assert member(client, target)["status"] == "suspended"

    # a suspended member cannot be suspended again; the refusal changes nothing
    before = ledger_state(client, node)
    assert_problem(propose(client, headers, kind="suspend", target=target), 409, "MemberNotActive")
    assert ledger_state(client, node) == before

    resp = propose(client, headers, kind="readmit", target=target)
    assert resp.status_code == 201, resp.text
    got = member(client, target)
    assert got["status"] == "active" and got["roles"] == ["factory", "auditor"]

    assert roles_at(client, target, admitted_at)["roles"] == ["factory"]
    assert roles_at(client, target, suspended_at)["status"] == "suspended"
    assert roles_at(client, target, node.chain.block_number())["status"] == "active"
    kinds = [p["kind"] for p in client.get("/proposals").json()]
    assert kinds == ["admit", "set_roles", "suspend", "readmit"]


def test_set_quorum_then_two_approvals(client: TestClient, node: Node, operator: Sender) -> None:
    second = admit(node, Role.COUNCIL)  # a second council member whose key the node holds
    op_headers = sign_in(client, node, operator.account)

    resp = propose(client, op_headers, kind="set_quorum", quorum=2)
    assert resp.status_code == 201, resp.text
    assert resp.json()["kind"] == "set_quorum" and resp.json()["quorum_value"] == 2
    assert node.consortium.governance()["quorum"] == 2

    target = new_account().address
    resp = propose(client, op_headers, kind="admit", target=target, roles=["buyer"])
    assert resp.status_code == 201, resp.text
    pid = resp.json()["id"]
    assert resp.json()["state"] == "open" and resp.json()["approvals"] == 1
    assert_problem(client.get(f"/members/{target}"), 404)

    # approving twice is refused by the contract and changes nothing
    before = ledger_state(client, node)
    body = assert_problem(
        client.post(f"/proposals/{pid}/approve", headers=op_headers), 409, "AlreadyApproved"
    )
    assert said(body, f"already approved by {operator.address}")
    assert ledger_state(client, node) == before

    second_headers = sign_in(client, node, second.account)
    resp = client.post(f"/proposals/{pid}/approve", headers=second_headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "executed" and resp.json()["approvals"] == 2
    assert member(client, target)["roles"] == ["buyer"]


def test_proposer_cancels_an_open_proposal(
    client: TestClient, node: Node, operator: Sender
) -> None:
    second = admit(node, Role.COUNCIL)
    node.consortium.propose_quorum(operator, 2)
    op_headers = sign_in(client, node, operator.account)
    resp = propose(client, op_headers, kind="admit", target=new_account().address, roles=["buyer"])
    assert resp.status_code == 201 and resp.json()["state"] == "open", resp.text
    pid = resp.json()["id"]

    before = ledger_state(client, node)
    second_headers = sign_in(client, node, second.account)
    resp = client.post(f"/proposals/{pid}/cancel", headers=second_headers)
    assert_problem(resp, 409, "NotProposer")
    assert ledger_state(client, node) == before

    resp = client.post(f"/proposals/{pid}/cancel", headers=op_headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "cancelled"
    resp = client.post(f"/proposals/{pid}/approve", headers=second_headers)
    assert_problem(resp, 409, "ProposalClosed")


def test_invalid_quorum_is_refused(client: TestClient, node: Node, operator: Sender) -> None:
    headers = sign_in(client, node, operator.account)
    before = ledger_state(client, node)
    body = assert_problem(propose(client, headers, kind="set_quorum", quorum=2), 409)
    assert body["error"] == "InvalidQuorum" and "council of 1" in body["detail"]
    assert ledger_state(client, node) == before


def test_last_council_member_cannot_be_suspended(
    client: TestClient, node: Node, operator: Sender
) -> None:
    headers = sign_in(client, node, operator.account)
    before = ledger_state(client, node)
    resp = propose(client, headers, kind="suspend", target=operator.address)
    body = assert_problem(resp, 409, "LastCouncilMember")
    assert said(body, f"{operator.address} is the last active council member")
    assert ledger_state(client, node) == before


def test_admitting_a_member_twice_is_refused(
    client: TestClient, node: Node, operator: Sender, factory: Sender
) -> None:
    headers = sign_in(client, node, operator.account)
    before = ledger_state(client, node)
    resp = propose(client, headers, kind="admit", target=factory.address, roles=["buyer"])
    body = assert_problem(resp, 409, "AlreadyMember")
    assert said(body, f"{factory.address} is already a member")
    assert [a.lower() for a in body["args"]] == [factory.address.lower()]
    assert ledger_state(client, node) == before


# --- contract refusals ----------------------------------------------------------------
def test_non_council_member_cannot_propose(client: TestClient, node: Node, factory: Sender) -> None:
    headers = sign_in(client, node, factory.account)
    before = ledger_state(client, node)
    resp = propose(client, headers, kind="admit", target=new_account().address, roles=["buyer"])
    body = assert_problem(resp, 403)  # refused by the node before it signs anything
    assert body["detail"] == f"this needs the council role; {factory.address} holds factory"
    for kind, extra in [("suspend", {"target": factory.address}), ("set_quorum", {"quorum": 1})]:
        assert_problem(propose(client, headers, kind=kind, **extra), 403)
    assert_problem(client.post("/proposals/1/approve", headers=headers), 403)
    assert_problem(client.post("/proposals/1/cancel", headers=headers), 403)
    assert ledger_state(client, node) == before


def test_unknown_proposal(client: TestClient, node: Node, operator: Sender) -> None:
    headers = sign_in(client, node, operator.account)
    before = ledger_state(client, node)
    body = assert_problem(
        client.post("/proposals/999/approve", headers=headers), 404, "UnknownProposal"
    )
    assert "999" in body["detail"]
    assert_problem(client.post("/proposals/999/cancel", headers=headers), 404, "UnknownProposal")
    assert_problem(client.get("/proposals/999"), 404, "UnknownProposal")
    assert_problem(client.get("/proposals/not-a-number"), 422)
    assert ledger_state(client, node) == before


def test_executed_proposal_cannot_be_approved_again(
    client: TestClient, node: Node, operator: Sender
) -> None:
    headers = sign_in(client, node, operator.account)
    resp = propose(client, headers, kind="admit", target=new_account().address, roles=["buyer"])
    pid = resp.json()["id"]
    before = ledger_state(client, node)
    body = assert_problem(
        client.post(f"/proposals/{pid}/approve", headers=headers), 409, "ProposalClosed"
    )
    assert f"proposal {pid}" in body["detail"]
    assert ledger_state(client, node) == before


# --- a member whose key the node does not hold ----------------------------------------
def test_member_without_a_held_key_is_sent_to_post_tx(client: TestClient, node: Node) -> None:
    council = outside_member(node, Role.COUNCIL)
    headers = sign_in(client, node, council)
    before = ledger_state(client, node)
    resp = propose(client, headers, kind="admit", target=new_account().address, roles=["buyer"])
    body = assert_problem(resp, 403)
    assert "POST /tx" in body["detail"] and council.address in body["detail"]
    resp = client.put(
        "/members/me/profile", json={"metadata_hash": "0x" + "11" * 32}, headers=headers
    )
    assert_problem(resp, 403)
    assert ledger_state(client, node) == before


def test_member_relays_its_own_transaction(client: TestClient, node: Node) -> None:
    account = outside_member(node, Role.FACTORY)
    headers = sign_in(client, node, account)
    meta, key = b"\x01" * 32, b"\x02" * 32
    signed = signed_update_profile(node, account, meta, key)

    resp = client.post("/tx", json={"raw": signed.raw_transaction.to_0x_hex()}, headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["tx_hash"] == signed.hash.to_0x_hex()
    assert body["status"] == 1 and body["block_number"] == node.chain.block_number()
    got = member(client, account.address)
    assert got["metadata_hash"] == "0x" + meta.hex()
    assert got["encryption_key"] == "0x" + key.hex()

    # sending the very same transaction again is the caller's mistake, not a node failure
    before = ledger_state(client, node)
    resp = client.post("/tx", json={"raw": signed.raw_transaction.to_0x_hex()}, headers=headers)
    assert_problem(resp, 422)
    assert ledger_state(client, node) == before


def test_relay_refuses_a_transaction_signed_by_another_key(client: TestClient, node: Node) -> None:
    account, other = outside_member(node, Role.FACTORY), outside_member(node, Role.FACTORY)
    headers = sign_in(client, node, account)
    signed = signed_update_profile(node, other, b"\x03" * 32, b"\x04" * 32)
    block = node.chain.block_number()
    before = ledger_state(client, node)
    resp = client.post("/tx", json={"raw": signed.raw_transaction.to_0x_hex()}, headers=headers)
    body = assert_problem(resp, 403)
    assert other.address in body["detail"] and account.address in body["detail"]
    assert node.chain.block_number() == block  # nothing was sent
    assert ledger_state(client, node) == before


@pytest.mark.parametrize("raw", ["0xdeadbeef", "0x00", "0x" + "ff" * 120])
def test_relay_refuses_garbage(client: TestClient, node: Node, raw: str) -> None:
    headers = sign_in(client, node, outside_member(node, Role.FACTORY))
    block = node.chain.block_number()
    body = assert_problem(client.post("/tx", json={"raw": raw}, headers=headers), 422)
    assert "signed Ethereum transaction" in body["detail"]
    assert node.chain.block_number() == block


def test_relay_validates_the_raw_field(client: TestClient, node: Node) -> None:
    headers = sign_in(client, node, outside_member(node, Role.FACTORY))
    body = assert_problem(client.post("/tx", json={"raw": "not hex"}, headers=headers), 422)
    assert body["errors"][0]["field"] == "raw"
    body = assert_problem(client.post("/tx", json={}, headers=headers), 422)
    assert body["errors"][0]["field"] == "raw"


def test_relayed_transaction_that_reverts(client: TestClient, node: Node) -> None:
    factory = outside_member(node, Role.FACTORY)  # no council member: proposing reverts
    headers = sign_in(client, node, factory)
    node.chain.ensure_gas(factory.address)
    params: dict[str, Any] = {
        "from": factory.address,
        "chainId": node.chain.chain_id,
        "nonce": node.chain.w3.eth.get_transaction_count(factory.address, "pending"),
        "gas": 300_000,  # skips estimation, which would refuse a reverting call
        **node.chain.fee_fields(),
    }
    fn = node.consortium.contract.functions.proposeSuspend(factory.address)
    signed = factory.sign_transaction(fn.build_transaction(params))
    before = ledger_state(client, node)
    resp = client.post("/tx", json={"raw": signed.raw_transaction.to_0x_hex()}, headers=headers)
    body = assert_problem(resp, 409, "MissingRole")  # replayed to name the reason
    assert said(body, factory.address)
    assert ledger_state(client, node) == before


def test_relayed_transaction_for_another_chain_is_refused(client: TestClient, node: Node) -> None:
    member = outside_member(node, Role.BUYER)
    headers = sign_in(client, node, member)
    tx = {
        "to": member.address,
        "value": 0,
        "gas": 21_000,
        "gasPrice": 0,
        "nonce": 0,
        "chainId": node.chain.chain_id + 1,
    }
    raw = member.sign_transaction(tx).raw_transaction.to_0x_hex()
    body = assert_problem(client.post("/tx", json={"raw": raw}, headers=headers), 422)
    assert "chain" in body["detail"]


def test_member_updates_its_profile_through_the_node(
    client: TestClient, node: Node, factory: Sender
) -> None:
    headers = sign_in(client, node, factory.account)
    meta = "0x" + "42" * 32
    resp = client.put("/members/me/profile", json={"metadata_hash": meta}, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == 1
    got = member(client, factory.address)
    assert got["metadata_hash"] == meta and got["encryption_key"] == "0x" + "00" * 32


# --- input validation -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "admit", "target": "0x1234", "roles": ["factory"]}, "target"),
        ({"kind": "admit", "target": "0x" + "zz" * 20, "roles": ["factory"]}, "target"),
        ({"kind": "promote", "target": STRANGER}, "kind"),
        ({"kind": "set_quorum", "quorum": 0}, "quorum"),
        (
            {
                "kind": "admit",
                "target": STRANGER,
                "roles": ["factory"],
                "metadata_hash": "0x12",
            },
            "metadata_hash",
        ),
        ({"target": STRANGER}, "kind"),
    ],
    ids=[
        "short-address",
        "non-hex-address",
        "unknown-kind",
        "zero-quorum",
        "short-hash",
        "no-kind",
    ],
)
def test_proposal_body_validation(
    client: TestClient, node: Node, operator: Sender, body: dict[str, Any], field: str
) -> None:
    headers = sign_in(client, node, operator.account)
    before = ledger_state(client, node)
    problem = assert_problem(propose(client, headers, **body), 422)
    assert problem["title"] == "Invalid input"
    assert field in [e["field"] for e in problem["errors"]], problem
    assert field in problem["detail"]
    assert ledger_state(client, node) == before


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"kind": "admit", "target": STRANGER, "roles": ["wizard"]}, "wizard"),
        ({"kind": "admit", "target": STRANGER, "roles": []}, "at least one role"),
        ({"kind": "set_roles", "target": STRANGER, "roles": ["factory", "king"]}, "king"),
        ({"kind": "admit", "roles": ["factory"]}, "target"),
        ({"kind": "suspend"}, "target"),
        ({"kind": "set_quorum"}, "quorum"),
    ],
    ids=["unknown-role", "no-role", "unknown-role-set", "no-target", "suspend-no-target", "no-q"],
)
def test_proposal_semantic_validation(
    client: TestClient, node: Node, operator: Sender, body: dict[str, Any], needle: str
) -> None:
    headers = sign_in(client, node, operator.account)
    before = ledger_state(client, node)
    problem = assert_problem(propose(client, headers, **body), 422)
    assert needle in problem["detail"]
    assert ledger_state(client, node) == before


def test_member_lookups(client: TestClient, node: Node, operator: Sender) -> None:
    unknown = new_account().address
    body = assert_problem(client.get(f"/members/{unknown}"), 404)
    assert unknown in body["detail"]
    assert_problem(client.get(f"/members/{unknown.lower()}"), 404)
    assert member(client, operator.address.lower())["address"] == operator.address
    assert_problem(client.get("/members/0x1234"), 422)
    assert_problem(client.get(f"/members/{operator.address}/at", params={"block": -1}), 422)
    assert_problem(client.get(f"/members/{operator.address}/at"), 422)
    future = node.chain.block_number() + 100
    resp = client.get(f"/members/{operator.address}/at", params={"block": future})
    assert 400 <= resp.status_code < 500
    assert_problem(resp, resp.status_code)
    assert_problem(client.get("/nowhere"), 404)


# --- device keys ----------------------------------------------------------------------
NO_CONSENT = "0x" + "00" * 65  # well-formed; for refusals that come before it is read


def consent(client: TestClient, device: LocalAccount, factory: str, expires_at: int = 0) -> str:
    """The device key signs the binding the node describes (as a device elsewhere would)."""
    resp = client.get(
        f"/devices/{device.address}/binding",
        params={"factory": factory, "expires_at": expires_at},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["typed_data"]["primaryType"] == "DeviceBinding"
    signed = device.sign_message(encode_typed_data(full_message=body["typed_data"]))
    assert "0x" + bytes(signed.message_hash).hex() == body["digest"]
    return "0x" + bytes(signed.signature).hex()


def bind(
    client: TestClient,
    headers: Headers,
    device: LocalAccount,
    factory: str,
    expires_at: int = 0,
) -> Response:
    signature = consent(client, device, factory, expires_at)
    body = {"device": device.address, "expires_at": expires_at, "signature": signature}
    return client.post("/devices", json=body, headers=headers)


def device_state(client: TestClient, node: Node, device: str) -> tuple[Any, ...]:
    record = node.consortium.contract.functions.device(device).call()
    return (*ledger_state(client, node), tuple(record))


def test_factory_authorises_and_revokes_a_device(
    client: TestClient, node: Node, factory: Sender
) -> None:
    headers = sign_in(client, node, factory.account)
    key = new_account()
    device = key.address
    expires = chain_time(node) + 3600

    resp = bind(client, headers, key, factory.address, expires)
    assert resp.status_code == 201, resp.text
    authorised = resp.json()
    assert authorised == {
        "address": device,
        "owner": factory.address,
        "expires_at": expires,
        "active": True,
        "authorized_at_block": node.chain.block_number(),
        "nonce": 1,
    }
    assert client.get(f"/devices/{device}").json() == authorised
    assert node.consortium.is_authorized_signer(
        factory.address, device, int(Role.FACTORY), node.chain.block_number(), expires - 1
    )

    resp = client.delete(f"/devices/{device}", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["active"] is False and resp.json()["owner"] == factory.address
    assert client.get(f"/devices/{device}").json()["active"] is False

    body = assert_problem(client.delete(f"/devices/{device}", headers=headers), 409)
    assert body["error"] == "DeviceNotAuthorized" and said(body, f"{device} is not authorised")


def test_device_without_expiry(client: TestClient, node: Node, factory: Sender) -> None:
    headers = sign_in(client, node, factory.account)
    resp = bind(client, headers, new_account(), factory.address)
    assert resp.status_code == 201, resp.text
    assert resp.json()["expires_at"] == 0 and resp.json()["active"] is True


def test_a_factory_cannot_squat_a_device_address(
    client: TestClient, node: Node, operator: Sender, factory: Sender
) -> None:
    """Without the device key's own signature nothing is bound, and the address stays free
    to be admitted as a member."""
    headers = sign_in(client, node, factory.account)
    victim = new_account()
    before = device_state(client, node, victim.address)
    resp = client.get(f"/devices/{victim.address}/binding", params={"factory": factory.address})
    data = encode_typed_data(full_message=resp.json()["typed_data"])
    forged = [  # signed by the squatter itself, and by some other key
        "0x" + bytes(k.sign_message(data).signature).hex() for k in (factory.account, new_account())
    ]
    for signature in (*forged, NO_CONSENT):
        body = {"device": victim.address, "signature": signature}
        problem = assert_problem(
            client.post("/devices", json=body, headers=headers), 403, "InvalidDeviceSignature"
        )
        assert said(problem, f"not signed by device key {victim.address}")
    missing = assert_problem(
        client.post("/devices", json={"device": victim.address}, headers=headers), 422
    )
    assert missing["errors"][0]["field"] == "signature"
    assert device_state(client, node, victim.address) == before
    assert_problem(client.get(f"/devices/{victim.address}"), 404)
    admitted = propose(
        client,
        sign_in(client, node, operator.account),
        kind="admit",
        target=victim.address,
        roles=["buyer"],
    )
    assert admitted.status_code == 201 and admitted.json()["state"] == "executed"


def test_the_node_never_signs_a_binding_for_the_device(
    client: TestClient, node: Node, factory: Sender
) -> None:
    """Even holding the device key, the node binds it only with a signature in the body."""
    held = node.add_signer(new_account())
    headers = sign_in(client, node, factory.account)
    before = device_state(client, node, held.address)
    body = {"device": held.address, "signature": NO_CONSENT}
    assert_problem(client.post("/devices", json=body, headers=headers), 403)
    assert device_state(client, node, held.address) == before


def test_a_front_run_copy_of_a_binding_is_refused(
    client: TestClient, node: Node, factory: Sender
) -> None:
    rival = admit(node, Role.FACTORY)
    key = new_account()
    body = {"device": key.address, "signature": consent(client, key, factory.address)}
    before = device_state(client, node, key.address)
    resp = client.post("/devices", json=body, headers=sign_in(client, node, rival.account))
    assert_problem(resp, 403, "InvalidDeviceSignature")
    assert device_state(client, node, key.address) == before
    resp = client.post("/devices", json=body, headers=sign_in(client, node, factory.account))
    assert resp.status_code == 201 and resp.json()["owner"] == factory.address


def test_council_unbinds_a_device(
    client: TestClient, node: Node, operator: Sender, factory: Sender
) -> None:
    key = new_account()
    assert bind(client, sign_in(client, node, factory.account), key, factory.address).is_success
    council = sign_in(client, node, operator.account)
    refused = propose(client, council, kind="admit", target=key.address, roles=["buyer"])
    assert_problem(refused, 409, "AccountIsDevice")
    denied = propose(
        client, sign_in(client, node, factory.account), kind="unbind_device", target=key.address
    )
    assert "needs the council role" in assert_problem(denied, 403)["detail"]

    resp = propose(client, council, kind="unbind_device", target=key.address)
    assert resp.status_code == 201, resp.text
    assert resp.json()["kind"] == "unbind_device" and resp.json()["state"] == "executed"
    unbound = client.get(f"/devices/{key.address}").json()
    assert (unbound["owner"], unbound["active"]) == ("0x" + "00" * 20, False)
    again = propose(client, council, kind="unbind_device", target=key.address)
    assert_problem(again, 409, "DeviceNotBound")
    admitted = propose(client, council, kind="admit", target=key.address, roles=["buyer"])
    assert admitted.json()["state"] == "executed"


def test_non_factories_cannot_authorise_devices(
    client: TestClient, node: Node, operator: Sender
) -> None:
    device = new_account().address
    before = ledger_state(client, node)
    body = {"device": device, "signature": NO_CONSENT}

    # a factory whose key the node does not hold: the node cannot sign for it
    stranger = sign_in(client, node, outside_member(node, Role.FACTORY))
    before = ledger_state(client, node)
    resp = client.post("/devices", json=body, headers=stranger)
    assert "POST /tx" in assert_problem(resp, 403)["detail"]

    # an outsider whose key the node holds gets no token, so the node signs nothing for it
    held = node.add_signer(new_account())
    text = siwe_text(held.address, fresh_nonce(client), node.chain.chain_id)
    assert_problem(login(client, text, sign_text(held.account, text)), 403)

    # the council operator is a member but no factory
    resp = client.post("/devices", json=body, headers=sign_in(client, node, operator.account))
    problem = assert_problem(resp, 409, "MissingRole")
    assert "factory role" in problem["detail"]

    assert_problem(client.get(f"/devices/{device}"), 404)
    assert ledger_state(client, node) == before


def test_member_cannot_be_a_device(
    client: TestClient, node: Node, operator: Sender, factory: Sender
) -> None:
    headers = sign_in(client, node, factory.account)
    resp = bind(client, headers, operator.account, factory.address)
    body = assert_problem(resp, 409, "DeviceIsMember")
    assert said(body, f"{operator.address} is a member and cannot be a device key")
    assert_problem(client.get(f"/devices/{operator.address}"), 404)


def test_devices_stay_with_their_owner(client: TestClient, node: Node, factory: Sender) -> None:
    other = admit(node, Role.FACTORY)
    owner_headers = sign_in(client, node, factory.account)
    other_headers = sign_in(client, node, other.account)
    key = new_account()
    device = key.address
    assert bind(client, owner_headers, key, factory.address).is_success

    resp = bind(client, other_headers, key, other.address)  # even with the key's consent
    body = assert_problem(resp, 409, "DeviceTaken")
    assert said(body, f"{device} belongs to {factory.address}")
    resp = client.delete(f"/devices/{device}", headers=other_headers)
    assert_problem(resp, 409, "NotDeviceOwner")
    assert client.get(f"/devices/{device}").json()["active"] is True


def test_device_input_is_checked(client: TestClient, node: Node, factory: Sender) -> None:
    headers = sign_in(client, node, factory.account)
    key = new_account()
    device = key.address
    past = chain_time(node) - 10
    body = assert_problem(bind(client, headers, key, factory.address, past), 409, "InvalidExpiry")
    assert str(past) in body["detail"]
    for bad in (
        {"device": "0x1234", "signature": NO_CONSENT},
        {"device": device, "expires_at": -1, "signature": NO_CONSENT},
        {"device": device, "signature": "0x1234"},
        {},
    ):
        problem = assert_problem(client.post("/devices", json=bad, headers=headers), 422)
        assert problem["errors"], problem
    body = assert_problem(
        client.post("/devices", json={"device": "nope", "signature": NO_CONSENT}, headers=headers),
        422,
    )
    assert body["errors"][0]["field"] == "device"
    assert_problem(client.get("/devices/0x1234"), 422)
    assert_problem(client.get("/devices/0x1234/binding", params={"factory": device}), 422)
    assert_problem(client.get(f"/devices/{device}/binding", params={"factory": "x"}), 422)
    assert_problem(client.delete("/devices/0x1234", headers=headers), 422)
    assert_problem(client.get(f"/devices/{device}"), 404)


def test_outstanding_nonces_are_bounded(
    client: TestClient, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anonymous nonce requests cannot grow the node's memory: the oldest nonces go first."""
    monkeypatch.setattr("api.sessions.MAX_NONCES", 3)
    account = outside_member(node, Role.BUYER)
    nonces = [fresh_nonce(client) for _ in range(5)]
    assert len(client.app.state.sessions._nonces) == 3  # type: ignore[attr-defined]
    oldest = siwe_text(account.address, nonces[0], node.chain.chain_id)
    assert (
        "nonce" in assert_problem(login(client, oldest, sign_text(account, oldest)), 401)["detail"]
    )
    newest = siwe_text(account.address, nonces[-1], node.chain.chain_id)
    assert login(client, newest, sign_text(account, newest)).status_code == 200


def test_multibyte_message_over_4_kib_is_refused_as_too_large(
    client: TestClient, node: Node
) -> None:
    account = outside_member(node, Role.BUYER)
    text = siwe_text(account.address, fresh_nonce(client), node.chain.chain_id)
    text = text.replace("Sign in to the cofab node.", "é" * 3000, 1)
    assert len(text) <= MAX_MESSAGE_BYTES < len(text.encode())
    body = assert_problem(login(client, text, sign_text(account, text)), 413)
    assert "4096 bytes" in body["detail"]
