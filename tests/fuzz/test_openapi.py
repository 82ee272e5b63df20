"""Property-based fuzzing of every operation in the node's OpenAPI schema: no input,
signed in or anonymous, gets a 5xx. Run by `make fuzz` (part of `make test`) in its own
environment, since schemathesis needs a newer Hypothesis than brownie pins. The node runs
on an anvil of its own (tests/kit.py `anvil_node`)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
from eth_account.messages import encode_defunct
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from siwe import SiweMessage

from api.app import create_app
from kit import anvil_node
from ledger.membership.roles import ALL_ROLES
from ledger.node import Node

EXAMPLES = int(os.environ.get("COFAB_FUZZ_EXAMPLES", "6"))  # see the Makefile's fuzz target
ORIGIN = "http://testserver"  # what the ASGI test transport sends as the host


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with anvil_node(Path(tmp_path_factory.mktemp("fuzz-node"))) as started:
        operator = started.sender()
        started.consortium.propose_set_roles(operator, operator.address, ALL_ROLES)
        yield started


@pytest.fixture(scope="session")
def app(node: Node) -> FastAPI:
    return create_app(node, public_url=ORIGIN)


@pytest.fixture(scope="session")
def api_schema(app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


class Token:
    """A bearer token of the operator (every role), renewed before it expires."""

    def __init__(self, app: FastAPI, node: Node) -> None:
        self.client = TestClient(app)
        self.node = node
        self.value = ""
        self.at = 0.0

    def header(self) -> dict[str, str]:
        if time.monotonic() - self.at > 600:
            nonce = self.client.get("/auth/nonce").json()
            account = self.node.sender().account
            text = SiweMessage(
                domain=nonce["domain"],
                address=account.address,
                uri=nonce["uri"],
                version="1",
                chain_id=self.node.chain.chain_id,
                nonce=nonce["nonce"],
                issued_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            ).prepare_message()
            signature = account.sign_message(encode_defunct(text=text)).signature.to_0x_hex()
            answer = self.client.post("/auth/login", json={"message": text, "signature": signature})
            assert answer.status_code == 200, answer.text
            self.value, self.at = answer.json()["token"], time.monotonic()
        return {"Authorization": f"Bearer {self.value}"}


@pytest.fixture(scope="session")
def token(app: FastAPI, node: Node) -> Token:
    return Token(app, node)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_input_gets_a_server_error(case: schemathesis.Case, token: Token) -> None:
    case.call_and_validate(checks=[not_a_server_error])
    case.call_and_validate(checks=[not_a_server_error], headers=token.header())
