"""Uploads cost constant memory, and a body is never read for a caller who may not send it.

A design upload is hashed and written to the blob store as it arrives; the node's peak
RSS is measured in the server process (`VmHWM` after resetting it through
/proc/self/clear_refs) while curl, a separate process, streams a large file to a real
uvicorn server. An anonymous request to an endpoint that needs a token is answered 401
from its headers alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from test_api import Headers, sign_in

from api.app import create_app
from kit import admit
from ledger.core.blobs import STAGING_PREFIX, BlobStore
from ledger.designs.files import NewDesign, sha256_file
from ledger.eth.toolchain import free_port
from ledger.membership.roles import Role
from ledger.node import Node

MiB = 1 << 20
UPLOAD_MIB = 160  # the file streamed through the API
PEAK_BOUND = 32 * MiB  # what the whole upload may add to the server's peak memory


@pytest.fixture
def app(node: Node) -> FastAPI:
    return create_app(node)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def as_designer(client: TestClient, node: Node) -> Headers:
    return sign_in(client, node, admit(node, int(Role.DESIGNER)).account)


class Server:
    """The app served by uvicorn on a free 127.0.0.1 port, in a thread of this process,
    so this process is the server whose memory is measured."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))  # type: ignore[union-attr]


@contextlib.contextmanager
def peak_growth() -> Iterator[dict[str, int]]:
    """Bytes by which this process's peak RSS rose above its RSS at the start."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    start = _status_kib("VmRSS")
    found: dict[str, int] = {}
    yield found
    found["bytes"] = (_status_kib("VmHWM") - start) * 1024


def big_file(path: Path, mib: int) -> str:
    """A file of `mib` MiB of random-looking bytes; its SHA-256 hex."""
    digest = hashlib.sha256()
    block = os.urandom(MiB)
    with path.open("wb") as out:
        for i in range(mib):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def curl(*args: str) -> tuple[int, str]:
    """Run curl; its HTTP status and body."""
    done = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    body, _, code = done.stdout.rpartition("\n")
    return int(code), body


def staged_leftovers(node: Node) -> list[Path]:
    return list((node.data_dir / "blobs").glob(STAGING_PREFIX + "*"))


@pytest.mark.slow
def test_a_large_upload_is_hashed_to_disk_in_constant_memory(
    app: FastAPI, node: Node, as_designer: Headers, tmp_path: Path
) -> None:
    path = tmp_path / "housing.step"
    expected = big_file(path, UPLOAD_MIB)
    token = as_designer["Authorization"]
    with Server(app) as server:
        with peak_growth() as registered:
            code, body = curl(
                "-H",
                f"Authorization: {token}",
                "-F",
                f"files=@{path}",
                "-F",
                "title=housing",
                server.url + "/designs",
            )
        assert code == 201, body
        bundle = tmp_path / "certificate.json"  # not revealed yet: verified with its bundle
        bundle.write_text(json.dumps(json.loads(body)[0]))
        with peak_growth() as verified:
            code, verdict = curl(
                "-F", f"file=@{path}", "-F", f"bundle=@{bundle}", server.url + "/designs/verify"
            )
        assert code == 200, verdict
    print(
        f"\n{UPLOAD_MIB} MiB: peak RSS growth {registered['bytes'] / MiB:.1f} MiB registering, "
        f"{verified['bytes'] / MiB:.1f} MiB verifying"
    )
    assert f'"design_id":"0x{expected}"' in body
    assert f'"size":{UPLOAD_MIB * MiB}' in body
    assert f'"design_id":"0x{expected}"' in verdict and '"registered":true' in verdict
    stored = BlobStore(node.data_dir / "blobs").path(expected)
    assert stored.stat().st_size == UPLOAD_MIB * MiB
    digest = hashlib.sha256()
    with stored.open("rb") as handle:
        while chunk := handle.read(MiB):
            digest.update(chunk)
    assert digest.hexdigest() == expected
    assert stored.stat().st_mode & 0o777 == 0o600
    assert staged_leftovers(node) == []
    assert registered["bytes"] < PEAK_BOUND, registered
    assert verified["bytes"] < PEAK_BOUND, verified


def multipart(boundary: str, parts: Iterator[bytes]) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="big.step"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    yield from parts
    yield f"\r\n--{boundary}--\r\n".encode()


def test_an_upload_past_the_bound_mid_stream_is_413_and_leaves_no_file(
    client: TestClient, node: Node, as_designer: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COFAB_MAX_UPLOAD_BYTES", str(2 * MiB))
    sent = [0]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bound is found as it streams
        for _ in range(8):
            sent[0] += 1
            yield os.urandom(MiB // 2)

    blocks_before = node.chain.block_number()
    answer = client.post(
        "/designs",
        content=multipart("xyz", chunks()),
        headers={**as_designer, "content-type": "multipart/form-data; boundary=xyz"},
    )
    assert answer.status_code == 413, answer.text
    assert answer.json()["title"] == "Request too large"
    assert "2,097,152 bytes" in answer.json()["detail"]
    assert staged_leftovers(node) == []  # the temporary file was removed
    assert [p for p in (node.data_dir / "blobs").rglob("*") if p.is_file()] == []
    assert node.chain.block_number() == blocks_before
    assert client.get("/designs", headers=as_designer).json() == []


def test_a_refused_registration_keeps_no_uploaded_file(
    client: TestClient, node: Node, as_designer: Headers
) -> None:
    content = os.urandom(3 * MiB)
    first = client.post("/designs", files={"files": ("a.step", content)}, headers=as_designer)
    assert first.status_code == 201, first.text
    kept = sorted(p for p in (node.data_dir / "blobs").rglob("*") if p.is_file())
    again = client.post("/designs", files={"files": ("b.step", content)}, headers=as_designer)
    assert again.status_code == 409, again.text  # already registered
    other = os.urandom(MiB)
    bad_parent = client.post(
        "/designs",
        files={"files": ("c.step", other)},
        data={"parent_id": "0x" + "11" * 32},
        headers=as_designer,
    )
    assert bad_parent.status_code == 404, bad_parent.text
    assert sorted(p for p in (node.data_dir / "blobs").rglob("*") if p.is_file()) == kept
    assert not BlobStore(node.data_dir / "blobs").has(hashlib.sha256(other).hexdigest())


def test_upload_forms_name_what_is_wrong(client: TestClient, as_designer: Headers) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"files": {"drawing": ("a.step", b"x")}}, "drawing"),
        ({"files": {"files": ("a.step", b"x")}, "data": {"title": "t" * 501}}, "title"),
        ({"files": {"files": ("a.step", b"x")}, "data": {"parent_id": "nope"}}, "parent_id"),
        ({"data": {"title": "no file"}}, "files"),
        ({"content": b"{}", "headers": {"content-type": "application/json"}}, "body"),
    ]
    for kwargs, field in cases:
        headers = {**as_designer, **kwargs.pop("headers", {})}
        answer = client.post("/designs", headers=headers, **kwargs)
        assert answer.status_code == 422, (field, answer.text)
        assert [e["field"] for e in answer.json()["errors"]] == [field], answer.json()


def _scope(app: FastAPI, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


def _call(app: FastAPI, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> tuple:
    """Send a request to the ASGI app; (status, whether the app read any of the body)."""
    read = [False]
    status: list[int] = []

    async def receive() -> dict:
        read[0] = True
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    asyncio.run(app(_scope(app, method, path, headers), receive, send))
    return status[0], read[0]


def test_every_endpoint_needing_a_token_refuses_anonymous_bodies_unread(
    app: FastAPI, client: TestClient, as_designer: Headers
) -> None:
    endpoints = [
        (method, re.sub(r"\{[^}]+\}", "1", route.path))
        for route, needed in app.state.token_gate.routes
        if needed
        for method in sorted(route.methods - {"GET", "HEAD"})
    ]
    assert len(endpoints) > 30 and ("POST", "/designs") in endpoints
    for kind in (b"application/json", b"multipart/form-data; boundary=x"):
        base = [(b"content-type", kind), (b"content-length", b"2")]
        for auth in ([], [(b"authorization", b"Bearer not-a-token")]):
            for method, path in endpoints:
                status, read = _call(app, method, path, base + auth)
                assert (status, read) == (401, False), (method, path, kind, auth)
    # with a valid token the same path reads its body: the check above would see it
    token = as_designer["Authorization"].encode()
    headers = [(b"content-type", b"application/json"), (b"authorization", token)]
    assert _call(app, "POST", "/designs/by-hash", headers) == (422, True)


def test_an_anonymous_100_mib_upload_is_refused_before_its_body_is_sent(app: FastAPI) -> None:
    size = 100 * MiB
    head = (
        "POST /designs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    with Server(app) as server, socket.create_connection(("127.0.0.1", server.port)) as sock:
        rss_before = _status_kib("VmRSS")
        sock.sendall(head)  # headers only: the answer must not wait for the body
        sock.settimeout(30)
        received = b""
        while chunk := sock.recv(65536):  # to the end: the server closes the connection
            received += chunk
        answer = received.decode(errors="replace")
        assert answer.startswith("HTTP/1.1 401"), answer
        assert "Sign-in required" in answer and "bearer token" in answer
        sent = 0  # the rest is not read: the server has closed the connection
        block = b"x" * MiB
        with contextlib.suppress(OSError):
            while sent < size:
                sent += sock.send(block)
        rss_after = _status_kib("VmRSS")
    print(f"\nanonymous upload: {sent / MiB:.1f} of 100 MiB taken by the socket before it closed")
    assert sent < 16 * MiB, "the server kept reading an anonymous upload"
    assert (rss_after - rss_before) * 1024 < 16 * MiB


def test_a_blob_writer_puts_a_complete_blob_in_place_or_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    content = os.urandom(3 * MiB + 7)
    with store.writer() as blob:
        for start in range(0, len(content), 100_000):
            blob.write(content[start : start + 100_000])
        assert not store.has(hashlib.sha256(content).hexdigest())  # staged, not in place
        digest = blob.commit()
    assert digest == hashlib.sha256(content).hexdigest()
    assert store.get(digest) == content
    with store.writer() as again:  # the same content again: idempotent
        again.write(content)
        assert again.commit() == digest
    with store.writer() as dropped:  # never committed: removed when the block ends
        dropped.write(b"half a file")
    assert list(store.root.glob(STAGING_PREFIX + "*")) == []
    local = tmp_path / "part.step"
    local.write_bytes(content[:MiB])
    assert store.get(store.put_file(local)) == content[:MiB]


def test_a_design_registered_from_a_local_file_is_kept_in_the_blob_store(
    node: Node, tmp_path: Path
) -> None:
    path = tmp_path / "bracket.step"
    path.write_bytes(os.urandom(2 * MiB))
    designer = admit(node, int(Role.DESIGNER))
    svc = node.design_service()
    item = NewDesign.from_path(path, sha256_file(path), title="bracket")
    [cert] = svc.register(designer, [item])
    assert svc.blobs.get(cert.design_id) == path.read_bytes()
