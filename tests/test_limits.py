"""Bad input and faults get a clear 4xx/5xx problem, never a 500 or a dead node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from api.app import create_app
from kit import FAST_KDF, PASSPHRASE, new_account
from ledger.core.json_limits import json_depth
from ledger.core.keys import Keyring
from ledger.core.settings import MAX_JSON_BYTES, MAX_JSON_DEPTH
from ledger.eth.chain import Backend
from ledger.eth.devnet import Devnet
from ledger.eth.toolchain import free_port
from ledger.node import Node, NodeOptions


@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node)) as c:
        yield c


def _reference_depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_reference_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_reference_depth, value), default=0)
    return 0


documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n'),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=30,
)


@given(documents)
def test_json_depth_agrees_with_a_parser(document: object) -> None:
    assert json_depth(json.dumps(document).encode()) == _reference_depth(document)


@pytest.mark.parametrize("path", ["/steps", "/steps/verify", "/steps/batch", "/auth/login"])
def test_json_nested_100000_deep_is_refused_and_the_node_lives(
    client: TestClient, path: str
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000  # ~200 KB: overflowed the C stack of json.loads
    answer = client.post(path, content=deep, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert f"at most {MAX_JSON_DEPTH}" in answer.json()["detail"]
    assert client.get("/health").status_code == 200


def test_an_oversized_json_body_is_refused_before_it_is_read(client: TestClient) -> None:
    big = b'{"steps": "' + b"a" * MAX_JSON_BYTES + b'"}'
    answer = client.post(
        "/designs/verify", content=big, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.json()["title"] == "Request too large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(MAX_JSON_BYTES // 65536 + 2):
            yield b" " * 65536

    streamed = client.post(
        "/steps/batch", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_an_upload_past_the_configured_bound_is_refused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COFAB_MAX_UPLOAD_BYTES", "1000")
    answer = client.post("/designs", files={"file": ("part.step", b"x" * 5000)})
    assert answer.status_code == 413
    assert "1,000 bytes" in answer.json()["detail"]


def test_chain_down_answers_503_saying_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COFAB_PASSPHRASE", PASSPHRASE)
    data = tmp_path / "node"
    key = new_account()
    Keyring(data / "keystore").import_private_key(
        "operator", key.key.hex(), PASSPHRASE, kdf_iterations=FAST_KDF
    )
    devnet = Devnet(state_dir=tmp_path / "chain", port=free_port())
    devnet.start()
    try:
        opts = NodeOptions(
            backend=Backend.RPC,
            rpc_url=devnet.url,
            data_dir=data,
            kdf_iterations=FAST_KDF,
            deploy=True,
        )
        node = Node.start(opts)
    finally:
        devnet.stop()  # the chain goes away under a running node
    try:
        with TestClient(create_app(node)) as client:
            for path in ("/members", f"/members/{key.address}", "/ready"):
                answer = client.get(path)
                assert answer.status_code == 503, (path, answer.text)
            problem = client.get("/members").json()
            assert problem["title"] == "Chain unavailable"
            assert "cannot reach its chain" in problem["detail"]
    finally:
        node.close()


def test_a_full_disk_is_named_as_such() -> None:
    from ledger.core.errors import DiskFull, fault

    with pytest.raises(OSError) as raised, open("/dev/full", "wb") as full:
        full.write(b"x")
        full.flush()
    answer = fault(raised.value)
    assert isinstance(answer, DiskFull) and answer.status == 507
    assert "disk is full" in answer.message
