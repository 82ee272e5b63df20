"""Property-based fuzzing of every operation in the node's OpenAPI schema: no input,
signed in or anonymous, gets a 5xx. Run by `make fuzz` (part of `make test`) in its own
environment, since schemathesis needs a newer Hypothesis than brownie pins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.app import create_app
from ledger.chain import Backend
from ledger.node import Node, NodeOptions

EXAMPLES = int(os.environ.get("COFAB_FUZZ_EXAMPLES", "20"))


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    os.environ["COFAB_PASSPHRASE"] = "fuzz"
    data = Path(tmp_path_factory.mktemp("fuzz-node"))
    started = Node.start(NodeOptions(backend=Backend.EMBEDDED, data_dir=data, kdf_iterations=2**10))
    yield started
    started.close()


@pytest.fixture(scope="session")
def api_schema(node: Node) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(node))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_input_gets_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])
